"""refresh_instruments against the sandbox's contract-master CSVs over HTTP, and the default
client using the stored MCX board lots."""

from __future__ import annotations

from decimal import Decimal

from django.core.management import call_command

from tests.brokers.conftest import login
from trading.brokers import instruments
from trading.brokers.aliceblue.client import AliceBlueClient
from trading.brokers.aliceblue.types import Generation, OrderRequest, OrderType, Product, Side
from trading.models import Instrument


def test_refresh_instruments_from_the_sandbox(sbx, db):
    call_command("refresh_instruments")
    assert Instrument.objects.filter(exchange="NSE", instrument_type="0").count() >= 30
    for exchange in ("NSE", "BSE", "NFO", "MCX"):
        expected = {str(i["token"]): i for i in sbx.instruments(exchange)}
        stored = {i.token: i for i in Instrument.objects.filter(exchange=exchange)}
        assert set(stored) == set(expected), exchange
        for token, row in expected.items():
            inst = stored[token]
            assert inst.trading_symbol == row["trading_symbol"]
            assert inst.tick_size == Decimal(row["tick_size"])
            board = int(row.get("board_lot") or 1)
            if exchange == "MCX":
                assert inst.lot_size == board and inst.board_lot_quantity == board
                assert inst.freeze_quantity == int(row["freeze_qty"]) * board
            else:
                assert inst.lot_size == int(row["lot_size"])
    nifty = instruments.for_underlying("NFO", "NIFTY").filter(instrument_type="FUTIDX").first()
    assert nifty is not None and nifty.freeze_quantity == 1800


def test_the_default_client_converts_mcx_lots_from_the_instrument_table(sbx, db):
    call_command("refresh_instruments", "--exchange", "MCX")
    instruments.forget_lot_table()
    account = sbx.create_account(funds="5000000", daily_login=True)
    crude = Instrument.objects.filter(exchange="MCX", symbol="CRUDEOIL").order_by("expiry")[0]
    session = login(sbx, Generation.OPEN_API, account.client_id)
    with AliceBlueClient(session, budget=None, on_session_expired=None) as broker:
        ack = broker.place_order(
            OrderRequest(
                exchange="MCX",
                token=crude.token,
                trading_symbol=crude.trading_symbol,
                side=Side.BUY,
                quantity=crude.lot_size,  # one lot, in units
                order_type=OrderType.MARKET,
                product=Product.NRML,
            )
        )
        row = next(r for r in broker.order_book() if r.broker_order_id == ack.broker_order_id)
    assert row.quantity == crude.lot_size
    (seen,) = [o for o in sbx.orders(account.client_id) if o["order_no"] == ack.broker_order_id]
    assert seen
