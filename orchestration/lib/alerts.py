"""KPI anomaly alerts that reach people: nothing lost, nothing sent twice.

The anomaly mart is only useful if someone hears about a drop the day it happens, and alerting is only trusted
if it neither goes quiet when a receiver is down nor pages twice about the same thing. So alerting is an
outbox, not a fire-and-forget call:

1. `pending_anomalies` reads the published serving snapshot (never the DuckDB warehouse, which a run may hold)
   and keeps the KPI-level anomalies of the last `alert_lookback_days` KPI days.
2. `enqueue` records, in one SQLite transaction, every anomaly not seen before (alerted or suppressed), the
   grouped alert message and one pending delivery per configured sink.
3. `deliver` sends every due delivery and marks it delivered right after each send; a failure stays pending
   with exponential backoff and the error, without blocking the other sinks.

Guarantees and their one edge: an anomaly is alerted at most once (its identity is the outbox's primary key)
and a delivery a sink acknowledged is never repeated. Delivery is at-least-once, not exactly-once: a crash
between a successful send and the commit that records it sends that alert again to that sink on the next
attempt. Receivers can drop such a repeat: the webhook carries the alert id as `Idempotency-Key`, the e-mail
a `Message-ID` derived from it, and every alerts.log line the alert id.

Breakdown rows (dimension other than "all") are context: when their KPI is flagged on the same day they are
listed under it. When it is not, a breakdown row is alerted as a line of its own only with
`alert_breakdowns` on (a segment that breaks while the total looks normal, such as a mobile-only checkout
failure, then reaches someone); it is off by default because sparse segments are noisier than the KPIs.

Suppression: a new anomaly of a series (metric, dimension, segment, direction) that was alerted less than
`alert_suppress_hours` ago is recorded as suppressed and does not page; the next alert that goes out counts
the suppressed anomalies recorded since the previous one ("3 more suppressed"), so the repeat is visible
without a second page. Several new anomalies of one series found in the same evaluation share its alert.
"""

from __future__ import annotations

import hashlib
import json
import math
import smtplib
import sqlite3
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from orchestration.lib.serving import current_dir, read_status, stale_message
from orchestration.lib.settings import Settings

ANOMALY_MART = "kpi_anomalies"
# The Dagster asset that produces the anomalies: the "where to look" link of every alert.
ANOMALY_ASSET_PATH = "kpi_anomalies"
WEBHOOK_TIMEOUT_S = 10.0
SMTP_TIMEOUT_S = 10.0
BACKOFF_MAX_MINUTES = 60
# A delivery being sent is leased for this long, so two evaluators never send it at once and a crash in the
# middle of a send makes it due again afterwards.
SEND_LEASE = timedelta(minutes=5)
# Slack rejects messages with more than 50 blocks; the plain text and the structured field keep every line.
MAX_BLOCK_ANOMALIES = 40
MAX_SUBJECT_ITEMS = 4
MAX_BREAKDOWN = 5
# Breakdowns alerted on their own even when their KPI is in its band.
OWN_LINE_DIMENSIONS = ("topic",)


@dataclass(frozen=True)
class Anomaly:
    """One flagged (metric, dimension, segment, date) from `kpi_anomalies`, with its breakdown context."""

    metric: str
    dimension: str
    segment: str
    date: date
    direction: str
    value: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None
    volume: float | None = None
    drilldown_dimension: str | None = None
    drilldown_segment: str | None = None
    drilldown: str | None = None
    breakdown: tuple[Anomaly, ...] = ()

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        return (self.metric, self.dimension, self.segment, self.date.isoformat(), self.direction)

    @property
    def key(self) -> str:
        return "|".join(self.identity)

    @property
    def series(self) -> tuple[str, str, str, str]:
        """What suppression groups by: the same KPI (or segment) moving the same way on another day."""
        return (self.metric, self.dimension, self.segment, self.direction)

    @property
    def label(self) -> str:
        where = "" if self.dimension == "all" else f"[{self.dimension}={self.segment}]"
        return f"{self.metric}{where} {self.direction}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["date"] = self.date.isoformat()
        data["breakdown"] = [b.to_dict() for b in self.breakdown]
        return data


@dataclass(frozen=True)
class Alert:
    """A grouped alert as stored in the outbox: every sink renders from this, so a retry days later sends
    the same content even if the snapshot has moved on."""

    alert_id: str
    created_at: str
    subject: str
    text: str
    data: dict[str, Any]

    def webhook_payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": _slack_blocks(self), "cxloop": self.data}


