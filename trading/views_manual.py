"""The manual copy trade page (masters only): a form that places a test order on every active
follower exactly as one of the master's own orders would be copied, without an order in the
master's account; below it, the recent manual copy trades and what each follower got.

    GET  /manual/          the form and the recent list
    POST /manual/          create (trading.services.create_manual_copy) → redirect (PRG)
    GET  /manual/ + HX     the recent list alone (polled while copies are being decided)
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from accounts.decorators import master_required
from accounts.forms import apply_errors
from accounts.models import Master, User
from trading import services
from trading.models import CopyTrade, Exchange, MasterOrder, OrderType, Product, Side

PAGE = "trading/manual/page.html"
CREATED = "Manual copy trade recorded: {side} {quantity} {symbol}. The copier is sending it."
RECENT = 20


class ManualCopyForm(forms.Form):
    exchange = forms.ChoiceField(choices=Exchange.choices, initial="NSE")
    symbol = forms.CharField(
        max_length=64, help_text="Trading symbol, e.g. INFY-EQ or NIFTY30DEC25F"
    )
    side = forms.ChoiceField(choices=Side.choices, initial="BUY")
    quantity = forms.IntegerField(min_value=1, help_text="The master's quantity, in units")
    order_type = forms.ChoiceField(choices=OrderType.choices, initial="MARKET")
    price = forms.DecimalField(required=False, max_digits=14, decimal_places=4, min_value=0)
    trigger_price = forms.DecimalField(required=False, max_digits=14, decimal_places=4, min_value=0)
    product = forms.ChoiceField(choices=Product.choices, initial="MIS")


def _master(request: HttpRequest) -> tuple[User, Master]:
    user = request.user
    assert isinstance(user, User)
    return user, user.master


def _recent(master: Master) -> list[dict[str, Any]]:
    orders = list(
        MasterOrder.objects.filter(master=master, manual=True)
        .select_related("requested_by")
        .order_by("-first_seen_at", "-pk")[:RECENT]
    )
    copies: dict[int, list[CopyTrade]] = {o.pk: [] for o in orders}
    for ct in (
        CopyTrade.objects.filter(event__master_order__in=orders)
        .select_related("follower", "event")
        .order_by("follower__display_name", "leg")
    ):
        copies[ct.event.master_order_id].append(ct)
    return [
        {
            "order": o,
            "copies": copies[o.pk],
            "deciding": not copies[o.pk],
            "busy": not copies[o.pk]
            or any(
                c.status in (CopyTrade.Status.PENDING, CopyTrade.Status.SENDING)
                for c in copies[o.pk]
            ),
        }
        for o in orders
    ]


def _render(
    request: HttpRequest, master: Master, form: ManualCopyForm, *, status: int = 200
) -> HttpResponse:
    recent = _recent(master)
    context = {"form": form, "recent": recent, "polling": any(r["busy"] for r in recent)}
    template = f"{PAGE}#recent" if request.headers.get("HX-Request") else PAGE
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def submit(
    request: HttpRequest, master: Master, user: User, form: ManualCopyForm
) -> MasterOrder | None:
    """Create the manual copy from a valid form (trading.services.create_manual_copy); the
    service's errors go next to their fields (or the form's top), and None is returned."""
    data = form.cleaned_data
    try:
        return services.create_manual_copy(
            master=master,
            actor=user,
            exchange=data["exchange"],
            symbol=data["symbol"],
            side=data["side"],
            quantity=data["quantity"],
            order_type=data["order_type"],
            product=data["product"],
            price=data["price"],
            trigger_price=data["trigger_price"],
            request=request,
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return None


@require_http_methods(["GET", "POST"])
@master_required
def manual_copy(request: HttpRequest) -> HttpResponse:
    user, master = _master(request)
    if request.method == "GET":
        return _render(request, master, ManualCopyForm())
    form = ManualCopyForm(request.POST)
    order = submit(request, master, user, form) if form.is_valid() else None
    if order is None:
        return _render(request, master, form, status=400)
    messages.success(
        request,
        CREATED.format(side=order.side, quantity=order.quantity, symbol=order.trading_symbol),
    )
    return redirect("trading:manual_copy")
