"""Pages for people and their accounts: login with a second factor, follower registration and
management by masters, a master's own AliceBlue account, a follower's self-service.

Each view: check access (decorator + a selector that only returns the caller's own rows, so a
stranger's id is a 404), validate with a form, call one service, render. Pages that show a
secret once (a new follower's password, backup codes, the TOTP secret) are `no-store`.
A form with errors is re-rendered with status 422 (htmx is configured to swap it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import second_factor, selectors, services
from accounts.decorators import follower_required, master_required, verified_login_required
from accounts.forms import (
    ConfirmForm,
    DeactivateForm,
    EditCredentialsForm,
    FollowerRegistrationForm,
    KillSwitchForm,
    LimitsForm,
    TokenForm,
    apply_errors,
)
from accounts.models import Follower, Master, User
from trading.models import AuditEvent

INVALID_FORM_STATUS = 422


def _posted(request: HttpRequest) -> Any:
    """The POST data for a bound form (even an empty POST), or None on GET."""
    return request.POST if request.method == "POST" else None


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _master(request: HttpRequest) -> Master:
    master = selectors.master_of(_user(request))
    if master is None:  # a master user without its Master row: a broken account
        raise Http404("No master profile for this account.")
    return master


def _own_follower(request: HttpRequest, pk: int) -> Follower:
    """One of the caller's own followers; another master's follower is a 404."""
    return get_object_or_404(selectors.followers_for_master(_master(request)), pk=pk)


def _self_follower(request: HttpRequest) -> Follower:
    follower = selectors.follower_of(_user(request))
    if follower is None:
        raise Http404("No follower profile for this account.")
    return follower


def _render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    form: Any = None,
    partial: str = "",
) -> HttpResponse:
    """Render a page, or its named partial for an HTMX request; 422 when a bound form failed."""
    status = 200
    if form is not None and form.is_bound and form.errors:
        status = INVALID_FORM_STATUS
        _focus_first_error(form)
    name = f"{template}#{partial}" if partial and getattr(request, "htmx", False) else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _focus_first_error(form: Any) -> None:
    """Put the keyboard focus on the first field with an error (works without JavaScript)."""
    for name in form.fields:
        if name in form.errors:
            for field in form.fields.values():
                field.widget.attrs.pop("autofocus", None)
            form.fields[name].widget.attrs["autofocus"] = True
            return


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: a redirect (PRG); an HTMX request navigates the whole page."""
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


# --- Login, second factor, logout, lockout ------------------------------------------------------
class LoginView(auth_views.LoginView):
    """Password first (django-axes counts failures); masters and staff then enrol or verify
    their second factor before any page."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        url = super().get_success_url()
        user = self.request.user
        if (
            isinstance(user, User)
            and user.needs_second_factor
            and not second_factor.is_verified(self.request)
        ):
            return second_factor.second_factor_url(user, url)
        return url


login_view = never_cache(LoginView.as_view())


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes: the page shown while a username is locked out of this address."""
    minutes = int(settings.AXES_COOLOFF_TIME * 60)
    return render(
        request,
        "accounts/locked_out.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes},
        status=429,
    )


def _needs_second_factor_page(request: HttpRequest) -> HttpResponse | None:
    """Common entry checks of the enrol/verify pages."""
    user = request.user
    if not user.is_authenticated:
        return redirect("accounts:login")
    assert isinstance(user, User)
    next_url = second_factor.safe_next(request, request.GET.get("next") or request.POST.get("next"))
    if not user.needs_second_factor or second_factor.is_verified(request):
        return HttpResponseRedirect(next_url)
    return None


