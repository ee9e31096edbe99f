"""Writes for people and their accounts. Views, admin actions, commands and the JSON API all call
these. Each one takes keyword-only arguments, validates everything before it writes, runs in one
transaction and leaves an audit row beside its change: nothing is ever half-saved.

Bad input raises `django.core.exceptions.ValidationError` whose `message_dict` is keyed by the
same names as the arguments (and the form fields), so a page shows each message next to its
field and the API returns it as JSON. A caller that is not allowed to act raises
`PermissionDenied`. Messages are the module constants below.

Secrets (API keys, app codes, API secrets, passwords) never appear in an error, an audit row or a
log line; a generated password is returned once, as a `Secret`, and only its hash is stored.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify

from accounts import crypto, selectors, validation
from accounts.models import BrokerAccount, Follower, Master, User
from copytrade.lib.secret import Secret
from trading.audit import record_audit

# --- Messages -----------------------------------------------------------------------------------
CLIENT_ID_TAKEN = (
    "This AliceBlue client id is already registered under your account (as yours or as one "
    "of your followers')."
)
LOGIN_METHOD_UNKNOWN = "Choose how this account logs in: API key or AliceBlue login (OAuth)."
API_KEY_REQUIRED = "Enter the API key: this account logs in with an API key."
OWN_APP_INCOMPLETE = (
    "Enter both the app code and the API secret of your own vendor app, or neither."
)
OWN_APP_REMOVE_CONFLICT = "Either remove your own vendor app or enter a new one, not both."
DISPLAY_NAME_REQUIRED = "Enter a name for this follower."
FOLLOWER_INACTIVE = "This follower has been deactivated; its settings can no longer change."
FOLLOWER_ALREADY_DEACTIVATED = "This follower is already deactivated."
OPEN_POSITIONS_CHOICE_REQUIRED = (
    "This follower holds open copied positions: choose to flatten them now or to detach them."
)
OPEN_POSITIONS_UNKNOWN = "Choose flatten or detach."
FLATTEN_IN_PROGRESS = (
    "Exit orders for this follower are still on their way: wait for them to settle, or detach "
    "what is left."
)
ORDER_BEING_SENT = "An order for this follower is being sent right now: try again in a moment."
CANNOT_RESUME_MASTERS_PAUSE = "Your master paused copying for you; only your master can resume it."
NOT_YOUR_FOLLOWER = "Only this follower's master may do that."
NOT_THIS_FOLLOWER = "Only this follower or its master may do that."
USERNAMES_EXHAUSTED = "Could not find a free username; try a different display name."

# Letters and digits without the look-alikes (I, l, 1, O, o, 0): a person may have to type it.
_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "Il1Oo0")
USERNAME_BASE_MAX_LENGTH = 24

ErrorDict = dict[str, list[str]]


def generate_password(length: int = 20) -> str:
    """A strong random password (56 symbols: about 116 bits for 20 characters)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


# --- Small helpers ------------------------------------------------------------------------------
def _add(errors: ErrorDict, name: str, exc_or_message: ValidationError | str) -> None:
    messages = (
        exc_or_message.messages if isinstance(exc_or_message, ValidationError) else [exc_or_message]
    )
    bucket = errors.setdefault(name, [])
    bucket.extend(m for m in messages if m not in bucket)


