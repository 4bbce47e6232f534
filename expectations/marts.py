"""Suites for the marts (`marts.<model>`), the tables dashboards, models and activation read.

dbt's contracts already fix each mart's column types and its `unique`/`not_null` tests guard the grain inside
the build; these suites re-check the grain on what was materialised and add the invariants dbt tests do not
express: rates within [0, 1], NPS within [-100, 100], RFM scores 1-5, counts and money never negative, parts
never above their whole, ends never before their starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from analytics.experiments import DECISIONS, RESULT_COLUMNS
from expectations.raw import CURRENCY_CODE, ORDER_CHANNELS, ORDER_STATUSES, PAYMENT_STATUSES, SOURCES
from expectations.suite import (
    Rule,
    Suite,
    accepted_values,
    at_least,
    between,
    columns_present,
    matches,
    non_negative,
    not_null,
    primary_key,
    rate,
)
from expectations.voc import scored_text_rules

SEGMENT_MEASURES = ("sessions", "converted_sessions", "orders", "completed_orders", "revenue_usd", "booked_usd",
                    "first_orders", "payment_attempts",
                    "payment_successes", "new_customers", "tickets", "csat_sum", "csat_count", "nps_responses",
                    "nps_net", "viewed_users", "added_users", "checkout_users", "payment_users", "ordered_users",
                    "texts", "negative_texts")
EXPERIMENT_RESULT_COLUMNS = RESULT_COLUMNS

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_key", "first_seen_at", "signup_at", "country", "city", "birth_year",
                  "acquisition_channel", "marketing_consent", "cohort_month", "orders_count", "completed_orders",
                  "gross_revenue_usd", "refunded_usd", "net_revenue_usd", "first_order_at", "last_order_at",
                  "recency_days", "frequency", "monetary_usd", "r_score", "f_score", "m_score", "rfm_score",
                  "rfm_segment"),
    "orders": ("order_id", "customer_key", "ordered_at", "order_date", "status", "channel", "currency",
               "total_amount", "discount_amount", "items", "total_usd", "net_usd", "is_completed", "is_refunded",
               "is_cancelled", "payment_attempts", "payment_failures", "paid_amount", "last_payment_status",
               "updated_at"),
    "sessions": ("session_id", "anonymous_id", "customer_key", "session_start_at", "session_end_at",
                 "session_date", "duration_seconds", "events_count", "page_views", "channel", "landing_page",
                 "referrer", "campaign_source", "campaign_medium", "campaign_name", "device_type", "converted",
                 "orders_count", "revenue_usd"),
    "identity_links": ("anonymous_id", "customer_key", "first_identified_at", "devices_for_customer",
                       "conflicting_customers"),
    "kpi_daily": ("date", "sessions", "converted_sessions", "conversion_rate", "orders", "revenue_usd",
                  "aov_usd", "payment_attempts", "payment_success_rate", "new_customers", "active_customers",
                  "tickets", "csat_avg", "nps_responses", "nps"),
    "funnel_daily": ("date", "channel", "viewed_users", "added_users", "checkout_users", "payment_users",
                     "ordered_users", "view_to_add_rate", "add_to_checkout_rate", "checkout_to_payment_rate",
                     "payment_to_order_rate", "view_to_order_rate"),
    "cohort_retention": ("cohort_month", "months_since", "cohort_size", "active_customers", "retention_rate",
                         "revenue_usd"),
    "quarantine": ("source", "_file", "_line", "rule", "message", "raw_text", "stage", "_delivery_date"),
    "kpi_segments_daily": ("date", "dimension", "segment", *SEGMENT_MEASURES),
    "experiment_exposures": ("experiment_id", "unit_key", "customer_key", "variation_id", "variations_seen",
                             "exposures", "first_exposed_at", "last_exposed_at", "window_days", "window_complete",
                             "converted", "orders", "revenue_usd", "pre_converted", "pre_orders",
                             "pre_revenue_usd"),
    "experiment_results": EXPERIMENT_RESULT_COLUMNS,
    "audience_abandoned_carts": ("customer_key", "cart_step", "abandoned_at", "product_id", "abandoned_steps",
                                 "reason", "as_of_at"),
    "audience_churn_risk_high_value": ("customer_key", "as_of_date", "churn_probability", "predicted_ltv_usd",
                                       "net_revenue_usd", "reason", "churn_model_version", "ltv_model_version"),
    "audience_bad_experience": ("customer_key", "touchpoint", "experience_at", "reason", "as_of_at"),
    "voc_texts": ("source", "text_id", "customer_key", "created_at", "created_date", "resolved_at", "language",
                  "text", "sentiment_score", "sentiment_label", "intent", "intent_source", "intent_confidence",
                  "needs_review", "topic_id", "topic_label"),
    "voc_topics_daily": ("date", "topic_id", "topic_label", "texts", "negative_texts", "tickets", "sentiment_avg"),
}

GRAIN: dict[str, tuple[str, ...]] = {
    "customers": ("customer_key",),
    "orders": ("order_id",),
    "sessions": ("session_id",),
    "identity_links": ("anonymous_id",),
    "kpi_daily": ("date",),
    "funnel_daily": ("date", "channel"),
    "cohort_retention": ("cohort_month", "months_since"),
    "quarantine": ("source", "_file", "_line", "rule"),
    "kpi_segments_daily": ("date", "dimension", "segment"),
    "experiment_exposures": ("experiment_id", "unit_key"),
    "experiment_results": ("experiment_id", "variation_id"),
    "audience_abandoned_carts": ("customer_key",),
    "audience_churn_risk_high_value": ("customer_key",),
    "audience_bad_experience": ("customer_key",),
    "voc_texts": ("source", "text_id"),
    "voc_topics_daily": ("date", "topic_id"),
}

QUARANTINE_STAGES = ("ingest", "build")


def _mart(model: str, rules: tuple[Rule, ...]) -> Suite:
    """A mart suite: its columns and its grain, then the model's own invariants.

    Samples locate rows by the grain; a grain that is a pseudonym (`customer_key`, `anonymous_id`) is hidden
    by the runner, so those marts' samples show only the offending non-sensitive values.
    """
    base = (columns_present(model, COLUMNS[model]), *primary_key(model, GRAIN[model]))
    return Suite(name=f"marts.{model}", rules=(*base, *rules), key=GRAIN[model])


def customers() -> Suite:
    t = "customers"
    return _mart(t, (
        *non_negative(t, "orders_count", "completed_orders", "gross_revenue_usd", "refunded_usd", "recency_days",
                      "frequency"),
        *(between(t, score, 1, 5) for score in ("r_score", "f_score", "m_score")),
        at_least(t, "orders_count", "completed_orders", "at_least_completed_orders"),
        at_least(t, "last_order_at", "first_order_at", "not_before_first_order_at"),
    ))


def orders() -> Suite:
    t = "orders"
    return _mart(t, (
        *(not_null(t, column) for column in ("customer_key", "ordered_at", "order_date", "status")),
        accepted_values(t, "status", ORDER_STATUSES),
        accepted_values(t, "channel", ORDER_CHANNELS),
        accepted_values(t, "last_payment_status", PAYMENT_STATUSES),
        matches(t, "currency", CURRENCY_CODE, "accepted_values"),
        *non_negative(t, "total_amount", "discount_amount", "items", "total_usd", "payment_attempts",
                      "payment_failures", "paid_amount"),
        at_least(t, "payment_attempts", "payment_failures", "at_least_payment_failures"),
    ))


def sessions() -> Suite:
    t = "sessions"
    return _mart(t, (
        *(not_null(t, column) for column in ("session_start_at", "session_end_at", "session_date")),
        at_least(t, "session_end_at", "session_start_at", "not_before_session_start_at"),
        *non_negative(t, "duration_seconds", "page_views", "orders_count", "revenue_usd"),
        between(t, "events_count", 1),
        at_least(t, "events_count", "page_views", "at_least_page_views"),
    ))


def identity_links() -> Suite:
    t = "identity_links"
    return _mart(t, (
        not_null(t, "customer_key"),
        not_null(t, "first_identified_at"),
        between(t, "devices_for_customer", 1),
        *non_negative(t, "conflicting_customers"),
    ))


def kpi_daily() -> Suite:
    t = "kpi_daily"
    # Columns that need an absent source are null; range rules skip nulls.
    return _mart(t, (
        *non_negative(t, "sessions", "converted_sessions", "orders", "revenue_usd", "aov_usd", "payment_attempts",
                      "new_customers", "active_customers", "tickets", "nps_responses"),
        *rate(t, "conversion_rate", "payment_success_rate"),
        between(t, "csat_avg", 1, 5),
        between(t, "nps", -100, 100),
        at_least(t, "sessions", "converted_sessions", "at_least_converted_sessions"),
    ))


def funnel_daily() -> Suite:
    t = "funnel_daily"
    return _mart(t, (
        *non_negative(t, "viewed_users", "added_users", "checkout_users", "payment_users", "ordered_users"),
        *rate(t, "view_to_add_rate", "add_to_checkout_rate", "checkout_to_payment_rate", "payment_to_order_rate",
              "view_to_order_rate"),
    ))


def cohort_retention() -> Suite:
    t = "cohort_retention"
    month_zero: dict[str, Any] = {"months_since": 0}
    return _mart(t, (
        *non_negative(t, "months_since", "cohort_size", "active_customers", "revenue_usd"),
        *rate(t, "retention_rate"),
        at_least(t, "cohort_size", "active_customers", "at_least_active_customers"),
        # Everyone in a cohort is active in the month that defines it. An empty cohort has no rate (null),
        # which range rules skip, so this holds exactly where cohort_size > 0.
        between(t, "retention_rate", 1, 1, check="month_zero_is_one", when=month_zero),
    ))


def quarantine() -> Suite:
    t = "quarantine"
    return _mart(t, (
        accepted_values(t, "source", SOURCES),
        accepted_values(t, "stage", QUARANTINE_STAGES),
        not_null(t, "stage"),
    ))


def kpi_segments_daily() -> Suite:
    t = "kpi_segments_daily"
    return _mart(t, (
        accepted_values(t, "dimension", ("all", "channel", "device_type", "payment_method", "topic")),
        # Promoters minus detractors is the one measure that may be negative.
        *non_negative(t, *(m for m in SEGMENT_MEASURES if m != "nps_net")),
        at_least(t, "sessions", "converted_sessions", "at_least_converted_sessions"),
        at_least(t, "payment_attempts", "payment_successes", "at_least_payment_successes"),
        at_least(t, "nps_responses", "nps_net", "at_least_nps_net"),
        at_least(t, "viewed_users", "added_users", "at_least_added_users"),
        at_least(t, "texts", "negative_texts", "at_least_negative_texts"),
    ))


def experiment_exposures() -> Suite:
    t = "experiment_exposures"
    return _mart(t, (
        *(not_null(t, c) for c in ("variation_id", "first_exposed_at", "window_complete")),
        between(t, "variations_seen", 1),
        at_least(t, "exposures", "variations_seen", "at_least_variations_seen"),
        at_least(t, "last_exposed_at", "first_exposed_at", "not_before_first_exposed_at"),
        *(between(t, c, 0, 1) for c in ("converted", "pre_converted")),
        *non_negative(t, "orders", "revenue_usd", "pre_orders", "pre_revenue_usd"),
        at_least(t, "orders", "converted", "at_least_converted"),
    ))


def experiment_results() -> Suite:
    t = "experiment_results"
    return _mart(t, (
        accepted_values(t, "decision", DECISIONS),
        *(not_null(t, c) for c in ("is_control", "metric", "units", "decision", "decision_reason", "srm")),
        *non_negative(t, "units", "excluded_units", "required_units"),
        *rate(t, "p_value", "cuped_p_value", "chance_to_beat_control", "srm_p_value"),
        between(t, "variance_reduction", 0, 1),
        at_least(t, "abs_lift_high", "abs_lift_low", "interval_ordered"),
        at_least(t, "rel_lift_high", "rel_lift_low", "interval_ordered"),
        at_least(t, "cuped_abs_lift_high", "cuped_abs_lift_low", "interval_ordered"),
    ))


def audience_abandoned_carts() -> Suite:
    t = "audience_abandoned_carts"
    return _mart(t, (
        accepted_values(t, "cart_step", ("checkout_started", "product_added")),
        *(not_null(t, c) for c in ("abandoned_at", "reason", "as_of_at")),
        between(t, "abandoned_steps", 1),
        at_least(t, "as_of_at", "abandoned_at", "not_after_as_of_at"),
    ))


def audience_churn_risk_high_value() -> Suite:
    t = "audience_churn_risk_high_value"
    return _mart(t, (
        *rate(t, "churn_probability"),
        *non_negative(t, "predicted_ltv_usd"),
        not_null(t, "reason"),
    ))


def audience_bad_experience() -> Suite:
    t = "audience_bad_experience"
    return _mart(t, (
        accepted_values(t, "touchpoint", ("payment", "support", "survey")),
        *(not_null(t, c) for c in ("experience_at", "reason", "as_of_at")),
        at_least(t, "as_of_at", "experience_at", "not_after_as_of_at"),
    ))


def voc_texts() -> Suite:
    t = "voc_texts"
    suite = _mart(t, (*scored_text_rules(t), not_null(t, "topic_label")))
    return replace(suite, sensitive=frozenset({"text"}))


def voc_topics_daily() -> Suite:
    t = "voc_topics_daily"
    return _mart(t, (
        *non_negative(t, "texts", "negative_texts", "tickets"),
        between(t, "texts", 1),
        at_least(t, "texts", "negative_texts", "at_least_negative_texts"),
        at_least(t, "texts", "tickets", "at_least_tickets"),
        between(t, "sentiment_avg", -1, 1),
        not_null(t, "topic_label"),
    ))


SUITES: dict[str, Callable[[], Suite]] = {
    "marts.customers": customers,
    "marts.orders": orders,
    "marts.sessions": sessions,
    "marts.identity_links": identity_links,
    "marts.kpi_daily": kpi_daily,
    "marts.funnel_daily": funnel_daily,
    "marts.cohort_retention": cohort_retention,
    "marts.quarantine": quarantine,
    "marts.kpi_segments_daily": kpi_segments_daily,
    "marts.experiment_exposures": experiment_exposures,
    "marts.experiment_results": experiment_results,
    "marts.audience_abandoned_carts": audience_abandoned_carts,
    "marts.audience_churn_risk_high_value": audience_churn_risk_high_value,
    "marts.audience_bad_experience": audience_bad_experience,
    "marts.voc_texts": voc_texts,
    "marts.voc_topics_daily": voc_topics_daily,
}
