"""Manual copy trades: the page (masters only), the service's validation, and the copy itself
reaching every active follower with its own quantity — against the sandbox."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.conftest import login
from trading import services
from trading.models import AuditEvent, CopyTrade, MasterOrder, MasterOrderEvent

URL = "/manual/"
Status = CopyTrade.Status
FORM = {
    "exchange": "NSE",
    "symbol": "INFY-EQ",
    "side": "BUY",
    "quantity": "10",
    "order_type": "MARKET",
    "product": "MIS",
    "price": "",
    "trigger_price": "",
}


def test_url_name():
    assert reverse("trading:manual_copy") == URL


def test_manual_copy_reaches_every_active_follower_with_its_own_quantity(make_world):
    world = make_world(
        {"lot_multiplier": Decimal("1")},
        {"lot_multiplier": Decimal("2.5")},
        {"lot_multiplier": Decimal("1"), "is_active": False},
    )
    one, two_and_half, inactive = world.followers
    world.tick()
    order = services.create_manual_copy(
        master=world.master,
        actor=world.master.user,
        exchange="NSE",
        symbol="INFY-EQ",
        side="BUY",
        quantity=10,
        order_type="MARKET",
        product="MIS",
    )
    assert order.manual and order.requested_by == world.master.user
    assert services.manual_copy_trades(order).count() == 0  # the copier decides
    world.tick()
    assert [o["quantity"] for o in world.orders_of(one)] == [10]
    assert [o["quantity"] for o in world.orders_of(two_and_half)] == [25]
    assert world.orders_of(inactive) == []
    assert world.sbx.orders(world.master_client) == []  # nothing in the master's account
    copies = list(services.manual_copy_trades(order))
    assert {c.follower_id for c in copies} == {one.pk, two_and_half.pk}
    assert all(c.manual and c.status == Status.SUCCESS for c in copies)
    assert all(c.value_price_source == "ltp" for c in copies)  # a quote valued the market order
    event = MasterOrderEvent.objects.get(master_order=order)
    assert event.source == "manual" and event.outcome == "copied"
    # a manual exit closes what the manual entry opened
    services.create_manual_copy(
        master=world.master,
        actor=world.master.user,
        exchange="NSE",
        symbol="INFY",
        side="SELL",
        quantity=10,
        order_type="MARKET",
        product="MIS",
    )
    world.tick(2)
    assert world.net_of(one, "INFY-EQ") == 0 and world.net_of(two_and_half, "INFY-EQ") == 0
    assert AuditEvent.objects.filter(action="copy_trade.manual").count() == 2


@pytest.mark.django_db
def test_service_validates_every_field(master_x):
    load_instrument_rows()
    with pytest.raises(ValidationError) as caught:
        services.create_manual_copy(
            master=master_x,
            actor=master_x.user,
            exchange="NSE",
            symbol="NOPE",
            side="HOLD",
            quantity="1.5",
            order_type="LIMIT",
            product="XYZ",
            price="abc",
        )
    errors = caught.value.message_dict
    assert errors["side"] == [services.BAD_SIDE]
    assert errors["quantity"] == [services.BAD_QUANTITY]
    assert errors["product"] == [services.BAD_PRODUCT]
    assert errors["symbol"] == [services.UNKNOWN_SYMBOL.format(symbol="NOPE", exchange="NSE")]
    assert services.BAD_NUMBER in errors["price"]
    with pytest.raises(ValidationError) as caught:
        services.create_manual_copy(
            master=master_x,
            actor=master_x.user,
            exchange="NFO",
            symbol="NIFTYTEST",
            side="BUY",
            quantity=100,
            order_type="SL",
            product="NRML",
            price="100.03",
        )
    errors = caught.value.message_dict
    assert errors["quantity"] == [services.NOT_WHOLE_LOTS.format(lot=65, example=65)]
    assert errors["trigger_price"] == [services.TRIGGER_REQUIRED.format(order_type="SL")]
    assert errors["price"] == [services.NOT_ON_TICK.format(what="Price", tick=Decimal("0.05"))]
    assert MasterOrder.objects.count() == 0


def load_instrument_rows():
    from datetime import date

    from trading.models import Instrument

    Instrument.objects.create(
        exchange="NSE", token="1594", trading_symbol="INFY-EQ", symbol="INFY",
        lot_size=1, tick_size=Decimal("0.05"), refreshed_on=date.today(),
    )  # fmt: skip
    Instrument.objects.create(
        exchange="NFO", token="9", trading_symbol="NIFTYTEST", symbol="NIFTY",
        lot_size=65, tick_size=Decimal("0.05"), freeze_quantity=1800, refreshed_on=date.today(),
    )  # fmt: skip


@pytest.mark.django_db
def test_page_get_shows_the_form_and_only_own_manual_copies(client_x, master_y):
    load_instrument_rows()
    services.create_manual_copy(
        master=master_y, actor=master_y.user, exchange="NSE", symbol="INFY-EQ", side="SELL",
        quantity=7, order_type="MARKET", product="MIS",
    )  # fmt: skip
    response = client_x.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="symbol"' in body and "Copy to followers" in body
    assert "SELL 7" not in body  # the stranger's manual copy is not shown


@pytest.mark.django_db
def test_page_post_creates_and_redirects(client_x, master_x):
    load_instrument_rows()
    response = client_x.post(URL, FORM)
    assert response.status_code == 302 and response["Location"] == URL
    order = MasterOrder.objects.get(master=master_x)
    assert (order.manual, order.side, order.quantity) == (True, "BUY", 10)
    page = client_x.get(URL).content.decode()
    assert "BUY 10 NSE:INFY-EQ" in page and "The copier is deciding" in page
    assert 'hx-trigger="every 2s"' in page  # polls while the copier decides


@pytest.mark.django_db
def test_page_post_invalid_input_shows_errors_next_to_fields(client_x):
    load_instrument_rows()
    response = client_x.post(URL, {**FORM, "symbol": "NOPE", "order_type": "LIMIT"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "No instrument NOPE on NSE" in body
    assert "A LIMIT order needs a price above 0." in body
    assert MasterOrder.objects.count() == 0
    response = client_x.post(URL, {**FORM, "quantity": "0"})
    assert response.status_code == 400 and MasterOrder.objects.count() == 0


@pytest.mark.django_db
def test_page_htmx_renders_the_recent_list_only(client_x):
    response = client_x.get(URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="manual-recent"' in body and "<form" not in body
    assert "HX-Request" in response["Vary"]


@pytest.mark.django_db
def test_page_refuses_anonymous_followers_and_wrong_methods(client, follower_a, client_x):
    from django.test import Client

    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/accounts/login" in anonymous["Location"]
    follower_client = login(Client(), follower_a.user)
    assert follower_client.get(URL).status_code == 403
    assert client_x.put(URL).status_code == 405
