"""Follower registration by a master: the page, the one-time login, every invalid input, and
unique usernames under concurrent registrations (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts import services, validation
from accounts.models import BrokerAccount, Follower, User
from tests.conftest import login
from tests.factories import BrokerAccountFactory, MasterFactory
from trading.models import AuditEvent

API_KEY = "Zx9vQm2LkT4pR7sW1yB6nD3fH8jK5cA0eG"
APP_CODE = "VendorApp42"
API_SECRET = "sEcReT0123456789abcdefXYZ"
REGISTER = "/accounts/followers/new/"


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "display_name": "Ravi Kumar",
        "client_id": "ab7788",
        "login_method": "api_key",
        "api_key": API_KEY,
        "app_code": "",
        "api_secret": "",
        "lot_multiplier": "1.5",
        "max_quantity": "500",
        "max_order_value": "250000",
        "max_daily_loss": "10000.50",
        "allowed_instruments": "nse:infy, NFO:NIFTY\nnse:INFY",
        "allowed_product_types": ["MIS", "NRML"],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def counts() -> tuple[int, int, int, int]:
    return (
        User.objects.count(),
        Follower.objects.count(),
        BrokerAccount.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def client_x(client: Client, master_x) -> Client:
    return login(client, master_x.user)


# --- Happy path -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_register_follower_shows_username_and_password_once(client_x: Client, master_x):
    response = client_x.post(REGISTER, form_data())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    username = response.context["username"]
    password = response.context["password"]
    assert username == "ravi-kumar"
    assert len(password) == 20
    assert f'value="{password}"' in html and f'value="{username}"' in html
    assert 'data-copy-target="login-password"' in html  # copy button (fallback: select text)

    follower = Follower.objects.get(user__username=username)
    assert follower.master == master_x
    assert follower.lot_multiplier == Decimal("1.5")
    assert follower.max_quantity == 500
    assert follower.max_order_value == Decimal("250000")
    assert follower.max_daily_loss == Decimal("10000.50")
    assert follower.allowed_instruments == ["NSE:INFY", "NFO:NIFTY"]
    assert follower.allowed_product_types == ["MIS", "NRML"]
    assert follower.is_active and not follower.is_paused
    user = follower.user
    assert user.role == User.Role.FOLLOWER
    assert user.check_password(password)
    assert password not in user.password

    account = BrokerAccount.objects.get(owner=user)
    assert account.client_id == "AB7788"
    assert account.master == master_x
    assert API_KEY not in account.api_key_encrypted
    assert account.api_key().reveal() == API_KEY  # type: ignore[union-attr]
    assert account.api_key_hint == API_KEY[-4:]

    # The password is nowhere else: not in the session, not on any page, not in the audit.
    assert all(password not in str(value) for value in client_x.session.values())
    for url in (
        reverse("accounts:follower_detail", args=[follower.pk]),
        reverse("accounts:follower_list"),
    ):
        page = client_x.get(url).content.decode()
        assert password not in page and API_KEY not in page
    event = AuditEvent.objects.get(action="follower.register")
    assert event.actor == master_x.user and event.master == master_x
    assert password not in str(event.after) and API_KEY not in str(event.after)
    assert event.after["api_key"] == "****" + API_KEY[-4:]
    assert event.after["client_id"] == "AB7788"
    assert event.after["username"] == username

    # The follower can log in with what was shown.
    follower_client = Client()
    answer = follower_client.post(
        reverse("accounts:login"), {"username": username, "password": password}
    )
    assert answer.status_code == 302


@pytest.mark.django_db
def test_resubmitting_the_form_does_not_register_twice_or_show_a_password(client_x: Client):
    first = client_x.post(REGISTER, form_data())
    assert first.status_code == 200
    before = counts()
    again = client_x.post(REGISTER, form_data())  # e.g. the browser's reload of the POST
    assert again.status_code == 422
    assert again.context["form"].errors["client_id"] == [services.CLIENT_ID_TAKEN]
    assert first.context["password"] not in again.content.decode()
    assert counts() == before


@pytest.mark.django_db
def test_register_follower_with_oauth_needs_no_api_key(client_x: Client):
    response = client_x.post(REGISTER, form_data(login_method="oauth", api_key=""))
    assert response.status_code == 200
    account = BrokerAccount.objects.get(client_id="AB7788")
    assert account.login_method == "oauth"
    assert account.api_key() is None


@pytest.mark.django_db
def test_register_follower_with_its_own_vendor_app(client_x: Client):
    response = client_x.post(REGISTER, form_data(app_code=APP_CODE, api_secret=API_SECRET))
    assert response.status_code == 200
    account = BrokerAccount.objects.get(client_id="AB7788")
    assert account.uses_own_vendor_app
    assert account.app_code().reveal() == APP_CODE  # type: ignore[union-attr]
    assert account.api_secret().reveal() == API_SECRET  # type: ignore[union-attr]
    assert APP_CODE not in account.app_code_encrypted
    assert API_SECRET not in account.api_secret_encrypted


@pytest.mark.django_db
def test_empty_instruments_mean_all(client_x: Client):
    assert client_x.post(REGISTER, form_data(allowed_instruments="")).status_code == 200
    assert Follower.objects.get().allowed_instruments == []


@pytest.mark.django_db
def test_same_client_id_under_another_master_is_allowed(client_x: Client, follower_c):
    response = client_x.post(
        REGISTER, form_data(client_id=follower_c.user.broker_account.client_id)
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_usernames_follow_the_display_name_and_stay_unique(master_x):
    made = [
        services.register_follower(
            master=master_x,
            actor=master_x.user,
            display_name=name,
            client_id=f"ZZ{i:04d}",
            login_method="oauth",
            lot_multiplier=Decimal("1"),
            max_quantity=10,
            max_order_value=Decimal("1000"),
            max_daily_loss=Decimal("100"),
            allowed_product_types=["MIS"],
        )
        for i, name in enumerate(["Asha Rao", "Asha Rao", "asha  rao", "राम", "Master_X"])
    ]
    assert [m.username for m in made] == [
        "asha-rao",
        "asha-rao-2",
        "asha-rao-3",
        "follower",
        "master_x-2",
    ]


# --- Invalid input: each one, a message at its field, nothing saved -------------------------------
INVALID = [
    (
        "zero_multiplier",
        {"lot_multiplier": "0"},
        "lot_multiplier",
        validation.LOT_MULTIPLIER_TOO_SMALL,
    ),
    (
        "negative_multiplier",
        {"lot_multiplier": "-1"},
        "lot_multiplier",
        validation.LOT_MULTIPLIER_TOO_SMALL,
    ),
    (
        "huge_multiplier",
        {"lot_multiplier": "100.5"},
        "lot_multiplier",
        validation.LOT_MULTIPLIER_TOO_LARGE,
    ),
    ("multiplier_five_decimals", {"lot_multiplier": "1.00001"}, "lot_multiplier", None),
    ("multiplier_not_a_number", {"lot_multiplier": "abc"}, "lot_multiplier", "Enter a number."),
    ("multiplier_nan", {"lot_multiplier": "NaN"}, "lot_multiplier", "Enter a number."),
    (
        "max_quantity_zero",
        {"max_quantity": "0"},
        "max_quantity",
        "The max quantity must be at least 1.",
    ),
    ("max_quantity_fraction", {"max_quantity": "1.5"}, "max_quantity", "Enter a whole number."),
    (
        "max_order_value_zero",
        {"max_order_value": "0"},
        "max_order_value",
        "Enter an amount greater than 0.",
    ),
    (
        "max_daily_loss_negative",
        {"max_daily_loss": "-5"},
        "max_daily_loss",
        "Enter an amount greater than 0.",
    ),
    ("max_daily_loss_missing", {"max_daily_loss": ""}, "max_daily_loss", "This field is required."),
    (
        "unknown_product_type",
        {"allowed_product_types": ["MIS", "XYZ"]},
        "allowed_product_types",
        None,
    ),
    (
        "no_product_type",
        {"allowed_product_types": None},
        "allowed_product_types",
        validation.PRODUCT_TYPES_REQUIRED,
    ),
    (
        "instrument_unknown_exchange",
        {"allowed_instruments": "FOO:INFY"},
        "allowed_instruments",
        validation.INSTRUMENT_EXCHANGE_UNKNOWN.format(value="FOO:INFY"),
    ),
    (
        "instrument_without_exchange",
        {"allowed_instruments": "INFY"},
        "allowed_instruments",
        validation.INSTRUMENT_FORMAT.format(value="INFY"),
    ),
    (
        "instrument_bad_symbol",
        {"allowed_instruments": "NSE:IN<FY"},
        "allowed_instruments",
        validation.INSTRUMENT_SYMBOL_INVALID.format(value="NSE:IN<FY"),
    ),
    ("client_id_with_space", {"client_id": "AB 1234"}, "client_id", validation.CLIENT_ID_INVALID),
    ("client_id_symbols", {"client_id": "AB-12!"}, "client_id", validation.CLIENT_ID_INVALID),
    ("client_id_too_short", {"client_id": "AB1"}, "client_id", validation.CLIENT_ID_INVALID),
    ("client_id_too_long", {"client_id": "A" * 33}, "client_id", None),
    ("client_id_of_a_follower", {"client_id": "fa0001"}, "client_id", services.CLIENT_ID_TAKEN),
    ("client_id_of_the_master", {"client_id": "MX0001"}, "client_id", services.CLIENT_ID_TAKEN),
    ("api_key_too_short", {"api_key": "abc123"}, "api_key", validation.API_KEY_INVALID),
    (
        "api_key_with_space",
        {"api_key": "abcdefgh ijklmnopqrst"},
        "api_key",
        validation.API_KEY_INVALID,
    ),
    ("api_key_too_long", {"api_key": "a" * 513}, "api_key", None),
    ("api_key_missing", {"api_key": ""}, "api_key", services.API_KEY_REQUIRED),
    ("app_code_without_secret", {"app_code": APP_CODE}, "api_secret", services.OWN_APP_INCOMPLETE),
    (
        "secret_without_app_code",
        {"api_secret": API_SECRET},
        "app_code",
        services.OWN_APP_INCOMPLETE,
    ),
    (
        "app_code_malformed",
        {"app_code": "bad code!", "api_secret": API_SECRET},
        "app_code",
        validation.APP_CODE_INVALID,
    ),
    ("unknown_login_method", {"login_method": "password"}, "login_method", None),
    ("display_name_too_long", {"display_name": "x" * 81}, "display_name", None),
    ("display_name_blank", {"display_name": "   "}, "display_name", "This field is required."),
    (
        "display_name_control_char",
        {"display_name": "Ravi\x07"},
        "display_name",
        validation.DISPLAY_NAME_INVALID,
    ),
    (
        "instruments_too_long",
        {"allowed_instruments": "NSE:INFY," * 600},
        "allowed_instruments",
        None,
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_register_follower_rejects_invalid_input_at_the_field(
    client_x: Client, follower_a, overrides, field, message
):
    before = counts()
    response = client_x.post(REGISTER, form_data(**overrides))
    assert response.status_code == 422
    form = response.context["form"]
    assert field in form.errors, form.errors
    if message is not None:
        assert message in form.errors[field]
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html  # the message sits at its field
    assert 'aria-invalid="true"' in html
    assert API_KEY not in html  # secrets are never rendered back
    assert counts() == before


@pytest.mark.django_db
def test_every_error_is_reported_at_once(client_x: Client):
    response = client_x.post(
        REGISTER, form_data(lot_multiplier="0", max_quantity="0", client_id="??")
    )
    assert set(response.context["form"].errors) >= {"lot_multiplier", "max_quantity", "client_id"}


@pytest.mark.django_db
def test_service_rejects_bad_input_with_errors_by_argument_name(master_x):
    with pytest.raises(ValidationError) as caught:
        services.register_follower(
            master=master_x,
            actor=master_x.user,
            display_name="",
            client_id="x",
            login_method="api_key",
            api_key="",
            lot_multiplier=Decimal("0"),
            max_quantity=0,
            max_order_value=Decimal("-1"),
            max_daily_loss=Decimal("0"),
            allowed_instruments=["NSE:INFY", "bogus"],
            allowed_product_types=["FOO"],
        )
    errors = caught.value.message_dict
    assert set(errors) >= {
        "display_name",
        "client_id",
        "api_key",
        "lot_multiplier",
        "max_quantity",
        "max_order_value",
        "max_daily_loss",
        "allowed_instruments",
        "allowed_product_types",
    }
    assert errors["lot_multiplier"] == [validation.LOT_MULTIPLIER_TOO_SMALL]
    assert errors["api_key"] == [services.API_KEY_REQUIRED]
    assert User.objects.filter(role="follower").count() == 0


@pytest.mark.django_db
def test_a_stranger_cannot_register_under_another_master(master_x, master_y):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.register_follower(
            master=master_x,
            actor=master_y.user,
            display_name="X",
            client_id="AB9999",
            login_method="oauth",
            lot_multiplier=Decimal("1"),
            max_quantity=1,
            max_order_value=Decimal("1"),
            max_daily_loss=Decimal("1"),
            allowed_product_types=["MIS"],
        )


@pytest.mark.django_db
def test_nothing_is_half_saved_when_the_client_id_is_taken_between_check_and_insert(
    master_x, follower_a, monkeypatch
):
    """The pre-check misses a concurrent registration; the unique constraint catches it and
    the user and follower rows already inserted roll back with it."""
    monkeypatch.setattr(services.selectors, "client_id_taken", lambda **kwargs: False)
    before = counts()
    with pytest.raises(ValidationError) as caught:
        services.register_follower(
            master=master_x,
            actor=master_x.user,
            display_name="Late",
            client_id="FA0001",
            login_method="oauth",
            lot_multiplier=Decimal("1"),
            max_quantity=1,
            max_order_value=Decimal("1"),
            max_daily_loss=Decimal("1"),
            allowed_product_types=["MIS"],
        )
    assert caught.value.message_dict == {"client_id": [services.CLIENT_ID_TAKEN]}
    assert counts() == before
    assert not User.objects.filter(username="late").exists()


@pytest.mark.django_db
def test_a_deactivated_followers_client_id_can_be_registered_again(
    client_x: Client, master_x, follower_a
):
    services.deactivate_follower(follower=follower_a, actor=master_x.user)
    assert client_x.post(REGISTER, form_data(client_id="FA0001")).status_code == 200
    assert BrokerAccount.objects.filter(master=master_x, client_id="FA0001").count() == 2


@pytest.mark.django_db
def test_htmx_registration_swaps_the_form_or_the_one_time_login(client_x: Client):
    bad = client_x.post(REGISTER, form_data(max_quantity="0"), headers={"HX-Request": "true"})
    assert bad.status_code == 422
    assert b"<html" not in bad.content and b'id="follower-register-form"' in bad.content
    assert bad["Vary"].count("HX-Request") == 1
    ok = client_x.post(REGISTER, form_data(), headers={"HX-Request": "true"})
    assert ok.status_code == 200
    assert b"<html" not in ok.content and b'id="login-once"' in ok.content
    assert "no-store" in ok["Cache-Control"]


# --- Unique usernames under concurrency -----------------------------------------------------------
@pytest.mark.django_db
def test_the_insert_decides_a_username_race_and_the_loser_takes_the_next_name(
    master_x, monkeypatch
):
    """Simulates losing the race: the first look says "alice" is free, but another
    registration has just committed it. The insert fails inside a savepoint (which keeps the
    PostgreSQL transaction usable) and the next name is taken."""
    MasterFactory(user__username="alice")  # taken since our look
    monkeypatch.setattr(services, "_username_looks_free", lambda candidate: True)
    made = services.register_follower(
        master=master_x,
        actor=master_x.user,
        display_name="Alice",
        client_id="AL1111",
        login_method="oauth",
        lot_multiplier=Decimal("1"),
        max_quantity=1,
        max_order_value=Decimal("1"),
        max_daily_loss=Decimal("1"),
        allowed_product_types=["MIS"],
    )
    assert made.username == "alice-2"
    assert Follower.objects.filter(user__username="alice-2").exists()


@pytest.mark.django_db(transaction=True)
def test_usernames_stay_unique_under_concurrent_registrations():
    """Eight threads, each with its own database connection, register a follower with the same
    display name at the same moment (SQLite file database or PostgreSQL, whichever the suite
    runs on)."""
    master = MasterFactory(user__username="boss")
    BrokerAccountFactory(owner=master.user, master=master, client_id="BOSS01")
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            made = services.register_follower(
                master=master,
                actor=master.user,
                display_name="Same Name",
                client_id=f"CC{i:04d}",
                login_method="api_key",
                api_key=f"{API_KEY}{i:02d}",
                lot_multiplier=Decimal("1"),
                max_quantity=10,
                max_order_value=Decimal("1000"),
                max_daily_loss=Decimal("100"),
                allowed_product_types=["MIS"],
            )
            with lock:
                results.append(made.username)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    expected = {"same-name"} | {f"same-name-{n}" for n in range(2, threads_count + 1)}
    assert set(results) == expected
    assert Follower.objects.filter(master=master).count() == threads_count
    assert AuditEvent.objects.filter(action="follower.register").count() == threads_count


@pytest.mark.django_db
def test_service_takes_api_style_values_and_refuses_missing_lists(master_x):
    """The JSON API passes strings and may omit lists: errors, never a crash."""
    with pytest.raises(ValidationError) as caught:
        services.register_follower(
            master=master_x,
            actor=master_x.user,
            display_name="Api",
            client_id="AP0001",
            login_method="oauth",
            lot_multiplier="abc",  # type: ignore[arg-type]
            max_quantity="ten",  # type: ignore[arg-type]
            max_order_value=Decimal("1"),
            max_daily_loss=Decimal("1"),
            allowed_instruments=None,  # type: ignore[arg-type]
            allowed_product_types=None,  # type: ignore[arg-type]
        )
    assert set(caught.value.message_dict) == {
        "lot_multiplier",
        "max_quantity",
        "allowed_product_types",
    }
    made = services.register_follower(
        master=master_x,
        actor=master_x.user,
        display_name="Api",
        client_id="AP0001",
        login_method="oauth",
        lot_multiplier="0.25",  # type: ignore[arg-type]
        max_quantity="10",  # type: ignore[arg-type]
        max_order_value="1000.5",  # type: ignore[arg-type]
        max_daily_loss="100",  # type: ignore[arg-type]
        allowed_product_types=["mis"],
    )
    made.follower.refresh_from_db()
    assert made.follower.lot_multiplier == Decimal("0.25")
    assert made.follower.allowed_product_types == ["MIS"]
