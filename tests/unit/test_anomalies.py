"""KPI anomaly detection finds planted spikes and drops on their day, stays quiet on clean days, and is not
thrown off by the anomalies it finds.

Synthetic series have a known truth (weekday pattern, growth, planted days); the calibration tests run the
simulated shop and check its planted incidents and its clean days against its own truth files.
"""

from __future__ import annotations

import csv
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulator
from analytics.anomalies import (
    BASE_MEASURES,
    DEFAULT_MONITORS,
    OUTPUT_COLUMNS,
    Monitor,
    detect,
    empty_anomalies,
    expected_bands,
    load_monitors,
)

START = pd.Timestamp("2025-01-06")  # a Monday
DAYS = 210
# Weekend traffic 40% above mid-week, normalised to a mean of 1.
WEEKLY = np.array([1.0, 1.05, 1.0, 0.95, 0.9, 1.35, 1.4])
WEEKLY = WEEKLY / WEEKLY.mean()
GROWTH_PER_DAY = 0.002
SPIKE_DAY, DROP_DAY = 120, 150
SESSIONS = Monitor("sessions", "count", "sessions")
CONVERSION = Monitor("conversion_rate", "ratio", "converted_sessions", "sessions", direction="both")


def truth(level: float = 300.0, days: int = DAYS) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Dates and the true expected count: a weekday pattern on a growing level."""
    dates = pd.date_range(START, periods=days, freq="D")
    return dates, level * WEEKLY[dates.day_of_week] * (1 + GROWTH_PER_DAY * np.arange(days))


def whole(dates: pd.DatetimeIndex, **measures: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"date": dates, "dimension": "all", "segment": "all", **measures})


def planted(seed: int = 1, spike: float = 2.5, drop: float = 0.4) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The same Poisson sessions series without and with a planted spike and drop, and its truth."""
    dates, expected = truth()
    clean = np.random.default_rng(seed).poisson(expected).astype(float)
    dirty = clean.copy()
    dirty[SPIKE_DAY] = round(expected[SPIKE_DAY] * spike)
    dirty[DROP_DAY] = round(expected[DROP_DAY] * drop)
    return whole(dates, sessions=clean), whole(dates, sessions=dirty), expected


def day(n: int) -> pd.Timestamp:
    return START + timedelta(days=n)


def width(bands: pd.DataFrame) -> pd.Series:
    return bands["upper"] - bands["lower"]


def test_planted_spike_and_drop_are_flagged_with_their_direction():
    _, series, expected = planted()
    found = detect(series, [SESSIONS]).set_index("date")

    assert found.loc[day(SPIKE_DAY), "direction"] == "spike"
    assert found.loc[day(DROP_DAY), "direction"] == "drop"
    for n in (SPIKE_DAY, DROP_DAY):
        row = found.loc[day(n)]
        assert row["expected"] == pytest.approx(expected[n], rel=0.06)
        assert not row["lower"] <= row["value"] <= row["upper"]
        assert abs(row["score"]) >= SESSIONS.sensitivity
    others = found.drop(index=[day(SPIKE_DAY), day(DROP_DAY)])
    assert len(others) <= 1, f"false alerts on a Poisson series: {others}"


def test_expected_follows_the_weekday_pattern_and_the_growth():
    series, _, expected = planted()
    bands = expected_bands(series, [SESSIONS]).set_index("date")
    truth_on = pd.Series(expected, index=series["date"]).reindex(bands.index)

    error = bands["expected"] / truth_on - 1
    assert error.abs().median() < 0.03
    # Every weekday on its own, weekends 40% above Fridays: a weekday-blind expectation would be 20-30% off
    # on some of them, and a level without the growth would sit low on all of them.
    by_weekday = error.groupby(bands.index.day_of_week).median()
    assert len(by_weekday) == 7
    assert by_weekday.abs().max() < 0.04


