"""Send what the outbox holds: claim, send, record; retry with backoff; digests for bursts.

Delivery guarantee (alerts/README.md explains the choice): **at least once, with the duplicate
window shrunk to the instant between a channel's acknowledgement and one UPDATE**.

1. Claim: one conditional UPDATE turns a due alert into `sending`, counts the attempt and sets a
   lease (`next_attempt_at` = now + `lease_seconds`), committed before anything is sent. Two
   processes can never claim the same row.
2. Send on the channel.
3. Record, committed right away: `sent`; or, on failure, `pending` again with the next attempt
   at now + base × 2^(attempts−1) (capped), or `failed` after `max_attempts` (kept, and
   `tocsin alerts retry` puts it back).
A process killed between 1 and 3 leaves a `sending` row; once its lease runs out, the next run
claims it again. So no alert is lost. One is sent twice only if the kill lands after the
channel accepted it and before step 3 committed; every message carries a stable id (email
Message-ID, webhook `Idempotency-Key`) so that receivers can drop that repeat.

Bursts: when more than `digest_after` alerts wait on one channel, they are folded (in one
transaction) into a single digest alert, which is then sent like any other.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.message import DIGEST_KIND, AlertMessage, digest_message, message_from_alert
from alerts.notifiers import DeliveryError, send
from storage import queries
from storage.db import session_scope
from storage.models import Alert, AlertStatus
from storage.types import utcnow
from tocsin.config import AlertChannelConfig, Secrets, Settings, get_secrets

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0  # messages the channels accepted (a digest counts once)
    digests: int = 0  # digests formed in this run
    grouped: int = 0  # alerts folded into those digests
    retrying: int = 0  # failed attempts, to be tried again later
    failed: int = 0  # alerts that used their last attempt
    skipped: int = 0  # due alerts another process claimed first
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.retrying == 0 and self.failed == 0

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.digests:
            parts.append(f"{self.digests} digest(s) of {self.grouped} alerts")
        if self.retrying:
            parts.append(f"{self.retrying} to retry")
        if self.failed:
            parts.append(f"{self.failed} failed for good")
        if self.skipped:
            parts.append(f"{self.skipped} taken by another process")
        return ", ".join(parts)


def backoff(attempts: int, *, base_seconds: int, max_seconds: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2×base, 4×base, ... capped."""
    exponent = min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(base_seconds * 2**exponent, max_seconds))


KIND_NAMES = {
    "urgency": "critical posts",
    "buzz_risk": "high buzz risk",
    "sla_soon": "SLA due soon",
    "sla_breached": "SLA breached",
    "spike": "spikes",
    "incident": "incidents",
}


def digest_subject(kinds: list[str]) -> str:
    """ "7 Tocsin alerts: 4 critical posts, 3 SLA breached"."""
    counts = Counter(kinds)
    parts = [f"{n} {KIND_NAMES.get(kind, kind)}" for kind, n in counts.most_common()]
    return f"{len(kinds)} Tocsin alerts: " + ", ".join(parts)


def _burst_groups(channel: str, now: datetime, threshold: int) -> list[list[Alert]]:
    """Due alerts of one channel by audience (recipients), for the groups over the threshold.

    Alerts for different recipients never share a digest: nobody gets another rule's alerts.
    """
    with session_scope() as session:
        due = queries.alerts_by_ids(
            session, ids=queries.due_alert_ids(session, now=now, channel=channel)
        )
    groups: dict[tuple[str, ...], list[Alert]] = defaultdict(list)
    for alert in due:
        groupable = alert.status == AlertStatus.pending and alert.kind != DIGEST_KIND
        if alert.id is not None and groupable:
            groups[tuple(sorted(alert.recipients or []))].append(alert)
    return [group for group in groups.values() if len(group) > threshold]


