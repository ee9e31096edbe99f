"""The admin for trading records (read-only, searchable, filterable) and the CSV exports of the
audit trail and the copy trades, from the admin (streamed) and as commands."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tests.conftest import login
from tests.factories import CopyTradeFactory
from trading import exports
from trading.audit import record_audit
from trading.models import AuditEvent, CopyTradeTransition
from trading.selectors import IST


@pytest.fixture
def admin_client(client, staff):
    return login(client, staff)


@pytest.fixture
def trades(follower_a, follower_b, follower_c):
    made = [
        CopyTradeFactory(follower=follower_a, trading_symbol="INFY-EQ", status="SUCCESS"),
        CopyTradeFactory(follower=follower_b, trading_symbol="TCS-EQ", status="FAILED"),
        CopyTradeFactory(follower=follower_c, trading_symbol="SBIN-EQ", status="SKIPPED"),
    ]
    CopyTradeTransition.objects.create(
        copy_trade=made[0], from_status="PENDING", to_status="SENDING", at=timezone.now()
    )
    return made


MODELS = [
    "copytrade",
    "copytradetransition",
    "masterorder",
    "masterorderevent",
    "positionledger",
    "copierheartbeat",
    "auditevent",
    "exitproposal",
    "positiondrift",
]


@pytest.mark.parametrize("model", MODELS)
def test_changelists_render_and_refuse_writes(admin_client, trades, model):
    changelist = reverse(f"admin:trading_{model}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "INFY"}).status_code == 200
    assert admin_client.get(reverse(f"admin:trading_{model}_add")).status_code == 403


def test_copy_trades_filter_by_master_follower_symbol_status_and_date(
    admin_client, trades, follower_a, master_x
):
    url = reverse("admin:trading_copytrade_changelist")

    def shown(**query):  # type: ignore[no-untyped-def]
        html = admin_client.get(url, query).content.decode()
        return {t.trading_symbol for t in trades if f"{t.trading_symbol}</td>" in html}

    assert shown() == {"INFY-EQ", "TCS-EQ", "SBIN-EQ"}
    assert shown(status__exact="FAILED") == {"TCS-EQ"}
    assert shown(master__id__exact=master_x.pk) == {"INFY-EQ", "TCS-EQ"}
    assert shown(follower__id__exact=follower_a.pk) == {"INFY-EQ"}
    assert shown(q="SBIN") == {"SBIN-EQ"}
    # the "Today" link of the date filter, as the admin writes it (aware, IST)
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert shown(decided_at__gte=str(start), decided_at__lt=str(start + timedelta(days=1))) == {
        "INFY-EQ",
        "TCS-EQ",
        "SBIN-EQ",
    }
    assert shown(decided_at__gte=str(start - timedelta(days=7)), decided_at__lt=str(start)) == set()


def test_copy_trade_detail_is_read_only_with_its_transitions(admin_client, trades):
    html = admin_client.get(
        reverse("admin:trading_copytrade_change", args=[trades[0].pk])
    ).content.decode()
    assert "PENDING" in html and "SENDING" in html
    assert 'name="_save"' not in html
    assert (
        admin_client.post(
            reverse("admin:trading_copytrade_delete", args=[trades[0].pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_transitions_and_audit_are_read_only(admin_client, trades):
    transition = CopyTradeTransition.objects.first()
    html = admin_client.get(
        reverse("admin:trading_copytradetransition_change", args=[transition.pk])
    ).content.decode()
    assert 'name="_save"' not in html


@pytest.mark.parametrize("persona", ["follower_a", "master_x"])
def test_admin_and_export_are_staff_only(client, persona, request):
    user = request.getfixturevalue(persona).user
    login(client, user)
    for name in ("admin:trading_copytrade_export", "admin:trading_auditevent_export"):
        assert client.get(reverse(name)).status_code == 403


def test_anonymous_export_goes_to_login(client, db):
    response = client.get(reverse("admin:trading_copytrade_export"), {"start": "2026-01-01"})
    assert response.status_code == 302


# --- exports -------------------------------------------------------------------------------------
def _csv(content: bytes | str) -> list[list[str]]:
    text = content.decode() if isinstance(content, bytes) else content
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_export_form_then_streamed_csv(admin_client, trades, staff):
    url = reverse("admin:trading_copytrade_export")
    form = admin_client.get(url)
    assert form.status_code == 200 and b'type="date"' in form.content
    assert b"Export CSV" in admin_client.get(reverse("admin:trading_copytrade_changelist")).content
    today = timezone.localdate().isoformat()
    response = admin_client.get(url, {"start": today, "end": today})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv(b"".join(response.streaming_content))
    assert rows[0] == exports.COPY_TRADES.header
    assert {r[rows[0].index("trading_symbol")] for r in rows[1:]} == {
        "INFY-EQ",
        "TCS-EQ",
        "SBIN-EQ",
    }
    event = AuditEvent.objects.get(action="export.copy-trades")
    assert event.actor == staff and event.after == {"from": today, "to": today}


def test_export_rejects_a_reversed_range_at_the_field(admin_client, db):
    response = admin_client.get(
        reverse("admin:trading_auditevent_export"), {"start": "2026-02-01", "end": "2026-01-01"}
    )
    assert response.status_code == 200
    assert not getattr(response, "streaming", False)
    assert "The last day is before the first." in response.content.decode()
    response = admin_client.get(
        reverse("admin:trading_auditevent_export"), {"start": "nope", "end": ""}
    )
    assert response.status_code == 200 and not getattr(response, "streaming", False)


def test_export_days_are_indian_days_inclusive(follower_a):
    # 23:50 IST on 1 March is 18:20 UTC; 00:10 IST on 3 March is 18:40 UTC on 2 March.
    inside = [
        CopyTradeFactory(follower=follower_a, decided_at=datetime(2026, 3, 1, 0, 0, tzinfo=IST)),
        CopyTradeFactory(follower=follower_a, decided_at=datetime(2026, 3, 2, 23, 59, tzinfo=IST)),
    ]
    CopyTradeFactory(follower=follower_a, decided_at=datetime(2026, 2, 28, 23, 59, tzinfo=IST))
    CopyTradeFactory(follower=follower_a, decided_at=datetime(2026, 3, 3, 0, 10, tzinfo=IST))
    from datetime import date

    rows = list(exports.copy_trade_rows(date(2026, 3, 1), date(2026, 3, 2)))
    assert [r[0] for r in rows] == [t.pk for t in inside]


def test_export_walks_batches_in_order(follower_a, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 3)
    made = [CopyTradeFactory(follower=follower_a) for _ in range(8)]
    today = timezone.localdate()
    rows = list(exports.copy_trade_rows(today, today))
    assert [r[0] for r in rows] == [t.pk for t in made]


def test_cells_that_spreadsheets_would_run_are_defused(follower_a, master_x):
    CopyTradeFactory(follower=follower_a, reason='=HYPERLINK("http://x")')
    record_audit(actor=None, action="note", master=master_x, after={"note": "+1"})
    today = timezone.localdate()
    trade_row = next(exports.copy_trade_rows(today, today))
    assert trade_row[exports.COPY_TRADES.header.index("reason")].startswith("'=")
    audit_row = next(exports.audit_rows(today, today))
    assert audit_row[exports.AUDIT.header.index("action")] == "note"


def test_export_commands_write_csv(tmp_path, trades, master_x):
    record_audit(actor=None, action="master.create", master=master_x)
    today = timezone.localdate().isoformat()
    out = tmp_path / "trades.csv"
    err = io.StringIO()
    call_command("export_copy_trades", "--from", today, "--to", today, "-o", str(out), stderr=err)
    rows = _csv(out.read_text(encoding="utf-8"))
    assert rows[0] == exports.COPY_TRADES.header and len(rows) == 4
    assert "Wrote 3 row(s)" in err.getvalue()
    stdout = io.StringIO()
    call_command("export_audit", "--from", today, stdout=stdout, stderr=io.StringIO())
    audit = _csv(stdout.getvalue())
    assert audit[0] == exports.AUDIT.header
    assert any(r[audit[0].index("action")] == "master.create" for r in audit[1:])


@pytest.mark.parametrize(
    "args", [["--from", "yesterday"], ["--from", "2026-02-01", "--to", "2026-01-01"], []]
)
def test_export_commands_refuse_bad_ranges(db, args):
    with pytest.raises(CommandError):
        call_command("export_audit", *args, stdout=io.StringIO(), stderr=io.StringIO())