@never_cache
@require_http_methods(["GET", "POST"])
def otp_enrol(request: HttpRequest) -> HttpResponse:
    """First login of a master (or staff): add an authenticator app, then see backup codes."""
    early = _needs_second_factor_page(request)
    if early is not None:
        return early
    user = _user(request)
    next_url = second_factor.safe_next(request, request.GET.get("next") or request.POST.get("next"))
    if second_factor.has_second_factor(user):
        return redirect(second_factor.second_factor_url(user, next_url))
    device = second_factor.pending_totp_device(user)
    form = TokenForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        result = second_factor.confirm_enrolment(
            request=request, user=user, device=device, token=form.cleaned_data["token"]
        )
        if not result.error:
            return render(
                request,
                "accounts/backup_codes.html",
                {"codes": result.codes, "next": next_url, "first_time": True},
            )
        form.add_error("token", result.error)
    details = second_factor.enrolment_details(device)
    return _render(
        request,
        "accounts/otp_enrol.html",
        {"form": form, "enrolment": details, "next": next_url},
        form=form,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Every login of a master (or staff): a code from the app, or a backup code."""
    early = _needs_second_factor_page(request)
    if early is not None:
        return early
    user = _user(request)
    next_url = second_factor.safe_next(request, request.GET.get("next") or request.POST.get("next"))
    if not second_factor.has_second_factor(user):
        return redirect(second_factor.second_factor_url(user, next_url))
    form = TokenForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        error = second_factor.verify(request=request, user=user, token=form.cleaned_data["token"])
        if not error:
            return HttpResponseRedirect(next_url)
        form.add_error("token", error)
    return _render(request, "accounts/otp_verify.html", {"form": form, "next": next_url}, form=form)


@never_cache
@require_http_methods(["GET", "POST"])
@verified_login_required
def backup_codes(request: HttpRequest) -> HttpResponse:
    """How many backup codes are left; make a new set (shown once, the old set stops working)."""
    user = _user(request)
    if not user.needs_second_factor:
        raise PermissionDenied("This account has no second factor.")
    form = ConfirmForm(
        _posted(request), label="Make a new set of codes (the old ones stop working)"
    )
    if request.method == "POST" and form.is_valid():
        codes = second_factor.regenerate_backup_codes(request=request, user=user)
        return render(
            request,
            "accounts/backup_codes.html",
            {"codes": codes, "next": reverse("home"), "first_time": False},
        )
    return _render(
        request,
        "accounts/backup_codes_manage.html",
        {"form": form, "left": second_factor.backup_codes_left(user)},
        form=form,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@verified_login_required
def password_change(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = PasswordChangeForm(user, _posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.change_own_password(
                user=user, new_password=form.cleaned_data["new_password1"], request=request
            )
        except ValidationError as exc:
            form.add_error("new_password1", exc)
        else:
            update_session_auth_hash(request, user)
            messages.success(request, "Your password has been changed.")
            return _redirect(request, reverse("home"))
    return _render(request, "accounts/password_change.html", {"form": form}, form=form)


# --- Masters: followers -------------------------------------------------------------------------
@require_http_methods(["GET"])
@master_required
def follower_list(request: HttpRequest) -> HttpResponse:
    master = _master(request)
    followers = list(selectors.followers_for_master(master))
    return _render(
        request,
        "accounts/follower_list.html",
        {
            "master": master,
            "followers": [f for f in followers if f.is_active],
            "inactive_followers": [f for f in followers if not f.is_active],
            "kill_switch_form": KillSwitchForm(),
        },
    )


def _login_once(
    request: HttpRequest, *, follower: Follower, username: str, password: str, new: bool
) -> HttpResponse:
    response = _render(
        request,
        "accounts/follower_login_once.html",
        {"follower": follower, "username": username, "password": password, "new": new},
        partial="credentials",
    )
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    response["Pragma"] = "no-cache"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@master_required
def follower_register(request: HttpRequest) -> HttpResponse:
    master = _master(request)
    form = FollowerRegistrationForm(
        _posted(request), initial={"allowed_product_types": ["MIS", "CNC", "NRML"]}
    )
    if request.method == "POST" and form.is_valid():
        try:
            created = services.register_follower(
                master=master, actor=_user(request), request=request, **form.service_kwargs()
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return _login_once(
                request,
                follower=created.follower,
                username=created.username,
                password=created.password.reveal(),
                new=True,
            )
    return _render(
        request,
        "accounts/follower_register.html",
        {"form": form, "master": master},
        form=form,
        partial="form",
    )


def _audit_for(follower: Follower) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(target_type=Follower._meta.label, target_id=str(follower.pk))
        .select_related("actor")
        .order_by("-at", "-pk")[:20]
    )


@require_http_methods(["GET"])
@master_required
def follower_detail(request: HttpRequest, pk: int) -> HttpResponse:
    follower = _own_follower(request, pk)
    return _render(
        request,
        "accounts/follower_detail.html",
        {
            "follower": follower,
            "account": selectors.broker_account_of(follower.user),
            "history": _audit_for(follower),
        },
        partial="status",
    )


@require_http_methods(["GET", "POST"])
@master_required
def follower_limits(request: HttpRequest, pk: int) -> HttpResponse:
    follower = _own_follower(request, pk)
    if not follower.is_active:
        raise Http404("This follower is deactivated.")
    form = LimitsForm(_posted(request), initial=LimitsForm.initial_for(follower))
    if request.method == "POST" and form.is_valid():
        try:
            services.update_follower_limits(
                follower=follower, actor=_user(request), request=request, **form.limits_kwargs()
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Limits of {follower.display_name} saved.")
            return _redirect(request, reverse("accounts:follower_detail", args=[follower.pk]))
    return _render(
        request,
        "accounts/follower_limits.html",
        {"form": form, "follower": follower},
        form=form,
        partial="form",
    )


@never_cache
@require_http_methods(["GET", "POST"])
@master_required
def follower_credentials(request: HttpRequest, pk: int) -> HttpResponse:
    follower = _own_follower(request, pk)
    if not follower.is_active:
        raise Http404("This follower is deactivated.")
    account = selectors.broker_account_of(follower.user)
    form = EditCredentialsForm(
        _posted(request), initial=EditCredentialsForm.initial_for(account), account=account
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.change_follower_credentials(
                follower=follower,
                actor=_user(request),
                request=request,
                **form.credential_kwargs(),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"AliceBlue account of {follower.display_name} saved.")
            return _redirect(request, reverse("accounts:follower_detail", args=[follower.pk]))
    return _render(
        request,
        "accounts/follower_credentials.html",
        {"form": form, "follower": follower, "account": account},
        form=form,
        partial="form",
    )


def _follower_action(request: HttpRequest, follower: Follower, action: Any, done: str) -> None:
    try:
        changed = action(follower=follower, actor=_user(request), request=request)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        if changed:
            messages.success(request, done)


@require_POST
@master_required
def follower_pause(request: HttpRequest, pk: int) -> HttpResponse:
    follower = _own_follower(request, pk)
    _follower_action(
        request, follower, services.pause_follower, f"Copying to {follower.display_name} paused."
    )
    return _redirect(request, reverse("accounts:follower_detail", args=[follower.pk]))


@require_POST
@master_required
def follower_resume(request: HttpRequest, pk: int) -> HttpResponse:
    follower = _own_follower(request, pk)
    _follower_action(
        request, follower, services.resume_follower, f"Copying to {follower.display_name} resumed."
    )
    return _redirect(request, reverse("accounts:follower_detail", args=[follower.pk]))


@never_cache
@require_http_methods(["GET", "POST"])
@master_required
def follower_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    follower = _own_follower(request, pk)
    if not follower.is_active:
        raise Http404("This follower is deactivated.")
    form = ConfirmForm(
        _posted(request), label=f"Yes, reset the password of {follower.display_name}"
    )
    if request.method == "POST" and form.is_valid():
        try:
            password = services.reset_follower_password(
                follower=follower, actor=_user(request), request=request
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return _login_once(
                request,
                follower=follower,
                username=follower.user.username,
                password=password.reveal(),
                new=False,
            )
    return _render(
        request,
        "accounts/follower_reset_password.html",
        {"form": form, "follower": follower},
        form=form,
    )


@require_http_methods(["GET", "POST"])
@master_required
def follower_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate a follower; with open copied positions the master chooses to flatten them
    (exits first, deactivated once they settled) or detach them. A follower being flattened
    shows its exits here, and may be flattened again or detached."""
    from trading.engine.lifecycle import deactivation

    follower = _own_follower(request, pk)
    if not follower.is_active:
        raise Http404("This follower is already deactivated.")
    positions = selectors.open_copied_positions(follower)
    form = DeactivateForm(
        _posted(request),
        label=f"Yes, deactivate {follower.display_name}",
        has_positions=bool(positions),
    )
    if request.method == "POST" and form.is_valid():
        try:
            result = services.deactivate_follower(
                follower=follower,
                actor=_user(request),
                open_positions=form.cleaned_data.get("open_positions") or "",
                request=request,
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            _deactivation_messages(request, result)
            return _redirect(request, reverse("accounts:follower_detail", args=[follower.pk]))
    return _render(
        request,
        "accounts/follower_deactivate.html",
        {
            "form": form,
            "follower": follower,
            "open_positions": positions,
            "flatten_exits": deactivation.flatten_exits(follower.pk),
        },
        form=form,
    )


def _deactivation_messages(request: HttpRequest, result: services.Deactivation) -> None:
    name = result.follower.display_name
    if not result.done:
        messages.success(
            request,
            f"Flattening {name}: {len(result.exit_ids)} exit order(s) written for "
            + "; ".join(result.open_positions)
            + ". It is deactivated once they have settled.",
        )
        return
    messages.success(request, f"{name} deactivated; its stored AliceBlue credentials were deleted.")
    if result.choice == services.OpenPositionsChoice.DETACH:
        messages.warning(
            request,
            "Detached: these positions stay in the follower's AliceBlue account and are no longer "
            "managed: " + "; ".join(result.open_positions),
        )


@require_POST
@master_required
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Pause (or allow again) every entry for every follower of this master."""
    master = _master(request)
    form = KillSwitchForm(request.POST)
    if form.is_valid():
        paused = form.cleaned_data["entries_paused"]
        if services.set_entries_paused(
            master=master, paused=paused, actor=_user(request), request=request
        ):
            if paused:
                messages.warning(
                    request, "Kill switch on: no new entries are copied. Exits still go."
                )
            else:
                messages.success(request, "Kill switch off: entries are copied again.")
    else:
        messages.error(request, "Choose whether to pause or allow entries.")
    next_url = second_factor.safe_next(
        request, request.POST.get("next"), default=reverse("accounts:follower_list")
    )
    return _redirect(request, next_url)


# --- Masters: own AliceBlue account ---------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "POST"])
@master_required
def broker_account(request: HttpRequest) -> HttpResponse:
    """The master's own AliceBlue account: client id, login method, credentials."""
    master = _master(request)
    account = selectors.broker_account_of(master.user)
    form = EditCredentialsForm(
        _posted(request), initial=EditCredentialsForm.initial_for(account), account=account
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.save_master_broker_account(
                master=master, actor=_user(request), request=request, **form.credential_kwargs()
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Your AliceBlue account is saved.")
            return _redirect(request, reverse("accounts:broker_account"))
    return _render(
        request,
        "accounts/broker_account.html",
        {
            "form": form,
            "account": account,
            "vendor_app_configured": bool(settings.ALICEBLUE_APP_CODE),
        },
        form=form,
        partial="form",
    )


# --- Followers: self-service ---------------------------------------------------------------------
@require_http_methods(["GET"])
@follower_required
def me(request: HttpRequest) -> HttpResponse:
    follower = _self_follower(request)
    return _render(request, "accounts/me.html", {"follower": follower}, partial="status")


@require_POST
@follower_required
def me_pause(request: HttpRequest) -> HttpResponse:
    follower = _self_follower(request)
    _follower_action(request, follower, services.pause_follower, "Copying to your account paused.")
    return _redirect(request, reverse("accounts:me"))


@require_POST
@follower_required
def me_resume(request: HttpRequest) -> HttpResponse:
    follower = _self_follower(request)
    _follower_action(
        request, follower, services.resume_follower, "Copying to your account resumed."
    )
    return _redirect(request, reverse("accounts:me"))
