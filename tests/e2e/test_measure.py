"""Act and measure on the trained installation's shop: planted incidents found as KPI anomalies, planted
experiment effects recovered, audiences that respect consent, alerts from the published snapshot, and a
report that renders in a real browser."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from orchestration.lib.pseudonymize import pseudonym
from orchestration.lib.summary import summary_lines
from tests.browser import browser_page
from tests.conftest import TEST_KEY
from tests.e2e.test_ml import warehouse

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AUDIENCES = ("audience_abandoned_carts", "audience_churn_risk_high_value", "audience_bad_experience")


@pytest.fixture(scope="module")
def truth(trained) -> dict:
    truth_dir = trained.root / "truth"
    return {
        "summary": json.loads((truth_dir / "summary.json").read_text()),
        "customers": pd.read_csv(truth_dir / "customers.csv", dtype=str, keep_default_na=False),
        "experiments": pd.read_csv(truth_dir / "experiments.csv", dtype=str, keep_default_na=False),
    }


@pytest.fixture(scope="module")
def anomalies(trained) -> pd.DataFrame:
    frame = warehouse(trained.settings, "select * from marts.kpi_anomalies")
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


def test_every_planted_incident_is_found_on_its_day(anomalies, truth):
    incidents = {i["kind"]: date.fromisoformat(i["date"]) for i in truth["summary"]["incidents"]}
    assert set(incidents) == {"traffic_drop", "payment_failure_spike"}
    whole = anomalies[anomalies.dimension == "all"]
    found = {(r.metric, r.date, r.direction) for r in whole.itertuples()}
    assert ("sessions", incidents["traffic_drop"], "drop") in found, whole.to_string()
    assert ("payment_success_rate", incidents["payment_failure_spike"], "drop") in found, whole.to_string()


def test_no_more_than_one_false_alert_per_90_clean_days_per_metric(trained, anomalies, truth):
    incident_days = set()
    for incident in truth["summary"]["incidents"]:
        day = date.fromisoformat(incident["date"])
        incident_days |= {day, day + timedelta(days=1)}
    bands = warehouse(trained.settings, "select metric, date from marts.kpi_expected")
    bands["date"] = pd.to_datetime(bands["date"]).dt.date
    clean_days = bands[~bands.date.isin(incident_days)].groupby("metric").size()
    false = anomalies[(anomalies.dimension == "all") & ~anomalies.date.isin(incident_days)]
    # Metrics below their minimum volume on most days (CSAT, NPS at this shop size) are scored on few days.
    assert clean_days[["sessions", "payment_success_rate"]].min() >= 60, clean_days
    for metric, days in clean_days.items():
        alerts = int((false.metric == metric).sum())
        assert alerts * 90 <= max(days, 90), (metric, alerts, days, false[false.metric == metric].to_string())


def test_a_moving_kpi_names_the_segment_that_moved_most(trained, anomalies, truth):
    day = date.fromisoformat(next(i["date"] for i in truth["summary"]["incidents"] if i["kind"] == "traffic_drop"))
    row = anomalies[(anomalies.metric == "sessions") & (anomalies.dimension == "all") & (anomalies.date == day)]
    assert len(row) == 1
    row = row.iloc[0]
    assert row.drilldown_dimension in ("channel", "device_type") and row.drilldown_segment, row.to_dict()
    segments = warehouse(trained.settings, f"""
        select segment, sessions from marts.kpi_segments_daily
        where dimension = '{row.drilldown_dimension}' and date = date '{day}'""")
    assert row.drilldown_segment in set(segments.segment)
    assert row.drilldown_segment in row.drilldown and row.value < row.lower


def test_experiment_results_recover_the_planted_effects(trained, truth):
    results = warehouse(trained.settings, "select * from marts.experiment_results")
    planted = {e["experiment_id"]: e["planted_relative_lift"] for e in truth["summary"]["experiments"]}
    assert set(results.experiment_id) == set(planted)
    treatment = results[(results.experiment_id == "checkout_button") & ~results.is_control].iloc[0]
    assert treatment.rel_lift_low <= planted["checkout_button"] <= treatment.rel_lift_high, treatment.to_dict()
    aa = results[(results.experiment_id == "aa_homepage") & ~results.is_control].iloc[0]
    assert aa.p_value >= 0.05 and aa.rel_lift_low <= 0 <= aa.rel_lift_high, aa.to_dict()
    assert aa.decision != "ship"
    assert not results.srm.any()
    assert (results.decision.isin(["ship", "dont_ship", "keep_running", "invalid_srm"])).all()


def test_exposed_people_match_the_truth(trained, truth):
    """Checkout-button exposures are by logged-in customers: the stitched people are exactly the truth's
    exposed customers, each in the variation the simulator assigned, and none saw both variations."""
    units = warehouse(trained.settings,
                      "select * from marts.experiment_exposures where experiment_id = 'checkout_button'")
    exposed = truth["experiments"][truth["experiments"].experiment_id == "checkout_button"]
    key = TEST_KEY.encode()
    expected = {pseudonym(key, "customer_id", c): v for c, v in zip(exposed.customer_id, exposed.variation_id)}
    assert dict(zip(units.unit_key, units.variation_id)) == expected
    assert (units.variations_seen == 1).all()
    aa = warehouse(trained.settings, "select * from marts.experiment_exposures where experiment_id = 'aa_homepage'")
    stats = warehouse(trained.settings,
                      "select * from marts.experiment_results where experiment_id = 'aa_homepage'")
    assert stats.excluded_units.iloc[0] == int((aa.variations_seen > 1).sum())


def test_audiences_hold_only_consenting_customers_each_with_a_reason(trained, truth):
    key = TEST_KEY.encode()
    customers = truth["customers"]
    no_consent = {pseudonym(key, "customer_id", c) for c in customers[customers.marketing_consent.str.lower() != "true"].customer_id}
    assert no_consent
    for name in AUDIENCES:
        audience = warehouse(trained.settings, f"select * from marts.{name}")
        assert len(audience) > 0, name
        assert audience.customer_key.is_unique and audience.reason.notna().all(), name
        assert not (set(audience.customer_key) & no_consent), name


def test_abandoned_carts_had_no_order_within_the_wait(trained):
    late_orders = warehouse(trained.settings, """
        select count(*) as n
        from marts.audience_abandoned_carts as carts
        inner join intermediate.int_events_stitched as events
            on events.customer_key = carts.customer_key
            and events.event_name = 'Order Completed'
            and events.event_at >= carts.abandoned_at
            and events.event_at < carts.abandoned_at + interval 24 hour""")
    assert late_orders.n[0] == 0


def test_churn_risk_audience_follows_the_scores(trained):
    audience = warehouse(trained.settings, """
        select audience.churn_probability, scores.churn_probability as scored
        from marts.audience_churn_risk_high_value as audience
        inner join marts.customer_scores as scores using (customer_key)""")
    assert len(audience) > 0
    assert (audience.churn_probability >= 0.5).all() and (audience.churn_probability == audience.scored).all()


def test_summary_names_the_anomalies_and_the_experiment_decisions(trained, truth):
    text = "\n".join(summary_lines(trained.settings, trained.second, None))
    assert "kpi anomalies:" in text and "payment_success_rate" in text
    for experiment in ("checkout_button", "aa_homepage"):
        assert experiment in text
    assert "report:" in text


def test_report_renders_every_chart_without_errors_in_chromium(trained):
    latest = trained.settings.reports_dir / "latest.html"
    assert latest.exists()
    errors: list[str] = []
    with browser_page() as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(latest.resolve().as_uri())
        charts = page.locator("figure.chart")
        assert charts.count() >= 8
        for i in range(charts.count()):
            box = charts.nth(i).locator("svg").first.bounding_box()
            name = charts.nth(i).get_attribute("data-chart")
            assert box and box["width"] > 50 and box["height"] > 50, name
        text = page.inner_text("body")
        artifacts = REPO / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts / "report-e2e.png"), full_page=True)
    assert not errors, errors
    for needle in ("checkout_button", "payment success", "cxloop-churn"):
        assert needle in text.lower(), needle
    assert (artifacts / "report-e2e.png").stat().st_size > 20_000


def test_the_report_is_linked_from_its_materialization(trained):
    events = [e for e in trained.second.get_asset_materialization_events() if e.asset_key.to_user_string() == "report"]
    assert len(events) == 1
    meta = {k: getattr(v, "value", v) for k, v in events[0].materialization.metadata.items()}
    path = Path(meta["path"])
    assert meta["report"] == path.resolve().as_uri() and path.exists()
    assert meta["charts"] >= 8 and meta["experiments"] == 2


def test_alert_sensor_reads_the_published_anomalies(trained, truth, monkeypatch, tmp_path):
    """The sensor on the real snapshot: with a lookback reaching back to the payment spike, one grouped alert
    names it in the log sink; a second tick sends nothing."""
    import dagster as dg

    from orchestration.defs.kpis.sensors import kpi_anomaly_alert_sensor

    trained.activate(monkeypatch)
    monkeypatch.setenv("CXLOOP_ALERTS_DIR", str(tmp_path / "alerts"))
    monkeypatch.setenv("CXLOOP_ALERT_LOOKBACK_DAYS", "40")
    spike = next(i["date"] for i in truth["summary"]["incidents"] if i["kind"] == "payment_failure_spike")
    with dg.DagsterInstance.ephemeral() as instance:
        first = kpi_anomaly_alert_sensor(dg.build_sensor_context(instance=instance))
        second = kpi_anomaly_alert_sensor(dg.build_sensor_context(instance=instance))
    lines = (tmp_path / "alerts" / "alerts.log").read_text().splitlines()
    assert len(lines) == 1, (first.skip_message, second.skip_message)
    alert = json.loads(lines[0])
    assert "payment_success_rate" in json.dumps(alert) and spike in json.dumps(alert)
