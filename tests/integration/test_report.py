"""The HTML report, rendered from synthetic mart snapshots and opened in a real headless browser.

The full snapshot has a year of KPIs with planted anomalies, three funnel channels, a year of cohorts, two
experiments (one decided `ship`), scores and audiences. A second snapshot has only what a
transactions-only shop produces, and the report must still be written, saying what each empty section needs.
"""

from __future__ import annotations

import re
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.report import render_report
from tests.browser import browser_page

REPO = Path(__file__).resolve().parents[2]
END = date(2026, 3, 31)
DAYS = 365
SECTIONS = ["summary", "kpi-trends", "funnel", "cohorts", "rfm", "experiments", "voc", "models", "audiences"]
SHIP_REASON = "B beats control on conversion with 99% chance; no sample ratio mismatch"
# Text that would break the page if it reached the HTML unescaped.
HOSTILE = "<script>alert('x')</script> & \"quoted\""

PLANTED = [  # (days before END, metric, direction, factor, drill-down text)
    (5, "booked_revenue_usd", "drop", 0.35, "channel = app: -71% vs expected (payment provider outage)"),
    (40, "sessions", "spike", 2.6, "channel = email: +240% vs expected (newsletter send)"),
]
MODELS = [
    {"kind": "churn", "model": "cxloop-churn", "version": "3", "alias": "champion", "run_id": "a1b2c3d4e5f6a7b8",
     "run_url": "http://127.0.0.1:5000/#/experiments/1/runs/a1b2c3d4e5f6a7b8",
     "metrics": {"roc_auc": 0.851, "pr_auc": 0.62, "brier": 0.12}, "baselines": {"bgnbd": 0.801, "recency": 0.74},
     "primary_metric": "roc_auc"},
    {"kind": "ltv", "model": "cxloop-ltv", "version": "2", "alias": "champion", "run_id": "ffee0011",
     "run_url": "javascript:alert(1)", "metrics": {"rmse": 41.2, "mae": 18.0}, "baselines": {"bgnbd_gg": 45.9},
     "primary_metric": "rmse"},
]
LINKS = {"Dagster run": "http://127.0.0.1:3000/runs/abc", "MLflow": "http://127.0.0.1:5000/", "bad": "javascript:x"}


