"""The landing contract as data: columns, types and rules of every source (docs/data-contract.md).

Ingest, the raw-table DDL, the docs and the tests all read this one description, so a rule is stated once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ISO-4217 codes the warehouse can convert to USD; kept in step with dbt_project/seeds/currency_rates.csv
# (tests/unit/test_contract.py checks that).
CURRENCIES = (
    "USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "NOK", "DKK",
    "PLN", "CZK", "NZD", "SGD", "HKD", "KRW", "INR", "BRL", "MXN", "ZAR",
)

MAX_EVENT_LINE_BYTES = 1 << 20
# Longest CSV field (characters); a quoted ticket body or review may be long, the csv module's default is 128 KiB.
MAX_CSV_FIELD_CHARS = 1 << 24

# A record is future-dated (rule `<source>.<column>.not_future`) when its timestamp is at or after 00:00 UTC this
# many days after its delivery folder's date, i.e. later than the end of the day after the delivery. It is
# relative to the delivery date, not the wall clock, so a rebuild from landing months later gives the same rows,
# and a source that delivers at night in a timezone ahead of UTC still fits.
FUTURE_TOLERANCE_DAYS = 2
# Event fields checked for that: the server clock only. Device clocks (`timestamp`, `sentAt`) may be skewed by
# hours or days; staging corrects them from `receivedAt`.
EVENT_NOT_FUTURE = ("receivedAt",)
# Event properties that must be numbers when present (a numeric string such as "12.50" is accepted).
EVENT_NUMBERS = ("revenue", "total")

# A row rule broken by more than this share of a file's rows (and by at least DRIFT_MIN_ROWS rows) says the
# source changed its format (e.g. amounts now written "12,50"), not that some rows are bad. The rows are still
# quarantined one by one; ingest reports the file as drifted so the run says so.
DRIFT_SHARE = 0.5
DRIFT_MIN_ROWS = 5


@dataclass(frozen=True)
class Column:
    """One landing column and how it becomes a raw column.

    kind: text | timestamp | decimal | integer | boolean
    in_header: the header must name the column (a file without it is rejected); other columns are optional,
        but once a source's files carried one, a later file without it is schema drift.
    not_future: a timestamp that may not be later than the day after the file's delivery date.
    pii: hashed into `<name>_hash` with this pseudonym namespace; the value goes to the PII store only.
    key: the customer id, pseudonymized into `customer_key`.
    mask: free text in which emails and phone numbers are masked.
    """

    name: str
    kind: str = "text"
    required: bool = False
    in_header: bool = True
    accepted: tuple[str, ...] = ()
    value_range: tuple[int, int] | None = None
    non_negative: bool = False
    not_future: bool = False
    pii: bool = False
    customer: bool = False
    mask: bool = False

    @property
    def out_name(self) -> str:
        if self.customer:
            return "customer_key"
        if self.pii:
            return f"{self.name}_hash"
        return self.name

    @property
    def sql_type(self) -> str:
        return {
            "text": "varchar",
            "timestamp": "timestamp",
            "decimal": "decimal(18,2)",
            "integer": "integer",
            "boolean": "boolean",
        }[self.kind]


@dataclass(frozen=True)
class CsvSource:
    name: str
    key: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def header_required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.in_header)

    @property
    def header_optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.in_header)

    def unknown_columns(self, header: list[str] | tuple[str, ...]) -> list[str]:
        """Header names the contract does not know, in file order: tolerated, ignored and reported."""
        known = {c.name for c in self.columns}
        return [h for h in header if h not in known]


def _c(name: str, kind: str = "text", **kw) -> Column:
    return Column(name, kind, **kw)


CSV_SOURCES: dict[str, CsvSource] = {
    s.name: s
    for s in (
        CsvSource("customers", "customer_id", (
            _c("customer_id", required=True, customer=True),
            _c("email", pii=True, in_header=False),
            _c("phone", pii=True, in_header=False),
            _c("first_name", pii=True, in_header=False),
            _c("last_name", pii=True, in_header=False),
            _c("country", in_header=False),
            _c("city", in_header=False),
            _c("birth_year", "integer", in_header=False, value_range=(1900, 2020)),
            _c("signup_at", "timestamp", not_future=True),
            _c("acquisition_channel", in_header=False),
            _c("marketing_consent", "boolean", in_header=False),
            _c("updated_at", "timestamp", required=True, not_future=True),
        )),
        CsvSource("orders", "order_id", (
            _c("order_id", required=True),
            _c("customer_id", required=True, customer=True),
            _c("ordered_at", "timestamp", required=True, not_future=True),
            _c("status", required=True, accepted=("placed", "completed", "cancelled", "refunded")),
            _c("currency", required=True, accepted=CURRENCIES),
            _c("total_amount", "decimal", required=True, non_negative=True),
            _c("discount_amount", "decimal", non_negative=True, in_header=False),
            _c("items", "integer", in_header=False, value_range=(0, 100000)),
            _c("channel", accepted=("web", "mobile", "store")),
            _c("updated_at", "timestamp", required=True, not_future=True),
        )),
        CsvSource("payments", "payment_id", (
            _c("payment_id", required=True),
            _c("order_id", required=True),
            _c("attempted_at", "timestamp", required=True, not_future=True),
            _c("method"),
            _c("status", required=True, accepted=("succeeded", "failed")),
            _c("failure_code", in_header=False),
            _c("amount", "decimal", required=True, non_negative=True),
        )),
        CsvSource("tickets", "ticket_id", (
            _c("ticket_id", required=True),
            _c("customer_id", required=True, customer=True),
            _c("created_at", "timestamp", required=True, not_future=True),
            _c("channel", accepted=("email", "chat", "phone")),
            _c("category", in_header=False),
            _c("subject", mask=True, in_header=False),
            _c("body", mask=True, in_header=False),
            _c("status", in_header=False),
            _c("resolved_at", "timestamp", in_header=False, not_future=True),
            _c("csat", "integer", in_header=False, value_range=(1, 5)),
        )),
        CsvSource("reviews", "review_id", (
            _c("review_id", required=True),
            _c("customer_id", required=True, customer=True),
            _c("product_id", in_header=False),
            _c("created_at", "timestamp", required=True, not_future=True),
            _c("rating", "integer", required=True, value_range=(1, 5)),
            _c("title", mask=True, in_header=False),
            _c("body", mask=True, in_header=False),
        )),
        CsvSource("surveys", "response_id", (
            _c("response_id", required=True),
            _c("customer_id", required=True, customer=True),
            _c("submitted_at", "timestamp", required=True, not_future=True),
            _c("touchpoint", in_header=False),
            _c("score", "integer", required=True, value_range=(0, 10)),
            _c("comment", mask=True, in_header=False),
        )),
    )
}

EVENT_TYPES = ("track", "page", "identify", "screen")

# Raw events columns (docs/data-contract.md) with their SQL types, in table order.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("message_id", "varchar"),
    ("type", "varchar"),
    ("event", "varchar"),
    ("anonymous_id", "varchar"),
    ("customer_key", "varchar"),
    ("device_ts", "timestamp"),
    ("sent_at", "timestamp"),
    ("received_at", "timestamp"),
    ("channel", "varchar"),
    ("page_url", "varchar"),
    ("page_path", "varchar"),
    ("page_referrer", "varchar"),
    ("page_title", "varchar"),
    ("campaign_source", "varchar"),
    ("campaign_medium", "varchar"),
    ("campaign_name", "varchar"),
    ("device_id", "varchar"),
    ("device_type", "varchar"),
    ("ip_hash", "varchar"),
    ("user_agent", "varchar"),
    ("order_id", "varchar"),
    ("revenue", "decimal(18,2)"),
    ("total", "decimal(18,2)"),
    ("currency", "varchar"),
    ("product_id", "varchar"),
    ("experiment_id", "varchar"),
    ("variation_id", "varchar"),
    ("properties", "varchar"),
    ("traits", "varchar"),
    ("email_hash", "varchar"),
    ("phone_hash", "varchar"),
    ("first_name_hash", "varchar"),
    ("last_name_hash", "varchar"),
)

LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_file", "varchar"),
    ("_line", "bigint"),
    ("_delivery_date", "date"),
    ("_loaded_at", "timestamp"),
    ("_load_id", "varchar"),
)


def raw_columns(source: str) -> tuple[tuple[str, str], ...]:
    """(name, sql type) of a raw table, lineage columns last."""
    if source == "events":
        return EVENT_COLUMNS + LINEAGE_COLUMNS
    return tuple((c.out_name, c.sql_type) for c in CSV_SOURCES[source].columns) + LINEAGE_COLUMNS
