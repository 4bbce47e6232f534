"""KPI anomaly alerts against a real webhook receiver, a real SMTP server and a published snapshot."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiosmtpd.controller import Controller

from orchestration.defs.kpis.sensors import build_kpi_anomaly_alert_sensor, kpi_anomaly_alert_sensor
from orchestration.lib.alerts import enqueue, evaluate, outbox_path, pending_anomalies, sinks_from_settings
from orchestration.lib.settings import Settings, get_settings

LATEST = date(2026, 3, 14)
ANOMALY_SCHEMA = pa.schema([
    ("date", pa.date32()), ("metric", pa.string()), ("dimension", pa.string()), ("segment", pa.string()),
    ("value", pa.float64()), ("expected", pa.float64()), ("lower", pa.float64()), ("upper", pa.float64()),
    ("score", pa.float64()), ("direction", pa.string()), ("volume", pa.float64()),
    ("drilldown_dimension", pa.string()), ("drilldown_segment", pa.string()), ("drilldown", pa.string()),
])


def anomaly(metric: str, day: date, direction: str = "drop", dimension: str = "all", segment: str = "all",
            value: float = 812.0, expected: float = 1204.0, drilldown: str | None = None) -> dict:
    spread = expected * 0.1
    return {"date": day, "metric": metric, "dimension": dimension, "segment": segment, "value": value,
            "expected": expected, "lower": expected - spread, "upper": expected + spread,
            "score": (value - expected) / (spread / 2), "direction": direction, "volume": 5000.0,
            "drilldown_dimension": "channel" if drilldown else None,
            "drilldown_segment": "mobile" if drilldown else None, "drilldown": drilldown}


SESSIONS = anomaly("sessions", LATEST, drilldown="channel=mobile: 42 vs 118 expected (-64%), 71% of the move")
SESSIONS_MOBILE = anomaly("sessions", LATEST, dimension="channel", segment="mobile", value=42.0, expected=118.0)
PAYMENTS = anomaly("payment_success_rate", LATEST - timedelta(days=1), value=0.81, expected=0.95)


def publish(settings: Settings, snapshot_id: str, rows: list[dict], latest: date = LATEST) -> None:
    """A published snapshot as `publish_snapshot` leaves it: a folder of marts and `current` swapped to it."""
    folder = settings.serving_dir / "snapshots" / snapshot_id
    folder.mkdir(parents=True)
    days = [latest - timedelta(days=i) for i in range(400)]
    pq.write_table(pa.table({"date": pa.array(days, pa.date32()), "sessions": list(range(400))}),
                   folder / "kpi_daily.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=ANOMALY_SCHEMA), folder / "kpi_anomalies.parquet")
    (folder / "_snapshot.json").write_text(json.dumps({
        "snapshot_id": snapshot_id, "published_at": datetime.now(timezone.utc).isoformat(),
        "row_counts": {"kpi_daily": len(days), "kpi_anomalies": len(rows)}}))
    tmp = settings.serving_dir / ".current.test"
    tmp.symlink_to(folder.relative_to(settings.serving_dir), target_is_directory=True)
    os.replace(tmp, settings.serving_dir / "current")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """A webhook receiver on 127.0.0.1 that records every request and the status it answered."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.requests: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cx"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "json": json.loads(body),
                                          "status": receiver.status})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def accepted(self) -> list[dict]:
        return [r for r in self.requests if 200 <= r["status"] < 300]


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def alerting(cx: Settings, webhook: Webhook, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CXLOOP_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("CXLOOP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CXLOOP_SMTP_PORT", str(mailbox.port))
    monkeypatch.setenv("CXLOOP_ALERT_EMAIL_TO", "oncall@example.com, cx-team@example.com")
    return get_settings()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One ephemeral instance for the module: creating one costs more than a second, and the sensor keeps no
    state in it (its state is the outbox)."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


Tick = Callable[..., str]


@pytest.fixture
def tick(instance: dg.DagsterInstance) -> Tick:
    """Evaluate the alert sensor (or one built with another clock) as the daemon would; its skip reason."""

    def run(sensor: dg.SensorDefinition = kpi_anomaly_alert_sensor) -> str:
        result = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SkipReason)
        return result.skip_message

    return run


def at(moment: datetime) -> dg.SensorDefinition:
    """The alert sensor evaluated at a later time, for backoff and suppression windows."""
    return build_kpi_anomaly_alert_sensor(clock=lambda: moment)


def log_lines(settings: Settings) -> list[dict]:
    path = settings.alerts_dir / "alerts.log"
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def outbox_rows(settings: Settings, sql: str) -> list[dict]:
    with closing(sqlite3.connect(outbox_path(settings))) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql)]


def test_no_snapshot_is_a_skip(tick: Tick, alerting: Settings, webhook: Webhook):
    assert tick().startswith("no published kpi_anomalies snapshot")
    assert not webhook.requests and not outbox_path(alerting).exists()