def write(folder: Path, name: str, frame: pd.DataFrame, decimals: tuple[str, ...] = ()) -> None:
    """Write `frame` the way the marts are published: dates as DATE, money as DECIMAL(18, 2)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        if f.name in decimals:
            f = pa.field(f.name, pa.decimal128(18, 2))
        elif pa.types.is_timestamp(f.type) and f.name != "scored_at":
            f = pa.field(f.name, pa.date32())
        fields.append(f)
    columns = [pa.array([None if pd.isna(v) else round(float(v), 2) for v in frame[f.name]], type=pa.float64())
               .cast(f.type) if f.name in decimals else table[f.name].cast(f.type) for f in fields]
    pq.write_table(pa.Table.from_arrays(columns, schema=pa.schema(fields)), folder / f"{name}.parquet")


def kpi_daily(rng: np.random.Generator, with_events: bool = True) -> pd.DataFrame:
    dates = pd.date_range(END - timedelta(days=DAYS - 1), END, freq="D")
    weekly = 1 + 0.15 * np.sin(2 * np.pi * np.arange(DAYS) / 7)
    sessions = rng.poisson(2000 * weekly).astype(float)
    converted = rng.binomial(sessions.astype(int), 0.032).astype(float)
    orders = converted.copy()
    aov = rng.normal(62, 4, DAYS).round(2)
    revenue = orders * aov
    for days_before, metric, _, factor, _ in PLANTED:
        i = DAYS - 1 - days_before
        {"booked_revenue_usd": revenue, "sessions": sessions}[metric][i] *= factor
    attempts = rng.poisson(orders * 1.1).astype(float)
    tickets = rng.poisson(40, DAYS).astype(float)
    frame = pd.DataFrame({
        "date": dates, "sessions": sessions, "converted_sessions": converted,
        "conversion_rate": converted / sessions, "orders": orders.astype(int), "revenue_usd": revenue,
        "aov_usd": revenue / orders, "payment_attempts": attempts,
        "payment_success_rate": np.clip(rng.normal(0.93, 0.01, DAYS), 0, 1),
        "new_customers": rng.poisson(20, DAYS), "active_customers": rng.poisson(60, DAYS), "tickets": tickets,
        "csat_avg": rng.normal(4.2, 0.1, DAYS), "nps_responses": rng.poisson(15, DAYS).astype(float),
        "nps": rng.normal(35, 6, DAYS),
    })
    if not with_events:
        for column in ("sessions", "converted_sessions", "conversion_rate", "payment_attempts",
                       "payment_success_rate", "tickets", "csat_avg", "nps_responses", "nps"):
            frame[column] = np.nan
    return frame


def customers(rng: np.random.Generator, n: int = 2000) -> pd.DataFrame:
    segments = np.array(["Champions", "Loyal", "Potential Loyalist", "New", "At Risk", "Can't Lose", "Hibernating",
                         "Lost", None], dtype=object)
    return pd.DataFrame({
        "customer_key": [f"c{i:05d}" for i in range(n)],
        "country": rng.choice(["US", "DE", "FR"], n),
        "net_revenue_usd": rng.gamma(2.0, 80.0, n),
        "rfm_segment": rng.choice(segments, n),
        "marketing_consent": rng.random(n) < 0.6,
    })


def build_snapshot(folder: Path, seed: int = 7) -> Path:
    """Every mart the report reads, for a shop with events, payments, surveys, experiments and models."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    daily = kpi_daily(rng)
    write(folder, "kpi_daily", daily, decimals=("revenue_usd", "aov_usd"))
    # The whole shop's booked value (what the revenue monitors watch) in the segments mart.
    segments = pd.DataFrame({"date": daily["date"], "dimension": "all", "segment": "all",
                             "orders": daily["orders"].astype(float), "booked_usd": daily["revenue_usd"],
                             "first_orders": daily["new_customers"].astype(float)})
    write(folder, "kpi_segments_daily", segments)
    daily = daily.assign(booked_revenue_usd=daily["revenue_usd"], booked_aov_usd=daily["aov_usd"])

    expected_rows = []
    for metric in ("sessions", "conversion_rate", "orders", "booked_revenue_usd", "booked_aov_usd",
                   "payment_success_rate"):
        series = daily.set_index("date")[metric]
        centre = series.rolling(28, min_periods=7).median().shift(1)
        spread = series.rolling(28, min_periods=7).std().shift(1) * 3
        part = pd.DataFrame({"date": series.index, "metric": metric, "value": series.to_numpy(),
                             "expected": centre.to_numpy(), "lower": (centre - spread).to_numpy(),
                             "upper": (centre + spread).to_numpy()}).dropna()
        part["score"] = (part["value"] - part["expected"]) / (part["upper"] - part["expected"]) * 3
        expected_rows.append(part)
    expected = pd.concat(expected_rows, ignore_index=True)
    write(folder, "kpi_expected", expected)

    anomalies = []
    for days_before, metric, direction, _, drill in PLANTED:
        day = pd.Timestamp(END - timedelta(days=days_before))
        row = expected[(expected["metric"] == metric) & (expected["date"] == day)].iloc[0]
        segment = drill.split(":")[0].split(" = ")[1]
        anomalies.append({"date": day, "metric": metric, "dimension": "all", "segment": "all",
                          "value": row["value"], "expected": row["expected"], "lower": row["lower"],
                          "upper": row["upper"], "score": row["score"], "direction": direction, "volume": 1000.0,
                          "drilldown_dimension": "channel", "drilldown_segment": segment, "drilldown": drill})
    anomalies.append({"date": pd.Timestamp(END - timedelta(days=2)), "metric": "conversion_rate",
                      "dimension": "channel", "segment": "web", "value": 0.011, "expected": 0.031, "lower": 0.025,
                      "upper": 0.037, "score": -5.1, "direction": "drop", "volume": 800.0,
                      "drilldown_dimension": "device", "drilldown_segment": "ios", "drilldown": HOSTILE})
    anomalies.append({"date": pd.Timestamp(END - timedelta(days=1)), "metric": "texts", "dimension": "topic",
                      "segment": "payment / card / declined", "value": 19.0, "expected": 3.0, "lower": 0.5,
                      "upper": 9.0, "score": 5.2, "direction": "spike", "volume": 3.0, "drilldown_dimension": None,
                      "drilldown_segment": None, "drilldown": None})
    write(folder, "kpi_anomalies", pd.DataFrame(anomalies))
    write(folder, "voc_texts", voc_texts(rng))

    funnel = []
    for day in pd.date_range(END - timedelta(days=59), END, freq="D"):
        for channel, scale, quality in (("web", 900, 1.0), ("app", 600, 1.3), ("email", 200, 0.8)):
            viewed = int(rng.poisson(scale))
            added = int(rng.binomial(viewed, 0.25 * quality))
            checkout = int(rng.binomial(added, 0.6))
            payment = int(rng.binomial(checkout, 0.8))
            ordered = int(rng.binomial(payment, 0.9))
            funnel.append({"date": day, "channel": channel, "viewed_users": viewed, "added_users": added,
                           "checkout_users": checkout, "payment_users": payment, "ordered_users": ordered})
    funnel = pd.DataFrame(funnel)
    for a, b, name in (("viewed_users", "added_users", "view_to_add_rate"),
                       ("added_users", "checkout_users", "add_to_checkout_rate"),
                       ("checkout_users", "payment_users", "checkout_to_payment_rate"),
                       ("payment_users", "ordered_users", "payment_to_order_rate"),
                       ("viewed_users", "ordered_users", "view_to_order_rate")):
        funnel[name] = funnel[b] / funnel[a]
    write(folder, "funnel_daily", funnel)

    cohorts = []
    months = pd.date_range("2025-04-01", "2026-03-01", freq="MS")
    for i, month in enumerate(months):
        size = int(rng.integers(150, 400))
        for since in range(len(months) - i):
            rate = 1.0 if since == 0 else 0.3 * 0.85 ** since + rng.normal(0, 0.01)
            cohorts.append({"cohort_month": month, "months_since": since, "cohort_size": size,
                            "active_customers": int(size * rate), "retention_rate": rate,
                            "revenue_usd": size * rate * 60})
    write(folder, "cohort_retention", pd.DataFrame(cohorts), decimals=("revenue_usd",))

    people = customers(rng)
    write(folder, "customers", people, decimals=("net_revenue_usd",))

    experiments = []

    def arm(experiment, variation, control, metric, units, mean, control_mean, lift, p, chance, decision, reason,
            ship, running, conversions=True):
        experiments.append({
            "experiment_id": experiment, "variation_id": variation, "is_control": control, "metric": metric,
            "units": units, "excluded_units": 3, "conversions": round(units * mean) if conversions else None,
            "mean": mean, "control_mean": control_mean, "abs_lift": None if control else mean - control_mean,
            "abs_lift_low": None, "abs_lift_high": None, "rel_lift": None if control else lift,
            "rel_lift_low": None if control else lift - 0.04, "rel_lift_high": None if control else lift + 0.04,
            "p_value": None if control else p, "chance_to_beat_control": None if control else chance,
            "cuped_abs_lift": None, "cuped_abs_lift_low": None, "cuped_abs_lift_high": None, "cuped_p_value": None,
            "variance_reduction": None, "srm_p_value": 0.62, "srm": False, "required_units": 9000,
            "first_exposure_date": pd.Timestamp("2026-02-01"), "last_exposure_date": pd.Timestamp(END),
            "is_running": running, "decision": decision, "ship_variation": ship, "decision_reason": reason})

    arm("checkout-redesign", "A", True, "conversion", 10000, 0.030, 0.030, 0, 1, 0.5, "ship", SHIP_REASON, "B",
        False)
    arm("checkout-redesign", "B", False, "conversion", 10050, 0.036, 0.030, 0.2, 0.0004, 0.99, "ship",
        SHIP_REASON, "B", False)
    arm("checkout-redesign", "C", False, "conversion", 9980, 0.029, 0.030, -0.03, 0.6, 0.3, "ship", SHIP_REASON,
        "B", False)
    for metric, mean, conversions in (("conversion", 0.05, True), ("revenue_per_user", 3.1, False)):
        arm("free-shipping-banner", "control", True, metric, 4000, mean, mean, 0, 1, 0.5, "keep_running",
            "not enough units yet", None, True, conversions)
        arm("free-shipping-banner", "treatment", False, metric, 4020, mean * 1.02, mean, 0.02, 0.4, 0.7,
            "keep_running", "not enough units yet", None, True, conversions)
    write(folder, "experiment_results", pd.DataFrame(experiments))

    scores = pd.DataFrame({
        "customer_key": people["customer_key"], "as_of_date": pd.Timestamp(END),
        "churn_probability": rng.beta(2, 5, len(people)), "predicted_ltv_usd": rng.gamma(2, 50, len(people)),
        "horizon_days": 90, "churn_model_version": "3", "ltv_model_version": "2",
        "scored_at": pd.Timestamp("2026-04-01T02:00:00Z"),
    })
    scores["risk_segment"] = pd.cut(scores["churn_probability"], [0, 0.2, 0.4, 1],
                                    labels=["low", "medium", "high"]).astype(str)
    write(folder, "customer_scores", scores)

    for name, n, reason in (("audience_abandoned_carts", 120, "cart abandoned in the last 24 hours"),
                            ("audience_churn_risk_high_value", 45, "churn risk high, predicted LTV top decile"),
                            ("audience_bad_experience", 30, "CSAT 1 on last ticket")):
        write(folder, name, pd.DataFrame({"customer_key": people["customer_key"][:n], "reason": reason}))
    return folder


