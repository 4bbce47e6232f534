"""Plain transaction data (customers + orders only): every mart that can be built builds, the rest skip."""

from __future__ import annotations

import pytest

import simulator
from orchestration.cli import execute, prepare
from orchestration.lib.summary import summary_lines
from tests.conftest import use_installation
from tests.e2e.test_platform import mart_tables, query

pytestmark = pytest.mark.e2e

NEEDS_EVENTS = {"sessions", "funnel_daily", "identity_links", "audience_abandoned_carts"}


@pytest.fixture(scope="module")
def transactions_only(tmp_path_factory, dbt_manifest):
    with pytest.MonkeyPatch.context() as mp:
        settings = use_installation(mp, tmp_path_factory.mktemp("tx"))
        simulator.generate(customers=150, days=30, seed=5, out=settings.landing_dir,
                           truth=settings.landing_dir.parent / "truth", sources=["customers", "orders"])
        prepare(settings, quiet=True)
        result = execute("platform_job", settings)
        yield settings, result, mart_tables(settings)


def test_run_succeeds_and_skips_event_marts(transactions_only):
    settings, result, marts = transactions_only
    assert result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    for mart in ("customers", "orders", "kpi_daily", "cohort_retention", "quarantine"):
        assert mart in materialized and len(marts[mart]) > 0, mart
    assert NEEDS_EVENTS.isdisjoint(materialized)
    assert NEEDS_EVENTS.isdisjoint(marts)  # never built, not built empty
    assert "serving_snapshot" in materialized


def test_the_measure_step_runs_without_events(transactions_only):
    """Without events there are no exposures and no sessions: the experiment tables are empty, anomalies are
    still scored on the order KPIs, and the report says which sections need events."""
    settings, result, marts = transactions_only
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert {"kpi_anomalies", "experiment_analysis", "experiment_results", "report"} <= materialized
    assert len(marts["experiment_exposures"]) == 0 and len(marts["experiment_results"]) == 0
    assert "kpi_anomalies" in marts and "kpi_segments_daily" in marts
    assert set(marts["kpi_segments_daily"].dimension) == {"all", "channel"}
    report = (settings.reports_dir / "latest.html").read_text()
    assert "no data: needs events" in report


def test_checks_of_skipped_marts_do_not_run_and_none_fail(transactions_only):
    _, result, _ = transactions_only
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    checked = {e.asset_key.path[-1] for e in evaluations}
    assert NEEDS_EVENTS.isdisjoint(checked)
    assert "customers" in checked


def test_kpis_without_events_leave_session_metrics_null(transactions_only):
    settings, _, _ = transactions_only
    kpi = query(settings, "select sessions, conversion_rate, orders, tickets, nps from marts.kpi_daily")
    assert kpi.sessions.isna().all() and kpi.conversion_rate.isna().all()
    assert kpi.tickets.isna().all() and kpi.nps.isna().all()
    assert kpi.orders.sum() > 0


def test_summary_names_the_skipped_marts(transactions_only):
    settings, result, _ = transactions_only
    text = "\n".join(summary_lines(settings, result, elapsed=1.0))
    for mart in NEEDS_EVENTS:
        assert f"{mart}" in text and "skipped" in text
    assert "checks:" in text and "0 failed" in text
    # Thirty days of history cannot hold a training and an evaluation horizon: said, not failed.
    assert "churn_model  not trained: " in text and "customer_scores empty" in text