@dataclass
class EvaluationReport:
    snapshot_id: str | None = None
    new: int = 0
    suppressed: int = 0
    alerts_enqueued: int = 0
    alert_id: str | None = None
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    pending: int = 0
    alerts_delivered: int = 0

    def summary(self) -> str:
        """One line for a sensor's skip reason, e.g. "2 new anomalies: 1 alert sent to log, webhook; 0 pending"."""
        head = f"{self.new} new anomal{'y' if self.new == 1 else 'ies'}"
        if self.suppressed:
            head += f" ({self.suppressed} suppressed)"
        if self.snapshot_id is None and not self.new:
            head = "no published kpi_anomalies snapshot"
        parts: list[str] = []
        if self.delivered:
            sent = self.alerts_delivered
            parts.append(f"{sent} alert{'s' if sent != 1 else ''} sent to {', '.join(sorted(self.delivered))}")
        elif self.alerts_enqueued:
            parts.append(f"{self.alerts_enqueued} alert enqueued")
        for sink in sorted(self.failed):
            parts.append(f"{sink} failed: {self.errors.get(sink, 'unknown error')}")
        parts.append(f"{self.pending} pending")
        return f"{head}: {'; '.join(parts)}"


def _float(value: Any) -> float | None:
    if value is None:
        return None
    # Decimal columns (revenue, AOV) arrive as Decimal; NaN means "no value" as much as null does.
    number = float(value)
    return None if math.isnan(number) else number


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _row_anomaly(row: dict[str, Any]) -> Anomaly:
    return Anomaly(
        metric=str(row["metric"]), dimension=str(row.get("dimension") or "all"),
        segment=str(row.get("segment") or "all"), date=_date(row["date"]), direction=str(row["direction"]),
        value=_float(row.get("value")), expected=_float(row.get("expected")), lower=_float(row.get("lower")),
        upper=_float(row.get("upper")), score=_float(row.get("score")), volume=_float(row.get("volume")),
        drilldown_dimension=_text(row.get("drilldown_dimension")),
        drilldown_segment=_text(row.get("drilldown_segment")), drilldown=_text(row.get("drilldown")),
    )


def _severity(a: Anomaly) -> float:
    return abs(a.score) if a.score is not None else 0.0


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str | None
    published_at: str | None
    anomalies: list[Anomaly]


def read_snapshot(settings: Settings) -> Snapshot | None:
    """The anomalies of the published snapshot worth alerting about, or None without a published mart.

    `current` is resolved once, so the manifest and both marts come from one snapshot even if a publish
    swaps the link while this reads.
    """
    link = current_dir(settings)
    if not link.exists():
        return None
    folder = link.resolve()
    anomalies_path = folder / f"{ANOMALY_MART}.parquet"
    if not anomalies_path.exists():
        return None
    manifest_path = folder / "_snapshot.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    rows = [_row_anomaly(r) for r in pq.read_table(anomalies_path).to_pylist()]
    if not rows:
        return Snapshot(manifest.get("snapshot_id", folder.name), manifest.get("published_at"), [])

    # The window ends at the latest KPI day, not today: a late build still alerts, and a first build over a
    # year of history pages nobody about last year.
    kpi_path = folder / "kpi_daily.parquet"
    dates = pq.read_table(kpi_path, columns=["date"]).column("date").to_pylist() if kpi_path.exists() else []
    latest = max((_date(d) for d in dates if d is not None), default=None) or max(r.date for r in rows)
    first = latest - timedelta(days=max(settings.alert_lookback_days, 1) - 1)
    recent = [r for r in rows if first <= r.date <= latest]

    flagged = {(r.metric, r.date) for r in recent if r.dimension == "all"}
    context: dict[tuple[str, date], list[Anomaly]] = {}
    selected: list[Anomaly] = []
    for r in recent:
        if r.dimension == "all":
            selected.append(r)
        elif (r.metric, r.date) in flagged:
            context.setdefault((r.metric, r.date), []).append(r)
        elif settings.alert_breakdowns or r.dimension in OWN_LINE_DIMENSIONS:
            # A segment that breaks while its KPI looks normal: its own line, when asked for. Off by default:
            # sparse segments (a small channel's revenue) are noisier than the KPIs the defaults are tuned on.
            # A topic is always its own line: a complaint that grows is news even when total volume is not.
            selected.append(r)
    out: list[Anomaly] = []
    for r in selected:
        extra = sorted(context.get((r.metric, r.date), []), key=_severity, reverse=True)[:MAX_BREAKDOWN]
        out.append(replace(r, breakdown=tuple(extra)) if extra else r)
    out.sort(key=lambda a: (-a.date.toordinal(), a.dimension != "all", -_severity(a), a.metric, a.segment))
    return Snapshot(manifest.get("snapshot_id", folder.name), manifest.get("published_at"), out)


