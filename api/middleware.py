"""Under /api/ every answer is JSON in the envelope: errors that Django itself produces (no
such path, a method the endpoint does not take, a crash) are rewritten from HTML or plain
text into `{"ok": false, "message", "data": null, "error": {"code", "fields"}}`."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

PREFIX = "/api/"
MESSAGES = {
    400: ("Bad request.", "bad_request"),
    401: ("Authentication required.", "unauthenticated"),
    403: ("You may not do this.", "forbidden"),
    404: ("No such API endpoint.", "not_found"),
    405: ("This method is not allowed here.", "method_not_allowed"),
    413: ("The request is too large.", "too_large"),
    500: ("Something went wrong on our side; it has been logged.", "internal_error"),
}


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path_info.startswith(PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            message, code = MESSAGES.get(
                response.status_code,
                ("Request failed.", "error"),
            )
            rewritten = HttpResponse(
                json.dumps(
                    {
                        "ok": False,
                        "message": message,
                        "data": None,
                        "error": {"code": code, "fields": {}},
                    }
                ),
                status=response.status_code,
                content_type="application/json; charset=utf-8",
            )
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    rewritten[header] = response[header]
            rewritten["Cache-Control"] = "no-store"
            return rewritten
        return response
