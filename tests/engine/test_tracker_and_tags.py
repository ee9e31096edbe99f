"""Detection's pure core (which events a snapshot implies) and the broker tags."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from copytrade.lib import clock
from tests.engine.helpers import order_row
from trading.brokers.aliceblue.types import OrderStatus, OrderType
from trading.engine import tags, tracker
from trading.engine.tracker import KnownOrder, implied_events, params_of

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=clock.IST)


def row(**overrides):
    return order_row(**{"order_time": T0, **overrides})


def kinds(snapshot, known=None):
    return [(e.kind, e.dedupe_key) for e in implied_events(snapshot, known)]


def known(*events, filled=0, **params):
    p = {"quantity": 10, "price": Decimal("1500"), "trigger": None, "order_type": "LIMIT"}
    p.update(params)
    return KnownOrder(
        params=params_of(p["quantity"], p["price"], p["trigger"], p["order_type"]),
        filled_quantity=filled,
        events=frozenset(events),
    )


def test_pending_and_unknown_statuses_imply_nothing():
    assert kinds(row(status=OrderStatus.PENDING)) == []
    assert kinds(row(status=OrderStatus.UNKNOWN)) == []


def test_first_sight_of_a_complete_order_is_accepted_then_filled():
    assert kinds(row(status=OrderStatus.COMPLETE, filled_quantity=10)) == [
        ("accepted", ""),
        ("filled", "10"),
    ]
    # a complete order whose fill field says 0 is still filled
    assert kinds(row(status=OrderStatus.COMPLETE, filled_quantity=0))[-1] == ("filled", "10")


def test_rejected_is_never_accepted():
    assert kinds(row(status=OrderStatus.REJECTED)) == [("rejected", "")]


def test_cancelled_before_acceptance_is_only_cancelled():
    assert kinds(row(status=OrderStatus.CANCELLED)) == [("cancelled", "")]


def test_partial_fills_are_keyed_by_the_cumulative_quantity():
    base = known(("accepted", ""))
    assert kinds(row(filled_quantity=4), base) == [("partial_fill", "4")]
    later = known(("accepted", ""), ("partial_fill", "4"), filled=4)
    assert kinds(row(filled_quantity=4), later) == []
    assert kinds(row(status=OrderStatus.COMPLETE, filled_quantity=10), later) == [("filled", "10")]


def test_modifications_are_numbered_and_digested():
    base = known(("accepted", ""))
    (event,) = implied_events(row(price=Decimal("1490")), base)
    assert event.kind == "modified" and event.dedupe_key.startswith("1:")
    again = known(("accepted", ""), ("modified", event.dedupe_key), price=Decimal("1490"))
    assert kinds(row(price=Decimal("1490")), again) == []
    (back,) = implied_events(row(price=Decimal("1500")), again)
    assert back.dedupe_key.startswith("2:")
    # a market order's price field is noise, not a modification
    market = known(("accepted", ""), price=None, order_type="MARKET")
    assert kinds(row(order_type=OrderType.MARKET, price=Decimal("1501.5")), market) == []


def test_the_same_snapshot_twice_implies_nothing_new():
    first = implied_events(row(), None)
    seen = known(*[(e.kind, e.dedupe_key) for e in first])
    assert kinds(row(), seen) == []


def test_tags_are_short_alphanumeric_fixed_width_and_distinct(settings):
    tag = tags.make_tag(1, 2, 0)
    assert len(tag) == 18 and tag.isalnum() and tag == tag.upper() and tag.startswith("CT")
    seen = {tags.make_tag(e, f, leg) for e in (1, 35, 36, 1295) for f in (1, 36) for leg in (0, 1)}
    assert len(seen) == 16
    assert tags.make_tag(36**7 - 1, 36**5 - 1, 36**2 - 1).endswith("Z" * 14)
    with pytest.raises(ValueError):
        tags.make_tag(36**7, 1, 0)
    assert tags.same_tag(tag.lower() + " ", tag)
    settings.SECRET_KEY = "another installation"
    assert tags.make_tag(1, 2, 0) != tag  # a re-created installation never reuses a tag


def test_filled_of_complete_counts_the_whole_order():
    assert tracker.filled_of(row(status=OrderStatus.COMPLETE, filled_quantity=0)) == 10
