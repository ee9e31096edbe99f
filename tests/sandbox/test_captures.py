"""Every HTTP request the official SDKs were captured sending (shared/aliceblue/captures) is
replayed at the sandbox — same method, path, headers and body, with our credentials, session,
order numbers and a current NIFTY future swapped in — and must be accepted and answered in
the shape the SDK read (same JSON type, at least the keys the SDK's fake server returned)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests

CAPTURES = Path(os.environ.get("ALICEBLUE_CAPTURES", "/work/shared/aliceblue/captures"))
if not CAPTURES.is_dir():
    CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "aliceblue" / "captures"

# calls whose answer differs on purpose: the sandbox refuses BO/CO, has no chart history, and a
# new account holds no delivery holdings yet
EXPECTED_REFUSALS = {
    "place_bracket_order",
    "exit_bracket_order",
    "historical",
    "holdings",
    "holdings_cnc",
}


def _keys_subset(captured: Any, ours: Any, label: str) -> None:
    assert type(ours) is type(captured), f"{label}: {type(ours)} != {type(captured)}"
    if isinstance(captured, dict):
        missing = set(captured) - set(ours)
        assert not missing, f"{label}: missing keys {sorted(missing)}"
        for key in ("result",):
            if isinstance(captured.get(key), list) and captured[key]:
                assert ours[key], f"{label}: empty result"
                _keys_subset(captured[key][0], ours[key][0], f"{label}.{key}")
    elif isinstance(captured, list) and captured and isinstance(captured[0], dict):
        assert ours, f"{label}: empty list"
        _keys_subset(captured[0], ours[0], label)


def _replay(
    sandbox, capture: dict[str, Any], client_id: str, swap: dict[str, str], login: Any
) -> list[str]:
    seen = []
    for call in capture["calls"]:
        for req in call["requests"]:
            if req["kind"] != "http" or req["path"].startswith("/restpy"):
                continue
            label = call["label"]
            body = req.get("body_raw")
            override = login(label, req)
            if override is not None:
                body = override
            elif body is not None:
                for old, new in swap.items():
                    body = body.replace(old, new)
            headers = {}
            for name, value in req["headers"]:
                if name in ("Authorization", "Content-Type", "X-SAS-Version", "User-Agent"):
                    for old, new in swap.items():
                        value = value.replace(old, new)
                    headers[name] = value
            answer = requests.request(
                req["method"], sandbox.url + req["path"], data=body, headers=headers, timeout=10
            )
            if req["path"] == "/open-api/order-notify/websocket":
                assert answer.status_code == 200  # TradeHub's stray POST: any answer will do
                continue
            if label in EXPECTED_REFUSALS:
                seen.append(label)
                continue
            assert answer.status_code == 200, f"{label}: HTTP {answer.status_code} {answer.text}"
            ours = answer.json()
            _keys_subset(req["response_body"], ours, label)
            captured = req["response_body"]
            # map the capture's order numbers to ours as orders are placed
            if isinstance(captured, list) and captured and "NOrdNo" in captured[0]:
                for old, new in zip(captured, ours, strict=True):
                    swap[old["NOrdNo"]] = new["NOrdNo"]
            if isinstance(captured, dict) and isinstance(captured.get("result"), list):
                for old, new in zip(captured["result"], ours["result"], strict=False):
                    if "brokerOrderId" in old and "requestTime" in old and "brokerOrderId" in new:
                        swap.setdefault(old["brokerOrderId"], new["brokerOrderId"])
            seen.append(label)
    return seen


def _nifty_future(sandbox) -> dict[str, Any]:
    return next(
        i
        for i in sandbox.instruments("NFO")
        if i["instrument_type"] == "FUTIDX" and i["trading_symbol"].startswith("NIFTY")
    )


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/aliceblue/captures not present")
def test_every_captured_pya3_request_is_accepted_in_shape(sandbox):
    capture = json.loads((CAPTURES / "pya3-1.0.30.json").read_text())
    acct = (
        sandbox.create_account("AB1234", daily_login=True)
        if not _exists(sandbox, "AB1234")
        else sandbox.account("AB1234")
    )
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    fut = _nifty_future(sandbox)
    creds = capture["fake_credentials"]
    # the capture predates the 2026 NIFTY lot of 65
    swap = {"35001": fut["token"], "NIFTY26JULF": fut["trading_symbol"], '"qty": 75': '"qty": 65'}
    state: dict[str, str] = {}

    def login(label: str, req: dict[str, Any]) -> str | None:
        if req["path"].endswith("customer/getUserSID"):
            data = hashlib.sha256(f"AB1234{acct.api_key}{state['enc']}".encode()).hexdigest()
            return json.dumps({"userId": "AB1234", "userData": data})
        return None

    original = requests.request

    def request(method: str, url: str, **kw: Any) -> requests.Response:
        answer = original(method, url, **kw)
        if url.endswith("customer/getAPIEncpkey"):
            state["enc"] = answer.json()["encKey"]
        if url.endswith("customer/getUserSID"):
            swap[creds["sessionID_served"]] = answer.json()["sessionID"]
        return answer

    requests.request = request  # type: ignore[assignment]
    try:
        seen = _replay(sandbox, capture, "AB1234", swap, login)
    finally:
        requests.request = original  # type: ignore[assignment]
    assert "order_book" in seen and "modify_order" in seen and "cancel_order" in seen
    statuses = {o["order_no"]: o["status"] for o in sandbox.orders("AB1234")}
    assert statuses[swap["260727000000103"]] == "CANCELLED"


def _exists(sandbox, client_id: str) -> bool:
    from sandbox.testing import SandboxError

    try:
        sandbox.account(client_id)
    except SandboxError:
        return False
    return True


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared/aliceblue/captures not present")
def test_every_captured_tradehub_request_is_accepted_in_shape(sandbox):
    capture = json.loads((CAPTURES / "tradehub-1.1.7.json").read_text())
    cid = "AB5678"
    acct = (
        sandbox.create_account(cid, daily_login=True)
        if not _exists(sandbox, cid)
        else sandbox.account(cid)
    )
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    creds = capture["fake_credentials"]
    # the capture reads positions before it places anything: hold one already
    sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1)
    swap = {"AB1234": cid}
    original = requests.request

    def login(label: str, req: dict[str, Any]) -> str | None:
        if req["path"].endswith("vendor/getUserDetails"):
            code = sandbox.auth_code(cid)
            checksum = hashlib.sha256(f"{cid}{code}{acct.api_secret}".encode()).hexdigest()
            return json.dumps({"checkSum": checksum})
        return None

    def request(method: str, url: str, **kw: Any) -> requests.Response:
        answer = original(method, url, **kw)
        if url.endswith("vendor/getUserDetails"):
            swap[creds["userSession_served"]] = answer.json()["userSession"]
        return answer

    requests.request = request  # type: ignore[assignment]
    try:
        seen = _replay(sandbox, capture, cid, swap, login)
    finally:
        requests.request = original  # type: ignore[assignment]
    for label in (
        "place_limit_with_tag",
        "modify_order",
        "order_history",
        "cancel_order",
        "order_book",
        "trade_book",
        "positions",
        "position_sqroff",
        "single_order_margin",
        "ws_order_token",
        "ws_market_data",
    ):
        assert label in seen
    statuses = {o["order_no"]: o["status"] for o in sandbox.orders(cid)}
    assert statuses[swap["260727000000103"]] == "CANCELLED"