def pending_anomalies(settings: Settings) -> list[Anomaly]:
    """The KPI anomalies of the published snapshot within the lookback window (alerted before or not)."""
    snapshot = read_snapshot(settings)
    return snapshot.anomalies if snapshot else []


SCHEMA = """
create table if not exists anomalies (
    anomaly_key   text primary key,          -- metric|dimension|segment|date|direction
    metric        text not null,
    dimension     text not null,
    segment       text not null,
    date          text not null,
    direction     text not null,
    status        text not null check (status in ('alerted', 'suppressed')),
    alert_id      text,                      -- alerted: the alert carrying it; suppressed: the one counting it
    suppressed_by text,                      -- suppressed: the earlier alert about the same series
    snapshot_id   text,
    recorded_at   text not null,
    anomaly       text not null              -- the row as JSON
);
create index if not exists anomalies_series
    on anomalies (metric, dimension, segment, direction, status, recorded_at);
create table if not exists alerts (
    alert_id      text primary key,
    created_at    text not null,
    snapshot_id   text,
    subject       text not null,
    text          text not null,
    data          text not null
);
create table if not exists deliveries (
    alert_id        text not null references alerts (alert_id),
    sink            text not null,
    status          text not null check (status in ('pending', 'delivered')),
    attempts        integer not null default 0,
    last_error      text,
    next_attempt_at text not null,
    delivered_at    text,
    primary key (alert_id, sink)
);
create index if not exists deliveries_due on deliveries (status, next_attempt_at);
create table if not exists notices (
    notice_key    text primary key,          -- stale:<run id of the build that did not publish>
    alert_id      text not null,
    recorded_at   text not null
);
"""


def outbox_path(settings: Settings) -> Path:
    return settings.alerts_dir / "outbox.sqlite"


@contextmanager
def outbox(settings: Settings) -> Iterator[sqlite3.Connection]:
    """The outbox database, created on demand; autocommit, so every write names its own transaction."""
    path = outbox_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        con.row_factory = sqlite3.Row
        con.execute("pragma journal_mode=wal")
        # WAL's default NORMAL can lose the last commits on power loss; an acknowledged alert must stay so.
        con.execute("pragma synchronous=full")
        con.executescript(SCHEMA)
        yield con
    finally:
        con.close()


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def _ts(moment: datetime) -> str:
    # Fixed width, so timestamps compare correctly as text in SQL.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def alert_id_for(anomalies: Sequence[Anomaly], notice_key: str | None = None) -> str:
    """A digest of the anomaly identities (and of the stale-snapshot notice it carries): re-evaluating the same
    snapshot yields the same alert id."""
    keys = sorted(a.key for a in anomalies) + ([notice_key] if notice_key else [])
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    return f"{'kpi' if anomalies else 'stale'}-{digest[:20]}"


def stale_notice(settings: Settings) -> tuple[str, str] | None:
    """(key, message) when the last build did not publish: the next alert says readers are on old data."""
    status = read_status(settings)
    if not status or status.get("state") != "stale":
        return None
    return f"stale:{status['failed_run_id']}", stale_message(status)


@dataclass
class Enqueued:
    new: int = 0
    suppressed: int = 0
    alert_id: str | None = None


