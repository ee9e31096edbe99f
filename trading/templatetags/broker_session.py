"""`{% load broker_session %}{% broker_session account %}`: an account's AliceBlue session state
with Connect/Disconnect buttons, for any page that shows a broker account (the same partial
the session panel uses; its buttons post to the broker-connect views)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import BrokerAccount, User
from trading.brokers import sessions

register = template.Library()


@register.inclusion_tag("trading/broker/session.html#session-state", takes_context=True)
def broker_session(context: dict[str, Any], account: BrokerAccount, next: str = "") -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    oauth = account.login_method == BrokerAccount.LoginMethod.OAUTH
    can_connect = isinstance(user, User) and sessions.may_connect(user, account, oauth=oauth)
    return {
        "account": account,
        "session": sessions.session_view(account),
        "can_connect": can_connect,
        "error": "",
        "next": next or (request.get_full_path() if request is not None else ""),
        "csrf_token": context.get("csrf_token"),
    }
