"""People and their broker accounts: users with roles, masters, followers and their limits,
and AliceBlue credentials encrypted at rest."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts import crypto, validation
from accounts.validation import EXCHANGES, PRODUCT_TYPES
from copytrade.lib.secret import Secret

__all__ = ["EXCHANGES", "PRODUCT_TYPES", "BrokerAccount", "Follower", "Master", "User"]


class User(AbstractUser):
    class Role(models.TextChoices):
        MASTER = "master", "Master"
        FOLLOWER = "follower", "Follower"
        STAFF = "staff", "Staff"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["master", "follower", "staff"]), name="user_role_valid"
            ),
        ]

    @property
    def is_master(self) -> bool:
        return self.role == self.Role.MASTER

    @property
    def is_follower(self) -> bool:
        return self.role == self.Role.FOLLOWER

    @property
    def needs_second_factor(self) -> bool:
        """Masters act on followers' money and staff use the admin: both need TOTP."""
        return self.role == self.Role.MASTER or self.is_staff or self.is_superuser


class Master(models.Model):
    """A master trader: the account whose orders are copied, and the owner of followers."""

    class CopyMode(models.TextChoices):
        MIRROR_ORDERS = "mirror", "Mirror orders (same type, price and trigger)"
        COPY_FILLS = "fills", "Copy fills (a market order per filled quantity)"

    class ReconcilePolicy(models.TextChoices):
        REPORT = "report", "Report drift only"
        CLOSE = "close", "Close what the master no longer holds"

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="master")
    copy_mode = models.CharField(
        max_length=8, choices=CopyMode.choices, default=CopyMode.MIRROR_ORDERS
    )
    reconcile_policy = models.CharField(
        max_length=8, choices=ReconcilePolicy.choices, default=ReconcilePolicy.REPORT
    )
    # The kill switch: pauses every entry for every follower of this master (exits still go).
    entries_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(copy_mode__in=["mirror", "fills"]), name="master_copy_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(reconcile_policy__in=["report", "close"]),
                name="master_reconcile_policy_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.user.username


