"""Suites for the model layer: the point-in-time features the models learn from and the scores they write.

`customer_features` has a column set that follows the sources present, so its suite names only the
columns every installation has; the optional sources' counts are checked where they exist.
"""

from __future__ import annotations

from collections.abc import Callable

from expectations.suite import Suite, accepted_values, at_least, between, columns_present, non_negative, \
    not_null, primary_key, rate

FEATURE_COLUMNS = ("customer_key", "cutoff_date", "cutoff_role", "tenure_days", "recency_days",
                   "first_purchase_age_days", "purchase_span_days", "orders_count", "repeat_purchase_days",
                   "monetary_usd", "avg_order_usd", "refunds_count", "orders_30d", "orders_90d")
SCORE_COLUMNS = ("customer_key", "as_of_date", "churn_probability", "predicted_ltv_usd", "horizon_days",
                 "risk_segment", "churn_model_version", "ltv_model_version", "scored_at")
CUTOFF_ROLES = ("score", "evaluate", "train")
RISK_SEGMENTS = ("high", "medium", "low")


def customer_features() -> Suite:
    t = "customer_features"
    key = ("customer_key", "cutoff_date")
    return Suite(name=f"features.{t}", key=key, rules=(
        columns_present(t, FEATURE_COLUMNS),
        *primary_key(t, key),
        accepted_values(t, "cutoff_role", CUTOFF_ROLES),
        # Data dated before the cutoff only: the last purchase is at least one day before it.
        between(t, "recency_days", 1),
        *non_negative(t, "tenure_days", "purchase_span_days", "monetary_usd", "refunds_count", "orders_30d",
                      "orders_90d", "repeat_purchase_days"),
        between(t, "orders_count", 1),
        at_least(t, "first_purchase_age_days", "recency_days", "at_least_recency_days"),
        at_least(t, "orders_count", "orders_90d", "at_least_orders_90d"),
        at_least(t, "orders_90d", "orders_30d", "at_least_orders_30d"),
    ))


def customer_scores() -> Suite:
    t = "customer_scores"
    return Suite(name=f"marts.{t}", key=("customer_key",), rules=(
        columns_present(t, SCORE_COLUMNS),
        *primary_key(t, ("customer_key",)),
        *rate(t, "churn_probability"),
        *non_negative(t, "predicted_ltv_usd"),
        accepted_values(t, "risk_segment", RISK_SEGMENTS),
        # Model versions are null only for a model that has no champion yet.
        *(not_null(t, c) for c in ("as_of_date", "scored_at")),
    ))


SUITES: dict[str, Callable[[], Suite]] = {
    "features.customer_features": customer_features,
    "marts.customer_scores": customer_scores,
}