def test_one_grouped_alert_reaches_webhook_email_and_log(
        tick: Tick, alerting: Settings, webhook: Webhook, mailbox: Mailbox):
    publish(alerting, "s1", [SESSIONS, SESSIONS_MOBILE, PAYMENTS])
    reason = tick()
    assert reason == "2 new anomalies: 1 alert sent to email, log, webhook; 0 pending"

    [request] = webhook.requests
    body = request["json"]
    alert_id = body["cxloop"]["alert_id"]
    assert request["headers"]["Idempotency-Key"] == alert_id
    assert body["blocks"][0]["type"] == "header"
    by_metric = {a["metric"]: a for a in body["cxloop"]["anomalies"]}
    assert set(by_metric) == {"sessions", "payment_success_rate"}
    for sent, source in ((by_metric["sessions"], SESSIONS), (by_metric["payment_success_rate"], PAYMENTS)):
        for column in ("value", "expected", "lower", "upper", "direction", "score"):
            assert sent[column] == source[column]
    # The breakdown row is context of its flagged KPI, not an alert of its own.
    assert [b["segment"] for b in by_metric["sessions"]["breakdown"]] == ["mobile"]
    dagster_url = "http://127.0.0.1:3000/assets/kpi_anomalies"
    assert body["cxloop"]["dagster_url"] == dagster_url and dagster_url in body["text"]
    assert "71% of the move" in body["text"] and "band [1,084, 1,324]" in body["text"]
    assert body["cxloop"]["snapshot_id"] == "s1" and "Snapshot: s1" in body["text"]

    [message] = mailbox.messages
    assert message["Subject"] == "[cxloop] 2 KPI anomalies: sessions drop, payment_success_rate drop"
    assert message["Message-ID"] == f"<{alert_id}@cxloop>"
    assert message["To"] == "oncall@example.com, cx-team@example.com"
    text = message.get_content()
    assert "sessions drop on 2026-03-14" in text and "payment_success_rate drop on 2026-03-13" in text
    assert dagster_url in text

    [line] = log_lines(alerting)
    assert line["alert_id"] == alert_id and line["subject"] == message["Subject"]


def test_a_topic_that_jumps_is_alerted_on_its_own_while_other_breakdowns_wait_for_their_kpi(
        tick: Tick, alerting: Settings, webhook: Webhook):
    topic = anomaly("texts", LATEST, direction="spike", dimension="topic", segment="payment / card / declined",
                    value=19.0, expected=3.0)
    publish(alerting, "s1", [topic, SESSIONS_MOBILE])
    assert tick().startswith("1 new anomaly: 1 alert sent")
    [request] = webhook.requests
    [sent] = request["json"]["cxloop"]["anomalies"]
    assert (sent["metric"], sent["dimension"], sent["segment"]) == ("texts", "topic", "payment / card / declined")
    assert "texts[topic=payment / card / declined] spike" in request["json"]["text"]


def test_a_second_tick_on_the_same_snapshot_sends_nothing(
        tick: Tick, alerting: Settings, webhook: Webhook, mailbox: Mailbox):
    publish(alerting, "s1", [SESSIONS, PAYMENTS])
    tick()
    assert tick() == "0 new anomalies: 0 pending"
    later = datetime.now(timezone.utc) + timedelta(days=3)  # past any window: identities never page twice
    assert tick(at(later)) == "0 new anomalies: 0 pending"
    assert len(webhook.requests) == 1 and len(mailbox.messages) == 1 and len(log_lines(alerting)) == 1


def test_anomalies_outside_the_lookback_window_are_not_sent(tick: Tick, alerting: Settings, webhook: Webhook,
                                                           monkeypatch: pytest.MonkeyPatch):
    recent = anomaly("orders", LATEST - timedelta(days=2))
    rows = [anomaly("orders", LATEST - timedelta(days=3)), anomaly("sessions", LATEST - timedelta(days=30)),
            anomaly("revenue_usd", LATEST - timedelta(days=360)), recent,
            # A segment that breaks while its KPI looks normal: its own line once breakdown alerts are on.
            anomaly("tickets", LATEST, "spike", dimension="channel", segment="email", value=90, expected=30)]
    publish(alerting, "s1", rows)
    assert [(a.metric, a.date) for a in pending_anomalies(alerting)] == [("orders", LATEST - timedelta(days=2))]
    monkeypatch.setenv("CXLOOP_ALERT_BREAKDOWNS", "true")
    alerting = get_settings()
    assert [(a.metric, a.date) for a in pending_anomalies(alerting)] == [
        ("tickets", LATEST), ("orders", LATEST - timedelta(days=2))]

    assert tick().startswith("2 new anomalies: 1 alert sent")
    [request] = webhook.requests
    sent = [(a["metric"], a["date"]) for a in request["json"]["cxloop"]["anomalies"]]
    assert sent == [("tickets", "2026-03-14"), ("orders", "2026-03-12")]
    assert "tickets[channel=email] spike" in request["json"]["text"]


