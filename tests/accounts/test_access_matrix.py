"""The access matrix: every URL and every persona gets exactly its expected answer.

Adding a URL? Add a Route to ROUTES below; `test_every_url_is_in_the_matrix` fails until you do.
Personas: anonymous, follower A and B (of master X), master X, master Y (a stranger with its
own follower C), staff, and master X with only its password (second factor not yet passed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Follower, Master, User
from tests.conftest import login

PERSONAS = [
    "anonymous",
    "follower_a",
    "follower_b",
    "master_x",
    "master_y",
    "staff",
    "master_x_password_only",
]


@dataclass
class World:
    master_x: Master
    master_y: Master
    follower_a: Follower
    follower_b: Follower
    follower_c: Follower
    staff: User


@pytest.fixture
def world(master_x, master_y, follower_a, follower_b, follower_c, staff) -> World:
    return World(master_x, master_y, follower_a, follower_b, follower_c, staff)


def sign_in(client: Client, world: World, persona: str) -> None:
    if persona == "anonymous":
        return
    if persona == "master_x_password_only":
        TOTPDevice.objects.create(user=world.master_x.user, name="app", confirmed=True)
        client.force_login(world.master_x.user)
        return
    user = {
        "follower_a": world.follower_a.user,
        "follower_b": world.follower_b.user,
        "master_x": world.master_x.user,
        "master_y": world.master_y.user,
        "staff": world.staff,
    }[persona]
    login(client, user)


# --- Expected answers -----------------------------------------------------------------------------
class Expect:
    def check(self, response: Any, url: str, world: World) -> None:
        raise NotImplementedError


@dataclass
class Status(Expect):
    code: int

    def check(self, response: Any, url: str, world: World) -> None:
        assert response.status_code == self.code, (response.status_code, response.get("Location"))

    def __repr__(self) -> str:
        return str(self.code)


@dataclass
class RedirectTo(Expect):
    """A 302 whose target path is `to(world)` (query string ignored unless given)."""

    to: Callable[[World], str]
    label: str = ""

    def check(self, response: Any, url: str, world: World) -> None:
        assert response.status_code == 302, response.status_code
        expected = self.to(world)
        location = response["Location"]
        if "?" not in expected:
            location = urlsplit(location).path
        assert location == expected, (location, expected)

    def __repr__(self) -> str:
        return f"redirect:{self.label}"


class ToLogin(Expect):
    def check(self, response: Any, url: str, world: World) -> None:
        assert response.status_code == 302, response.status_code
        location = response["Location"]
        assert urlsplit(location).path == reverse("accounts:login"), location

    def __repr__(self) -> str:
        return "login"


class ToSecondFactor(Expect):
    def check(self, response: Any, url: str, world: World) -> None:
        assert response.status_code == 302, response.status_code
        location = response["Location"]
        assert urlsplit(location).path == reverse("accounts:otp_verify"), location

    def __repr__(self) -> str:
        return "verify"


PAGE = Status(200)
FORBIDDEN = Status(403)
NOT_FOUND = Status(404)
LOGIN = ToLogin()
VERIFY = ToSecondFactor()


def to(name: str, *args: Callable[[World], Any]) -> RedirectTo:
    return RedirectTo(lambda w: reverse(name, args=[a(w) for a in args]), label=name)


def to_path(path: str) -> RedirectTo:
    return RedirectTo(lambda w: path, label=path)


def everyone(answer: Expect, **overrides: Expect) -> dict[str, Expect]:
    result = dict.fromkeys(PERSONAS, answer)
    result.update(overrides)
    return result


def masters_only(allowed: Expect) -> dict[str, Expect]:
    return everyone(
        FORBIDDEN,
        anonymous=LOGIN,
        master_x=allowed,
        master_y=allowed,
        master_x_password_only=VERIFY,
    )


def master_x_only(allowed: Expect) -> dict[str, Expect]:
    """A page about one of master X's followers: a stranger master gets 404."""
    return everyone(
        FORBIDDEN,
        anonymous=LOGIN,
        master_x=allowed,
        master_y=NOT_FOUND,
        master_x_password_only=VERIFY,
    )