class Follower(models.Model):
    """A follower account: copies its master's orders within its own risk limits."""

    class PausedBy(models.TextChoices):
        NOBODY = "", "Not paused"
        MASTER = "master", "Paused by the master"
        FOLLOWER = "follower", "Paused by the follower"

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="followers")
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="follower")
    display_name = models.CharField(
        max_length=validation.DISPLAY_NAME_MAX_LENGTH, validators=[validation.validate_display_name]
    )
    lot_multiplier = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[validation.validate_lot_multiplier]
    )
    max_quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(validation.MAX_QUANTITY_LIMIT)]
    )
    max_order_value = models.DecimalField(
        max_digits=16, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    max_daily_loss = models.DecimalField(
        max_digits=16, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    # ["NSE:INFY", "NFO:NIFTY"]: underlying symbols with exchange; empty means all.
    allowed_instruments = models.JSONField(
        default=list, blank=True, validators=[validation.validate_instruments]
    )
    # A subset of MIS, CNC, NRML (at least one).
    allowed_product_types = models.JSONField(
        default=list, validators=[validation.validate_product_types]
    )
    is_paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Who paused: a follower may resume only its own pause, never its master's.
    paused_by = models.CharField(
        max_length=8, choices=PausedBy.choices, blank=True, default=PausedBy.NOBODY
    )
    is_active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Deactivation asked with "flatten": the copier is sending exits for its open copied
    # positions; it is deactivated once they settled (trading.engine.lifecycle.deactivation).
    # Until then it is active for those exits only: no master event is copied to it.
    deactivating_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(lot_multiplier__gt=Decimal("0")), name="follower_multiplier_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_quantity__gte=1), name="follower_max_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_order_value__gt=Decimal("0")),
                name="follower_max_order_value_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_daily_loss__gt=Decimal("0")),
                name="follower_max_daily_loss_positive",
            ),
            # Not paused → nobody paused it. A pause that does not say who (paused_by "")
            # counts as the master's: only the master may lift it.
            models.CheckConstraint(
                condition=Q(is_paused=False, paused_by="")
                | Q(is_paused=True, paused_by__in=["", "master", "follower"]),
                name="follower_paused_by_consistent",
            ),
        ]
        indexes = [
            # followers_of(master): the master's follower list and the copier's fan-out.
            models.Index(fields=["master", "is_active"], name="follower_master_active"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def accepts_entries(self) -> bool:
        return self.is_active and not self.is_paused

    @property
    def paused_by_itself(self) -> bool:
        """Paused by the follower itself (which it may lift); any other pause is the master's."""
        return self.is_paused and self.paused_by == self.PausedBy.FOLLOWER


class BrokerAccount(models.Model):
    """An AliceBlue account (a master's own, or a follower's) and its encrypted credentials.

    Secrets are stored as Fernet tokens (MultiFernet over settings.CREDENTIAL_KEYS) and are
    only ever read back through `api_key()`, `app_code()` and `api_secret()`, which return
    `Secret` wrappers. The `*_hint` columns keep the last four characters for display.
    """

    class LoginMethod(models.TextChoices):
        API_KEY = "api_key", "API key (ANT API)"
        OAUTH = "oauth", "AliceBlue login (Open API vendor app)"

    owner = models.OneToOneField(User, on_delete=models.PROTECT, related_name="broker_account")
    # The master that manages this account: the master itself for its own account.
    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="broker_accounts")
    client_id = models.CharField(max_length=32, validators=[validation.validate_client_id])
    login_method = models.CharField(
        max_length=8, choices=LoginMethod.choices, default=LoginMethod.API_KEY
    )
    api_key_encrypted = models.TextField(blank=True, default="")
    app_code_encrypted = models.TextField(blank=True, default="")
    api_secret_encrypted = models.TextField(blank=True, default="")
    api_key_hint = models.CharField(max_length=4, blank=True, default="")
    app_code_hint = models.CharField(max_length=4, blank=True, default="")
    api_secret_hint = models.CharField(max_length=4, blank=True, default="")
    credentials_wiped_at = models.DateTimeField(null=True, blank=True)
    # False once its follower is deactivated: the row stays for history, its secrets are gone
    # and the client id may be registered again.
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["master", "client_id"],
                condition=Q(active=True),
                name="broker_account_client_unique_per_master",
            ),
            models.CheckConstraint(
                condition=Q(login_method__in=["api_key", "oauth"]),
                name="broker_account_login_method_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.client_id

    # --- secrets: write ------------------------------------------------------------------------
    def set_api_key(self, value: str) -> None:
        self.api_key_encrypted, self.api_key_hint = crypto.seal(value)

    def set_app_code(self, value: str) -> None:
        self.app_code_encrypted, self.app_code_hint = crypto.seal(value)

    def set_api_secret(self, value: str) -> None:
        self.api_secret_encrypted, self.api_secret_hint = crypto.seal(value)

    def wipe_credentials(self) -> None:
        for name in ("api_key", "app_code", "api_secret"):
            setattr(self, f"{name}_encrypted", "")
            setattr(self, f"{name}_hint", "")
        self.credentials_wiped_at = timezone.now()

    # --- secrets: read (only as Secret wrappers) -----------------------------------------------
    def api_key(self) -> Secret | None:
        return crypto.open_sealed(self.api_key_encrypted)

    def app_code(self) -> Secret | None:
        return crypto.open_sealed(self.app_code_encrypted)

    def api_secret(self) -> Secret | None:
        return crypto.open_sealed(self.api_secret_encrypted)

    @property
    def uses_own_vendor_app(self) -> bool:
        return bool(self.app_code_encrypted and self.api_secret_encrypted)

    # --- what a page may show: never the secret, at most its last four characters ------------
    @staticmethod
    def _shown(encrypted: str, hint: str) -> str:
        if not encrypted:
            return "not set"
        return f"stored, ends in {hint}" if hint else "stored"

    @property
    def api_key_shown(self) -> str:
        return self._shown(self.api_key_encrypted, self.api_key_hint)

    @property
    def app_code_shown(self) -> str:
        return self._shown(self.app_code_encrypted, self.app_code_hint)

    @property
    def api_secret_shown(self) -> str:
        return self._shown(self.api_secret_encrypted, self.api_secret_hint)
