"""Forms for the accounts pages. Forms parse what a person typed (numbers, lists, lengths); the
services decide what is allowed and raise errors by field name, which `apply_errors` puts next
to the right field. Secret inputs are never rendered back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts import services, validation
from accounts.models import BrokerAccount, Follower

PRODUCT_TYPE_CHOICES = [
    ("MIS", "MIS (intraday)"),
    ("CNC", "CNC (delivery)"),
    ("NRML", "NRML (carry forward)"),
]
MAX_QUANTITY_TOO_SMALL = "The max quantity must be at least 1."
MONEY_TOO_SMALL = "Enter an amount greater than 0."
CREDENTIAL_HELP_NEW = (
    "Paste it exactly as AliceBlue shows it. It is stored encrypted and never shown again."
)
CREDENTIAL_HELP_EDIT = "Leave blank to keep the stored value."


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's errors next to the matching fields (the rest at the top of the form)."""
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            target = name if name in form.fields else None
            for message in messages:
                form.add_error(target, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def _secret_input(autocomplete: str = "off") -> forms.PasswordInput:
    return forms.PasswordInput(
        render_value=False,
        attrs={"autocomplete": autocomplete, "spellcheck": "false", "autocapitalize": "off"},
    )


def _money_field(label: str, help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        max_digits=16,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=validation.MAX_MONEY,
        help_text=help_text,
        error_messages={"min_value": MONEY_TOO_SMALL},
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )


class LimitsForm(forms.Form):
    """A follower's name and risk limits."""

    display_name = forms.CharField(
        label="Display name",
        max_length=validation.DISPLAY_NAME_MAX_LENGTH,
        help_text="How you and the follower see this account. Its login name is made from it.",
    )
    lot_multiplier = forms.DecimalField(
        label="Lot multiplier",
        max_digits=10,
        decimal_places=4,
        validators=[validation.validate_lot_multiplier],
        help_text=(
            "Follower quantity = master quantity × this, rounded down to whole lots "
            f"(greater than 0, at most {validation.MAX_LOT_MULTIPLIER}; e.g. 0.5 or 2)."
        ),
        widget=forms.NumberInput(attrs={"step": "0.0001", "inputmode": "decimal"}),
    )
    max_quantity = forms.IntegerField(
        label="Max quantity per trade",
        min_value=1,
        max_value=validation.MAX_QUANTITY_LIMIT,
        error_messages={"min_value": MAX_QUANTITY_TOO_SMALL},
        help_text="Copies are capped at this many units (shares or contracts) per order.",
    )
    max_order_value = _money_field(
        "Max order value (INR)", "An entry worth more than this is skipped."
    )
    max_daily_loss = _money_field(
        "Max daily loss (INR)", "New entries stop for the day once today's loss reaches this."
    )
    allowed_instruments = forms.CharField(
        label="Allowed instruments",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=(
            "Underlying symbols with their exchange, one per line or separated by commas, "
            "e.g. NSE:INFY, NFO:NIFTY. Leave empty to allow every instrument."
        ),
    )
    allowed_product_types = forms.MultipleChoiceField(
        label="Allowed product types",
        choices=PRODUCT_TYPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": validation.PRODUCT_TYPES_REQUIRED},
    )

    def clean_display_name(self) -> str:
        value = self.cleaned_data["display_name"].strip()
        validation.validate_display_name(value)
        return value

    def clean_allowed_instruments(self) -> list[str]:
        return validation.normalise_instruments(
            validation.split_instruments(self.cleaned_data.get("allowed_instruments", ""))
        )

    def limits_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {name: data[name] for name in LimitsForm.base_fields}

    @classmethod
    def initial_for(cls, follower: Follower) -> dict[str, Any]:
        return {
            "display_name": follower.display_name,
            "lot_multiplier": follower.lot_multiplier.normalize(),
            "max_quantity": follower.max_quantity,
            "max_order_value": follower.max_order_value,
            "max_daily_loss": follower.max_daily_loss,
            "allowed_instruments": "\n".join(follower.allowed_instruments),
            "allowed_product_types": list(follower.allowed_product_types),
        }


class CredentialsForm(forms.Form):
    """An AliceBlue account: client id, login method and credentials (blank = keep)."""

    editing = False

    client_id = forms.CharField(
        label="AliceBlue client id",
        max_length=32,
        help_text="The AliceBlue user id, e.g. AB1234 or 912444.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    login_method = forms.ChoiceField(
        label="How this account logs in",
        choices=BrokerAccount.LoginMethod.choices,
        initial=BrokerAccount.LoginMethod.API_KEY,
        widget=forms.RadioSelect,
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        max_length=512,
        strip=True,
        widget=_secret_input(),
        help_text="Needed for API-key login (generated in the AliceBlue web app under Apps).",
    )
    app_code = forms.CharField(
        label="Own vendor app: app code",
        required=False,
        max_length=64,
        strip=True,
        widget=_secret_input(),
        help_text="Only if this account logs in through its own AliceBlue vendor app.",
    )
    api_secret = forms.CharField(
        label="Own vendor app: API secret",
        required=False,
        max_length=512,
        strip=True,
        widget=_secret_input(),
    )

    def __init__(
        self,
        *args: Any,
        editing: bool = False,
        account: BrokerAccount | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.account = account
        for name in ("api_key", "app_code", "api_secret"):
            extra = CREDENTIAL_HELP_EDIT if editing else CREDENTIAL_HELP_NEW
            field = self.fields[name]
            field.help_text = f"{field.help_text} {extra}".strip()

    def clean_client_id(self) -> str:
        value = validation.normalise_client_id(self.cleaned_data["client_id"])
        validation.validate_client_id(value)
        return value

    def clean_api_key(self) -> str:
        value = validation.normalise_secret(self.cleaned_data.get("api_key"))
        if value:
            validation.validate_api_key(value)
        return value

    def clean_app_code(self) -> str:
        value = validation.normalise_secret(self.cleaned_data.get("app_code"))
        if value:
            validation.validate_app_code(value)
        return value

    def clean_api_secret(self) -> str:
        value = validation.normalise_secret(self.cleaned_data.get("api_secret"))
        if value:
            validation.validate_api_secret(value)
        return value

    def clean(self) -> dict[str, Any]:
        """The cross-field rules, so every error shows at once (the service checks them too,
        for callers without a form)."""
        data = super().clean() or {}
        stored = self.account
        if (
            data.get("login_method") == BrokerAccount.LoginMethod.API_KEY
            and "api_key" not in self.errors
            and not data.get("api_key")
            and not (stored and stored.api_key_encrypted)
        ):
            self.add_error("api_key", services.API_KEY_REQUIRED)
        if not data.get("remove_own_app") and not {"app_code", "api_secret"} & set(self.errors):
            has_code = bool(data.get("app_code") or (stored and stored.app_code_encrypted))
            has_secret = bool(data.get("api_secret") or (stored and stored.api_secret_encrypted))
            if has_code != has_secret:
                missing = "api_secret" if has_code else "app_code"
                self.add_error(missing, services.OWN_APP_INCOMPLETE)
        return data

    def credential_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "client_id": data["client_id"],
            "login_method": data["login_method"],
            "api_key": data.get("api_key", ""),
            "app_code": data.get("app_code", ""),
            "api_secret": data.get("api_secret", ""),
        }


class EditCredentialsForm(CredentialsForm):
    remove_own_app = forms.BooleanField(
        label="Remove the stored own vendor app (app code and API secret)", required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        account = kwargs.get("account")
        kwargs["editing"] = account is not None
        super().__init__(*args, **kwargs)
        if account is None or not account.uses_own_vendor_app:
            del self.fields["remove_own_app"]

    def credential_kwargs(self) -> dict[str, Any]:
        kwargs = super().credential_kwargs()
        kwargs["remove_own_app"] = bool(self.cleaned_data.get("remove_own_app", False))
        return kwargs

    @classmethod
    def initial_for(cls, account: BrokerAccount | None) -> dict[str, Any]:
        if account is None:
            return {}
        return {"client_id": account.client_id, "login_method": account.login_method}


class FollowerRegistrationForm(LimitsForm, CredentialsForm):
    """Everything a master enters to register a follower."""

    field_order = [
        "display_name",
        "client_id",
        "login_method",
        "api_key",
        "app_code",
        "api_secret",
        "lot_multiplier",
        "max_quantity",
        "max_order_value",
        "max_daily_loss",
        "allowed_instruments",
        "allowed_product_types",
    ]

    def service_kwargs(self) -> dict[str, Any]:
        return {**self.limits_kwargs(), **self.credential_kwargs()}


class KillSwitchForm(forms.Form):
    entries_paused = forms.TypedChoiceField(
        choices=[("on", "Pause every entry"), ("off", "Allow entries again")],
        coerce=lambda value: value == "on",
    )


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        error_messages={"required": "Tick the box to confirm."},
    )

    def __init__(self, *args: Any, label: str = "I am sure", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm"].label = label


class DeactivateForm(ConfirmForm):
    """Deactivate a follower; with open copied positions the master chooses what becomes of
    them (the service checks the choice against the ledger at the time it runs)."""

    open_positions = forms.ChoiceField(
        label="Its open copied positions",
        choices=services.OpenPositionsChoice.CHOICES,
        required=False,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, has_positions: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not has_positions:
            del self.fields["open_positions"]
        else:
            self.fields["open_positions"].required = True
            self.fields["open_positions"].error_messages["required"] = (
                services.OPEN_POSITIONS_CHOICE_REQUIRED
            )


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
    )
