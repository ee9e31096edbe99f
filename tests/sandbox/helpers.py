"""Small HTTP helpers for driving the sandbox like a client would (real sockets)."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from sandbox.testing import AccountInfo, SandboxServer

G2 = "/rest/AliceBlueAPIService/api/"
G3 = "/open-api/od/v1/"
TIMEOUT = 10


def g2_login(sbx: SandboxServer, acct: AccountInfo) -> dict[str, str]:
    """getAPIEncpkey → getUserSID; returns the G2 headers."""
    enc = requests.post(
        sbx.url + G2 + "customer/getAPIEncpkey", json={"userId": acct.client_id}, timeout=TIMEOUT
    ).json()
    assert enc["stat"] == "Ok", enc
    user_data = hashlib.sha256(f"{acct.client_id}{acct.api_key}{enc['encKey']}".encode())
    sid = requests.post(
        sbx.url + G2 + "customer/getUserSID",
        json={"userId": acct.client_id, "userData": user_data.hexdigest()},
        timeout=TIMEOUT,
    ).json()
    assert sid["stat"] == "Ok", sid
    return {"Authorization": f"Bearer {acct.client_id} {sid['sessionID']}"}


def g3_session(sbx: SandboxServer, acct: AccountInfo) -> str:
    code = sbx.auth_code(acct.client_id)
    checksum = hashlib.sha256(f"{acct.client_id}{code}{acct.api_secret}".encode()).hexdigest()
    body = requests.post(
        sbx.url + G3 + "vendor/getUserDetails", json={"checkSum": checksum}, timeout=TIMEOUT
    ).json()
    assert body["stat"] == "Ok", body
    return str(body["userSession"])


def g3_login(sbx: SandboxServer, acct: AccountInfo) -> dict[str, str]:
    return {"Authorization": f"Bearer {g3_session(sbx, acct)}"}


def g3(sbx: SandboxServer, method: str, path: str, headers: dict[str, str], body: Any = None):
    response = requests.request(
        method, sbx.url + G3 + path, headers=headers, json=body, timeout=TIMEOUT
    )
    return response


def g2(sbx: SandboxServer, method: str, path: str, headers: dict[str, str], body: Any = None):
    return requests.request(
        method, sbx.url + G2 + path, headers=headers, json=body, timeout=TIMEOUT
    )


def g3_order(**overrides: Any) -> dict[str, Any]:
    """A place-order element exactly as TradeHub 1.1.7 sends it (every key present)."""
    order = {
        "instrumentId": "1594",
        "exchange": "NSE",
        "transactionType": "BUY",
        "quantity": 1,
        "orderComplexity": "REGULAR",
        "product": "INTRADAY",
        "orderType": "MARKET",
        "price": "",
        "slTriggerPrice": "",
        "slLegPrice": "",
        "trailingSlAmount": "",
        "targetLegPrice": "",
        "validity": "DAY",
        "disclosedQuantity": "",
        "marketProtectionPercent": "",
        "apiOrderSource": "",
        "algoId": "",
        "orderTag": "",
    }
    order.update(overrides)
    return order


def g2_order(**overrides: Any) -> dict[str, Any]:
    """A place-order leg exactly as pya3 1.0.30 sends it."""
    order = {
        "complexty": "regular",
        "discqty": 0,
        "exch": "NSE",
        "pCode": "MIS",
        "price": 0.0,
        "prctyp": "MKT",
        "qty": 1,
        "ret": "DAY",
        "symbol_id": "1594",
        "trading_symbol": "INFY-EQ",
        "transtype": "BUY",
        "stopLoss": None,
        "target": None,
        "trailing_stop_loss": None,
        "trigPrice": None,
        "orderTag": None,
    }
    order.update(overrides)
    return order
