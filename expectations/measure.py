"""Suites for the tables the measure step writes in Python: KPI anomalies and the experiment allocation.

`experiment_results` is a dbt model with its suite in `marts.py`; these two are written by assets directly.
"""

from __future__ import annotations

from collections.abc import Callable

from analytics.anomalies import OUTPUT_COLUMNS
from analytics.experiments import ALLOCATION_COLUMNS
from expectations.suite import Suite, accepted_values, at_least, between, columns_present, not_null, primary_key, \
    rate

# The tables' columns are the ones `analytics` writes, named once there.
ANOMALY_COLUMNS = OUTPUT_COLUMNS


def kpi_anomalies() -> Suite:
    t = "kpi_anomalies"
    key = ("date", "metric", "dimension", "segment")
    return Suite(name=f"marts.{t}", key=key, rules=(
        columns_present(t, ANOMALY_COLUMNS),
        *primary_key(t, key),
        accepted_values(t, "direction", ("spike", "drop")),
        *(not_null(t, c) for c in ("value", "expected", "lower", "upper", "score")),
        at_least(t, "upper", "expected", "band_contains_expected"),
        at_least(t, "expected", "lower", "band_contains_expected"),
        between(t, "score", 0, None, check="spike_above_expected", when={"direction": "spike"}),
        between(t, "score", None, 0, check="drop_below_expected", when={"direction": "drop"}),
    ))


def experiment_allocation() -> Suite:
    t = "experiment_allocation"
    key = ("experiment_id", "variation_id")
    return Suite(name=f"marts.{t}", key=key, rules=(
        columns_present(t, ALLOCATION_COLUMNS),
        *primary_key(t, key),
        *rate(t, "probability_best", "traffic_share", "floor"),
        at_least(t, "traffic_share", "floor", "at_least_floor"),
        not_null(t, "as_of_date"),
    ))


SUITES: dict[str, Callable[[], Suite]] = {
    "marts.kpi_anomalies": kpi_anomalies,
    "marts.experiment_allocation": experiment_allocation,
}
