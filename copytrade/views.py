from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    role = getattr(user, "role", "")
    if role == "master":
        return redirect("trading:master_dashboard")
    if role == "follower":
        return redirect("trading:follower_board")
    if user.is_staff:
        return redirect("admin:index")
    return HttpResponse("This account has no role. Ask an administrator.", status=403)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database state and the copier's heartbeat, for monitors. 503 when the database fails."""
    body: dict[str, object] = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        body["database"] = {"status": "ok", "vendor": connection.vendor}
    except DatabaseError as exc:
        body["status"] = "error"
        body["database"] = {"status": "error", "error": exc.__class__.__name__}
        return JsonResponse(body, status=503)

    from trading.models import CopierHeartbeat

    stale_after = timedelta(seconds=settings.COPIER_HEARTBEAT_STALE_SECONDS)
    now = timezone.now()
    copiers = [
        {
            "name": beat.name,
            "pid": beat.pid,
            "beat_at": beat.beat_at.isoformat(),
            # a copier that stopped cleanly says so in its last heartbeat
            "alive": now - beat.beat_at <= stale_after
            and not (isinstance(beat.state, dict) and beat.state.get("stopped")),
            "state": beat.state,
        }
        for beat in CopierHeartbeat.objects.order_by("name")
    ]
    body["copier"] = {
        "status": "ok" if any(c["alive"] for c in copiers) else "down",
        "processes": copiers,
    }
    return JsonResponse(body)
