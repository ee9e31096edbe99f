"""A master manages its followers (limits, pause, resume, password reset, credentials,
deactivation, kill switch); a follower pauses itself and changes its password. Every change
leaves an audit row with before/after values and no secret."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from accounts import services
from accounts.models import BrokerAccount, Follower
from tests.conftest import login
from tests.factories import TEST_PASSWORD
from trading.models import AuditEvent, BrokerSession, PositionLedger

pytestmark = pytest.mark.django_db

NEW_KEY = "NewApiKey-0123456789abcdefWXYZ"


def limits_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "display_name": "Alice",
        "lot_multiplier": "2.25",
        "max_quantity": "300",
        "max_order_value": "50000",
        "max_daily_loss": "2500",
        "allowed_instruments": "NSE:SBIN",
        "allowed_product_types": ["CNC"],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- List and detail ------------------------------------------------------------------------------
def test_follower_list_shows_own_followers_with_status(
    client: Client, master_x, follower_a, follower_b, follower_c
):
    services.pause_follower(follower=follower_b, actor=master_x.user)
    login(client, master_x.user)
    html = client.get(reverse("accounts:follower_list")).content.decode()
    assert "Alice" in html and "Bob" in html and "Carol" not in html
    assert "FA0001" in html and "Paused" in html and "Copying" in html
    assert "Kill switch" in html


def test_follower_detail_shows_hints_never_secrets(client: Client, master_x, follower_a):
    login(client, master_x.user)
    account = follower_a.user.broker_account
    key = account.api_key().reveal()
    html = client.get(reverse("accounts:follower_detail", args=[follower_a.pk])).content.decode()
    assert key not in html
    assert f"stored, ends in {key[-4:]}" in html


# --- Limits ---------------------------------------------------------------------------------------
def test_edit_limits_saves_and_audits_before_and_after(client: Client, master_x, follower_a):
    login(client, master_x.user)
    url = reverse("accounts:follower_limits", args=[follower_a.pk])
    form = client.get(url)
    assert form.status_code == 200
    assert form.context["form"].initial["lot_multiplier"] == Decimal("1")
    response = client.post(url, limits_data())
    assert response.status_code == 302
    follower_a.refresh_from_db()
    assert follower_a.lot_multiplier == Decimal("2.25")
    assert follower_a.max_quantity == 300
    assert follower_a.allowed_instruments == ["NSE:SBIN"]
    assert follower_a.allowed_product_types == ["CNC"]
    event = AuditEvent.objects.get(action="follower.limits")
    assert event.actor == master_x.user and event.master == master_x
    assert event.target_id == str(follower_a.pk)
    assert event.before == {
        "lot_multiplier": "1",
        "max_quantity": 1000,
        "max_order_value": "1000000",
        "max_daily_loss": "50000",
        "allowed_instruments": [],
        "allowed_product_types": ["MIS", "CNC", "NRML"],
    }
    assert event.after == {
        "lot_multiplier": "2.25",
        "max_quantity": 300,
        "max_order_value": "50000",
        "max_daily_loss": "2500",
        "allowed_instruments": ["NSE:SBIN"],
        "allowed_product_types": ["CNC"],
    }


def test_saving_unchanged_limits_writes_no_audit_row(client: Client, master_x, follower_a):
    login(client, master_x.user)
    url = reverse("accounts:follower_limits", args=[follower_a.pk])
    client.post(
        url,
        limits_data(
            lot_multiplier="1",
            max_quantity="1000",
            max_order_value="1000000",
            max_daily_loss="50000",
            allowed_instruments="",
            allowed_product_types=["MIS", "CNC", "NRML"],
        ),
    )
    assert not AuditEvent.objects.filter(action="follower.limits").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lot_multiplier": "0"}, "lot_multiplier"),
        ({"max_quantity": "0"}, "max_quantity"),
        ({"allowed_product_types": ["FOO"]}, "allowed_product_types"),
        ({"allowed_instruments": "XX:INFY"}, "allowed_instruments"),
        ({"display_name": "y" * 81}, "display_name"),
    ],
)
def test_edit_limits_rejects_bad_input_and_changes_nothing(
    client: Client, master_x, follower_a, overrides, field
):
    login(client, master_x.user)
    response = client.post(
        reverse("accounts:follower_limits", args=[follower_a.pk]), limits_data(**overrides)
    )
    assert response.status_code == 422
    assert field in response.context["form"].errors
    follower_a.refresh_from_db()
    assert follower_a.lot_multiplier == Decimal("1") and follower_a.max_quantity == 1000
    assert not AuditEvent.objects.filter(action="follower.limits").exists()


def test_limits_service_refuses_another_master(master_y, follower_a):
    with pytest.raises(PermissionDenied):
        services.update_follower_limits(
            follower=follower_a,
            actor=master_y.user,
            display_name="x",
            lot_multiplier=Decimal("1"),
            max_quantity=1,
            max_order_value=Decimal("1"),
            max_daily_loss=Decimal("1"),
            allowed_instruments=[],
            allowed_product_types=["MIS"],
        )


# --- Pause and resume -----------------------------------------------------------------------------
def test_master_pauses_and_resumes_a_follower_audited(client: Client, master_x, follower_a):
    login(client, master_x.user)
    assert client.post(reverse("accounts:follower_pause", args=[follower_a.pk])).status_code == 302
    follower_a.refresh_from_db()
    assert follower_a.is_paused and follower_a.paused_by == "master" and follower_a.paused_at
    assert not follower_a.accepts_entries
    # Pausing again changes nothing and writes nothing.
    client.post(reverse("accounts:follower_pause", args=[follower_a.pk]))
    assert AuditEvent.objects.filter(action="follower.pause").count() == 1
    client.post(reverse("accounts:follower_resume", args=[follower_a.pk]))
    follower_a.refresh_from_db()
    assert not follower_a.is_paused and follower_a.paused_by == "" and follower_a.paused_at is None
    pause, resume = AuditEvent.objects.filter(
        action__in=["follower.pause", "follower.resume"]
    ).order_by("pk")
    assert pause.before == {"is_paused": False, "paused_by": ""}
    assert pause.after == {"is_paused": True, "paused_by": "master"}
    assert resume.after == {"is_paused": False, "paused_by": ""}
    assert resume.actor == master_x.user


def test_follower_pauses_and_resumes_itself(client: Client, follower_a):
    login(client, follower_a.user)
    page = client.get(reverse("accounts:me"))
    assert page.status_code == 200 and "Pause copying" in page.content.decode()
    client.post(reverse("accounts:me_pause"))
    follower_a.refresh_from_db()
    assert follower_a.is_paused and follower_a.paused_by == "follower"
    event = AuditEvent.objects.get(action="follower.pause")
    assert event.actor == follower_a.user and event.master == follower_a.master
    client.post(reverse("accounts:me_resume"))
    follower_a.refresh_from_db()
    assert not follower_a.is_paused


def test_follower_cannot_resume_its_masters_pause(client: Client, master_x, follower_a):
    services.pause_follower(follower=follower_a, actor=master_x.user)
    login(client, follower_a.user)
    assert "Only your master can resume" in client.get(reverse("accounts:me")).content.decode()
    response = client.post(reverse("accounts:me_resume"), follow=True)
    assert services.CANNOT_RESUME_MASTERS_PAUSE in response.content.decode()
    follower_a.refresh_from_db()
    assert follower_a.is_paused and follower_a.paused_by == "master"
    with pytest.raises(ValidationError):
        services.resume_follower(follower=follower_a, actor=follower_a.user)


def test_a_masters_pause_overrides_the_followers_own(master_x, follower_a):
    services.pause_follower(follower=follower_a, actor=follower_a.user)
    assert services.pause_follower(follower=follower_a, actor=master_x.user) is True
    follower_a.refresh_from_db()
    assert follower_a.paused_by == "master"
    with pytest.raises(ValidationError):
        services.resume_follower(follower=follower_a, actor=follower_a.user)


def test_pause_refuses_a_stranger(follower_a, follower_b, master_y):
    for actor in (follower_b.user, master_y.user):
        with pytest.raises(PermissionDenied):
            services.pause_follower(follower=follower_a, actor=actor)


# --- Password reset -------------------------------------------------------------------------------
def test_reset_password_is_shown_once_and_old_sessions_end(client: Client, master_x, follower_a):
    follower_client = login(Client(), follower_a.user)
    assert follower_client.get(reverse("accounts:me")).status_code == 200
    login(client, master_x.user)
    url = reverse("accounts:follower_reset_password", args=[follower_a.pk])
    assert client.post(url, {}).status_code == 422  # must confirm
    response = client.post(url, {"confirm": "on"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = response.context["password"]
    follower_a.user.refresh_from_db()
    assert follower_a.user.check_password(password)
    assert not follower_a.user.check_password(TEST_PASSWORD)
    assert follower_client.get(reverse("accounts:me")).status_code == 302  # logged out
    event = AuditEvent.objects.get(action="follower.password_reset")
    assert event.after == {"username": "fl_alice", "password": "changed"}
    assert (
        password
        not in client.get(
            reverse("accounts:follower_detail", args=[follower_a.pk])
        ).content.decode()
    )


# --- Credentials ----------------------------------------------------------------------------------
def test_master_changes_a_followers_credentials_audited_with_masked_values(
    client: Client, master_x, follower_a
):
    account = follower_a.user.broker_account
    old_key = account.api_key().reveal()
    BrokerSession.objects.create(account=account, state="ready", session_token_encrypted="tok")
    login(client, master_x.user)
    url = reverse("accounts:follower_credentials", args=[follower_a.pk])
    page = client.get(url).content.decode()
    assert old_key not in page and 'value="FA0001"' in page
    # Blank secret keeps the stored one; a new client id resets the session.
    response = client.post(url, {"client_id": "fa0002", "login_method": "api_key", "api_key": ""})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.client_id == "FA0002"
    assert account.api_key().reveal() == old_key
    session = BrokerSession.objects.get(account=account)
    assert session.session_token_encrypted == "" and session.state == "needs_login"

    client.post(url, {"client_id": "FA0002", "login_method": "api_key", "api_key": NEW_KEY})
    account.refresh_from_db()
    assert account.api_key().reveal() == NEW_KEY
    first, second = AuditEvent.objects.filter(action="follower.credentials").order_by("pk")
    assert first.before == {"client_id": "FA0001"} and first.after == {"client_id": "FA0002"}
    assert second.before == {"api_key": "****" + old_key[-4:]}
    assert second.after == {"api_key": "****" + NEW_KEY[-4:]}
    assert NEW_KEY not in str(second.after) and old_key not in str(second.before)


def test_credentials_change_rejects_malformed_values(
    client: Client, master_x, follower_a, follower_b
):
    login(client, master_x.user)
    url = reverse("accounts:follower_credentials", args=[follower_a.pk])
    for data, field in (
        ({"client_id": "FB0001", "login_method": "api_key"}, "client_id"),  # Bob's
        ({"client_id": "FA0001", "login_method": "api_key", "api_key": "short"}, "api_key"),
        ({"client_id": "FA0001", "login_method": "api_key", "app_code": "Code1234"}, "api_secret"),
    ):
        response = client.post(url, data)
        assert response.status_code == 422, data
        assert field in response.context["form"].errors, (data, response.context["form"].errors)
    assert not AuditEvent.objects.filter(action="follower.credentials").exists()


def test_own_vendor_app_can_be_added_and_removed(master_x, follower_a):
    account = services.change_follower_credentials(
        follower=follower_a,
        actor=master_x.user,
        client_id="FA0001",
        login_method="oauth",
        app_code="MyOwnApp1",
        api_secret="my-own-api-secret-0001",
    )
    assert account.uses_own_vendor_app
    with pytest.raises(ValidationError):
        services.change_follower_credentials(
            follower=follower_a,
            actor=master_x.user,
            client_id="FA0001",
            login_method="oauth",
            app_code="Another1",
            remove_own_app=True,
        )
    account = services.change_follower_credentials(
        follower=follower_a,
        actor=master_x.user,
        client_id="FA0001",
        login_method="oauth",
        remove_own_app=True,
    )
    assert not account.uses_own_vendor_app
    assert account.app_code_encrypted == "" and account.api_secret_encrypted == ""
    last = AuditEvent.objects.filter(action="follower.credentials").latest("pk")
    assert last.after == {"app_code": "not set", "api_secret": "not set"}


# --- Deactivation ---------------------------------------------------------------------------------
def test_deactivation_wipes_secrets_keeps_history_and_is_audited(
    client: Client, master_x, follower_a
):
    account = follower_a.user.broker_account
    account.set_app_code("OwnApp123")
    account.set_api_secret("own-api-secret-abcdef")
    account.save()
    BrokerSession.objects.create(account=account, state="ready", session_token_encrypted="tok")
    PositionLedger.objects.create(
        master=master_x,
        follower=follower_a,
        exchange="NSE",
        token="1594",
        trading_symbol="INFY-EQ",
        product="CNC",
        net_quantity=10,
    )
    login(client, master_x.user)
    url = reverse("accounts:follower_deactivate", args=[follower_a.pk])
    page = client.get(url).content.decode()
    assert "NSE:INFY-EQ CNC +10" in page  # warned: flatten or detach
    assert client.post(url, {}).status_code == 422
    missing = client.post(url, {"confirm": "on"})  # open positions: a choice is required
    assert missing.status_code == 422
    assert escape(services.OPEN_POSITIONS_CHOICE_REQUIRED) in missing.content.decode()
    response = client.post(url, {"confirm": "on", "open_positions": "detach"}, follow=True)
    assert response.status_code == 200
    assert "no longer managed" in response.content.decode()

    follower_a.refresh_from_db()
    account.refresh_from_db()
    assert not follower_a.is_active and follower_a.deactivated_at
    assert not follower_a.user.is_active and not follower_a.user.has_usable_password()
    assert (
        account.api_key_encrypted,
        account.app_code_encrypted,
        account.api_secret_encrypted,
    ) == ("", "", "")
    assert (account.api_key_hint, account.app_code_hint, account.api_secret_hint) == ("", "", "")
    assert account.api_key() is None and not account.active and account.credentials_wiped_at
    assert BrokerSession.objects.get(account=account).session_token_encrypted == ""
    assert Follower.objects.filter(pk=follower_a.pk).exists()  # history stays
    assert PositionLedger.objects.get(follower=follower_a).detached
    event = AuditEvent.objects.get(action="follower.deactivate")
    assert event.after["open_positions"] == "detach"
    assert event.after["positions_detached"] == ["NSE:INFY-EQ CNC +10"]
    assert event.after["api_key"] == "not set"
    assert event.before["is_active"] is True

    # Nothing more can change on a deactivated follower.
    assert client.get(reverse("accounts:follower_limits", args=[follower_a.pk])).status_code == 404
    assert client.get(url).status_code == 404
    with pytest.raises(ValidationError):
        services.pause_follower(follower=follower_a, actor=master_x.user)
    with pytest.raises(ValidationError):
        services.deactivate_follower(follower=follower_a, actor=master_x.user)
    detail = client.get(reverse("accounts:follower_detail", args=[follower_a.pk])).content.decode()
    assert "Deactivated" in detail and "follower.deactivate" in detail


# --- Kill switch ----------------------------------------------------------------------------------
def test_kill_switch_pauses_every_entry_and_is_audited(client: Client, master_x, master_y):
    login(client, master_x.user)
    response = client.post(
        reverse("accounts:kill_switch"), {"entries_paused": "on", "next": "/master/"}
    )
    assert response.status_code == 302 and response["Location"] == "/master/"
    master_x.refresh_from_db()
    master_y.refresh_from_db()
    assert master_x.entries_paused and not master_y.entries_paused
    assert (
        "no new entries are copied"
        in client.get(reverse("accounts:follower_list")).content.decode()
    )
    client.post(reverse("accounts:kill_switch"), {"entries_paused": "off"})
    master_x.refresh_from_db()
    assert not master_x.entries_paused
    on, off = AuditEvent.objects.filter(
        master=master_x, action__startswith="master.kill_switch"
    ).order_by("pk")
    assert on.action == "master.kill_switch.on" and on.after == {"entries_paused": True}
    assert off.action == "master.kill_switch.off" and off.before == {"entries_paused": True}


def test_kill_switch_ignores_an_offsite_next_and_bad_values(client: Client, master_x):
    login(client, master_x.user)
    response = client.post(
        reverse("accounts:kill_switch"),
        {"entries_paused": "maybe", "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("accounts:follower_list")
    master_x.refresh_from_db()
    assert not master_x.entries_paused


# --- Own password ---------------------------------------------------------------------------------
def test_follower_changes_its_own_password(client: Client, follower_a):
    login(client, follower_a.user)
    url = reverse("accounts:password_change")
    bad = client.post(url, {"old_password": "nope", "new_password1": "x", "new_password2": "x"})
    assert bad.status_code == 422
    assert "old_password" in bad.context["form"].errors
    weak = client.post(
        url,
        {"old_password": TEST_PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert weak.status_code == 422
    new = "a-much-better-passphrase-77"
    ok = client.post(
        url, {"old_password": TEST_PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert ok.status_code == 302
    follower_a.user.refresh_from_db()
    assert follower_a.user.check_password(new)
    assert client.get(reverse("accounts:me")).status_code == 200  # still logged in
    event = AuditEvent.objects.get(action="user.password_change")
    assert event.actor == follower_a.user and event.master == follower_a.master
    assert new not in str(event.after)


# --- The master's own AliceBlue account -----------------------------------------------------------
def test_master_saves_its_own_aliceblue_account(client: Client, master_y):
    master_y.user.broker_account.delete()
    login(client, master_y.user)
    url = reverse("accounts:broker_account")
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="broker-connect"' in html and "Save your AliceBlue client id" in html
    assert client.post(url, {"client_id": "my0002", "login_method": "api_key"}).status_code == 422
    response = client.post(
        url,
        {
            "client_id": "my0002",
            "login_method": "api_key",
            "api_key": NEW_KEY,
            "app_code": "OwnApp42",
            "api_secret": "own-app-secret-987654",
        },
    )
    assert response.status_code == 302
    account = BrokerAccount.objects.get(owner=master_y.user)
    assert account.client_id == "MY0002" and account.master == master_y
    assert account.api_key().reveal() == NEW_KEY and account.uses_own_vendor_app
    html = client.get(url).content.decode()
    assert NEW_KEY not in html and "own-app-secret-987654" not in html and "OwnApp42" not in html
    assert "stored, ends in WXYZ" in html
    assert "Needs today" in html  # session state: no session yet
    event = AuditEvent.objects.get(action="broker_account.create")
    assert event.after["api_key"] == "****WXYZ"
    assert event.after["api_secret"] == "****7654"
    assert "own-app-secret" not in str(event.after)


def test_master_cannot_take_a_followers_client_id_for_itself(client: Client, master_x, follower_a):
    login(client, master_x.user)
    response = client.post(
        reverse("accounts:broker_account"), {"client_id": "FA0001", "login_method": "api_key"}
    )
    assert response.status_code == 422
    assert response.context["form"].errors["client_id"] == [services.CLIENT_ID_TAKEN]


# --- HTMX ---------------------------------------------------------------------------------------
def test_htmx_pause_navigates_and_detail_renders_its_status_partial(
    client: Client, master_x, follower_a
):
    login(client, master_x.user)
    hx = {"HX-Request": "true"}
    response = client.post(reverse("accounts:follower_pause", args=[follower_a.pk]), headers=hx)
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("accounts:follower_detail", args=[follower_a.pk])
    partial = client.get(reverse("accounts:follower_detail", args=[follower_a.pk]), headers=hx)
    assert partial.status_code == 200
    assert b"<html" not in partial.content and b'id="follower-status"' in partial.content
    assert b"Resume copying" in partial.content
    assert "HX-Request" in partial["Vary"]


def test_htmx_limits_form_with_errors_swaps_only_the_form(client: Client, master_x, follower_a):
    login(client, master_x.user)
    response = client.post(
        reverse("accounts:follower_limits", args=[follower_a.pk]),
        limits_data(max_quantity="0"),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert b"<html" not in response.content and b"<form" in response.content
    assert b"The max quantity must be at least 1." in response.content


def test_a_pause_that_does_not_say_who_counts_as_the_masters(master_x, follower_a):
    Follower.objects.filter(pk=follower_a.pk).update(is_paused=True)  # e.g. an older writer
    follower_a.refresh_from_db()
    assert not follower_a.paused_by_itself
    assert services.pause_follower(follower=follower_a, actor=follower_a.user) is False
    with pytest.raises(ValidationError):
        services.resume_follower(follower=follower_a, actor=follower_a.user)
    assert services.resume_follower(follower=follower_a, actor=master_x.user) is True