def test_a_spike_does_not_inflate_the_band_of_the_following_days():
    clean, dirty, _ = planted(drop=1.0)
    before = expected_bands(clean, [SESSIONS]).set_index("date")
    after = expected_bands(dirty, [SESSIONS]).set_index("date")
    following = [day(SPIKE_DAY + k) for k in range(1, 22)]

    shift = (after.loc[following, "expected"] / before.loc[following, "expected"] - 1).abs()
    widening = (width(after.loc[following]) / width(before.loc[following]) - 1).abs()
    assert shift.max() < 0.03
    assert widening.max() < 0.10
    # And the days after the spike are not flagged as drops against an inflated expectation.
    assert detect(dirty, [SESSIONS])["date"].isin(following).sum() == 0


def test_the_level_keeps_up_with_a_growing_shop():
    # 1% a day: a two-week level that ignored the growth would sit about 7% low.
    dates = pd.date_range(START, periods=DAYS, freq="D")
    expected = 200 * WEEKLY[dates.day_of_week] * 1.01 ** np.arange(DAYS)
    series = whole(dates, sessions=np.random.default_rng(7).poisson(expected).astype(float))
    bands = expected_bands(series, [SESSIONS]).set_index("date")
    truth_on = pd.Series(expected, index=dates).reindex(bands.index)

    assert abs((bands["expected"] / truth_on - 1).median()) < 0.03
    assert len(detect(series, [SESSIONS])) <= 1


@pytest.mark.parametrize("direction, flagged, ignored", [("drop", DROP_DAY, SPIKE_DAY), ("spike", SPIKE_DAY, DROP_DAY)])
def test_direction_is_honoured(direction, flagged, ignored):
    _, series, _ = planted()
    dates = set(detect(series, [Monitor("sessions", "count", "sessions", direction=direction)])["date"])

    assert day(flagged) in dates
    assert day(ignored) not in dates


def test_min_volume_skips_days_below_it():
    _, series, expected = planted()
    low, high = expected.min(), expected.max()

    assert detect(series, [Monitor("sessions", "count", "sessions", min_volume=high * 2)]).empty
    assert expected_bands(series, [Monitor("sessions", "count", "sessions", min_volume=high * 2)]).empty
    found = detect(series, [Monitor("sessions", "count", "sessions", min_volume=low / 2)])
    assert {day(SPIKE_DAY), day(DROP_DAY)} <= set(found["date"])
    # A count's volume is its expected level.
    assert np.allclose(found["volume"], found["expected"])


def test_nothing_is_scored_before_min_history_days():
    dates, expected = truth()
    counts = np.random.default_rng(2).poisson(expected).astype(float)
    counts[20] = expected[20] * 3
    series = whole(dates, sessions=counts)

    for history in (28, 60):
        monitor = Monitor("sessions", "count", "sessions", min_history_days=history)
        bands = expected_bands(series, [monitor])
        assert bands["date"].min() == day(history)
        assert day(20) not in set(detect(series, [monitor])["date"])
    assert day(20) in set(detect(series, [Monitor("sessions", "count", "sessions", min_history_days=14)])["date"])


def conversion_series(seed: int = 3, rate: float = 0.05, drop_to: float | None = None) -> pd.DataFrame:
    dates, expected = truth(level=1000.0)
    rng = np.random.default_rng(seed)
    sessions = rng.poisson(expected)
    rates = np.full(len(dates), rate)
    if drop_to is not None:
        rates[DROP_DAY] = drop_to
    return whole(dates, sessions=sessions.astype(float), converted_sessions=rng.binomial(sessions, rates).astype(float))


def test_ratio_drop_is_flagged_and_a_clean_ratio_stays_quiet():
    series = conversion_series(drop_to=0.025)
    found = detect(series, [CONVERSION]).set_index("date")

    row = found.loc[day(DROP_DAY)]
    assert row["direction"] == "drop"
    assert row["expected"] == pytest.approx(0.05, rel=0.1)
    # A ratio's volume is the day's denominator.
    assert row["volume"] == series.loc[DROP_DAY, "sessions"]
    assert len(detect(conversion_series(), [CONVERSION])) <= 1