VOC_TOPICS = ("delivery / late / parcel", "payment / card / declined", "quality / fabric / size")
VOC_EXAMPLE = f"The jacket fell apart {HOSTILE}, call me on [phone]"


def voc_texts(rng: np.random.Generator) -> pd.DataFrame:
    """Texts over the last 120 days; the payment topic is new in the last four weeks, delivery shrinks."""
    rows = []
    for i, day in enumerate(pd.date_range(END - timedelta(days=119), END, freq="D")):
        recent = day > pd.Timestamp(END - timedelta(days=28))
        for topic_id, label in enumerate(VOC_TOPICS):
            if label.startswith("payment") and not recent:
                continue
            count = int(rng.poisson(2 if label.startswith("delivery") and recent else 4))
            for j in range(count):
                score = float(rng.uniform(-1, 1))
                rows.append({"source": ("ticket", "review", "survey")[j % 3], "text_id": f"X{i}-{topic_id}-{j}",
                             "customer_key": f"k{j}", "created_at": day + pd.Timedelta(hours=j),
                             "created_date": day, "language": "ko" if j == 2 else "en", "text": "plain text",
                             "sentiment_score": score,
                             "sentiment_label": "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral",
                             "intent": None, "intent_source": "review" if j % 3 == 0 else None,
                             "intent_confidence": 0.4, "needs_review": j % 3 == 0, "topic_id": topic_id,
                             "topic_label": label})
    texts = pd.DataFrame(rows)
    worst = texts.index[(texts["topic_label"] == VOC_TOPICS[2]) & (texts["created_date"] == pd.Timestamp(END))][0]
    texts.loc[worst, ["text", "sentiment_score", "sentiment_label"]] = [VOC_EXAMPLE, -1.0, "negative"]
    return texts