def enqueue(settings: Settings, sinks: Sequence[Sink], now: datetime | None = None,
            snapshot: Snapshot | None = None) -> Enqueued:
    """Record the snapshot's new anomalies and, if any page, one grouped alert with a delivery per sink.

    One immediate transaction: either all of it is recorded or none, and two evaluators cannot both take the
    same anomaly for new.
    """
    moment = _utc(now)
    snapshot = snapshot if snapshot is not None else read_snapshot(settings)
    result = Enqueued()
    notice = stale_notice(settings)
    if (snapshot is None or not snapshot.anomalies) and notice is None:
        return result
    snapshot = snapshot or Snapshot(None, None, [])
    window = timedelta(hours=settings.alert_suppress_hours)
    with outbox(settings) as con:
        con.execute("begin immediate")
        try:
            if notice and con.execute("select 1 from notices where notice_key = ?", (notice[0],)).fetchone():
                notice = None
            fresh = [a for a in snapshot.anomalies if not con.execute(
                "select 1 from anomalies where anomaly_key = ?", (a.key,)).fetchone()]
            to_alert: list[Anomaly] = []
            suppressed: list[tuple[Anomaly, str]] = []
            for a in fresh:
                last = con.execute(
                    "select alert_id, recorded_at from anomalies where metric = ? and dimension = ? "
                    "and segment = ? and direction = ? and status = 'alerted' order by recorded_at desc limit 1",
                    a.series).fetchone()
                if last and datetime.fromisoformat(last["recorded_at"]) > moment - window:
                    suppressed.append((a, last["alert_id"]))
                else:
                    to_alert.append(a)
            result.new, result.suppressed = len(fresh), len(suppressed)
            stamp = _ts(moment)
            alert_id = alert_id_for(to_alert, notice[0] if notice else None) if to_alert or notice else None
            for a, by in suppressed:
                con.execute(
                    "insert or ignore into anomalies values (?, ?, ?, ?, ?, ?, 'suppressed', null, ?, ?, ?, ?)",
                    (a.key, *a.identity, by, snapshot.snapshot_id, stamp, json.dumps(a.to_dict())))
            if alert_id:
                for a in to_alert:
                    con.execute(
                        "insert or ignore into anomalies values (?, ?, ?, ?, ?, ?, 'alerted', ?, null, ?, ?, ?)",
                        (a.key, *a.identity, alert_id, snapshot.snapshot_id, stamp, json.dumps(a.to_dict())))
                # Every suppression since the previous alert, this evaluation's included, is counted here.
                held = [r["anomaly_key"] for r in con.execute(
                    "select anomaly_key from anomalies where status = 'suppressed' and alert_id is null "
                    "order by recorded_at, anomaly_key")]
                con.execute("update anomalies set alert_id = ? where status = 'suppressed' and alert_id is null",
                            (alert_id,))
                alert = compose(settings, alert_id, stamp, snapshot, to_alert, held,
                                notice=notice[1] if notice else None)
                if notice:
                    con.execute("insert or ignore into notices values (?, ?, ?)", (notice[0], alert_id, stamp))
                con.execute("insert or ignore into alerts values (?, ?, ?, ?, ?, ?)",
                            (alert.alert_id, alert.created_at, snapshot.snapshot_id, alert.subject, alert.text,
                             json.dumps(alert.data)))
                for sink in sinks:
                    con.execute("insert or ignore into deliveries (alert_id, sink, status, next_attempt_at) "
                                "values (?, ?, 'pending', ?)", (alert_id, sink.name, stamp))
                result.alert_id = alert_id
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return result


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), BACKOFF_MAX_MINUTES))


@dataclass
class Delivered:
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)


def deliver(settings: Settings, sinks: Sequence[Sink], now: datetime | None = None) -> Delivered:
    """Send every due pending delivery to its sink, committing each outcome right after the send.

    Each delivery is first leased (a committed update that only one evaluator can win), then sent, then marked
    delivered or given back with backoff and its error. A sink that fails is not tried again in this round,
    so a receiver that times out costs one timeout per tick, and the other sinks go on regardless.
    Deliveries for a sink that is no longer configured stay pending in the outbox.
    """
    moment = _utc(now)
    stamp = _ts(moment)
    by_name = {s.name: s for s in sinks}
    out = Delivered()
    with outbox(settings) as con:
        due = con.execute(
            "select d.alert_id, d.sink, d.attempts, a.created_at, a.subject, a.text, a.data from deliveries d "
            "join alerts a using (alert_id) where d.status = 'pending' and d.next_attempt_at <= ? "
            "order by a.created_at, d.alert_id, d.sink", (stamp,)).fetchall()
        for row in due:
            sink = by_name.get(row["sink"])
            if sink is None or sink.name in out.failed:
                continue
            claimed = con.execute(
                "update deliveries set attempts = attempts + 1, next_attempt_at = ? where alert_id = ? and "
                "sink = ? and status = 'pending' and next_attempt_at <= ?",
                (_ts(moment + SEND_LEASE), row["alert_id"], row["sink"], stamp)).rowcount
            if not claimed:
                continue
            alert = Alert(row["alert_id"], row["created_at"], row["subject"], row["text"], json.loads(row["data"]))
            try:
                sink.send(alert)
            except Exception as exc:  # noqa: BLE001 - any sink failure is recorded and retried, never raised
                error = (str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}")[:500]
                con.execute("update deliveries set last_error = ?, next_attempt_at = ? where alert_id = ? and "
                            "sink = ?", (error, _ts(moment + _backoff(row["attempts"] + 1)), alert.alert_id,
                                         sink.name))
                out.failed[sink.name] = out.failed.get(sink.name, 0) + 1
                out.errors[sink.name] = error
                continue
            con.execute("update deliveries set status = 'delivered', delivered_at = ?, last_error = null "
                        "where alert_id = ? and sink = ?", (stamp, alert.alert_id, sink.name))
            out.delivered[sink.name] = out.delivered.get(sink.name, 0) + 1
            out.alerts.add(alert.alert_id)
    return out