def test_a_broken_day_does_not_drag_a_ratio_expectation():
    clean = conversion_series()
    broken = conversion_series(drop_to=0.0)
    following = [day(DROP_DAY + k) for k in range(1, 15)]
    before = expected_bands(clean, [CONVERSION]).set_index("date").loc[following]
    after = expected_bands(broken, [CONVERSION]).set_index("date").loc[following]

    assert day(DROP_DAY) in set(detect(broken, [CONVERSION])["date"])
    assert (after["expected"] / before["expected"] - 1).abs().max() < 0.02


def channels(seed: int = 4, broken: str | None = None) -> pd.DataFrame:
    """Sessions per channel and their total; on DROP_DAY the `broken` channel loses 80% of its traffic."""
    dates, _ = truth()
    rng = np.random.default_rng(seed)
    frames, total = [], np.zeros(len(dates))
    for segment, level in (("web", 200.0), ("mobile", 120.0), ("app", 60.0)):
        _, expected = truth(level)
        counts = rng.poisson(expected).astype(float)
        if segment == broken:
            counts[DROP_DAY] = round(counts[DROP_DAY] * 0.2)
        total += counts
        frames.append(pd.DataFrame({"date": dates, "dimension": "channel", "segment": segment, "sessions": counts}))
    return pd.concat([whole(dates, sessions=total), *frames], ignore_index=True)


@pytest.mark.parametrize("broken", ["web", "mobile"])
def test_drilldown_names_the_channel_that_moved(broken):
    monitor = Monitor("sessions", "count", "sessions", dimensions=("channel",))
    found = detect(channels(broken=broken), [monitor])
    kpi = found[(found["dimension"] == "all") & (found["date"] == day(DROP_DAY))]

    assert len(kpi) == 1
    row = kpi.iloc[0]
    assert (row["direction"], row["drilldown_dimension"], row["drilldown_segment"]) == ("drop", "channel", broken)
    assert row["drilldown"].startswith(f"channel={broken}: ")
    assert row["drilldown"].endswith("% of the move")
    breakdown = found[found["dimension"] != "all"]
    assert breakdown["drilldown"].isna().all() and breakdown["drilldown_segment"].isna().all()
    assert ((breakdown["segment"] == broken) & (breakdown["date"] == day(DROP_DAY))).any()


def test_ratio_drilldown_weighs_each_segment_by_its_volume():
    dates, _ = truth()
    rng = np.random.default_rng(5)
    frames, sessions, converted = [], 0, 0
    # On DROP_DAY desktop's rate falls from 8% to 1% and tablet's from 30% to 0%: tablet moved more, but on
    # a fortieth of the sessions, so desktop moved the shop's conversion.
    for segment, level, rate, broken in (("desktop", 800.0, 0.08, 0.01), ("mobile", 1200.0, 0.02, 0.02),
                                         ("tablet", 50.0, 0.30, 0.0)):
        _, expected = truth(level)
        n = rng.poisson(expected)
        rates = np.full(len(dates), rate)
        rates[DROP_DAY] = broken
        k = rng.binomial(n, rates)
        sessions, converted = sessions + n, converted + k
        frames.append(pd.DataFrame({"date": dates, "dimension": "device_type", "segment": segment,
                                    "sessions": n.astype(float), "converted_sessions": k.astype(float)}))
    series = pd.concat([whole(dates, sessions=sessions.astype(float), converted_sessions=converted.astype(float)),
                        *frames], ignore_index=True)
    monitor = Monitor("conversion_rate", "ratio", "converted_sessions", "sessions", dimensions=("device_type",))
    found = detect(series, [monitor])
    kpi = found[(found["dimension"] == "all") & (found["date"] == day(DROP_DAY))]

    assert len(kpi) == 1
    assert (kpi.iloc[0]["drilldown_dimension"], kpi.iloc[0]["drilldown_segment"]) == ("device_type", "desktop")
    assert ((found["segment"] == "tablet") & (found["date"] == day(DROP_DAY))).any()