UNAUTHENTICATED = Status(401)


def api_masters_only(allowed: Expect) -> dict[str, Expect]:
    """An API endpoint for masters: no login redirects, 401 until fully logged in."""
    return everyone(
        FORBIDDEN,
        anonymous=UNAUTHENTICATED,
        master_x=allowed,
        master_y=allowed,
        master_x_password_only=UNAUTHENTICATED,
    )


def followers_only(allowed: Expect) -> dict[str, Expect]:
    return everyone(FORBIDDEN, anonymous=LOGIN, follower_a=allowed, follower_b=allowed)


@dataclass
class Route:
    name: str
    expect: dict[str, Expect]
    method: str = "get"
    args: Callable[[World], list[Any]] = field(default=lambda w: [])
    data: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


FA = lambda w: [w.follower_a.pk]  # noqa: E731
FA_ACCOUNT = lambda w: [w.follower_a.user.broker_account.pk]  # noqa: E731
# Connect calls the broker: point it at a closed port so the answer does not depend on
# whether a sandbox happens to be running (the connect flows have their own tests).
UNREACHABLE_BROKER = {
    "ALICEBLUE_ANT_API_URL": "http://127.0.0.1:9",
    "ALICEBLUE_OPEN_API_URL": "http://127.0.0.1:9",
}