@pytest.mark.parametrize("outage", ["http_500", "server_down"])
def test_a_failing_webhook_stays_pending_and_is_delivered_once_after_recovery(
        tick: Tick, alerting: Settings, webhook: Webhook, mailbox: Mailbox, outage: str):
    publish(alerting, "s1", [SESSIONS, PAYMENTS])
    if outage == "http_500":
        webhook.status = 500
    else:
        webhook.stop()
    start = datetime.now(timezone.utc)

    reason = tick()
    error = "webhook answered HTTP 500" if outage == "http_500" else "webhook unreachable:"
    assert reason.startswith(f"2 new anomalies: 1 alert sent to email, log; webhook failed: {error}")
    assert reason.endswith("; 1 pending")
    assert len(mailbox.messages) == 1 and len(log_lines(alerting)) == 1
    [row] = outbox_rows(alerting, "select * from deliveries where sink = 'webhook'")
    assert row["status"] == "pending" and row["attempts"] == 1 and row["delivered_at"] is None
    assert row["last_error"].startswith(error)
    assert datetime.fromisoformat(row["next_attempt_at"]) >= start + timedelta(minutes=1)

    webhook.status = 200
    if outage == "server_down":
        webhook.start()
    # The receiver is back, but the delivery waits for its backoff.
    assert tick() == "0 new anomalies: 1 pending"
    assert not webhook.accepted

    assert tick(at(start + timedelta(minutes=2))) == \
        "0 new anomalies: 1 alert sent to webhook; 0 pending"
    assert tick(at(start + timedelta(hours=2))) == "0 new anomalies: 0 pending"
    tick()

    [accepted] = webhook.accepted
    alert_id = accepted["json"]["cxloop"]["alert_id"]
    assert accepted["headers"]["Idempotency-Key"] == alert_id
    assert len(webhook.requests) == (2 if outage == "http_500" else 1)
    assert len(mailbox.messages) == 1 and len(log_lines(alerting)) == 1
    [row] = outbox_rows(alerting, "select * from deliveries where sink = 'webhook'")
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["last_error"] is None


def test_a_new_snapshot_alerts_only_the_new_anomaly_and_suppresses_repeats(
        tick: Tick, alerting: Settings, webhook: Webhook, mailbox: Mailbox):
    publish(alerting, "s1", [SESSIONS])
    tick()
    first_id = webhook.requests[0]["json"]["cxloop"]["alert_id"]

    tomorrow = LATEST + timedelta(days=1)
    sessions_again = anomaly("sessions", tomorrow, value=700.0)
    aov = anomaly("aov_usd", tomorrow, "spike", value=90, expected=60)
    publish(alerting, "s2", [SESSIONS, sessions_again, aov], latest=tomorrow)
    assert tick() == "2 new anomalies (1 suppressed): 1 alert sent to email, log, webhook; 0 pending"

    second = webhook.requests[1]["json"]
    assert [a["metric"] for a in second["cxloop"]["anomalies"]] == ["aov_usd"]
    assert second["cxloop"]["suppressed"] == ["sessions|all|all|2026-03-15|drop"]
    assert "1 more suppressed" in second["text"]
    assert mailbox.messages[1]["Subject"] == "[cxloop] 1 KPI anomaly: aov_usd spike"
    rows = outbox_rows(alerting, "select anomaly_key, status, suppressed_by from anomalies order by anomaly_key")
    assert {r["anomaly_key"]: (r["status"], r["suppressed_by"]) for r in rows}[
        "sessions|all|all|2026-03-15|drop"] == ("suppressed", first_id)

    # Past the suppression window the same series pages again.
    day_after = tomorrow + timedelta(days=1)
    publish(alerting, "s3", [SESSIONS, sessions_again, anomaly("sessions", day_after)], latest=day_after)
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    assert tick(at(later)).startswith("1 new anomaly: 1 alert sent")
    third = webhook.requests[2]["json"]["cxloop"]
    assert [(a["metric"], a["date"]) for a in third["anomalies"]] == [("sessions", "2026-03-16")]
    assert len(webhook.requests) == len(mailbox.messages) == len(log_lines(alerting)) == 3


def test_a_crash_after_enqueue_delivers_exactly_once(
        tick: Tick, alerting: Settings, webhook: Webhook, mailbox: Mailbox):
    publish(alerting, "s1", [SESSIONS, PAYMENTS])
    queued = enqueue(alerting, sinks_from_settings(alerting))  # the process dies before delivering
    assert queued.new == 2 and queued.alert_id
    assert not webhook.requests and not mailbox.messages and not log_lines(alerting)
    # Enqueuing the same snapshot again records nothing new: the alert is the same, once.
    assert enqueue(alerting, sinks_from_settings(alerting)).new == 0

    report = evaluate(alerting)
    assert (report.new, report.alerts_enqueued, report.pending) == (0, 0, 0)
    assert report.delivered == {"email": 1, "log": 1, "webhook": 1}
    evaluate(alerting)
    assert tick() == "0 new anomalies: 0 pending"

    [request] = webhook.requests
    assert request["json"]["cxloop"]["alert_id"] == queued.alert_id
    assert len(mailbox.messages) == 1 and len(log_lines(alerting)) == 1
    assert outbox_rows(alerting, "select count(*) n from alerts") == [{"n": 1}]