def test_output_has_the_documented_columns_types_and_order():
    found = detect(channels(broken="mobile"), [Monitor("sessions", "count", "sessions", dimensions=("channel",))])
    empty = empty_anomalies()

    for frame in (found, empty):
        assert tuple(frame.columns) == OUTPUT_COLUMNS
        assert frame["date"].dtype == "datetime64[us]"
        for column in ("value", "expected", "lower", "upper", "score", "volume"):
            assert frame[column].dtype == "float64"
    assert empty.empty and len(found)
    assert (found["date"] == found["date"].dt.normalize()).all()
    assert found.equals(found.sort_values(["date", "metric", "dimension", "segment"], ignore_index=True))
    assert set(found["direction"]) <= {"spike", "drop"}
    assert ((found["lower"] <= found["expected"]) & (found["expected"] <= found["upper"])).all()
    assert tuple(detect(whole(pd.date_range(START, periods=90), tickets=np.ones(90))).columns) == OUTPUT_COLUMNS


def test_an_absent_day_is_a_day_without_activity():
    monitor = Monitor("sessions", "count", "sessions", dimensions=("channel",))
    series = channels(broken="mobile")
    # Idle days after the channel's first (a series starts at its first row).
    quiet = ((series["dimension"] == "channel") & (series["segment"] == "app") & (series.index % 9 == 0)
             & (series["date"] > START))
    series.loc[quiet, "sessions"] = 0.0
    without_zero_rows = series[~quiet].reset_index(drop=True)
    python_dates = series.assign(date=series["date"].dt.date)

    expected = detect(series, [monitor])
    pd.testing.assert_frame_equal(detect(without_zero_rows, [monitor]), expected)
    pd.testing.assert_frame_equal(detect(python_dates, [monitor]), expected)
    # The days without a row are days without sessions, so they are drops of the app channel.
    app = expected[expected["segment"] == "app"]
    quiet_days = set(series.loc[quiet, "date"])
    assert len(app) and (app["direction"] == "drop").all() and set(app["date"]) <= quiet_days


def test_as_of_ignores_later_days_and_never_rescores_earlier_ones():
    _, series, _ = planted()
    as_of = day(DROP_DAY - 10)
    full = detect(series, [SESSIONS])
    cut = detect(series, [SESSIONS], as_of=as_of.date())

    assert day(SPIKE_DAY) in set(cut["date"]) and day(DROP_DAY) not in set(cut["date"])
    pd.testing.assert_frame_equal(cut, full[full["date"] <= as_of].reset_index(drop=True))


def test_the_latest_day_is_judged_on_measures_final_when_its_orders_are_placed():
    # Revenue, completed orders and new customers count an order once it completes, and about half of the
    # latest day's orders complete the next day, so their latest day always reads low. The defaults read the
    # measures that are final when an order is placed instead, so that day is scored like any other.
    dates, expected = truth(level=40.0, days=120)
    rng = np.random.default_rng(8)
    orders = rng.poisson(expected)
    first = rng.binomial(orders, 0.25)
    completed = rng.binomial(orders, 0.9)
    booked = rng.gamma(4.0 * orders, 25.0)
    series = whole(dates, orders=orders.astype(float), booked_usd=booked, first_orders=first.astype(float),
                   completed_orders=completed.astype(float), revenue_usd=booked * completed / np.maximum(orders, 1),
                   new_customers=rng.binomial(first, 0.9).astype(float))
    latest = series.index[-1]
    unfinished = series.copy()
    unfinished.loc[latest, ["completed_orders", "revenue_usd", "new_customers"]] //= 2
    read = {c for m in DEFAULT_MONITORS for c in (m.numerator, m.denominator) if c}

    assert {"booked_usd", "first_orders"} <= read <= set(BASE_MEASURES)
    assert not read & {"completed_orders", "revenue_usd", "new_customers"}
    found = detect(unfinished)
    pd.testing.assert_frame_equal(found, detect(series))
    assert dates[-1] not in set(found["date"])
    bands = expected_bands(unfinished)
    assert set(bands.loc[bands["date"] == dates[-1], "metric"]) == {"orders", "booked_revenue_usd", "booked_aov_usd",
                                                                     "first_orders"}
    # A real fall in the latest day's bookings (a pricing error books the usual orders at a quarter of their
    # value) is flagged in total and per order.
    cheaper = unfinished.copy()
    cheaper.loc[latest, "booked_usd"] *= 0.25
    flagged = detect(cheaper)
    flagged = flagged[flagged["date"] == dates[-1]]
    assert set(zip(flagged["metric"], flagged["direction"])) == {("booked_revenue_usd", "drop"),
                                                                 ("booked_aov_usd", "drop")}