ROUTES = [
    Route(
        "home",
        everyone(
            FORBIDDEN,
            anonymous=LOGIN,
            follower_a=to("trading:follower_board"),
            follower_b=to("trading:follower_board"),
            master_x=to("trading:master_dashboard"),
            master_y=to("trading:master_dashboard"),
            staff=to("admin:index"),
            master_x_password_only=to("trading:master_dashboard"),
        ),
    ),
    Route("healthz", everyone(PAGE)),
    Route(
        "accounts:login",
        everyone(to_path("/"), anonymous=PAGE, master_x_password_only=VERIFY),
    ),
    Route("accounts:logout", everyone(LOGIN), method="post"),
    Route(
        "accounts:otp_enrol",
        everyone(to_path("/"), anonymous=LOGIN, master_x_password_only=VERIFY),
    ),
    Route(
        "accounts:otp_verify", everyone(to_path("/"), anonymous=LOGIN, master_x_password_only=PAGE)
    ),
    Route(
        "accounts:backup_codes",
        everyone(
            PAGE,
            anonymous=LOGIN,
            follower_a=FORBIDDEN,
            follower_b=FORBIDDEN,
            master_x_password_only=VERIFY,
        ),
    ),
    Route(
        "accounts:password_change",
        everyone(PAGE, anonymous=LOGIN, master_x_password_only=VERIFY),
    ),
    Route("accounts:follower_list", masters_only(PAGE)),
    Route("accounts:follower_register", masters_only(PAGE)),
    Route("accounts:broker_account", masters_only(PAGE)),
    Route(
        "accounts:kill_switch",
        masters_only(to("accounts:follower_list")),
        method="post",
        data={"entries_paused": "on"},
    ),
    Route("accounts:follower_detail", master_x_only(PAGE), args=FA),
    Route("accounts:follower_limits", master_x_only(PAGE), args=FA),
    Route("accounts:follower_credentials", master_x_only(PAGE), args=FA),
    Route("accounts:follower_reset_password", master_x_only(PAGE), args=FA),
    Route("accounts:follower_deactivate", master_x_only(PAGE), args=FA),
    Route(
        "accounts:follower_pause",
        master_x_only(to("accounts:follower_detail", lambda w: w.follower_a.pk)),
        method="post",
        args=FA,
    ),
    Route(
        "accounts:follower_resume",
        master_x_only(to("accounts:follower_detail", lambda w: w.follower_a.pk)),
        method="post",
        args=FA,
    ),
    Route("accounts:me", followers_only(PAGE)),
    Route("accounts:me_pause", followers_only(to("accounts:me")), method="post"),
    Route("accounts:me_resume", followers_only(to("accounts:me")), method="post"),
    Route("trading:master_dashboard", masters_only(PAGE)),
    Route("trading:follower_board", followers_only(PAGE)),
    # The master dashboard's actions (trading.views): the foundation's services behind them.
    Route(
        "trading:master_kill_switch",
        masters_only(Status(400)),  # no "entries" value: refused before anything changes
        method="post",
    ),
    Route(
        "trading:master_follower_pause",
        master_x_only(to("trading:master_dashboard")),
        method="post",
        args=FA,
    ),
    Route(
        "trading:master_follower_resume",
        master_x_only(to("trading:master_dashboard")),
        method="post",
        args=FA,
    ),
    Route("trading:master_manual_copy", masters_only(PAGE)),
    Route(
        "trading:master_sandbox_account",
        masters_only(NOT_FOUND),  # against the live broker there are no sandbox accounts
        method="post",
        settings={"ALICEBLUE_BROKER": "live"},
    ),
    Route("trading:manual_copy", masters_only(PAGE)),
    # Missed exits after a feed loss and the reconciliation policy (trading.views_lifecycle):
    # an empty body is refused before anything changes.
    Route("trading:master_exit_proposals_send", masters_only(Status(400)), method="post"),
    Route("trading:master_exit_proposals_dismiss", masters_only(Status(400)), method="post"),
    Route("trading:master_reconcile_policy", masters_only(Status(400)), method="post"),
    # Readiness "check now": a request the copier fulfils (the web never calls the broker).
    Route(
        "trading:master_readiness_check",
        masters_only(to("trading:master_dashboard")),
        method="post",
    ),
    # AliceBlue connect flows (trading.views_broker): an account's session panel is visible to
    # its master and its owner; anyone else gets 404 (ids are not probeable).
    Route("trading:broker_callback", everyone(Status(400), anonymous=LOGIN)),
    Route(
        "trading:broker_session",
        everyone(NOT_FOUND, anonymous=LOGIN, master_x=PAGE, follower_a=PAGE),
        args=FA_ACCOUNT,
    ),
    Route(
        "trading:broker_connect",
        everyone(NOT_FOUND, anonymous=LOGIN, master_x=Status(502)),  # 502: broker unreachable
        method="post",
        args=FA_ACCOUNT,
        settings=UNREACHABLE_BROKER,
    ),
    Route(
        "trading:broker_disconnect",
        everyone(
            NOT_FOUND,
            anonymous=LOGIN,
            master_x=to("trading:broker_session", lambda w: w.follower_a.user.broker_account.pk),
        ),
        method="post",
        args=FA_ACCOUNT,
    ),
    # The JSON API (api.endpoints): 401 instead of a login redirect, JSON everywhere. Bodies
    # here are empty, so an allowed caller gets the 400 of its validation.
    Route("api:openapi-json", everyone(PAGE)),
    Route("api:api-root", everyone(NOT_FOUND)),
    Route("api:followers_list", api_masters_only(PAGE)),
    Route("api:register_api_key", api_masters_only(Status(400)), method="post"),
    Route("api:manual_copy", api_masters_only(Status(400)), method="post"),
    Route(
        "api:copy_trades",
        everyone(
            PAGE, anonymous=UNAUTHENTICATED, staff=FORBIDDEN, master_x_password_only=UNAUTHENTICATED
        ),
    ),
    Route(
        "api:cancel_copy_trade",
        everyone(
            Status(400),
            anonymous=UNAUTHENTICATED,
            staff=FORBIDDEN,
            master_x_password_only=UNAUTHENTICATED,
        ),
        method="patch",
    ),
    Route(
        "admin:index",
        everyone(FORBIDDEN, anonymous=LOGIN, staff=PAGE),
    ),
]

# URL names deliberately outside the matrix: the rest of the admin (the index stands for it;
# every admin view is behind the same AdminSite.has_permission).
NOT_IN_MATRIX_NAMESPACES = {"admin"}