def pending_count(settings: Settings) -> int:
    with outbox(settings) as con:
        return con.execute("select count(*) from deliveries where status = 'pending'").fetchone()[0]


def evaluate(settings: Settings, now: datetime | None = None, sinks: Sequence[Sink] | None = None
             ) -> EvaluationReport:
    """Read the published anomalies, enqueue the grouped alert if any page, deliver everything due.

    `now` is the evaluation time for suppression and backoff (default: the clock); pending deliveries are
    retried even when no snapshot is published.
    """
    moment = _utc(now)
    sinks = list(sinks) if sinks is not None else sinks_from_settings(settings)
    snapshot = read_snapshot(settings)
    report = EvaluationReport(snapshot_id=snapshot.snapshot_id if snapshot else None)
    if snapshot is not None or stale_notice(settings) is not None:
        queued = enqueue(settings, sinks, moment, snapshot)
        report.new, report.suppressed, report.alert_id = queued.new, queued.suppressed, queued.alert_id
        report.alerts_enqueued = 1 if queued.alert_id else 0
    if snapshot is None and not outbox_path(settings).exists():
        return report
    sent = deliver(settings, sinks, moment)
    report.delivered, report.failed, report.errors = sent.delivered, sent.failed, sent.errors
    report.alerts_delivered = len(sent.alerts)
    report.pending = pending_count(settings)
    return report


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _line(a: Anomaly) -> str:
    score = f", score {a.score:+.1f}" if a.score is not None else ""
    return (f"{a.label} on {a.date.isoformat()}: {_fmt(a.value)} vs {_fmt(a.expected)} expected "
            f"(band [{_fmt(a.lower)}, {_fmt(a.upper)}]){score}")


def _details(a: Anomaly) -> list[str]:
    lines = []
    if a.drilldown:
        lines.append(f"drill-down: {a.drilldown}")
    for b in a.breakdown:
        lines.append(f"{b.dimension}={b.segment} {b.direction}: {_fmt(b.value)} vs {_fmt(b.expected)} expected")
    return lines


def compose(settings: Settings, alert_id: str, created_at: str, snapshot: Snapshot, anomalies: Sequence[Anomaly],
            suppressed: Sequence[str] = (), notice: str | None = None) -> Alert:
    """The grouped message: one line per anomaly plus where to look, as subject, plain text and data.

    `notice` says the last build did not publish (readers are on an older snapshot); it leads the message.
    """
    labels = list(dict.fromkeys(a.label for a in anomalies))
    listed = ", ".join(labels[:MAX_SUBJECT_ITEMS]) + (f" +{len(labels) - MAX_SUBJECT_ITEMS} more"
                                                     if len(labels) > MAX_SUBJECT_ITEMS else "")
    n = len(anomalies)
    if n:
        subject = f"[cxloop] {n} KPI anomal{'y' if n == 1 else 'ies'}: {listed}"
        if notice:
            subject += " (serving snapshot not updated)"
    else:
        subject = "[cxloop] serving snapshot not updated: the last build did not publish"
    dagster_url = f"{settings.dagster_ui_url}/assets/{ANOMALY_ASSET_PATH}"
    report = settings.reports_dir / "latest.html"
    report_path = str(report) if report.exists() else None
    lines = [subject, ""] + ([notice, ""] if notice else [])
    for a in anomalies:
        lines.append(f"- {_line(a)}")
        lines.extend(f"    {d}" for d in _details(a))
    if suppressed:
        lines += ["", f"{len(suppressed)} more suppressed (same KPI and direction alerted within "
                      f"{settings.alert_suppress_hours:g} h): {', '.join(suppressed)}"]
    lines += ["", f"Dagster: {dagster_url}", f"Report: {report_path or 'not generated yet'}",
              f"Snapshot: {snapshot.snapshot_id or 'none published'}" + (f" (published {snapshot.published_at})"
                                                     if snapshot.published_at else ""),
              f"Alert: {alert_id}"]
    data = {
        "alert_id": alert_id, "created_at": created_at, "snapshot_id": snapshot.snapshot_id,
        "published_at": snapshot.published_at, "dagster_url": dagster_url, "report_path": report_path,
        "anomalies": [a.to_dict() for a in anomalies], "suppressed": list(suppressed), "notice": notice,
    }
    return Alert(alert_id, created_at, subject, "\n".join(lines), data)


