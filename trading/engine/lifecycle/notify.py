"""Notifications (issue 5, item 9): a master's alerts by email, as one digest.

The copier writes `Alert` rows (`trading.engine.alerts`): a copy FAILED or UNKNOWN (sender,
tracking), a session needs today's login, a daily-loss limit reached (`decide`, once per
follower per IST day: `alerts.daily_loss_reached`), the master's feed lost (``FEED_LOST``),
drift found by reconciliation, a waiting exit. The copier job ``notify`` (every
`CHECK_SECONDS`, and once per tick) sends them through Django's email backend (the console in
development; ``EMAIL_*`` settings):

1. `prepare` marks what is never sent, with why (``notified_via``): alerts of a master without
   an email address ("no_email", logged: recorded, skipped) and feed losses that recovered
   sooner than ``NOTIFY_FEED_LOST_SECONDS`` ("short"). A feed loss still going on is sent only
   once it has lasted that long (``created_at`` is when the loss began, ``resolved_at`` when
   the feed came back). It also undoes claims older than `CLAIM_STALE` (a copier that died
   between claiming and sending): their alerts go out with the next digest.
2. `due_masters` — masters with sendable alerts whose digest is due: one email per master
   per ``NOTIFY_DIGEST_SECONDS`` (default 5 minutes; the first alert after a quiet interval
   goes out at once). An UNKNOWN copy is real money in an unknown state, so a waiting
   UNKNOWN shortens the interval to ``NOTIFY_URGENT_SECONDS`` (default 60): still one email,
   never a flood.
3. `claim` — one conditional UPDATE ``notified_at IS NULL → now, notified_via = claim:<id>``
   (committed at once): the rows carrying this claim id are this digest's. Two copiers never
   claim, hence never send, the same alert.
4. the email is sent outside any transaction and outside the copier's database thread
   (``EMAIL_TIMEOUT`` bounds it); `settle` then marks the alerts "email" — or, if sending
   failed, undoes the claim so that the next run retries them.

No secret is ever in an email: the alert texts are the copier's own, scrubbed once more by
`copytrade.lib.logging.scrub`; no credential, token or session is read here.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Max, Q

from accounts.models import Master
from copytrade.lib import clock
from copytrade.lib.logging import scrub
from trading.engine import jobs
from trading.models import Alert, AlertKind

if TYPE_CHECKING:
    from trading.engine.runner import Copier

logger = logging.getLogger("trading.engine.notify")

CHECK_SECONDS = 15.0
#: A claim this old was left by a copier that died before it sent or settled the digest.
CLAIM_STALE = timedelta(minutes=10)
#: At most this many alerts in one email (the rest go with the next digest).
MAX_PER_DIGEST = 200
CLAIM_PREFIX = "claim:"
VIA_EMAIL = "email"
VIA_NO_EMAIL = "no_email"
VIA_SHORT = "short"
URGENT = (AlertKind.UNKNOWN_ORDER,)
#: Order of the sections in an email (most urgent first).
SECTIONS = (
    AlertKind.UNKNOWN_ORDER,
    AlertKind.COPY_FAILED,
    AlertKind.FEED_LOST,
    AlertKind.NEEDS_LOGIN,
    AlertKind.DAILY_LOSS,
    AlertKind.EXIT_DELAYED,
    AlertKind.DRIFT,
)
SUBJECT = "[copytrade] {count} alert(s) for your followers: {summary}"


def digest_interval() -> timedelta:
    return timedelta(seconds=int(settings.NOTIFY_DIGEST_SECONDS))


def urgent_interval() -> timedelta:
    return timedelta(seconds=int(settings.NOTIFY_URGENT_SECONDS))


def feed_lost_after() -> timedelta:
    return timedelta(seconds=int(settings.NOTIFY_FEED_LOST_SECONDS))


# --- Which alerts may be sent -------------------------------------------------------------------
def sendable(now: datetime) -> Q:
    """Unsent alerts that may go out now: anything but a feed loss younger than the setting."""
    lasted = now - feed_lost_after()
    long_feed_loss = Q(resolved_at__isnull=True, created_at__lte=lasted) | Q(
        resolved_at__isnull=False, resolved_at__gte=F("created_at") + feed_lost_after()
    )
    return Q(notified_at__isnull=True) & (~Q(kind=AlertKind.FEED_LOST) | long_feed_loss)


def prepare(now: datetime) -> dict[str, int]:
    """Record what is never sent (no address, short feed loss); undo stale claims."""
    with transaction.atomic():
        short = Alert.objects.filter(
            notified_at__isnull=True,
            kind=AlertKind.FEED_LOST,
            resolved_at__isnull=False,
            resolved_at__lt=F("created_at") + feed_lost_after(),
        ).update(notified_at=now, notified_via=VIA_SHORT)
        no_address = Alert.objects.filter(sendable(now), master__user__email="")
        skipped = dict(no_address.values_list("master_id", "master__user__username").distinct())
        no_email = no_address.update(notified_at=now, notified_via=VIA_NO_EMAIL)
        stale = Alert.objects.filter(
            notified_via__startswith=CLAIM_PREFIX, notified_at__lt=now - CLAIM_STALE
        ).update(notified_at=None, notified_via="")
    for master_id, username in skipped.items():
        logger.warning(
            "alerts not emailed: the master has no email address",
            extra={"ctx": {"master": master_id, "username": username}},
        )
    return {"short": short, "no_email": no_email, "stale_claims": stale}


def due_masters(now: datetime) -> list[int]:
    """Masters with sendable alerts whose digest interval has passed."""
    waiting: dict[int, bool] = defaultdict(bool)
    for master_id, kind in (
        Alert.objects.filter(sendable(now)).values_list("master_id", "kind").distinct()
    ):
        waiting[master_id] |= kind in URGENT
    if not waiting:
        return []
    last = dict(
        Alert.objects.filter(master_id__in=list(waiting), notified_via=VIA_EMAIL)
        .values("master_id")
        .annotate(at=Max("notified_at"))
        .values_list("master_id", "at")
    )
    due = []
    for master_id, urgent in sorted(waiting.items()):
        sent_at = last.get(master_id)
        interval = urgent_interval() if urgent else digest_interval()
        if sent_at is None or now - sent_at >= min(interval, digest_interval()):
            due.append(master_id)
    return due


# --- One digest -------------------------------------------------------------------------------
@dataclass
class Digest:
    master_id: int
    claim: str
    to: str
    subject: str
    body: str
    alert_ids: list[int] = field(default_factory=list)


def claim(master_id: int, now: datetime) -> Digest | None:
    """Claim this master's sendable alerts for one digest (a committed conditional UPDATE);
    None if another copier claimed them first or nothing is left."""
    token = f"{CLAIM_PREFIX}{uuid.uuid4().hex[:24]}"
    with transaction.atomic():
        ids = list(
            Alert.objects.filter(sendable(now), master_id=master_id)
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)[:MAX_PER_DIGEST]
        )
        if not ids:
            return None
        Alert.objects.filter(pk__in=ids, notified_at__isnull=True).update(
            notified_at=now, notified_via=token
        )
    alerts = list(
        Alert.objects.filter(notified_via=token)
        .select_related("follower")
        .order_by("created_at", "pk")
    )
    if not alerts:
        return None
    master = Master.objects.select_related("user").get(pk=master_id)
    subject, body = render(master, alerts)
    return Digest(
        master_id=master_id,
        claim=token,
        to=master.user.email,
        subject=subject,
        body=body,
        alert_ids=[a.pk for a in alerts],
    )


def render(master: Master, alerts: list[Alert]) -> tuple[str, str]:
    """The email's subject and plain-text body: one section per kind, most urgent first."""
    by_kind: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_kind[alert.kind].append(alert)
    labels = dict(AlertKind.choices)
    order = [k.value for k in SECTIONS] + sorted(set(by_kind) - {k.value for k in SECTIONS})
    summary = ", ".join(
        f"{labels.get(k, k).lower()} ({len(by_kind[k])})" for k in order if k in by_kind
    )
    lines = [
        f"Hello {master.user.username},",
        "",
        f"copytrade has {len(alerts)} new alert(s) for you and your followers:",
    ]
    for kind in order:
        items = by_kind.get(kind)
        if not items:
            continue
        lines += ["", f"{labels.get(kind, kind)} ({len(items)})"]
        for alert in items:
            when = alert.created_at.astimezone(clock.IST).strftime("%d %b %H:%M:%S IST")
            who = alert.follower.display_name if alert.follower is not None else "your account"
            resolved = " (resolved since)" if alert.resolved_at is not None else ""
            lines.append(f"  - {when}  {who}: {alert.message}{resolved}")
    lines += [
        "",
        "Details are on your dashboard. You get at most one such email every "
        f"{int(digest_interval().total_seconds() // 60) or 1} minute(s).",
    ]
    subject = SUBJECT.format(count=len(alerts), summary=summary)
    return scrub(subject)[:200], scrub("\n".join(lines))


