"""Project-wide middleware."""

from __future__ import annotations

from csp.middleware import CSPMiddleware as _CSPMiddleware
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class CSPMiddleware(_CSPMiddleware):
    """django-csp's middleware, minus its work on responses without a body (204, 304): a policy
    there protects nothing, and building it was a sixth of the board poll's cost (it runs for
    every follower every 5 seconds; docs/BENCHMARKS.md)."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.status_code in (204, 304):
            return response
        return super().process_response(request, response)
