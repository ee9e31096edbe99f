"""Login for every role: password, then (masters and staff) the second factor; lockout after
repeated failures; logout."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import second_factor
from tests.factories import TEST_PASSWORD
from trading.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _code(device: TOTPDevice, offset_steps: int = 0) -> str:
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset_steps)
    return f"{value:06d}"


def _password_login(client: Client, username: str, password: str = TEST_PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password, **extra})


def test_login_page_renders_a_csrf_protected_form(client: Client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'method="post"' in html
    assert 'for="id_username"' in html and 'for="id_password"' in html


def test_login_without_csrf_token_is_refused(follower_a):
    client = Client(enforce_csrf_checks=True)
    response = _password_login(client, "fl_alice")
    assert response.status_code == 403


def test_follower_logs_in_with_password_only_and_lands_on_its_board(client: Client, follower_a):
    response = _password_login(client, "fl_alice")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").headers["Location"] == reverse("trading:follower_board")
    assert client.get(reverse("trading:follower_board")).status_code == 200


def test_wrong_password_shows_an_error_and_does_not_log_in(client: Client, follower_a):
    response = _password_login(client, "fl_alice", "wrong-password-123")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- Masters: second factor -----------------------------------------------------------------------
def test_master_first_login_enrols_totp_then_sees_backup_codes_once(client: Client, master_x):
    response = _password_login(client, "master_x", next="/accounts/followers/")
    assert response.status_code == 302
    enrol = urlsplit(response["Location"])
    assert enrol.path == reverse("accounts:otp_enrol")
    assert "next=%2Faccounts%2Ffollowers%2F" in enrol.query

    # Password alone opens no master page.
    assert client.get(reverse("accounts:follower_list")).status_code == 302

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "<svg" in html and "<title>QR code for your authenticator app</title>" in html
    assert " style=" not in html  # the CSP forbids inline styles
    device = TOTPDevice.objects.get(user=master_x.user)
    assert not device.confirmed
    secret_text = second_factor.enrolment_details(device).secret
    assert secret_text in html
    # A reload shows the same secret (the app scanned a minute ago still works).
    assert client.get(response["Location"]).content.decode().count(secret_text) == 1
    assert TOTPDevice.objects.filter(user=master_x.user).count() == 1

    wrong = client.post(
        reverse("accounts:otp_enrol"), {"token": "000000", "next": "/accounts/followers/"}
    )
    assert wrong.status_code == 422
    assert second_factor.ENROL_CODE_INVALID in wrong.content.decode()
    throttled = client.post(reverse("accounts:otp_enrol"), {"token": _code(device)})
    assert "Too many wrong codes" in throttled.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # as if the back-off (1 s after one failure) had passed

    done = client.post(
        reverse("accounts:otp_enrol"), {"token": _code(device), "next": "/accounts/followers/"}
    )
    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    codes = re.findall(r"^([a-z2-7]{8})$", done.content.decode(), re.MULTILINE)
    assert len(codes) == second_factor.BACKUP_CODE_COUNT
    assert 'href="/accounts/followers/"' in done.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("accounts:follower_list")).status_code == 200
    assert AuditEvent.objects.filter(action="second_factor.enrol", actor=master_x.user).count() == 1

    # The enrolment page is gone for this account now (no second enrolment behind its back).
    again = client.get(reverse("accounts:otp_enrol"))
    assert again.status_code == 302


def _enrolled(master) -> TOTPDevice:
    return TOTPDevice.objects.create(user=master.user, name="app", confirmed=True)


def test_master_login_without_the_second_factor_is_refused(client: Client, master_x):
    device = _enrolled(master_x)
    response = _password_login(client, "master_x")
    assert urlsplit(response["Location"]).path == reverse("accounts:otp_verify")
    for url in (
        "/",
        reverse("accounts:follower_list"),
        reverse("trading:master_dashboard"),
        reverse("accounts:broker_account"),
        reverse("accounts:password_change"),
    ):
        answer = client.get(url, follow=True)
        assert answer.redirect_chain[-1][0].startswith(reverse("accounts:otp_verify")), url
    bad = client.post(reverse("accounts:otp_verify"), {"token": "123456"})
    assert bad.status_code == 422
    assert second_factor.CODE_INVALID in bad.content.decode()
    assert client.get(reverse("accounts:follower_list")).status_code == 302

    # Throttled after a wrong code: even the right code waits (django-otp's back-off).
    throttled = client.post(reverse("accounts:otp_verify"), {"token": _code(device)})
    assert throttled.status_code == 422
    assert "Too many wrong codes" in throttled.content.decode()


def test_master_verifies_with_totp_and_reaches_master_pages(client: Client, master_x):
    device = _enrolled(master_x)
    _password_login(client, "master_x", next="/accounts/broker/")
    response = client.post(
        reverse("accounts:otp_verify") + "?next=/accounts/broker/", {"token": _code(device)}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/broker/"
    assert client.get("/accounts/broker/").status_code == 200


def test_a_totp_code_cannot_be_used_twice(client: Client, master_x):
    device = _enrolled(master_x)
    code = _code(device)
    _password_login(client, "master_x")
    assert client.post(reverse("accounts:otp_verify"), {"token": code}).status_code == 302
    client.post(reverse("accounts:logout"))
    other = Client()
    _password_login(other, "master_x")
    assert other.post(reverse("accounts:otp_verify"), {"token": code}).status_code == 422


def test_verify_refuses_an_offsite_next(client: Client, master_x):
    device = _enrolled(master_x)
    _password_login(client, "master_x")
    response = client.post(
        reverse("accounts:otp_verify"), {"token": _code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_a_backup_code_works_once(client: Client, master_x):
    _enrolled(master_x)
    from django_otp.plugins.otp_static.models import StaticDevice

    static = StaticDevice.objects.create(user=master_x.user, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=static, token="abcd2345")
    _password_login(client, "master_x")
    assert client.post(reverse("accounts:otp_verify"), {"token": "ABCD 2345"}).status_code == 302
    other = Client()
    _password_login(other, "master_x")
    assert other.post(reverse("accounts:otp_verify"), {"token": "abcd2345"}).status_code == 422


def test_backup_codes_can_be_regenerated_and_are_shown_once(client: Client, master_x):
    from tests.conftest import login

    login(client, master_x.user)
    page = client.get(reverse("accounts:backup_codes"))
    assert page.status_code == 200
    refused = client.post(reverse("accounts:backup_codes"), {})
    assert refused.status_code == 422
    response = client.post(reverse("accounts:backup_codes"), {"confirm": "on"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    codes = re.findall(r"^([a-z2-7]{8})$", response.content.decode(), re.MULTILINE)
    assert len(codes) == second_factor.BACKUP_CODE_COUNT
    assert second_factor.backup_codes_left(master_x.user) == second_factor.BACKUP_CODE_COUNT
    assert codes[0] not in client.get(reverse("accounts:backup_codes")).content.decode()
    assert AuditEvent.objects.filter(action="second_factor.backup_codes").count() == 1


def test_staff_need_the_second_factor_for_the_admin(client: Client, staff):
    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    response = _password_login(client, "staff", next="/admin/")
    assert urlsplit(response["Location"]).path == reverse("accounts:otp_verify")
    assert client.get("/admin/").status_code == 302
    ok = client.post(reverse("accounts:otp_verify") + "?next=/admin/", {"token": _code(device)})
    assert ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_reset_second_factor_command_lets_the_next_login_enrol_again(client: Client, master_x):
    from django.core.management import call_command

    _enrolled(master_x)
    call_command("reset_second_factor", "master_x")
    assert not TOTPDevice.objects.filter(user=master_x.user).exists()
    response = _password_login(client, "master_x")
    assert urlsplit(response["Location"]).path == reverse("accounts:otp_enrol")
    event = AuditEvent.objects.get(action="second_factor.reset")
    assert event.actor_repr == "manage.py reset_second_factor"


# --- Lockout --------------------------------------------------------------------------------------
def test_lockout_after_repeated_failures_with_a_clear_page(
    client: Client, follower_a, follower_b, settings
):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _password_login(client, "fl_alice", "wrong-password-123").status_code == 200
    locked = _password_login(client, "fl_alice", "wrong-password-123")
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins" in html
    assert f"After {limit} wrong passwords" in html
    minutes = int(settings.AXES_COOLOFF_TIME * 60)
    assert f"blocked for {minutes} minutes" in html
    # Even the right password is refused while locked out.
    again = _password_login(client, "fl_alice")
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another username from the same address is not locked.
    assert _password_login(Client(), "fl_bob").status_code == 302


def test_a_master_password_reset_lifts_the_followers_lockout(
    client: Client, master_x, follower_a, settings
):
    from accounts.services import reset_follower_password

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _password_login(client, "fl_alice", "wrong-password-123")
    assert _password_login(client, "fl_alice").status_code == 429
    password = reset_follower_password(follower=follower_a, actor=master_x.user)
    assert _password_login(Client(), "fl_alice", password.reveal()).status_code == 302


def test_logout_ends_the_session(client: Client, follower_a):
    _password_login(client, "fl_alice")
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == LOGIN
    assert client.get(reverse("trading:follower_board")).status_code == 302


def test_deactivated_follower_cannot_log_in_and_is_logged_out(client: Client, master_x, follower_a):
    from accounts.services import deactivate_follower

    _password_login(client, "fl_alice")
    assert client.get(reverse("trading:follower_board")).status_code == 200
    deactivate_follower(follower=follower_a, actor=master_x.user)
    assert client.get(reverse("trading:follower_board")).status_code == 302
    assert _password_login(Client(), "fl_alice").status_code == 200  # the form again


def test_totp_codes_from_a_neighbouring_time_step_are_accepted(client: Client, master_x):
    device = _enrolled(master_x)
    _password_login(client, "master_x")
    # One step of clock drift on the phone is tolerated (django-otp tolerance 1).
    assert (
        client.post(reverse("accounts:otp_verify"), {"token": _code(device, -1)}).status_code == 302
    )
    assert time.time() > 0
