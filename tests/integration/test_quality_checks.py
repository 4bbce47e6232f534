"""GX checks as Dagster asset checks on a real warehouse: a failure names rule, count and a safe sample."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from orchestration.lib.warehouse import connect


@pytest.fixture
def checks(dbt_manifest):
    from orchestration.defs.quality import checks as module

    return {c.check_specs_by_output_name[next(iter(c.check_specs_by_output_name))].name: c
            for c in module.raw_checks + module.mart_checks}


def kpi_frame(days: int = 5) -> pd.DataFrame:
    start = date(2026, 1, 1)
    return pd.DataFrame({
        "date": [start + timedelta(days=i) for i in range(days)],
        "sessions": [100] * days, "converted_sessions": [10] * days, "conversion_rate": [0.1] * days,
        "orders": [12] * days, "revenue_usd": [1200.0] * days, "aov_usd": [100.0] * days,
        "payment_attempts": [13] * days, "payment_success_rate": [0.92] * days, "new_customers": [3] * days,
        "active_customers": [12] * days, "tickets": [1] * days, "csat_avg": [4.2] * days,
        "nps_responses": [2] * days, "nps": [50.0] * days,
    })


def write_mart(settings, name: str, frame: pd.DataFrame) -> None:
    with connect(settings) as con:
        con.execute("create schema if not exists marts")
        con.register("frame", frame)
        con.execute(f"create or replace table marts.{name} as select * from frame")


def test_clean_mart_passes(cx, checks):
    write_mart(cx, "kpi_daily", kpi_frame())
    result = checks["kpi_daily_meets_expectations"]()
    assert isinstance(result, dg.AssetCheckResult) and result.passed


def test_broken_mart_fails_with_rule_count_and_sample(cx, checks):
    frame = kpi_frame()
    frame.loc[1, "conversion_rate"] = 1.7
    frame.loc[2, "conversion_rate"] = 2.5
    frame.loc[4, "date"] = frame.loc[3, "date"]
    write_mart(cx, "kpi_daily", frame)
    result = checks["kpi_daily_meets_expectations"]()
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    failures = {f["rule"]: f for f in result.metadata["failures"].data}
    rate = next(f for rule, f in failures.items() if "conversion_rate" in rule)
    assert rate["unexpected_count"] == 2
    assert any(rule.startswith("kpi_daily.") and "unique" in rule for rule in failures)
    assert "conversion_rate" in result.description


def test_raw_check_sample_never_shows_pseudonyms_or_text(cx, checks):
    from orchestration.lib.ingest import Ingestor
    from tests.integration.test_ingest import land

    land(cx.landing_dir, "tickets", "2026-01-02", "t.csv",
         "ticket_id,customer_id,created_at,channel,category,subject,body,status,resolved_at,csat\n"
         "T1,C1,2026-01-01T10:00:00Z,email,refund,Refund please,write to me,weird-status,,5\n")
    Ingestor(cx).load_source("tickets")
    with connect(cx) as con:  # plant what ingest would never let through: an out-of-contract channel
        con.execute("update raw.tickets set channel = 'pigeon', body = 'secret body text'")
    result = checks["raw_tickets_meets_expectations"]()
    assert not result.passed
    dumped = json.dumps({k: getattr(v, "data", getattr(v, "value", str(v))) for k, v in result.metadata.items()},
                        default=str)
    assert "channel" in dumped and "pigeon" in dumped
    assert "secret body text" not in dumped
    with connect(cx, read_only=True) as con:
        key = con.execute("select customer_key from raw.tickets").fetchone()[0]
    assert key not in dumped


def test_mart_check_in_batches_counts_every_batch_and_duplicates_across_them(cx, checks, monkeypatch):
    from orchestration.defs.quality import checks as module

    monkeypatch.setattr(module, "CHECK_BATCH_VECTORS", 1)  # batches of 2,048 rows: 5,000 days make three
    frame = kpi_frame(days=5000)
    frame.loc[[7, 2100, 4999], "conversion_rate"] = 1.5  # one bad rate in each batch
    frame.loc[4500, "date"] = frame.loc[10, "date"]  # a duplicate day split between the first and last batch
    write_mart(cx, "kpi_daily", frame)

    result = checks["kpi_daily_meets_expectations"]()

    assert not result.passed
    assert result.metadata["rows"].value == 5000
    failures = {f["rule"]: f for f in result.metadata["failures"].data}
    rate = next(f for rule, f in failures.items() if "conversion_rate" in rule)
    assert rate["unexpected_count"] == 3
    assert rate["unexpected_percent"] == pytest.approx(100 * 3 / 5000)
    assert sorted(item["conversion_rate"] for item in rate["sample"]) == [1.5, 1.5, 1.5]
    duplicate = next(f for rule, f in failures.items() if "unique" in rule)
    assert duplicate["unexpected_count"] == 2


def test_selected_assets_run_with_their_checks_unless_told_otherwise(cx, dbt_manifest):
    from orchestration.cli import execute
    from tests.integration.test_ingest import land

    land(cx.landing_dir, "tickets", "2026-01-02", "t.csv",
         "ticket_id,customer_id,created_at,channel,category,subject,body,status,resolved_at,csat\n"
         "T1,C1,2026-01-01T10:00:00Z,email,refund,Refund please,write to me,open,,5\n")
    tickets = dg.AssetKey(["raw", "tickets"])

    unchecked = execute("platform_job", cx, asset_selection=[tickets], asset_check_selection=())
    checked = execute("platform_job", cx, asset_selection=[tickets])

    for result in (unchecked, checked):
        assert result.success
        assert [e.asset_key for e in result.get_asset_materialization_events()] == [tickets]
    assert [e.asset_check_evaluation_data.check_name for e in unchecked.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"] == []
    assert [(e.asset_check_evaluation_data.check_name, e.asset_check_evaluation_data.passed)
            for e in checked.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"] == [
        ("raw_tickets_meets_expectations", True)]
    with connect(cx, read_only=True) as con:
        assert con.execute("select count(*) from raw.tickets").fetchone()[0] == 1
    with pytest.raises(ValueError, match="needs an asset_selection"):
        execute("platform_job", cx, asset_check_selection=())
