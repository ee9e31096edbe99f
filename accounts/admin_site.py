"""The Django admin for staff, behind the same login and second factor as everyone else.

Anonymous visitors go straight to the product's login page (password, then TOTP); a signed-in
person who is not staff gets 403; staff must have passed the second factor in this session.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from accounts.second_factor import is_verified, second_factor_redirect


class CopytradeAdminSite(AdminSite):
    site_header = "copytrade administration"
    site_title = "copytrade admin"
    index_title = "Records"

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and is_verified(request)

    def _refusal(self, request: HttpRequest, next_url: str) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(next_url)
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("The admin is for staff.")
        if not is_verified(request):
            return second_factor_redirect(request)
        return None

    def admin_view(self, view: Callable[..., Any], cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if request.path != reverse("admin:logout", current_app=self.name):
                refused = self._refusal(request, request.get_full_path())
                if refused is not None:
                    return refused
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        refused = self._refusal(request, next_url)
        if refused is not None:
            return refused
        return super().login(request, extra_context)
