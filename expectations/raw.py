"""Suites for the raw layer (`raw.<source>`), one per source of the data contract.

Ingest already quarantines rows that break the contract, so these suites re-assert the contract on what was
written: a failure means ingest let something through, and blocks the build before staging reads it. They
deliberately do not require unique keys: raw is append-only and keeps every delivered version of a record
(staging keeps the latest `updated_at`). Rules the contract does not guarantee but that usually hold are
`warn`: they are reported without stopping the flow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from expectations.suite import (
    Rule,
    Suite,
    accepted_values,
    at_least,
    between,
    columns_present,
    kinds,
    matches,
    non_negative,
    required,
)

LOAD_COLUMNS = ("_file", "_line", "_delivery_date", "_loaded_at", "_load_id")
# Where a row came from: safe to show, and enough to find it in the landing directory.
LOCATOR = ("_file", "_line")

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_key", "email_hash", "phone_hash", "first_name_hash", "last_name_hash", "country",
                  "city", "birth_year", "signup_at", "acquisition_channel", "marketing_consent", "updated_at"),
    "orders": ("order_id", "customer_key", "ordered_at", "status", "currency", "total_amount",
               "discount_amount", "items", "channel", "updated_at"),
    "payments": ("payment_id", "order_id", "attempted_at", "method", "status", "failure_code", "amount"),
    "tickets": ("ticket_id", "customer_key", "created_at", "channel", "category", "subject", "body", "status",
                "resolved_at", "csat"),
    "reviews": ("review_id", "customer_key", "product_id", "created_at", "rating", "title", "body"),
    "surveys": ("response_id", "customer_key", "submitted_at", "touchpoint", "score", "comment"),
    "events": ("message_id", "type", "event", "anonymous_id", "customer_key", "device_ts", "sent_at",
               "received_at", "channel", "page_url", "page_path", "page_referrer", "page_title",
               "campaign_source", "campaign_medium", "campaign_name", "device_id", "device_type", "ip_hash",
               "user_agent", "order_id", "revenue", "total", "currency", "product_id", "experiment_id",
               "variation_id", "properties", "traits", "email_hash", "phone_hash", "first_name_hash",
               "last_name_hash"),
}

SOURCES = tuple(COLUMNS)
ORDER_STATUSES = ("placed", "completed", "cancelled", "refunded")
ORDER_CHANNELS = ("web", "mobile", "store")
PAYMENT_STATUSES = ("succeeded", "failed")
TICKET_CHANNELS = ("email", "chat", "phone")
EVENT_TYPES = ("track", "page", "identify", "screen")
CURRENCY_CODE = r"^[A-Z]{3}$"
EARLIEST_BIRTH_YEAR = 1900


def _table(table: str, key: str, rules: tuple[Rule, ...]) -> Suite:
    """A raw suite: the source's own rules plus what every raw row carries from ingest."""
    load_rules = (
        columns_present(table, (*COLUMNS[table], *LOAD_COLUMNS)),
        *kinds(table, string=["_file", "_load_id"], integer=["_line"], timestamp=["_loaded_at"]),
        *(required(table, column) for column in LOAD_COLUMNS),
        between(table, "_line", 1),
    )
    return Suite(name=f"raw.{table}", rules=(*load_rules, *rules), key=(key, *LOCATOR))


def customers() -> Suite:
    t = "customers"
    return _table(t, "customer_key", (
        *kinds(t, string=["customer_key", "email_hash", "phone_hash", "first_name_hash", "last_name_hash",
                          "country", "city", "acquisition_channel"],
               integer=["birth_year"], boolean=["marketing_consent"], timestamp=["signup_at", "updated_at"]),
        required(t, "customer_key"),
        # Latest `updated_at` wins in staging: a version without one cannot be ordered.
        required(t, "updated_at"),
        required(t, "signup_at", severity="warn"),
        between(t, "birth_year", EARLIEST_BIRTH_YEAR, date.today().year),
    ))


