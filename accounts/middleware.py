"""An expired login during an HTMX request must not swap the login page into a table cell:
answer with HX-Redirect to the login page instead of a 302 that htmx would follow."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class HtmxLoginRedirectMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        is_htmx = request.headers.get("HX-Request") == "true"
        if is_htmx and response.status_code == 302:
            from django.conf import settings
            from django.shortcuts import resolve_url

            login_url = resolve_url(settings.LOGIN_URL)
            location = response.get("Location", "")
            if location.startswith(login_url):
                redirect = HttpResponse(status=204)
                redirect["HX-Redirect"] = location
                return redirect
        return response