def _all_url_names(resolver: URLResolver | None = None, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            namespace = pattern.namespace
            if namespace in NOT_IN_MATRIX_NAMESPACES:
                continue
            names |= _all_url_names(pattern, f"{prefix}{namespace}:" if namespace else prefix)
        elif isinstance(pattern, URLPattern):
            names.add(f"{prefix}{pattern.name}" if pattern.name else f"{prefix}<unnamed {pattern}>")
    return names


def test_every_url_is_in_the_matrix():
    covered = {route.name for route in ROUTES}
    missing = _all_url_names() - covered
    assert not missing, f"add these URLs to ROUTES in {__file__}: {sorted(missing)}"


def test_every_route_names_every_persona():
    for route in ROUTES:
        assert set(route.expect) == set(PERSONAS), route.name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "persona"),
    [(route, persona) for route in ROUTES for persona in PERSONAS],
    ids=[f"{route.name}-{persona}" for route in ROUTES for persona in PERSONAS],
)
def test_access(route: Route, persona: str, world: World, client: Client, settings):
    for name, value in route.settings.items():
        setattr(settings, name, value)
    sign_in(client, world, persona)
    url = reverse(route.name, args=route.args(world))
    response = getattr(client, route.method)(url, route.data)
    route.expect[persona].check(response, url, world)


@pytest.mark.django_db
def test_a_master_never_reaches_another_masters_follower(world: World, client: Client):
    login(client, world.master_x.user)
    c = world.follower_c.pk
    for name in (
        "accounts:follower_detail",
        "accounts:follower_limits",
        "accounts:follower_credentials",
        "accounts:follower_reset_password",
        "accounts:follower_deactivate",
    ):
        assert client.get(reverse(name, args=[c])).status_code == 404, name
        if name != "accounts:follower_detail":
            response = client.post(reverse(name, args=[c]), {"confirm": "on"})
            assert response.status_code == 404, name
    for name in ("accounts:follower_pause", "accounts:follower_resume"):
        assert client.post(reverse(name, args=[c])).status_code == 404, name
    world.follower_c.refresh_from_db()
    assert world.follower_c.is_active and not world.follower_c.is_paused
    listing = client.get(reverse("accounts:follower_list")).content.decode()
    assert "Alice" in listing and "Carol" not in listing


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "accounts:follower_pause",
        "accounts:follower_resume",
        "accounts:kill_switch",
        "accounts:me_pause",
        "accounts:me_resume",
        "accounts:logout",
    ],
)
def test_post_only_urls_refuse_get(name: str, world: World, client: Client):
    login(client, world.master_x.user)
    args = [world.follower_a.pk] if "follower_" in name else []
    assert client.get(reverse(name, args=args)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["accounts:follower_list", "accounts:follower_detail", "accounts:me", "healthz"]
)
def test_get_only_urls_refuse_post(name: str, world: World, client: Client):
    login(client, world.master_x.user)
    args = [world.follower_a.pk] if name == "accounts:follower_detail" else []
    assert client.post(reverse(name, args=args)).status_code == 405


@pytest.mark.django_db
def test_htmx_request_of_an_anonymous_visitor_gets_hx_redirect_to_login(client: Client):
    response = client.get(reverse("accounts:follower_list"), headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert urlsplit(response["HX-Redirect"]).path == reverse("accounts:login")


@pytest.mark.django_db
def test_htmx_request_of_a_password_only_master_gets_hx_redirect_to_verify(
    world: World, client: Client
):
    TOTPDevice.objects.create(user=world.master_x.user, name="app", confirmed=True)
    client.force_login(world.master_x.user)
    response = client.get(
        reverse("accounts:follower_list"),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/master/"},
    )
    assert response.status_code == 204
    target = urlsplit(response["HX-Redirect"])
    assert target.path == reverse("accounts:otp_verify")
    assert target.query == "next=%2Fmaster%2F"


@pytest.mark.django_db
def test_a_master_without_a_device_is_sent_to_enrol(world: World, client: Client):
    client.force_login(world.master_x.user)
    response = client.get(reverse("accounts:follower_list"))
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == reverse("accounts:otp_enrol")
