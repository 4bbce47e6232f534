"""Write, audit, publish: the serving snapshot readers use, its atomic swap, and what a failed build leaves."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pytest

from orchestration.lib.alerts import LogSink, evaluate
from orchestration.lib.failpoints import FailpointError
from orchestration.lib.serving import (connect_snapshot, current_dir, publish_snapshot, read_status,
                                       record_not_published, stale_message)
from orchestration.lib.settings import Settings


def build(settings: Settings, customers: int) -> None:
    """A warehouse whose marts hold `customers` rows, as a build leaves it."""
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create or replace table marts.customers as select i as customer_key from range(?) t(i)",
                    [customers])
        con.execute("create or replace table marts.kpi_daily as select date '2026-03-01' + i::int as date, "
                    "i as sessions from range(10) t(i)")


def publish(settings: Settings, snapshot_id: str) -> dict:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return publish_snapshot(con, settings, ["customers", "kpi_daily", "absent_mart"], snapshot_id)


def customers_seen() -> int:
    with connect_snapshot() as con:
        return con.execute("select count(*) from customers").fetchone()[0]


@pytest.mark.reliability(area="Write-audit-publish", case="A reader opens the snapshot while a build holds the "
                         "warehouse", outcome="It reads the published views (serving.duckdb) without a lock "
                                              "error; the warehouse itself would refuse it")
def test_readers_use_the_snapshot_while_another_process_holds_the_warehouse(cx):
    build(cx, 5)
    publish(cx, "s1")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "c.execute('begin'); print('held', flush=True); time.sleep(60)", str(cx.warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(cx.warehouse), read_only=True)
        assert customers_seen() == 5
    finally:
        holder.kill()
        holder.wait()


def test_a_publish_swaps_every_mart_at_once_and_a_reader_keeps_its_snapshot(cx):
    build(cx, 5)
    first = publish(cx, "s1")
    assert first["row_counts"] == {"customers": 5, "kpi_daily": 10}
    held = connect_snapshot()
    try:
        build(cx, 7)
        publish(cx, "s2")
        assert held.execute("select count(*) from customers").fetchone()[0] == 5
        assert customers_seen() == 7
    finally:
        held.close()
    assert os.path.realpath(current_dir(cx)).endswith("s2")
    assert read_status(cx)["state"] == "published" and read_status(cx)["snapshot_id"] == "s2"


@pytest.mark.reliability(area="Write-audit-publish", case="Crash after a new snapshot is written, before the swap",
                         outcome="`current` still names the previous snapshot whole; the orphan folder never "
                                 "becomes current and is pruned like an old snapshot")
def test_a_crash_before_the_swap_leaves_readers_on_the_previous_snapshot(cx, monkeypatch):
    build(cx, 5)
    publish(cx, "s1")
    build(cx, 9)
    monkeypatch.setenv("CXLOOP_FAILPOINTS", "serving.before_swap=raise")
    with pytest.raises(FailpointError):
        publish(cx, "s2")
    assert customers_seen() == 5
    assert read_status(cx)["snapshot_id"] == "s1"
    monkeypatch.delenv("CXLOOP_FAILPOINTS")
    publish(cx, "s3")
    assert customers_seen() == 9


@pytest.mark.reliability(area="Write-audit-publish", case="Two builds in a row end without publishing",
                         outcome="status.json keeps the first failure's time and the last good snapshot; the "
                                 "next alert says so once, a later publish clears it")
def test_unpublished_builds_are_announced_once_in_the_next_alert(cx, tmp_path):
    build(cx, 5)
    publish(cx, "good")
    first = record_not_published(cx, "run-a", ["check orders_meets_expectations on orders failed"])
    time.sleep(0.01)
    second = record_not_published(cx, "run-b", ["step cxloop_dbt_models failed: dbt exited with 1"])
    assert second["stale_since"] == first["stale_since"] and second["failed_at"] > first["failed_at"]
    assert second["snapshot_id"] == "good"
    message = stale_message(second)
    assert "run-b" in message and "cxloop_dbt_models" in message and "good" in message

    sink = LogSink(tmp_path / "alerts.log")
    report = evaluate(cx, sinks=[sink])
    assert report.alerts_delivered == 1
    sent = (tmp_path / "alerts.log").read_text()
    assert "Serving snapshot not updated by run run-b" in sent
    assert evaluate(cx, sinks=[sink]).alerts_delivered == 0

    publish(cx, "fixed")
    assert read_status(cx)["state"] == "published"
    assert evaluate(cx, sinks=[sink]).alerts_delivered == 0
