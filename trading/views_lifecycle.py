"""The master dashboard's lifecycle actions: missed exits after a feed loss (send, dismiss),
the reconciliation policy and the readiness "check now". POST only; each calls one service;
HTMX gets the dashboard's live part back, a plain form post a redirect with a message (works
without JavaScript)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.decorators import master_required
from accounts.models import Master
from trading import services
from trading.views import HtmxHttpRequest, _after_action, _master, _master_page, _user

BAD_EVENT = "Choose one of your orders' missed exits."
BAD_POLICY = "Choose a reconciliation policy: report only, or close."


class EventForm(forms.Form):
    event = forms.IntegerField(min_value=1, error_messages={"required": BAD_EVENT})


class PolicyForm(forms.Form):
    policy = forms.ChoiceField(
        choices=Master.ReconcilePolicy.choices,
        error_messages={"required": BAD_POLICY, "invalid_choice": BAD_POLICY},
    )


def _proposals(request: HtmxHttpRequest, *, send: bool) -> HttpResponse:
    master = _master(request)
    form = EventForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(BAD_EVENT)
    user = _user(request)
    service = services.send_exit_proposals if send else services.dismiss_exit_proposals
    try:
        text = service(
            master=master, event_id=form.cleaned_data["event"], actor=user, request=request
        )
    except services.NoOpenProposals as exc:
        if request.htmx:
            return _master_page(request, master)
        messages.error(request, str(exc))
        return redirect("trading:master_dashboard")
    return _after_action(request, master, text)


@require_POST
@master_required
def master_exit_proposals_send(request: HtmxHttpRequest) -> HttpResponse:
    """Send every follower's missed exit for one of the master's orders."""
    return _proposals(request, send=True)


@require_POST
@master_required
def master_exit_proposals_dismiss(request: HtmxHttpRequest) -> HttpResponse:
    """Dismiss every follower's missed exit for one of the master's orders."""
    return _proposals(request, send=False)


@require_POST
@master_required
def master_reconcile_policy(request: HtmxHttpRequest) -> HttpResponse:
    """Report drift only, or also close what the master no longer holds."""
    master = _master(request)
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(BAD_POLICY)
    user = _user(request)
    text = services.set_reconcile_policy(
        master=master, policy=form.cleaned_data["policy"], actor=user, request=request
    )
    return _after_action(request, master, text)


@require_POST
@master_required
def master_readiness_check(request: HtmxHttpRequest) -> HttpResponse:
    """ "Check now": the copier runs the readiness check within seconds."""
    master = _master(request)
    user = _user(request)
    text = services.request_readiness_check(master=master, actor=user, request=request)
    return _after_action(request, master, text)
