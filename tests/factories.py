"""Test data: people and accounts in the states the tests need."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from accounts.models import BrokerAccount, Follower, Master, User

TEST_PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.LazyFunction(lambda: make_password(TEST_PASSWORD))
    role = User.Role.STAFF


class MasterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Master

    user = factory.SubFactory(
        UserFactory, username=factory.Sequence(lambda n: f"master{n}"), role=User.Role.MASTER
    )


class FollowerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Follower

    master = factory.SubFactory(MasterFactory)
    user = factory.SubFactory(
        UserFactory, username=factory.Sequence(lambda n: f"fl_{n:08d}"), role=User.Role.FOLLOWER
    )
    display_name = factory.Sequence(lambda n: f"Follower {n}")
    lot_multiplier = Decimal("1")
    max_quantity = 1000
    max_order_value = Decimal("1000000")
    max_daily_loss = Decimal("50000")
    allowed_instruments: list[str] = []
    allowed_product_types = factory.LazyFunction(lambda: ["MIS", "CNC", "NRML"])


class BrokerAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrokerAccount
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    master = factory.SubFactory(MasterFactory)
    client_id = factory.Sequence(lambda n: f"AB{n:05d}")
    login_method = BrokerAccount.LoginMethod.API_KEY

    @factory.post_generation
    def api_key(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        self.set_api_key(extracted or f"test-api-key-{self.client_id}-0123456789")
        if create:
            self.save()


# --- Trading records (master orders, their events, copy trades) ------------------------------
class MasterOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "trading.MasterOrder"

    master = factory.SubFactory(MasterFactory)
    broker_order_id = factory.Sequence(lambda n: f"24{n:010d}")
    exchange = "NSE"
    token = "1594"
    trading_symbol = "INFY-EQ"
    side = "BUY"
    quantity = 10
    order_type = "LIMIT"
    product = "MIS"
    price = Decimal("1500.50")
    broker_status = "open"
    first_seen_at = factory.LazyFunction(timezone.now)
    accepted_at = factory.LazyAttribute(lambda o: o.first_seen_at)


class MasterOrderEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "trading.MasterOrderEvent"

    master_order = factory.SubFactory(MasterOrderFactory)
    kind = "accepted"
    dedupe_key = factory.Sequence(lambda n: f"e{n}")
    source = "push"
    received_at = factory.LazyFunction(timezone.now)
    broker_time = factory.LazyAttribute(lambda o: o.received_at)
    quantity = factory.LazyAttribute(lambda o: o.master_order.quantity)
    price = factory.LazyAttribute(lambda o: o.master_order.price)
    broker_status = "open"


class CopyTradeFactory(factory.django.DjangoModelFactory):
    """A follower's copy of one master order event (creates the order and event unless given).

    Pass `decided_at=` to place it in time: `decided_at` is auto_now_add on the model, so the
    factory writes it with an UPDATE after the insert.
    """

    class Meta:
        model = "trading.CopyTrade"
        skip_postgeneration_save = True

    follower = factory.SubFactory(FollowerFactory)
    master = factory.LazyAttribute(lambda o: o.follower.master)
    event = factory.SubFactory(
        MasterOrderEventFactory,
        master_order__master=factory.SelfAttribute("...master"),
        master_order__trading_symbol=factory.SelfAttribute("...trading_symbol"),
        master_order__side=factory.SelfAttribute("...side"),
        master_order__quantity=factory.SelfAttribute("...master_quantity"),
    )
    leg = 0
    tag = factory.Sequence(lambda n: f"ct{n:012d}")
    exchange = "NSE"
    token = "1594"
    trading_symbol = "INFY-EQ"
    side = "BUY"
    order_type = "LIMIT"
    product = "MIS"
    price = Decimal("1500.50")
    master_quantity = 10
    lot_multiplier = factory.LazyAttribute(lambda o: o.follower.lot_multiplier)
    quantity = factory.LazyAttribute(
        lambda o: max(1, int(o.master_quantity * Decimal(o.lot_multiplier)))
    )
    status = "PENDING"

    @factory.post_generation
    def decided_at(self, create: bool, extracted: datetime | None, **kwargs: object) -> None:
        if create and extracted is not None:
            type(self).objects.filter(pk=self.pk).update(decided_at=extracted)
            self.decided_at = extracted


def modified_then_cancelled(follower: Follower, *, status: str = "SUCCESS", **fields: object):
    """One copied order the master modified and then cancelled, as the lifecycle mirror records
    it: the PLACE row and a MODIFY and a CANCEL row linked to it, each for its own master
    order event (``modified``, ``cancelled``). Returns (place, modify, cancel)."""
    place = CopyTradeFactory(follower=follower, status=status, **fields)
    order = place.event.master_order
    changes = []
    for action, kind in (("modify", "modified"), ("cancel", "cancelled")):
        event = MasterOrderEventFactory(master_order=order, kind=kind)
        changes.append(
            CopyTradeFactory(
                follower=follower, event=event, action=action, linked=place, status=status
            )
        )
    return place, changes[0], changes[1]