def send(digest: Digest) -> bool:
    """Send one digest (blocking network I/O: never inside a transaction). False on failure."""
    try:
        sent = EmailMessage(
            subject=digest.subject,
            body=digest.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[digest.to],
        ).send(fail_silently=False)
    except Exception as exc:  # any backend failure: the alerts are retried, never lost
        logger.warning(
            "alert digest not sent; will retry",
            extra={"ctx": {"master": digest.master_id, "error": scrub(str(exc))[:200]}},
        )
        return False
    return bool(sent)


def settle(digest: Digest, *, sent: bool, now: datetime) -> int:
    """After sending: mark the claimed alerts emailed, or undo the claim to retry them."""
    rows = Alert.objects.filter(pk__in=digest.alert_ids, notified_via=digest.claim)
    if sent:
        return rows.update(notified_via=VIA_EMAIL, notified_at=now)
    return rows.update(notified_via="", notified_at=None)


@jobs.periodic("notify", every=CHECK_SECONDS)
async def notify(copier: Copier) -> None:
    """Copier job: send each due master its digest."""
    now = clock.now()
    await copier.db(prepare, now)
    for master_id in await copier.db(due_masters, now):
        digest = await copier.db(claim, master_id, now)
        if digest is None:
            continue
        sent = await asyncio.to_thread(send, digest)
        await copier.db(settle, digest, sent=sent, now=clock.now())
        if sent:
            logger.info(
                "alert digest sent",
                extra={"ctx": {"master": master_id, "alerts": len(digest.alert_ids)}},
            )
