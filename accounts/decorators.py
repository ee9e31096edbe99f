"""Role checks for views. A follower never reaches a master page and vice versa; a master (and
staff) must have passed the second factor (TOTP) before any page that needs it.

- anonymous → the login page (an HTMX request gets HX-Redirect, see accounts.middleware);
- wrong role → 403;
- a master whose session has only the password → enrol or verify, then back
  (HTMX: HX-Redirect).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.second_factor import is_verified, second_factor_redirect

View = Callable[..., HttpResponse]


def _check(request: HttpRequest, role: str | None) -> HttpResponse | None:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    assert isinstance(user, User)
    if role is not None and user.role != role:
        raise PermissionDenied(f"{role}s only")
    if user.needs_second_factor and not is_verified(request):
        return second_factor_redirect(request)
    return None


def _role_required(role: str | None) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = _check(request, role)
            if refused is not None:
                return refused
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# Masters only, with a verified second factor.
master_required = _role_required(User.Role.MASTER)
# Followers only.
follower_required = _role_required(User.Role.FOLLOWER)
# Any signed-in person (any role), with the second factor where the role needs one.
verified_login_required = _role_required(None)