def test_a_year_of_twenty_series_takes_well_under_a_second():
    dates, expected = truth(days=365)
    rng = np.random.default_rng(6)
    segments = [("all", "all")] + [("channel", c) for c in ("web", "mobile", "store")] + \
        [("device_type", d) for d in ("desktop", "mobile", "tablet", "unknown")] + \
        [("payment_method", f"method_{i}") for i in range(12)]
    rows = [pd.DataFrame({"date": dates, "dimension": dim, "segment": seg,
                          **{m: rng.poisson(expected / 5).astype(float) for m in
                             ("sessions", "converted_sessions", "orders", "booked_usd", "first_orders",
                              "payment_attempts", "payment_successes", "viewed_users", "added_users")}})
            for dim, seg in segments]
    series = pd.concat(rows, ignore_index=True)
    assert len(segments) == 20
    detect(series)

    started = time.perf_counter()
    detect(series)
    assert time.perf_counter() - started < 1.0


# The shops whose planted incidents must both be found: the demo shop (`make run`: 2000 customers, 365 days,
# seed 7), whose payment failure day scores -2.93 against a payment success sensitivity of 2.8; the end-to-end
# test shop (800 x 150, seed 5); and two more from the measurement behind the defaults (see the module
# docstring of analytics.anomalies). The 300-customer shops are checked for false alerts only: a payment
# failure day there (3 failed attempts of 9) looks like several of its clean days, so no threshold that keeps
# those quiet can flag it. The other clean shops are those closest to the false-alert bound: 800 x 150 seeds 18
# and 20 went over it with a ratio level from 10 failures, 800 x 150 seed 6 and 300 x 120 seed 18 with a
# payment success sensitivity of 2.7.
INCIDENT_SHOPS = [(2000, 365, 7), (800, 150, 5), (800, 150, 7), (2000, 365, 5)]
CLEAN_SHOPS = [*INCIDENT_SHOPS, (300, 120, 7), (300, 120, 18), (800, 150, 6), (800, 150, 18), (800, 150, 20)]
INCIDENT_METRIC = {"traffic_drop": "sessions", "payment_failure_spike": "payment_success_rate"}
CURRENCY_RATES = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "currency_rates.csv"


def shop_id(spec: tuple[int, int, int]) -> str:
    return "{}x{}-seed{}".format(*spec)