def section_html(page: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert match, f"section {name!r} is missing"
    return match.group(1)


def without_timestamp(page: str) -> str:
    return re.sub(r'<time class="generated"[^>]*>.*?</time>', "", page)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, dict, float]:
    """The report of the full snapshot: (its path, render_report's summary, seconds it took)."""
    root = tmp_path_factory.mktemp("report")
    snapshot = build_snapshot(root / "snapshot")
    started = time.perf_counter()
    summary = render_report(snapshot, root / "out" / "report.html", models=MODELS, title="cxloop <weekly> report",
                            links=LINKS)
    return Path(summary["path"]), summary, time.perf_counter() - started


def test_full_report_renders_in_a_browser_with_every_chart_and_no_network(full_report, tmp_path):
    path, summary, seconds = full_report
    assert summary["sections"] == SECTIONS
    assert summary["anomalies"] == len(PLANTED) + 2  # and a KPI breakdown and a topic
    assert summary["experiments"] == 2
    # 7 KPI tiles, funnel, cohorts, RFM, one forest plot per experiment, sentiment by week.
    assert summary["charts"] == 13
    assert summary["bytes"] == path.stat().st_size
    assert summary["bytes"] < 2_000_000, f"{summary['bytes']:,} bytes for a year of data"
    assert seconds < 20, f"rendering took {seconds:.1f}s"

    problems: list[str] = []
    requests: list[str] = []
    with browser_page() as page:
        page.on("console", lambda message: problems.append(f"console: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri(), wait_until="load")

        assert page.title() == "cxloop <weekly> report"
        for name in SECTIONS:
            assert page.locator(f"section#{name} > h2").is_visible(), f"section {name} is not shown"

        boxes = page.evaluate("""() => Array.from(document.querySelectorAll('figure.chart')).map(figure => {
            const svg = figure.querySelector(':scope > svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {name: figure.dataset.chart, width: box.width, height: box.height,
                    caption: figure.querySelector('figcaption') !== null};
        })""")
        assert len(boxes) == summary["charts"]
        assert len({box["name"] for box in boxes}) == len(boxes), "chart names must be unique"
        small = [box for box in boxes if box["width"] <= 50 or box["height"] <= 50 or not box["caption"]]
        assert not small, f"charts without a visible svg or caption: {small}"
        assert {f"kpi-{m}" for m in ("sessions", "booked_revenue_usd", "nps")} <= {box["name"] for box in boxes}

        anomaly_rows = page.locator("section#kpi-trends table.anomalies tbody tr").all_inner_texts()
        for days_before, metric, direction, _, drill in PLANTED:
            day = (END - timedelta(days=days_before)).isoformat()
            label = {"booked_revenue_usd": "Booked revenue (USD)", "sessions": "Sessions"}[metric]
            assert any(day in row and label in row and direction in row and drill in row for row in anomaly_rows), \
                f"planted {metric} {direction} on {day} is not listed: {anomaly_rows}"
        assert any(HOSTILE in row for row in anomaly_rows), "escaped text must read as typed"

        voc = page.locator("section#voc")
        topic_rows = voc.locator("table.voc-topics tbody tr").all_inner_texts()
        assert any(VOC_TOPICS[1] in row and "new" in row for row in topic_rows), topic_rows
        assert any(VOC_TOPICS[0] in row and "-" in row.split("\t")[3] for row in topic_rows), topic_rows
        assert any("payment / card / declined" in row and "spike" in row
                   for row in voc.locator("table.anomalies tbody tr").all_inner_texts())
        assert VOC_EXAMPLE in voc.locator("ul.voc-examples").inner_text(), "escaped text must read as typed"

        experiments = page.locator("section#experiments").inner_text()
        assert "Ship B" in experiments and SHIP_REASON in experiments
        assert "Keep running" in experiments
        assert "Ship B" in page.locator("section#summary").inner_text()
        models = page.locator("section#models")
        assert models.locator("a[href*='a1b2c3d4e5f6a7b8']").count() == 1
        assert models.locator("a[href^='javascript']").count() == 0
        assert page.locator("header a", has_text="MLflow").get_attribute("href") == "http://127.0.0.1:5000/"
        assert "No model" not in models.inner_text()

        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)

    assert requests == [path.as_uri()], f"the report fetched something besides itself: {requests}"
    assert not problems, problems
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000, f"screenshot is only {shot.stat().st_size} bytes"
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copyfile(shot, artifacts / "report.png")
    assert (artifacts / "report.png").stat().st_size == shot.stat().st_size


def test_transactions_only_snapshot_says_what_each_empty_section_needs(tmp_path):
    rng = np.random.default_rng(3)
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    daily = kpi_daily(rng, with_events=False)
    write(snapshot, "kpi_daily", daily, decimals=("revenue_usd", "aov_usd"))
    write(snapshot, "kpi_segments_daily", pd.DataFrame({
        "date": daily["date"], "dimension": "all", "segment": "all", "orders": daily["orders"].astype(float),
        "booked_usd": daily["revenue_usd"], "first_orders": daily["new_customers"].astype(float)}))
    write(snapshot, "customers", customers(rng), decimals=("net_revenue_usd",))

    summary = render_report(snapshot, tmp_path / "report.html")

    page = Path(summary["path"]).read_text(encoding="utf-8")
    assert summary["sections"] == SECTIONS
    assert (summary["anomalies"], summary["experiments"]) == (0, 0)
    # Orders, booked revenue and booked order value trends plus the RFM bars; nothing else has data.
    assert summary["charts"] == 4 == page.count('<figure class="chart"')
    for name, needs in (("funnel", "events"), ("cohorts", "cohort_retention"), ("experiments", "experiment"),
                        ("audiences", "audience")):
        body = section_html(page, name)
        assert "no data: needs" in body and needs in body, f"{name}: {body[:300]}"
        assert "<figure" not in body
    trends = section_html(page, "kpi-trends")
    for needs in ("events", "payments", "surveys"):
        assert f"no data: needs {needs}" in trends
    assert 'data-chart="kpi-booked_revenue_usd"' in trends and 'data-chart="kpi-sessions"' not in trends
    assert "no data: needs KPI anomaly detection" in trends
    assert "No model has been trained yet" in section_html(page, "models")
    assert 'data-chart="rfm-segments"' in section_html(page, "rfm")
    assert "Can&#x27;t Lose" in section_html(page, "rfm")


def test_empty_snapshot_folder_still_gives_a_report(tmp_path):
    summary = render_report(tmp_path / "nothing-here", tmp_path / "report.html")
    page = Path(summary["path"]).read_text(encoding="utf-8")
    assert summary["charts"] == 0
    for name in SECTIONS:
        assert "no data" in section_html(page, name).lower() or name == "models"


def test_report_references_nothing_external(full_report):
    path, _, _ = full_report
    page = path.read_text(encoding="utf-8")
    # Stricter than "nothing remote": a self-contained page needs no src attribute, script or link element at
    # all, and its only url() references are the charts' own clip paths.
    for pattern in (r"\ssrc\s*=", r"<script", r"<link\b", r"@import", r"url\((?!\s*['\"]?#)",
                    r"<(use|image)\b[^>]*href=(?!['\"]?#)", r"javascript:"):
        match = re.search(pattern, page, re.I)
        assert not match, f"{pattern!r} found in the report: {page[max(match.start() - 80, 0):match.end() + 80]!r}"
    assert "&lt;script&gt;alert" in page, "the planted drill-down text must appear escaped"


def test_same_snapshot_renders_the_same_bytes_apart_from_the_timestamp(full_report, tmp_path):
    path, _, _ = full_report
    again = render_report(path.parent.parent / "snapshot", tmp_path / "again.html", models=MODELS,
                          title="cxloop <weekly> report", links=LINKS)
    first, second = path.read_text(encoding="utf-8"), Path(again["path"]).read_text(encoding="utf-8")
    assert without_timestamp(first) != first, "the timestamp must be where the test expects it"
    assert without_timestamp(first) == without_timestamp(second)
    assert not list(tmp_path.glob(".again.html.*")), "the temporary file must be renamed into place"
