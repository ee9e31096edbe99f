"""Reads for people and their accounts. Each selector carries its access rule: a master's
selectors never return another master's followers."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import BrokerAccount, Follower, Master, User


def master_of(user: User) -> Master | None:
    if not user.is_authenticated or user.role != User.Role.MASTER:
        return None
    return Master.objects.filter(user=user).first()


def follower_of(user: User) -> Follower | None:
    if not user.is_authenticated or user.role != User.Role.FOLLOWER:
        return None
    return Follower.objects.select_related("master__user").filter(user=user).first()


def followers_for_master(master: Master) -> QuerySet[Follower]:
    """The master's own followers (active first, then by name), with their broker accounts."""
    return (
        Follower.objects.filter(master=master)
        .select_related("user", "user__broker_account", "master__user")
        .order_by("-is_active", "display_name", "pk")
    )


def active_followers_for_master(master: Master) -> QuerySet[Follower]:
    return followers_for_master(master).filter(is_active=True)


def broker_account_of(user: User) -> BrokerAccount | None:
    return BrokerAccount.objects.filter(owner=user).select_related("master").first()


def client_id_taken(*, master: Master, client_id: str, exclude_pk: int | None = None) -> bool:
    """Is this client id already an active account under this master (its own or a
    follower's)?"""
    accounts = BrokerAccount.objects.filter(master=master, client_id=client_id, active=True)
    if exclude_pk is not None:
        accounts = accounts.exclude(pk=exclude_pk)
    return accounts.exists()


def open_copied_positions(follower: Follower) -> list[str]:
    """Open positions the copier holds for this follower (from the position ledger), e.g.
    "NFO:NIFTY24DECFUT NRML 50". Shown before deactivation: they stay in the account."""
    from trading.models import PositionLedger

    rows = (
        PositionLedger.objects.filter(follower=follower, detached=False)
        .exclude(net_quantity=0)
        .order_by("exchange", "trading_symbol", "product")
    )
    return [f"{r.exchange}:{r.trading_symbol} {r.product} {r.net_quantity:+d}" for r in rows]