def placed_orders(root: Path) -> pd.DataFrame:
    """Booked value (USD) and first orders per day from a simulated orders export, as the warehouse counts them:
    each order's latest version, any status, on the UTC day it was placed; the planted bad rows and orphan
    orders, which the warehouse quarantines, left out."""
    faults = pd.read_csv(root / "truth" / "faults.csv", dtype=str)
    planted = set(faults.loc[faults["source"] == "orders", "key"])
    lines = []
    for path in sorted((root / "landing" / "orders").glob("*/*.csv")):
        with path.open(newline="") as f:
            header, *body = csv.reader(f)
        # A planted row with an extra field would shift pandas' columns; it is dropped with the others.
        lines += [dict(zip(header, line)) for line in body if len(line) == len(header)]
    rows = pd.DataFrame(lines)
    rows = rows[~rows["order_id"].isin(planted)]
    rows = rows.assign(updated=pd.to_datetime(rows["updated_at"], utc=True, format="ISO8601"))
    orders = rows.sort_values("updated", kind="stable").drop_duplicates("order_id", keep="last")
    rates = pd.read_csv(CURRENCY_RATES).set_index("currency")["usd_rate"]
    orders = orders.assign(
        placed=pd.to_datetime(orders["ordered_at"], utc=True, format="ISO8601"),
        usd=pd.to_numeric(orders["total_amount"]) * orders["currency"].map(rates))
    orders["date"] = orders["placed"].dt.tz_convert(None).dt.normalize()
    first = orders.sort_values(["placed", "order_id"]).drop_duplicates("customer_id")
    return pd.DataFrame({"booked_usd": orders.groupby("date")["usd"].sum(),
                         "first_orders": first.groupby("date").size(), "placed": orders.groupby("date").size()})


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A simulated shop's daily truth as KPI series, and its planted incidents, generated once per module."""
    shops: dict[tuple[int, int, int], tuple[pd.DataFrame, dict[str, pd.Timestamp]]] = {}

    def get(spec: tuple[int, int, int]) -> tuple[pd.DataFrame, dict[str, pd.Timestamp]]:
        if spec not in shops:
            customers, days, seed = spec
            root = tmp_path_factory.mktemp(shop_id(spec))
            summary = simulator.generate(customers=customers, days=days, seed=seed, out=root / "landing",
                                         truth=root / "truth", sources=["orders"], progress=False)
            daily = pd.read_csv(root / "truth" / "daily.csv", parse_dates=["date"])
            placed = placed_orders(root).reindex(pd.DatetimeIndex(daily["date"]), fill_value=0)
            # The export and the daily truth agree on the orders placed each day.
            assert (placed["placed"].to_numpy() == daily["orders"].to_numpy()).all()
            series = whole(pd.DatetimeIndex(daily["date"]),
                           sessions=daily["sessions"], converted_sessions=daily["converted_sessions"],
                           orders=daily["orders"], booked_usd=placed["booked_usd"].to_numpy(),
                           first_orders=placed["first_orders"].to_numpy(dtype=float),
                           payment_attempts=daily["payment_attempts"],
                           payment_successes=daily["payment_attempts"] - daily["payment_failures"])
            shops[spec] = series, {i["kind"]: pd.Timestamp(i["date"]) for i in summary["incidents"]}
        return shops[spec]

    return get


@pytest.mark.parametrize("spec", INCIDENT_SHOPS, ids=shop_id)
def test_simulated_incidents_are_flagged_on_their_day(simulated, spec):
    series, incidents = simulated(spec)
    found = detect(series)

    assert set(incidents) == set(INCIDENT_METRIC)
    for kind, when in incidents.items():
        hit = found[(found["metric"] == INCIDENT_METRIC[kind]) & (found["dimension"] == "all")
                    & (found["date"] == when)]
        assert len(hit) == 1 and hit.iloc[0]["direction"] == "drop", f"{kind} on {when.date()} not flagged"


@pytest.mark.parametrize("spec", CLEAN_SHOPS, ids=shop_id)
def test_simulated_clean_days_have_at_most_one_false_alert_per_metric_per_90_days(simulated, spec):
    series, incidents = simulated(spec)
    found = detect(series)
    bands = expected_bands(series)
    # The incident days and the day after them (an incident in local time reaches into the next UTC day).
    dirty = {when + timedelta(days=k) for when in incidents.values() for k in (0, 1)}
    clean_days = series["date"].nunique() - len(dirty)
    false = found[(found["dimension"] == "all") & ~found["date"].isin(dirty)]

    assert {"sessions", "orders", "booked_revenue_usd", "payment_success_rate"} <= set(bands["metric"])
    for metric in set(bands["metric"]):
        alerts = int((false["metric"] == metric).sum())
        assert alerts / clean_days * 90 <= 1.0, f"{metric}: {alerts} false alerts in {clean_days} clean days"


def test_default_monitors_cover_every_kpi():
    assert [m.metric for m in DEFAULT_MONITORS] == [
        "sessions", "orders", "booked_revenue_usd", "conversion_rate", "booked_aov_usd", "payment_success_rate",
        "first_orders", "csat", "nps", "view_to_add_rate", "add_to_checkout_rate", "checkout_to_payment_rate",
        "payment_to_order_rate", "texts", "negative_text_share"]
    by_name = {m.metric: m for m in DEFAULT_MONITORS}
    assert by_name["texts"].dimensions == ("topic",) and by_name["texts"].direction == "spike"
    assert by_name["negative_text_share"].direction == "spike"
    assert (by_name["booked_aov_usd"].numerator, by_name["booked_aov_usd"].denominator) == ("booked_usd", "orders")
    assert by_name["booked_aov_usd"].unit_range == (0.0, float("inf"))
    assert by_name["payment_success_rate"].direction == "drop"
    assert by_name["payment_success_rate"].sensitivity == 2.8
    assert {by_name[m].sensitivity for m in ("csat", "nps", "view_to_add_rate")} == {3.0}
    assert by_name["nps"].scale == 100
    assert load_monitors(None) == list(DEFAULT_MONITORS)


