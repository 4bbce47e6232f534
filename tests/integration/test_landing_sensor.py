"""The landing sensor against a real landing directory and the ledger ingest publishes."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.ingest.sensors import landing_files_sensor
from orchestration.lib.ingest import Ingestor
from orchestration.lib.warehouse import connect, publish_ledger
from tests.integration.test_ingest import event, land


def evaluate(cursor: str | None = None):
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        return landing_files_sensor(context)


def ingest_all(settings):
    Ingestor(settings).load_source("events")
    with connect(settings) as con:
        publish_ledger(con, settings)


def test_skips_when_nothing_landed(cx):
    result = evaluate()
    assert isinstance(result, dg.SkipReason)


def test_requests_ingest_for_new_files_with_a_key_from_their_identity(cx):
    land(cx.landing_dir, "events", "2026-01-02", "a.jsonl", event("m1") + "\n")
    first = evaluate()
    assert isinstance(first, dg.RunRequest)
    assert first.tags["cxloop/sources"] == "events"
    # A restarted sensor (no cursor, fresh instance) asks for the same run: Dagster drops the duplicate.
    assert evaluate().run_key == first.run_key

    ingest_all(cx)
    assert isinstance(evaluate(), dg.SkipReason)

    land(cx.landing_dir, "events", "2026-01-02", "b.jsonl", event("m2") + "\n")
    second = evaluate()
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key


def test_files_rejected_by_ingest_are_not_requested_again(cx):
    land(cx.landing_dir, "events", "2026-01-02", "a.jsonl", "not json at all\n")
    ingest_all(cx)
    assert isinstance(evaluate(), dg.SkipReason)