def _slack_blocks(alert: Alert) -> list[dict[str, Any]]:
    anomalies = [_anomaly_from_dict(d) for d in alert.data["anomalies"]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.subject[:150]}}]
    if alert.data.get("notice"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {alert.data['notice']}"}})
    for a in anomalies[:MAX_BLOCK_ANOMALIES]:
        body = "\n".join([f"*{_line(a)}*", *(f"> {d}" for d in _details(a))])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}})
    if len(anomalies) > MAX_BLOCK_ANOMALIES:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"…and {len(anomalies) - MAX_BLOCK_ANOMALIES} more (see the text)"}})
    if alert.data.get("suppressed"):
        blocks.append({"type": "context", "elements": [{
            "type": "mrkdwn", "text": f"{len(alert.data['suppressed'])} more suppressed (recently alerted)"}]})
    where = [f"<{alert.data['dagster_url']}|Dagster asset>",
             f"report `{alert.data['report_path']}`" if alert.data.get("report_path") else "no report yet",
             f"snapshot `{alert.data['snapshot_id']}`", f"alert `{alert.alert_id}`"]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(where)}]})
    return blocks


def _anomaly_from_dict(data: dict[str, Any]) -> Anomaly:
    fields = {**data, "date": date.fromisoformat(data["date"]),
              "breakdown": tuple(_anomaly_from_dict(b) for b in data.get("breakdown") or ())}
    return Anomaly(**fields)


class DeliveryError(Exception):
    """A receiver refused or could not be reached; its message is safe to show (no URL, no secret)."""


class Sink(Protocol):
    """Where an alert goes; `send` returns once the receiver acknowledged it and raises otherwise."""

    name: str

    def send(self, alert: Alert) -> None: ...


class WebhookSink:
    """A Slack-compatible incoming webhook (any receiver that takes `{"text", "blocks"}` JSON)."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = WEBHOOK_TIMEOUT_S) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(alert.webhook_payload()).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": alert.alert_id,
                     "User-Agent": "cxloop-alerts"})
        # Errors name the status or the socket failure but never the URL, which often embeds a secret token.
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise DeliveryError(f"webhook unreachable: {exc.reason}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered HTTP {status}")


class EmailSink:
    """Plain-text e-mail over SMTP, with optional STARTTLS and login."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], user: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = SMTP_TIMEOUT_S) -> None:
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(datetime.fromisoformat(alert.created_at))
        # Stable across resends, so a mail system (or a person) can recognise a repeat.
        msg["Message-ID"] = f"<{alert.alert_id}@cxloop>"
        msg["X-Cxloop-Alert-Id"] = alert.alert_id
        msg.set_content(alert.text)
        return msg

    def send(self, alert: Alert) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(alert))


class LogSink:
    """One JSON line per alert in `<alerts_dir>/alerts.log`: the record that exists even with no receiver."""

    name = "log"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"alert_id": alert.alert_id, "created_at": alert.created_at, "subject": alert.subject,
                           "text": alert.text, "cxloop": alert.data})
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def sinks_from_settings(settings: Settings) -> list[Sink]:
    sinks: list[Sink] = [LogSink(settings.alerts_dir / "alerts.log")]
    if settings.alert_webhook_url:
        sinks.append(WebhookSink(settings.alert_webhook_url))
    if settings.smtp_host and settings.alert_email_to:
        sinks.append(EmailSink(settings.smtp_host, settings.smtp_port, settings.alert_email_from,
                               settings.alert_email_to, settings.smtp_user, settings.smtp_password,
                               settings.smtp_starttls))
    return sinks