def test_load_monitors_applies_defaults_then_metric_overrides():
    monitors = {m.metric: m for m in load_monitors({
        "defaults": {"sensitivity": 4.0, "window_days": 56, "min_history_days": 28, "direction": "both"},
        "metrics": {
            "sessions": {"min_volume": 50, "dimensions": ["channel", "device_type"]},
            "payment_success_rate": {"direction": "drop", "sensitivity": 4.5},
            "nps": {"enabled": False},
        },
    })}

    assert "nps" not in monitors and len(monitors) == len(DEFAULT_MONITORS) - 1
    assert monitors["sessions"].min_volume == 50
    assert monitors["sessions"].dimensions == ("channel", "device_type")
    assert (monitors["payment_success_rate"].direction, monitors["payment_success_rate"].sensitivity) == ("drop", 4.5)
    # `defaults` apply to every metric, including those the file does not list.
    assert (monitors["csat"].direction, monitors["csat"].sensitivity) == ("both", 4.0)
    assert monitors["orders"].min_volume == {m.metric: m for m in DEFAULT_MONITORS}["orders"].min_volume


@pytest.mark.parametrize("config, named", [
    ({"metrics": {"sesions": {"min_volume": 5}}}, "sesions"),
    ({"metrics": {"sessions": {"min_volum": 5}}}, "min_volum"),
    ({"defaults": {"sensitivty": 3}}, "sensitivty"),
    ({"default": {}}, "default"),
    ({"metrics": {"sessions": {"direction": "down"}}}, "direction"),
    ({"metrics": {"sessions": {"window_days": "eight weeks"}}}, "window_days"),
    ({"metrics": {"sessions": {"window_days": 7}}}, "window_days"),
    ({"defaults": {"sensitivity": -1}}, "sensitivity"),
    ({"metrics": {"sessions": {"enabled": "no"}}}, "enabled"),
    ({"metrics": {"sessions": {"dimensions": "channel"}}}, "dimensions"),
])
def test_load_monitors_rejects_unknown_names_and_bad_values(config, named):
    with pytest.raises(ValueError, match=named):
        load_monitors(config)


def test_a_complaint_topic_that_jumps_is_flagged_as_a_spike_of_its_topic_only():
    # Three topics of a small shop, a few texts a day each; one complaint topic triples for two days (a courier
    # losing parcels). The default text monitors flag that topic on those days and nothing else.
    rng = np.random.default_rng(11)
    dates = pd.date_range(START, periods=120, freq="D")
    frames, totals, negatives = [], np.zeros(len(dates)), np.zeros(len(dates))
    for label, rate in (("delivery / late / parcel", 3.0), ("quality / love / fit", 4.0), ("payment / card", 2.0)):
        texts = rng.poisson(rate, len(dates)).astype(float)
        if label.startswith("delivery"):
            texts[100:102] = [15.0, 14.0]
        negative = rng.binomial(texts.astype(int), 0.3).astype(float)
        totals, negatives = totals + texts, negatives + negative
        frames.append(pd.DataFrame({"date": dates, "dimension": "topic", "segment": label, "texts": texts,
                                    "negative_texts": negative}))
    series = pd.concat([whole(dates, texts=totals, negative_texts=negatives), *frames], ignore_index=True)
    monitors = [m for m in DEFAULT_MONITORS if m.metric in ("texts", "negative_text_share")]

    found = detect(series, monitors)
    topic = found[found["dimension"] == "topic"]
    assert set(zip(topic["segment"], topic["date"], topic["direction"])) == {
        ("delivery / late / parcel", dates[100], "spike"), ("delivery / late / parcel", dates[101], "spike")}
    assert not len(found[(found["metric"] == "negative_text_share")])