def _merge(errors: ErrorDict, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            for message in messages:
                _add(errors, name, message)
    else:
        for message in exc.messages:
            _add(errors, NON_FIELD_ERRORS, message)


def _fmt(value: Any) -> Any:
    """Audit-friendly: Decimals as plain strings without trailing zeros."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return value


def _limits_snapshot(follower: Follower) -> dict[str, Any]:
    return {
        "display_name": follower.display_name,
        "lot_multiplier": _fmt(follower.lot_multiplier),
        "max_quantity": follower.max_quantity,
        "max_order_value": _fmt(follower.max_order_value),
        "max_daily_loss": _fmt(follower.max_daily_loss),
        "allowed_instruments": list(follower.allowed_instruments),
        "allowed_product_types": list(follower.allowed_product_types),
    }


def _stored(encrypted: str, hint: str) -> str:
    if not encrypted:
        return "not set"
    return f"****{hint}"


def credential_snapshot(account: BrokerAccount) -> dict[str, Any]:
    """What the audit trail may say about an account's credentials: never more than the last
    four characters of a secret."""
    return {
        "client_id": account.client_id,
        "login_method": account.login_method,
        "api_key": _stored(account.api_key_encrypted, account.api_key_hint),
        "app_code": _stored(account.app_code_encrypted, account.app_code_hint),
        "api_secret": _stored(account.api_secret_encrypted, account.api_secret_hint),
    }


def _changed(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _master_user_of(follower: Follower) -> User:
    return follower.master.user


def _require_master_of(follower: Follower, actor: User) -> None:
    if actor.pk != _master_user_of(follower).pk:
        raise PermissionDenied(NOT_YOUR_FOLLOWER)


# --- Masters ------------------------------------------------------------------------------------
def create_master(
    *, username: str, email: str = "", actor: User | None = None, actor_repr: str = ""
) -> tuple[Master, str]:
    """Create a master account with a generated password; return it with the password."""
    password = generate_password()
    with transaction.atomic():
        user = User(username=username, email=email, role=User.Role.MASTER)
        user.set_password(password)
        user.full_clean()
        user.save()
        master = Master.objects.create(user=user)
        record_audit(
            actor=actor,
            actor_repr=actor_repr,
            action="master.create",
            target=master,
            master=master,
            after={"username": username, "email": email},
        )
    return master, password


def set_entries_paused(
    *, master: Master, paused: bool, actor: User, request: HttpRequest | None = None
) -> bool:
    """The kill switch: pause (or allow again) every entry for every follower of this master.
    Exits are never blocked. Returns True if the state changed."""
    if actor.pk != master.user_id:
        raise PermissionDenied("Only the master may use its kill switch.")
    with transaction.atomic():
        row = Master.objects.select_for_update().get(pk=master.pk)
        if row.entries_paused == paused:
            return False
        row.entries_paused = paused
        row.save(update_fields=["entries_paused"])
        record_audit(
            actor=actor,
            action="master.kill_switch.on" if paused else "master.kill_switch.off",
            target=row,
            master=row,
            before={"entries_paused": not paused},
            after={"entries_paused": paused},
            request=request,
        )
    master.entries_paused = paused
    return True


# --- Broker credentials -------------------------------------------------------------------------
@dataclass
class _CredentialChange:
    errors: ErrorDict = field(default_factory=dict)
    client_id_changed: bool = False


def _apply_credentials(
    account: BrokerAccount,
    *,
    master: Master,
    client_id: str,
    login_method: str,
    api_key: str,
    app_code: str,
    api_secret: str,
    remove_own_app: bool,
) -> _CredentialChange:
    """Validate and apply credentials to an (unsaved) account. Blank secrets keep what is
    stored; the result lists every error by field. Nothing is written here."""
    change = _CredentialChange()
    errors = change.errors
    client_id = validation.normalise_client_id(client_id)
    api_key = validation.normalise_secret(api_key)
    app_code = validation.normalise_secret(app_code)
    api_secret = validation.normalise_secret(api_secret)

    try:
        validation.validate_client_id(client_id)
    except ValidationError as exc:
        _add(errors, "client_id", exc)
    else:
        if selectors.client_id_taken(master=master, client_id=client_id, exclude_pk=account.pk):
            _add(errors, "client_id", CLIENT_ID_TAKEN)
    if login_method not in BrokerAccount.LoginMethod.values:
        _add(errors, "login_method", LOGIN_METHOD_UNKNOWN)

    for name, value, check in (
        ("api_key", api_key, validation.validate_api_key),
        ("app_code", app_code, validation.validate_app_code),
        ("api_secret", api_secret, validation.validate_api_secret),
    ):
        if value:
            try:
                check(value)
            except ValidationError as exc:
                _add(errors, name, exc)

    if login_method == BrokerAccount.LoginMethod.API_KEY and not (
        api_key or account.api_key_encrypted
    ):
        _add(errors, "api_key", API_KEY_REQUIRED)

    if remove_own_app and (app_code or api_secret):
        _add(errors, "app_code", OWN_APP_REMOVE_CONFLICT)
    elif not remove_own_app:
        will_have_code = bool(app_code or account.app_code_encrypted)
        will_have_secret = bool(api_secret or account.api_secret_encrypted)
        if will_have_code != will_have_secret:
            _add(errors, "app_code" if not will_have_code else "api_secret", OWN_APP_INCOMPLETE)

    if errors:
        return change
    change.client_id_changed = bool(account.pk) and account.client_id != client_id
    account.client_id = client_id
    account.login_method = login_method
    if api_key:
        account.set_api_key(api_key)
    if remove_own_app:
        account.set_app_code("")
        account.set_api_secret("")
    else:
        if app_code:
            account.set_app_code(app_code)
        if api_secret:
            account.set_api_secret(api_secret)
    return change


def _forget_broker_session(account: BrokerAccount) -> None:
    """The stored session belonged to other credentials: wipe its token; the account needs a
    fresh login."""
    from trading.models import BrokerSession

    BrokerSession.objects.filter(account=account).update(
        session_token_encrypted="",
        state=BrokerSession.State.NEEDS_LOGIN,
        trading_day=None,
        obtained_at=None,
    )


def _save_credentials(
    *,
    account: BrokerAccount,
    master: Master,
    actor: User,
    action: str,
    target: Any,
    request: HttpRequest | None,
    client_id: str,
    login_method: str,
    api_key: str,
    app_code: str,
    api_secret: str,
    remove_own_app: bool,
) -> BrokerAccount:
    before = credential_snapshot(account) if account.pk else {}
    change = _apply_credentials(
        account,
        master=master,
        client_id=client_id,
        login_method=login_method,
        api_key=api_key,
        app_code=app_code,
        api_secret=api_secret,
        remove_own_app=remove_own_app,
    )
    if change.errors:
        raise ValidationError(change.errors)
    try:
        account.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    after = credential_snapshot(account)
    old, new = _changed(before, after)
    if not new and account.pk:
        return account
    with transaction.atomic():
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError:
            raise ValidationError({"client_id": [CLIENT_ID_TAKEN]}) from None
        if change.client_id_changed:
            _forget_broker_session(account)
        record_audit(
            actor=actor,
            action=action,
            target=target,
            master=master,
            before=old,
            after=new,
            request=request,
        )
    return account


def save_master_broker_account(
    *,
    master: Master,
    actor: User,
    client_id: str,
    login_method: str,
    api_key: str = "",
    app_code: str = "",
    api_secret: str = "",
    remove_own_app: bool = False,
    request: HttpRequest | None = None,
) -> BrokerAccount:
    """Create or change the master's own AliceBlue account. Blank secrets keep the stored
    ones (they are never shown back)."""
    if actor.pk != master.user_id:
        raise PermissionDenied("Only the master may change its own AliceBlue account.")
    account = BrokerAccount.objects.filter(owner=master.user).first() or BrokerAccount(
        owner=master.user, master=master
    )
    return _save_credentials(
        account=account,
        master=master,
        actor=actor,
        action="broker_account.credentials" if account.pk else "broker_account.create",
        target=account if account.pk else master,
        request=request,
        client_id=client_id,
        login_method=login_method,
        api_key=api_key,
        app_code=app_code,
        api_secret=api_secret,
        remove_own_app=remove_own_app,
    )


def change_follower_credentials(
    *,
    follower: Follower,
    actor: User,
    client_id: str,
    login_method: str,
    api_key: str = "",
    app_code: str = "",
    api_secret: str = "",
    remove_own_app: bool = False,
    request: HttpRequest | None = None,
) -> BrokerAccount:
    """The master changes a follower's AliceBlue client id, login method or credentials."""
    _require_master_of(follower, actor)
    if not follower.is_active:
        raise ValidationError(FOLLOWER_INACTIVE)
    account = BrokerAccount.objects.filter(owner=follower.user).first() or BrokerAccount(
        owner=follower.user, master=follower.master
    )
    return _save_credentials(
        account=account,
        master=follower.master,
        actor=actor,
        action="follower.credentials",
        target=follower,
        request=request,
        client_id=client_id,
        login_method=login_method,
        api_key=api_key,
        app_code=app_code,
        api_secret=api_secret,
        remove_own_app=remove_own_app,
    )


# --- Followers: registration --------------------------------------------------------------------
@dataclass(frozen=True)
class NewFollowerLogin:
    """A follower's login, to be shown once. Only the password's hash is stored."""

    follower: Follower
    username: str
    password: Secret


def _username_base(display_name: str) -> str:
    base = slugify(display_name)[:USERNAME_BASE_MAX_LENGTH].strip("-")
    return base or "follower"


def _username_looks_free(candidate: str) -> bool:
    """A cheap first look; only the insert under the unique constraint decides."""
    return not User.objects.filter(username=candidate).exists()


def _create_user_with_unique_username(base: str, password: str) -> User:
    """Insert a follower user named `base`, `base-2`, `base-3`, …: the first free one.

    The unique constraint on username decides races: a concurrent registration that takes
    the same name first makes our insert fail inside a savepoint, and we try the next name.
    """
    for n in range(1, 1000):
        candidate = base if n == 1 else f"{base}-{n}"
        if not _username_looks_free(candidate):
            continue
        user = User(username=candidate, role=User.Role.FOLLOWER)
        user.set_password(password)
        user.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                user.save(force_insert=True)
        except IntegrityError:
            if User.objects.filter(username=candidate).exists():
                continue  # lost the race for this name: take the next one
            raise
        return user
    raise ValidationError({"display_name": [USERNAMES_EXHAUSTED]})


def register_follower(
    *,
    master: Master,
    actor: User,
    display_name: str,
    client_id: str,
    login_method: str,
    api_key: str = "",
    app_code: str = "",
    api_secret: str = "",
    lot_multiplier: Decimal,
    max_quantity: int,
    max_order_value: Decimal,
    max_daily_loss: Decimal,
    allowed_instruments: Sequence[str] = (),
    allowed_product_types: Sequence[str],
    request: HttpRequest | None = None,
) -> NewFollowerLogin:
    """Register a follower under `master`: its login, limits and encrypted AliceBlue
    credentials. Returns the follower with its generated username and password (shown once).

    Every input is checked before anything is written; all of it is saved in one transaction
    with its audit row, or none of it.
    """
    if actor.pk != master.user_id:
        raise PermissionDenied("Only the master may register its followers.")
    errors: ErrorDict = {}
    display_name = (display_name or "").strip()
    if not display_name:
        _add(errors, "display_name", DISPLAY_NAME_REQUIRED)
    instruments: list[str] = []
    try:
        instruments = validation.normalise_instruments(allowed_instruments)
    except ValidationError as exc:
        _add(errors, "allowed_instruments", exc)
    products = validation.normalise_product_types(allowed_product_types)

    follower = Follower(
        master=master,
        display_name=display_name,
        lot_multiplier=lot_multiplier,
        max_quantity=max_quantity,
        max_order_value=max_order_value,
        max_daily_loss=max_daily_loss,
        allowed_instruments=instruments,
        allowed_product_types=products,
    )
    exclude = ["user", "master", *errors]
    try:
        follower.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        _merge(errors, exc)

    account = BrokerAccount(master=master)
    change = _apply_credentials(
        account,
        master=master,
        client_id=client_id,
        login_method=login_method,
        api_key=api_key,
        app_code=app_code,
        api_secret=api_secret,
        remove_own_app=False,
    )
    for name, messages in change.errors.items():
        for message in messages:
            _add(errors, name, message)
    if errors:
        raise ValidationError(errors)

    password = generate_password()
    with transaction.atomic():
        user = _create_user_with_unique_username(_username_base(display_name), password)
        follower.user = user
        follower.full_clean(validate_unique=False)
        follower.save()
        account.owner = user
        account.full_clean(validate_constraints=False, validate_unique=False)
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError:
            # Another registration took this client id between our check and now.
            raise ValidationError({"client_id": [CLIENT_ID_TAKEN]}) from None
        record_audit(
            actor=actor,
            action="follower.register",
            target=follower,
            master=master,
            after={
                "username": user.username,
                **_limits_snapshot(follower),
                **credential_snapshot(account),
                "password": "****",
            },
            request=request,
        )
    return NewFollowerLogin(follower=follower, username=user.username, password=Secret(password))


# --- Followers: limits, pause, password, deactivation -------------------------------------------
def update_follower_limits(
    *,
    follower: Follower,
    actor: User,
    display_name: str,
    lot_multiplier: Decimal,
    max_quantity: int,
    max_order_value: Decimal,
    max_daily_loss: Decimal,
    allowed_instruments: Sequence[str],
    allowed_product_types: Sequence[str],
    request: HttpRequest | None = None,
) -> Follower:
    """The master changes a follower's name and risk limits (audited before/after)."""
    _require_master_of(follower, actor)
    errors: ErrorDict = {}
    display_name = (display_name or "").strip()
    if not display_name:
        _add(errors, "display_name", DISPLAY_NAME_REQUIRED)
    instruments: list[str] = []
    try:
        instruments = validation.normalise_instruments(allowed_instruments)
    except ValidationError as exc:
        _add(errors, "allowed_instruments", exc)
    products = validation.normalise_product_types(allowed_product_types)

    with transaction.atomic():
        row = Follower.objects.select_for_update().select_related("master").get(pk=follower.pk)
        if not row.is_active:
            raise ValidationError(FOLLOWER_INACTIVE)
        before = _limits_snapshot(row)
        row.display_name = display_name
        row.lot_multiplier = lot_multiplier
        row.max_quantity = max_quantity
        row.max_order_value = max_order_value
        row.max_daily_loss = max_daily_loss
        row.allowed_instruments = instruments
        row.allowed_product_types = products
        try:
            row.full_clean(exclude=list(errors), validate_unique=False)
        except ValidationError as exc:
            _merge(errors, exc)
        if errors:
            raise ValidationError(errors)
        old, new = _changed(before, _limits_snapshot(row))
        if new:
            row.save(update_fields=[*new.keys(), "updated_at"])
            record_audit(
                actor=actor,
                action="follower.limits",
                target=row,
                master=row.master,
                before=old,
                after=new,
                request=request,
            )
    return row


def _pauser(follower: Follower, actor: User) -> str:
    if actor.pk == follower.user_id:
        return Follower.PausedBy.FOLLOWER
    if actor.pk == _master_user_of(follower).pk:
        return Follower.PausedBy.MASTER
    raise PermissionDenied(NOT_THIS_FOLLOWER)


def pause_follower(*, follower: Follower, actor: User, request: HttpRequest | None = None) -> bool:
    """Stop copying entries to this follower (exits still go). The master or the follower
    itself may pause; a master's pause overrides a follower's own. True if it changed."""
    by = _pauser(follower, actor)
    with transaction.atomic():
        row = Follower.objects.select_for_update().select_related("master").get(pk=follower.pk)
        if not row.is_active:
            raise ValidationError(FOLLOWER_INACTIVE)
        # A pause that does not say who set it counts as the master's.
        current = (row.paused_by or Follower.PausedBy.MASTER) if row.is_paused else ""
        if current == by or current == Follower.PausedBy.MASTER:
            return False
        before = {"is_paused": row.is_paused, "paused_by": row.paused_by}
        row.is_paused = True
        row.paused_by = by
        row.paused_at = timezone.now()
        row.save(update_fields=["is_paused", "paused_by", "paused_at", "updated_at"])
        record_audit(
            actor=actor,
            action="follower.pause",
            target=row,
            master=row.master,
            before=before,
            after={"is_paused": True, "paused_by": by},
            request=request,
        )
    follower.is_paused, follower.paused_by, follower.paused_at = True, by, row.paused_at
    return True


def resume_follower(*, follower: Follower, actor: User, request: HttpRequest | None = None) -> bool:
    """Copy entries to this follower again. A follower may resume only its own pause."""
    by = _pauser(follower, actor)
    with transaction.atomic():
        row = Follower.objects.select_for_update().select_related("master").get(pk=follower.pk)
        if not row.is_active:
            raise ValidationError(FOLLOWER_INACTIVE)
        if not row.is_paused:
            return False
        if by == Follower.PausedBy.FOLLOWER and not row.paused_by_itself:
            raise ValidationError(CANNOT_RESUME_MASTERS_PAUSE)
        before = {"is_paused": True, "paused_by": row.paused_by or Follower.PausedBy.MASTER}
        row.is_paused = False
        row.paused_by = Follower.PausedBy.NOBODY
        row.paused_at = None
        row.save(update_fields=["is_paused", "paused_by", "paused_at", "updated_at"])
        record_audit(
            actor=actor,
            action="follower.resume",
            target=row,
            master=row.master,
            before=before,
            after={"is_paused": False, "paused_by": ""},
            request=request,
        )
    follower.is_paused, follower.paused_by, follower.paused_at = False, "", None
    return True


def reset_follower_password(
    *, follower: Follower, actor: User, request: HttpRequest | None = None
) -> Secret:
    """A new generated password for the follower, returned once; its sessions end and any
    login lockout on its username is lifted."""
    _require_master_of(follower, actor)
    password = generate_password()
    with transaction.atomic():
        row = (
            Follower.objects.select_for_update()
            .select_related("user", "master")
            .get(pk=follower.pk)
        )
        if not row.is_active:
            raise ValidationError(FOLLOWER_INACTIVE)
        row.user.set_password(password)
        row.user.save(update_fields=["password"])
        record_audit(
            actor=actor,
            action="follower.password_reset",
            target=row,
            master=row.master,
            after={"username": row.user.username, "password": "changed"},
            request=request,
        )
    _lift_lockout(row.user.username)
    return Secret(password)


def _lift_lockout(username: str) -> None:
    from axes.utils import reset

    reset(username=username)


class OpenPositionsChoice:
    """What happens to a deactivated follower's open copied positions."""

    FLATTEN = "flatten"
    DETACH = "detach"
    CHOICES = (
        (FLATTEN, "Flatten them now: exit every open copied position, then deactivate"),
        (DETACH, "Detach them: they stay in the follower's AliceBlue account, no longer managed"),
    )


@dataclass(frozen=True)
class Deactivation:
    follower: Follower
    # Open copied positions (from the position ledger) when the master deactivated it.
    open_positions: list[str]
    # "" (none were open), "flatten" or "detach".
    choice: str = ""
    # Flatten: the exit copy trades written; the follower is deactivated once they settled.
    exit_ids: list[int] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Deactivated now (False: flattening first, see `complete_deactivation`)."""
        return not self.follower.is_active


def deactivate_follower(
    *,
    follower: Follower,
    actor: User,
    open_positions: str = "",
    request: HttpRequest | None = None,
) -> Deactivation:
    """Stop this follower for good: no more copies, no more logins, its stored broker secrets
    wiped. Its history (copy trades, ledger, audit) stays.

    With open copied positions the master chooses (``open_positions``):

    * ``detach``: their ledger rows are marked detached (kept in the follower's account, no
      longer tracked, exited or reconciled) and the follower is deactivated now;
    * ``flatten``: exit orders are written for them (the copier sends them) and the follower
      is "deactivating" until they settled; the copier then completes the deactivation
      (`complete_deactivation`). Why in that order: `trading.engine.lifecycle.deactivation`.

    A follower already deactivating may be flattened again (once nothing is in flight) or
    detached. Both choices are audited with the positions they concerned.
    """
    from trading.engine.lifecycle import deactivation as lifecycle

    _require_master_of(follower, actor)
    choice = (open_positions or "").strip().lower()
    if choice not in ("", OpenPositionsChoice.FLATTEN, OpenPositionsChoice.DETACH):
        raise ValidationError({"open_positions": [OPEN_POSITIONS_UNKNOWN]})
    now = timezone.now()
    with transaction.atomic():
        row = (
            Follower.objects.select_for_update()
            .select_related("user", "master")
            .get(pk=follower.pk)
        )
        if not row.is_active:
            raise ValidationError(FOLLOWER_ALREADY_DEACTIVATED)
        positions = selectors.open_copied_positions(row)
        if positions and not choice:
            raise ValidationError({"open_positions": [OPEN_POSITIONS_CHOICE_REQUIRED]})
        if not positions:
            choice = ""
        if choice == OpenPositionsChoice.FLATTEN:
            if lifecycle.has_in_flight(row.pk) and row.deactivating_at is not None:
                raise ValidationError({"open_positions": [FLATTEN_IN_PROGRESS]})
            exit_ids = lifecycle.flatten(follower=row, actor=actor, now=now)
            if exit_ids:
                first = row.deactivating_at is None
                row.deactivating_at = row.deactivating_at or now
                row.save(update_fields=["deactivating_at", "updated_at"])
                record_audit(
                    actor=actor,
                    action="follower.flatten",
                    target=row,
                    master=row.master,
                    before={"is_active": True, "deactivating": not first},
                    after={
                        "deactivating": True,
                        "open_positions": choice,
                        "positions": positions,
                        "exit_copy_trades": exit_ids,
                    },
                    request=request,
                )
                follower.deactivating_at = row.deactivating_at
                return Deactivation(
                    follower=row, open_positions=positions, choice=choice, exit_ids=exit_ids
                )
            # Exits already in flight cover every position: let them settle.
            raise ValidationError({"open_positions": [FLATTEN_IN_PROGRESS]})
        if lifecycle.has_sending(row.pk):
            raise ValidationError({"open_positions": [ORDER_BEING_SENT]})
        detached = lifecycle.detach(row.pk) if choice == OpenPositionsChoice.DETACH else 0
        after: dict[str, Any] = {"open_positions": choice or "none"}
        if choice == OpenPositionsChoice.DETACH:
            after.update(positions_detached=positions, ledger_rows_detached=detached)
        _deactivate(row, actor=actor, now=now, after=after, request=request)
    follower.is_active, follower.deactivated_at = False, now
    return Deactivation(follower=row, open_positions=positions, choice=choice)


def complete_deactivation(*, follower_id: int) -> bool:
    """The copier finishes a "flatten" deactivation once its exits settled (nothing in
    flight, a flat ledger; `trading.engine.lifecycle.deactivation.ready_to_finish`). False if
    it is no longer due (already done, or something moved meanwhile)."""
    from trading.engine.lifecycle import deactivation as lifecycle

    now = timezone.now()
    with transaction.atomic():
        row = (
            Follower.objects.select_for_update()
            .select_related("user", "master")
            .filter(pk=follower_id, is_active=True, deactivating_at__isnull=False)
            .first()
        )
        if row is None or lifecycle.has_in_flight(row.pk) or selectors.open_copied_positions(row):
            return False
        # Conditional on still being due: two copiers never finish it twice.
        if not Follower.objects.filter(pk=row.pk, is_active=True).update(is_active=False):
            return False
        row.is_active = True
        exits = lifecycle.flatten_exits(row.pk)
        _deactivate(
            row,
            actor=None,
            actor_repr="copier",
            now=now,
            after={
                "open_positions": OpenPositionsChoice.FLATTEN,
                "flattened_by": [e.tag for e in exits],
            },
        )
    return True


def _deactivate(
    row: Follower,
    *,
    actor: User | None,
    now: Any,
    after: dict[str, Any],
    request: HttpRequest | None = None,
    actor_repr: str = "",
) -> None:
    """The deactivation itself (inside the caller's transaction, ``row`` locked)."""
    from trading.engine.lifecycle import deactivation as lifecycle

    lifecycle.cancel_pending(row.pk, now=now)
    before = {"is_active": True, "is_paused": row.is_paused}
    row.is_active = False
    row.deactivated_at = now
    row.save(update_fields=["is_active", "deactivated_at", "updated_at"])
    user = row.user
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["is_active", "password"])
    account = BrokerAccount.objects.filter(owner=user).first()
    credentials_before: dict[str, Any] = {}
    if account is not None:
        credentials_before = credential_snapshot(account)
        account.wipe_credentials()
        account.active = False
        account.save()
        _forget_broker_session(account)
    record_audit(
        actor=actor,
        actor_repr=actor_repr,
        action="follower.deactivate",
        target=row,
        master=row.master,
        before={**before, **credentials_before},
        after={
            "is_active": False,
            "api_key": "not set",
            "app_code": "not set",
            "api_secret": "not set",
            **after,
        },
        request=request,
    )


# --- Own password ---------------------------------------------------------------------------------
def change_own_password(
    *, user: User, new_password: str, request: HttpRequest | None = None
) -> None:
    """A person changes its own password (the form has checked the old one)."""
    validate_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        master = None
        if user.role == User.Role.MASTER:
            master = Master.objects.filter(user=user).first()
        elif user.role == User.Role.FOLLOWER:
            master = Master.objects.filter(followers__user=user).first()
        record_audit(
            actor=user,
            action="user.password_change",
            target=user,
            master=master,
            after={"password": "changed"},
            request=request,
        )


# --- Key rotation -------------------------------------------------------------------------------
ENCRYPTED_SUFFIX = "_encrypted"
_ENCRYPTED_APPS = ("accounts", "trading")


def encrypted_columns() -> list[tuple[Any, list[str]]]:
    """Every `*_encrypted` column of our apps: BrokerAccount's secrets, broker session tokens,
    and any encrypted column added later (found by name, so rotation never misses one)."""
    found = []
    for model in apps.get_models():
        if model._meta.app_label not in _ENCRYPTED_APPS:
            continue
        names = [
            f.attname for f in model._meta.concrete_fields if f.name.endswith(ENCRYPTED_SUFFIX)
        ]
        if names:
            found.append((model, names))
    return found


@dataclass
class RotationReport:
    rotated: int = 0
    already_current: int = 0
    failed: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def rotate_credentials(*, actor: User | None = None, actor_repr: str = "") -> RotationReport:
    """Re-encrypt every stored secret under the newest key (the first of CREDENTIAL_KEYS).

    Idempotent: a value already under the newest key is left alone, so a second run reports
    zero rotated. Each value is swapped with a conditional UPDATE (only if it still holds the
    token we read), so a concurrent change is never overwritten; such a value is read again.
    """
    report = RotationReport()
    for model, names in encrypted_columns():
        manager = model._base_manager
        for name in names:
            report.columns.append(f"{model._meta.label}.{name}")
            pks = list(manager.exclude(**{name: ""}).order_by("pk").values_list("pk", flat=True))
            for pk in pks:
                _rotate_one(manager, pk, name, report, label=model._meta.label)
    with transaction.atomic():
        record_audit(
            actor=actor,
            actor_repr=actor_repr,
            action="credentials.rotate",
            after={
                "rotated": report.rotated,
                "already_current": report.already_current,
                "failed": report.failed,
                "columns": report.columns,
            },
        )
    return report


def _rotate_one(manager: Any, pk: Any, name: str, report: RotationReport, *, label: str) -> None:
    for _attempt in range(5):
        token = manager.filter(pk=pk).values_list(name, flat=True).first()
        if not token:
            return
        if crypto.is_current(token):
            report.already_current += 1
            return
        try:
            new_token = crypto.rotate(token)
        except crypto.CredentialDecryptionError:
            report.failed.append(f"{label}#{pk}.{name}")
            return
        if manager.filter(pk=pk, **{name: token}).update(**{name: new_token}):
            report.rotated += 1
            return
    report.failed.append(f"{label}#{pk}.{name} (kept changing)")
