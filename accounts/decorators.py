"""Role checks for views. A follower never reaches a master page and vice versa; a master must
have passed the second factor (TOTP) before any master page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

View = Callable[..., HttpResponse]


def master_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request.user, "role", None) != "master":
            raise PermissionDenied("masters only")
        return view(request, *args, **kwargs)

    return wrapper


def follower_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request.user, "role", None) != "follower":
            raise PermissionDenied("followers only")
        return view(request, *args, **kwargs)

    return wrapper
