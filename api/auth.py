"""Who is calling: a browser session (with CSRF on writes, and a master's second factor), or a
script's bearer token (`python manage.py api_token USERNAME`).

The role check happens here, before the request's body is read: a caller that may not use an
endpoint gets 403 without learning anything about its input rules.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer

from accounts.models import User
from api import tokens

MASTERS_ONLY = "Only a master may do this."
PEOPLE_ONLY = "The API is for masters and followers; staff use the admin."


def _allowed(user: User, masters_only: bool) -> User:
    if user.role not in (User.Role.MASTER, User.Role.FOLLOWER):
        raise HttpError(403, PEOPLE_ONLY)
    if masters_only and user.role != User.Role.MASTER:
        raise HttpError(403, MASTERS_ONLY)
    return user


class BearerToken(HttpBearer):
    def __init__(self, *, masters_only: bool = False) -> None:
        self.masters_only = masters_only
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = tokens.user_for(token)
        if user is None:
            return None
        request.user = user
        return _allowed(user, self.masters_only)


class BrowserSession(APIKeyCookie):
    """Django's session. Writes need the CSRF token (header X-CSRFToken), as every form does;
    a master counts as logged in only after the second factor."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, *, masters_only: bool = False) -> None:
        self.masters_only = masters_only
        super().__init__()

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.COOKIES.get(self.param_name):
            return None  # no session at all: "unauthenticated", not "CSRF failed"
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not key or not user.is_authenticated or not isinstance(user, User):
            return None
        if user.role == User.Role.MASTER:
            is_verified = getattr(user, "is_verified", None)
            if not (is_verified and is_verified()):
                return None
        return _allowed(user, self.masters_only)


PEOPLE = [BearerToken(), BrowserSession()]
MASTERS = [BearerToken(masters_only=True), BrowserSession(masters_only=True)]
