"""Test data: people and accounts in the states the tests need."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth.hashers import make_password

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
