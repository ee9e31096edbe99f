from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from trading.models import CopierHeartbeat

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_ok_and_copier_down_without_heartbeat(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok"
    assert body["copier"]["status"] == "down"


def test_healthz_reports_copier_alive_from_fresh_heartbeat(client):
    now = timezone.now()
    CopierHeartbeat.objects.create(name="copier", pid=1, started_at=now, beat_at=now)
    assert client.get("/healthz").json()["copier"]["status"] == "ok"


def test_healthz_reports_copier_down_from_stale_heartbeat(client):
    old = timezone.now() - timedelta(minutes=10)
    CopierHeartbeat.objects.create(name="copier", pid=1, started_at=old, beat_at=old)
    assert client.get("/healthz").json()["copier"]["status"] == "down"


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