def _form_digests(settings: Settings, now: datetime, report: DeliveryReport) -> None:
    threshold = settings.alerts.digest_after
    with session_scope() as session:
        counts = queries.due_pending_counts(session, now=now)
    for channel, count in sorted(counts.items()):
        if count <= threshold:
            continue
        for group in _burst_groups(channel, now, threshold):
            ids = [a.id for a in group if a.id is not None]
            with session_scope() as session:
                digest = Alert(
                    kind=DIGEST_KIND,
                    channel=channel,
                    dedup_key=f"digest:{ids[0]}-{ids[-1]}:{len(ids)}",
                    subject=digest_subject([a.kind for a in group]),
                    status=AlertStatus.pending,
                    next_attempt_at=now,
                    created_at=now,
                )
                grouped = queries.group_into_digest(session, member_ids=ids, digest=digest, now=now)
                if grouped is None:  # another sender took some of them meanwhile
                    session.rollback()
                    report.skipped += len(ids)
                    continue
            report.digests += 1
            report.grouped += len(ids)
            log.info("grouped %d alerts on %s into digest %s", len(ids), channel, digest.id)


def _message_for(alert: Alert) -> AlertMessage:
    if alert.kind != DIGEST_KIND:
        return message_from_alert(alert)
    assert alert.id is not None
    with session_scope() as session:
        members = queries.digest_members(session, digest_id=alert.id)
    return digest_message(alert, members)


def _deliver_one(
    alert_id: int,
    *,
    settings: Settings,
    secrets: Secrets,
    channels: dict[str, AlertChannelConfig],
    now: datetime,
    report: DeliveryReport,
) -> None:
    config = settings.alerts
    with session_scope() as session:
        alert = queries.claim_alert(
            session,
            alert_id=alert_id,
            now=now,
            lease_until=now + timedelta(seconds=config.lease_seconds),
        )
    if alert is None:
        report.skipped += 1
        return
    attempt = alert.attempts
    try:
        channel = channels.get(alert.channel)
        if channel is None:
            raise DeliveryError(f"channel {alert.channel!r} is not configured any more")
        send(channel, _message_for(alert), settings=settings, secrets=secrets)
    except DeliveryError as exc:
        _record_failure(alert, attempt, str(exc), settings=settings, now=now, report=report)
        return
    except Exception as exc:  # a bug or a malformed row must not stop the rest of the outbox
        log.exception("alert %s could not be sent", alert_id)
        error = f"internal error: {exc.__class__.__name__}: {exc}"
        _record_failure(alert, attempt, error, settings=settings, now=now, report=report)
        return
    with session_scope() as session:
        queries.finish_alert(
            session, alert_id=alert_id, attempt=attempt, status=AlertStatus.sent, now=now
        )
    report.sent += 1
    log.info("alert %s (%s) sent on %s", alert_id, alert.kind, alert.channel)


def _record_failure(
    alert: Alert,
    attempt: int,
    error: str,
    *,
    settings: Settings,
    now: datetime,
    report: DeliveryReport,
) -> None:
    config = settings.alerts
    assert alert.id is not None
    give_up = attempt >= config.max_attempts
    retry_at = None
    if not give_up:
        retry_at = now + backoff(
            attempt, base_seconds=config.retry_base_seconds, max_seconds=config.retry_max_seconds
        )
    with session_scope() as session:
        queries.finish_alert(
            session,
            alert_id=alert.id,
            attempt=attempt,
            status=AlertStatus.failed if give_up else AlertStatus.pending,
            now=now,
            next_attempt_at=retry_at,
            error=error[:MAX_ERROR_CHARS],
        )
    report.errors.append(f"alert {alert.id} on {alert.channel}: {error}")
    if give_up:
        report.failed += 1
        log.error(
            "alert %s on %s failed for good after %d attempts: %s",
            alert.id,
            alert.channel,
            attempt,
            error,
        )
    else:
        report.retrying += 1
        log.warning(
            "alert %s on %s failed (attempt %d), next try at %s: %s",
            alert.id,
            alert.channel,
            attempt,
            retry_at,
            error,
        )


def deliver_pending(
    *, settings: Settings, now: datetime | None = None, limit: int = 500
) -> DeliveryReport:
    """Send every due alert (at most `limit`), oldest first. Safe to run in several processes
    at once and to kill at any point."""
    moment = now or utcnow()
    report = DeliveryReport()
    secrets = get_secrets()
    channels = {c.name: c for c in settings.alerts.channels}
    _form_digests(settings, moment, report)
    with session_scope() as session:
        due = queries.due_alert_ids(session, now=moment, limit=limit)
    for alert_id in due:
        _deliver_one(
            alert_id,
            settings=settings,
            secrets=secrets,
            channels=channels,
            now=now or utcnow(),
            report=report,
        )
    return report
