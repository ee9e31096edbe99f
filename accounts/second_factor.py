"""The second factor (TOTP, django-otp) for masters and staff, with one-time backup codes.

A master or staff user enrols an authenticator app at the first login (a QR code rendered
server-side as inline SVG, and the secret as text for manual entry), then enters a code at
every login. Ten backup codes (django-otp's static device) are shown once at enrolment so a
lost phone is not a lockout; `manage.py reset_second_factor USERNAME` is the last resort.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import segno
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.models import Device, VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from trading.audit import record_audit

BACKUP_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"

CODE_INVALID = (
    "That code is not valid. Enter the 6-digit code your app shows now, or a backup code."
)
CODE_THROTTLED = "Too many wrong codes. Wait {seconds} seconds, then try again."
ENROL_CODE_INVALID = (
    "That code does not match. Check the time on your phone, then enter the code your app "
    "shows now."
)


def is_verified(request: HttpRequest) -> bool:
    """Has this session passed the second factor? (Works right after a password login too,
    before OTPMiddleware has wrapped the new user.)"""
    user = request.user
    if not user.is_authenticated:
        return False
    check = getattr(user, "is_verified", None)
    if callable(check):
        return bool(check())
    persistent_id = request.session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and device.confirmed


def confirmed_totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_second_factor(user: User) -> bool:
    return confirmed_totp_device(user) is not None


def safe_next(request: HttpRequest, candidate: str | None, default: str = "/") -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def second_factor_url(user: User, next_url: str) -> str:
    name = "accounts:otp_verify" if has_second_factor(user) else "accounts:otp_enrol"
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def second_factor_redirect(request: HttpRequest) -> HttpResponse:
    """Send a password-only session to enrol or verify, then back to where it was going.

    An HTMX request gets HX-Redirect (a full-page navigation) instead of a 302 that htmx
    would follow and swap into the page.
    """
    htmx = getattr(request, "htmx", None)
    next_url = (htmx.current_url_abs_path or "/") if htmx else request.get_full_path()
    assert isinstance(request.user, User)
    url = second_factor_url(request.user, next_url)
    if htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


# --- Enrolment --------------------------------------------------------------------------------
def pending_totp_device(user: User) -> TOTPDevice:
    """The unconfirmed device being enrolled: the same one on every reload of the page, so a
    code scanned a minute ago still works."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@dataclass(frozen=True)
class Enrolment:
    svg: str
    secret: str  # base32 in groups of four, for manual entry
    config_url: str


def enrolment_details(device: TOTPDevice) -> Enrolment:
    url = device.config_url
    qr = segno.make(url, error="m")
    svg = qr.svg_inline(
        scale=4,
        border=4,
        dark="#000",
        light="#fff",
        omitsize=True,  # a viewBox instead of a fixed size: the stylesheet sizes it
        title="QR code for your authenticator app",
    )
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return Enrolment(svg=svg, secret=grouped, config_url=url)


def _new_backup_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


@dataclass(frozen=True)
class EnrolResult:
    codes: list[str]  # backup codes to show once (empty when it failed)
    error: str  # the message for the code field ("" on success)


def confirm_enrolment(
    *, request: HttpRequest, user: User, device: TOTPDevice, token: str
) -> EnrolResult:
    """Check the first code from the new app; on success confirm the device, log the session
    in with it, and return fresh backup codes (to be shown once)."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if locked.confirmed:
            return EnrolResult([], ENROL_CODE_INVALID)
        allowed, details = locked.verify_is_allowed()
        if not allowed:
            return EnrolResult([], _throttled_message(details))
        if not locked.verify_token(_digits(token)):
            return EnrolResult([], ENROL_CODE_INVALID)
        locked.confirmed = True
        locked.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        codes = _new_backup_codes(user)
        record_audit(
            actor=user,
            action="second_factor.enrol",
            target=user,
            master=getattr(user, "master", None) if user.is_master else None,
            after={"device": TOTP_DEVICE_NAME, "backup_codes": BACKUP_CODE_COUNT},
            request=request,
        )
    request.session.cycle_key()
    otp_login(request, locked)
    return EnrolResult(codes, "")


def regenerate_backup_codes(*, request: HttpRequest, user: User) -> list[str]:
    with transaction.atomic():
        codes = _new_backup_codes(user)
        record_audit(
            actor=user,
            action="second_factor.backup_codes",
            target=user,
            master=getattr(user, "master", None) if user.is_master else None,
            after={"backup_codes": BACKUP_CODE_COUNT},
            request=request,
        )
    return codes


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- Verification at login --------------------------------------------------------------------
def _digits(token: str) -> str:
    return "".join((token or "").split())


def verify(*, request: HttpRequest, user: User, token: str) -> str:
    """Check a code (TOTP, or a backup code); on success mark the session verified.

    Returns "" on success, else the message to show next to the field.
    """
    token = _digits(token).lower()
    if token.isdigit():
        devices: list[Device] = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    else:
        devices = list(StaticDevice.objects.filter(user=user, confirmed=True))
    for device in devices:
        with transaction.atomic():
            locked = type(device).objects.select_for_update().get(pk=device.pk)
            allowed, details = locked.verify_is_allowed()
            if not allowed:
                return _throttled_message(details)
            if locked.verify_token(token):
                request.session.cycle_key()
                otp_login(request, locked)
                return ""
    return CODE_INVALID


def _throttled_message(details: dict[str, object] | None) -> str:
    if details and details.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS:
        return CODE_THROTTLED.format(seconds=_seconds_left(details))
    return CODE_INVALID


def _seconds_left(details: dict[str, object]) -> int:
    from django.utils import timezone

    until = details.get("locked_until")
    if until is None:
        return 1
    return max(1, int((until - timezone.now()).total_seconds()) + 1)  # type: ignore[operator]


def reset_second_factor(*, user: User, actor: User | None, actor_repr: str = "") -> int:
    """Remove every second-factor device of a user (a lost phone without backup codes); the
    next login enrols again. Returns how many devices were removed."""
    with transaction.atomic():
        removed = 0
        for model in (TOTPDevice, StaticDevice):
            devices = model.objects.filter(user=user)
            removed += devices.count()
            devices.delete()
        record_audit(
            actor=actor,
            actor_repr=actor_repr,
            action="second_factor.reset",
            target=user,
            master=getattr(user, "master", None) if user.is_master else None,
            before={"devices": removed},
            after={"devices": 0},
        )
    return removed
