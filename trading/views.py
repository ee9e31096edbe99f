from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.decorators import follower_required, master_required


@require_GET
@master_required
def master_dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/master_dashboard.html", {})


@require_GET
@follower_required
def follower_board(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/follower_board.html", {})
