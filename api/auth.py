"""Who is calling: a browser session (with CSRF on writes, and a master's second factor), or a
script's bearer token (`python manage.py api_token USERNAME`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from accounts.models import User
from api import tokens


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = tokens.user_for(token)
        if user is not None:
            request.user = user
        return user


class BrowserSession(APIKeyCookie):
    """Django's session. Writes need the CSRF token (header X-CSRFToken), as every form does;
    a master counts as logged in only after the second factor."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.COOKIES.get(self.param_name):
            return None  # no session at all: "unauthenticated", not "CSRF failed"
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not key or not user.is_authenticated:
            return None
        if getattr(user, "role", None) == User.Role.MASTER:
            is_verified = getattr(user, "is_verified", None)
            if not (is_verified and is_verified()):
                return None
        return user
