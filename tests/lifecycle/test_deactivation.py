"""Deactivating a follower with open copied positions: flatten (exits reach the follower's
sandbox account over real sockets, the ledger goes flat, then the follower is deactivated) or
detach (the positions stay, untracked). Through the master's page and the service."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils.html import escape

from accounts import services
from accounts.models import BrokerAccount, Follower
from tests.conftest import login
from tests.engine.conftest import make_world, sbx  # noqa: F401  (the engine's fixtures)
from trading.engine.lifecycle import deactivation
from trading.models import AuditEvent, CopyTrade, MasterOrder, MasterPosition, PositionLedger

Status = CopyTrade.Status


def _with_positions(make_world, n: int = 2):  # noqa: F811
    world = make_world(*({"lot_multiplier": Decimal("1")} for _ in range(n)))
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.place("SBIN-EQ", "BUY", 4)
    world.tick(2)
    for f in world.followers:
        assert world.net_of(f, "INFY-EQ") == 10 and world.net_of(f, "SBIN-EQ") == 4
    return world


def _ledger(follower: Follower) -> dict[str, int]:
    return dict(
        PositionLedger.objects.filter(follower=follower, detached=False).values_list(
            "trading_symbol", "net_quantity"
        )
    )


def test_flatten_exits_reach_the_follower_then_it_is_deactivated(client, make_world):  # noqa: F811
    world = _with_positions(make_world)
    leaving, staying = world.followers
    login(client, world.master.user)
    url = reverse("accounts:follower_deactivate", args=[leaving.pk])
    page = client.get(url).content.decode()
    assert "NSE:INFY-EQ MIS +10" in page and 'value="flatten"' in page

    response = client.post(url, {"confirm": "on", "open_positions": "flatten"})
    assert response.status_code == 302
    leaving.refresh_from_db()
    # Still active (its exits must go out with its session), but deactivating.
    assert leaving.is_active and leaving.deactivating_at is not None
    exits = deactivation.flatten_exits(leaving.pk)
    assert sorted((e.trading_symbol, e.side, e.quantity, e.order_type) for e in exits) == [
        ("INFY-EQ", "SELL", 10, "MARKET"),
        ("SBIN-EQ", "SELL", 4, "MARKET"),
    ]
    assert all(e.intent == "exit" and e.status == Status.PENDING for e in exits)
    listing = client.get(reverse("accounts:follower_list")).content.decode()
    assert "Being deactivated" in listing
    detail = client.get(reverse("accounts:follower_detail", args=[leaving.pk])).content.decode()
    assert "Being deactivated since" in detail
    assert "INFY-EQ" in client.get(url).content.decode()  # its exit orders, on the page
    flatten = AuditEvent.objects.get(action="follower.flatten")
    assert sorted(flatten.after["exit_copy_trades"]) == sorted(e.pk for e in exits)
    # The flatten's records never move the master's own position books.
    assert not MasterPosition.objects.filter(master=world.master, book="manual").exists()

    # A master entry now is not copied to the deactivating follower.
    world.place("INFY-EQ", "BUY", 2)
    world.tick(3, unclaimed_grace=0.0)

    assert world.net_of(leaving, "INFY-EQ") == 0 and world.net_of(leaving, "SBIN-EQ") == 0
    assert world.net_of(staying, "INFY-EQ") == 12 and world.net_of(staying, "SBIN-EQ") == 4
    assert sorted(o["quantity"] for o in world.orders_of(leaving) if o["side"] == "SELL") == [
        4,
        10,
    ]
    assert _ledger(leaving) == {"INFY-EQ": 0, "SBIN-EQ": 0}
    assert all(
        r.exit_reserved == 0 for r in PositionLedger.objects.filter(follower=leaving)
    )  # nothing held back
    assert {e.status for e in deactivation.flatten_exits(leaving.pk)} == {Status.SUCCESS}

    leaving.refresh_from_db()
    account = BrokerAccount.objects.get(owner=leaving.user)
    assert not leaving.is_active and leaving.deactivated_at is not None
    assert not account.active and account.api_key_encrypted == ""
    done = AuditEvent.objects.get(action="follower.deactivate", target_id=str(leaving.pk))
    assert done.actor_repr == "copier" and done.after["open_positions"] == "flatten"
    assert sorted(done.after["flattened_by"]) == sorted(e.tag for e in exits)
    assert Follower.objects.get(pk=staying.pk).is_active


def test_detach_keeps_the_positions_untracked_and_deactivates_now(client, make_world):  # noqa: F811
    world = _with_positions(make_world, n=1)
    (follower,) = world.followers
    login(client, world.master.user)
    url = reverse("accounts:follower_deactivate", args=[follower.pk])
    response = client.post(url, {"confirm": "on", "open_positions": "detach"}, follow=True)
    assert response.status_code == 200
    assert "no longer managed" in response.content.decode()
    follower.refresh_from_db()
    assert not follower.is_active
    rows = list(PositionLedger.objects.filter(follower=follower))
    assert rows and all(r.detached for r in rows)
    event = AuditEvent.objects.get(action="follower.deactivate", target_id=str(follower.pk))
    assert event.after["open_positions"] == "detach"
    assert sorted(event.after["positions_detached"]) == [
        "NSE:INFY-EQ MIS +10",
        "NSE:SBIN-EQ MIS +4",
    ]

    # The master exits: nothing is sent to the detached follower; its positions stay.
    world.place("INFY-EQ", "SELL", 10)
    world.tick(2, unclaimed_grace=0.0)
    assert world.net_of(follower, "INFY-EQ") == 10 and world.net_of(follower, "SBIN-EQ") == 4
    assert not CopyTrade.objects.filter(follower=follower, intent="exit").exists()
    assert not MasterOrder.objects.filter(broker_order_id__startswith="FLATTEN-").exists()


def test_a_choice_is_required_and_errors_sit_next_to_the_field(client, make_world):  # noqa: F811
    world = _with_positions(make_world, n=1)
    (follower,) = world.followers
    login(client, world.master.user)
    url = reverse("accounts:follower_deactivate", args=[follower.pk])
    for data in ({"confirm": "on"}, {"confirm": "on", "open_positions": "sell-all"}):
        response = client.post(url, data)
        assert response.status_code == 422
        html = response.content.decode()
        assert 'class="field has-error"' in html and 'name="open_positions"' in html
    assert (
        escape(services.OPEN_POSITIONS_CHOICE_REQUIRED)
        in client.post(url, {"confirm": "on"}).content.decode()
    )
    with pytest.raises(ValidationError) as exc:
        services.deactivate_follower(
            follower=follower, actor=world.master.user, open_positions="sell-all"
        )
    assert exc.value.message_dict == {"open_positions": [services.OPEN_POSITIONS_UNKNOWN]}
    follower.refresh_from_db()
    assert follower.is_active and follower.deactivating_at is None  # nothing half-saved
    assert not CopyTrade.objects.filter(follower=follower, intent="exit").exists()


def test_a_rejected_flatten_exit_leaves_it_deactivating_until_flattened_again(make_world):  # noqa: F811
    world = _with_positions(make_world, n=1)
    (follower,) = world.followers
    master_user = world.master.user
    # The broker refuses the first flatten: its exchange is closed today (a holiday).
    world.sbx.set_round_the_clock(False)
    world.sbx.set_holidays([world.sbx.now().date()])
    result = services.deactivate_follower(
        follower=follower, actor=master_user, open_positions="flatten"
    )
    assert not result.done and len(result.exit_ids) == 2
    # Flattening again while those exits are on their way is refused.
    with pytest.raises(ValidationError) as exc:
        services.deactivate_follower(follower=follower, actor=master_user, open_positions="flatten")
    assert exc.value.message_dict == {"open_positions": [services.FLATTEN_IN_PROGRESS]}
    world.tick(2, unclaimed_grace=0.0)
    assert {e.status for e in deactivation.flatten_exits(follower.pk)} == {Status.FAILED}
    follower.refresh_from_db()
    assert follower.is_active and follower.deactivating_at is not None  # positions left
    assert _ledger(follower) == {"INFY-EQ": 10, "SBIN-EQ": 4}

    world.sbx.set_holidays([])
    world.sbx.set_round_the_clock(True)
    again = services.deactivate_follower(
        follower=follower, actor=master_user, open_positions="flatten"
    )
    assert len(again.exit_ids) == 2
    world.tick(3, unclaimed_grace=0.0)
    assert world.net_of(follower, "INFY-EQ") == 0 and world.net_of(follower, "SBIN-EQ") == 0
    follower.refresh_from_db()
    assert not follower.is_active


def test_the_running_copier_flattens_and_finishes_by_itself(make_world):  # noqa: F811
    """The copier's own loops (not a test's tick): the sweep sends the flatten's exits, the
    follower order feed brings their fills, the ``deactivations`` job finishes it."""
    world = _with_positions(make_world, n=1)
    (follower,) = world.followers

    def deactivated() -> bool:
        return not Follower.objects.get(pk=follower.pk).is_active

    async def body(copier):
        await asyncio.to_thread(
            _closing(services.deactivate_follower),
            follower=follower,
            actor=world.master.user,
            open_positions="flatten",
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if await asyncio.to_thread(_closing(deactivated)):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the follower was not deactivated in time")

    world.run(body)
    assert world.net_of(follower, "INFY-EQ") == 0 and world.net_of(follower, "SBIN-EQ") == 0
    assert _ledger(follower) == {"INFY-EQ": 0, "SBIN-EQ": 0}


def _closing(fn):
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return call