def orders() -> Suite:
    t = "orders"
    return _table(t, "order_id", (
        *kinds(t, string=["order_id", "customer_key", "status", "currency", "channel"],
               number=["total_amount", "discount_amount"], integer=["items"],
               timestamp=["ordered_at", "updated_at"]),
        required(t, "order_id"),
        required(t, "customer_key"),
        required(t, "ordered_at"),
        required(t, "updated_at"),
        accepted_values(t, "status", ORDER_STATUSES),
        accepted_values(t, "channel", ORDER_CHANNELS),
        matches(t, "currency", CURRENCY_CODE, "accepted_values"),
        *non_negative(t, "total_amount", "discount_amount"),
        *non_negative(t, "items", severity="warn"),
        at_least(t, "updated_at", "ordered_at", "not_before_ordered_at", severity="warn"),
    ))


def payments() -> Suite:
    t = "payments"
    return _table(t, "payment_id", (
        *kinds(t, string=["payment_id", "order_id", "method", "status", "failure_code"], number=["amount"],
               timestamp=["attempted_at"]),
        required(t, "payment_id"),
        required(t, "order_id"),
        required(t, "attempted_at"),
        accepted_values(t, "status", PAYMENT_STATUSES),
        *non_negative(t, "amount"),
    ))


def tickets() -> Suite:
    t = "tickets"
    return _table(t, "ticket_id", (
        *kinds(t, string=["ticket_id", "customer_key", "channel", "category", "subject", "body", "status"],
               integer=["csat"], timestamp=["created_at", "resolved_at"]),
        required(t, "ticket_id"),
        required(t, "customer_key"),
        required(t, "created_at"),
        accepted_values(t, "channel", TICKET_CHANNELS),
        between(t, "csat", 1, 5),
        at_least(t, "resolved_at", "created_at", "not_before_created_at", severity="warn"),
    ))


def reviews() -> Suite:
    t = "reviews"
    return _table(t, "review_id", (
        *kinds(t, string=["review_id", "customer_key", "product_id", "title", "body"], integer=["rating"],
               timestamp=["created_at"]),
        required(t, "review_id"),
        required(t, "customer_key"),
        required(t, "created_at"),
        between(t, "rating", 1, 5),
    ))


def surveys() -> Suite:
    t = "surveys"
    return _table(t, "response_id", (
        *kinds(t, string=["response_id", "customer_key", "touchpoint", "comment"], integer=["score"],
               timestamp=["submitted_at"]),
        required(t, "response_id"),
        required(t, "customer_key"),
        required(t, "submitted_at"),
        between(t, "score", 0, 10),
    ))


def events() -> Suite:
    t = "events"
    return _table(t, "message_id", (
        *kinds(t, string=["message_id", "type", "event", "anonymous_id", "customer_key", "channel", "page_url",
                          "page_path", "page_referrer", "page_title", "campaign_source", "campaign_medium",
                          "campaign_name", "device_id", "device_type", "ip_hash", "user_agent", "order_id",
                          "currency", "product_id", "experiment_id", "variation_id", "properties", "traits",
                          "email_hash", "phone_hash", "first_name_hash", "last_name_hash"],
               number=["revenue", "total"], timestamp=["device_ts", "sent_at", "received_at"]),
        required(t, "message_id"),
        required(t, "type"),
        # The server clock is the one cxloop trusts; device times may be skewed or missing.
        required(t, "received_at"),
        # Segment requires a userId or an anonymousId on every message.
        required(t, "anonymous_id", when={"customer_key": None}, check="required_without_customer_key"),
        required(t, "event", severity="warn", when={"type": "track"}, check="required_for_track"),
        accepted_values(t, "type", EVENT_TYPES),
        matches(t, "currency", CURRENCY_CODE, "accepted_values"),
        # The contract's never-negative money rule is a CSV rule; in events a negative amount is suspect only.
        *non_negative(t, "revenue", "total", severity="warn"),
    ))


SUITES: dict[str, Callable[[], Suite]] = {
    "raw.customers": customers,
    "raw.orders": orders,
    "raw.payments": payments,
    "raw.tickets": tickets,
    "raw.reviews": reviews,
    "raw.surveys": surveys,
    "raw.events": events,
}
