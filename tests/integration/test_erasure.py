"""Erasure on request against real files and real DuckDB files: by id and by email, suppression on
re-delivery, the audit log, idempotency, bytes gone from both database files, quarantine text cleaned.

No dbt here: the downstream layers are stood in for by tables built from raw with the column names the real
marts use (`customer_key`, `anonymous_id`, `person_key`, `visitor_id`, `unit_key`, `raw_text`), in several
schemas, so the generic sweep is what is tested. tests/faults/test_erasure.py runs the real platform.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.lib import erasure
from orchestration.lib.ingest import Ingestor
from orchestration.lib.landing import pending_files
from orchestration.lib.pseudonymize import pseudonym
from orchestration.lib.serving import current_dir, publish_snapshot
from orchestration.lib.settings import SOURCES
from tests.conftest import TEST_KEY

KEY = TEST_KEY.encode()
DAY1, DAY2, DAY3 = "2026-01-02", "2026-01-03", "2026-01-04"

# The person erased by customer id: values rare enough that a byte search of a file finds only them.
ZQ = {"id": "ZQ-ERASE-7781", "email": "quokka.erase@example.org", "phone": "+44 7700 900123",
      "first": "Quokkaline", "last": "Erasmusson", "anon": "anon-zq-4411", "order": "O-ZQ-5521"}
# The person erased by email.
OT = {"id": "OT-ERASE-3390", "email": "otter.erase@example.org", "first": "Ottoline", "last": "Erasewell",
      "anon": "anon-ot-8812", "order": "O-OT-6631"}
KEEP = {"id": "KEEP-1001", "email": "keeper@example.org", "anon": "anon-keep-1", "order": "O-KEEP-1"}
SHARED_DEVICE = "anon-shared-77"
ZQ_KEY = pseudonym(KEY, "customer_id", ZQ["id"])
OT_KEY = pseudonym(KEY, "customer_id", OT["id"])
KEEP_KEY = pseudonym(KEY, "customer_id", KEEP["id"])

CUSTOMERS = f"""customer_id,email,phone,first_name,last_name,country,city,birth_year,signup_at,acquisition_channel,marketing_consent,updated_at
{ZQ['id']},{ZQ['email']},{ZQ['phone']},{ZQ['first']},{ZQ['last']},GB,Leeds,1985,2026-01-01T10:00:00Z,organic,true,2026-01-01T10:00:00Z
{OT['id']},{OT['email']},,{OT['first']},{OT['last']},FR,Lyon,1979,2026-01-01T10:00:00Z,paid,true,2026-01-01T10:00:00Z
{KEEP['id']},{KEEP['email']},,Kim,Keeper,DE,Berlin,1990,2026-01-01T10:00:00Z,paid,true,2026-01-01T10:00:00Z
{ZQ['id']},{ZQ['email']},{ZQ['phone']},{ZQ['first']},{ZQ['last']},GB,Leeds,nineteen,2026-01-01T10:00:00Z,organic,true,2026-01-02T10:00:00Z
"""
ORDERS = f"""order_id,customer_id,ordered_at,status,currency,total_amount,discount_amount,items,channel,updated_at
{ZQ['order']},{ZQ['id']},2026-01-01T11:00:00Z,completed,USD,10.50,0,1,web,2026-01-01T11:00:00Z
O-ZQ-BAD,{ZQ['id']},2026-01-01T11:00:00Z,completed,XXX,3,0,1,web,2026-01-01T11:00:00Z
{OT['order']},{OT['id']},2026-01-01T12:00:00Z,completed,EUR,20,0,1,web,2026-01-01T12:00:00Z
{KEEP['order']},{KEEP['id']},2026-01-01T13:00:00Z,completed,USD,30,0,1,web,2026-01-01T13:00:00Z
"""
PAYMENTS = f"""payment_id,order_id,attempted_at,method,status,failure_code,amount
P-ZQ-1,{ZQ['order']},2026-01-01T11:01:00Z,card,succeeded,,10.50
P-OT-1,{OT['order']},2026-01-01T12:01:00Z,card,succeeded,,20
P-KEEP-1,{KEEP['order']},2026-01-01T13:01:00Z,card,succeeded,,30
"""
TICKETS = f"""ticket_id,customer_id,created_at,channel,category,subject,body,status,resolved_at,csat
T-ZQ-1,{ZQ['id']},2026-01-01T14:00:00Z,email,delivery,late,"write to {ZQ['email']} please",closed,2026-01-01T15:00:00Z,2
T-KEEP-1,{KEEP['id']},2026-01-01T14:00:00Z,chat,delivery,late,fine,closed,2026-01-01T15:00:00Z,5
"""


def event(mid: str, anon: str | None, user: str | None, kind: str = "track", **extra) -> str:
    body = {"messageId": mid, "type": kind, "anonymousId": anon, "userId": user,
            "timestamp": "2026-01-01T10:00:00Z", "sentAt": "2026-01-01T10:00:05Z",
            "receivedAt": "2026-01-01T10:00:06Z", "context": {"ip": "10.9.8.7", "channel": "web"},
            "properties": {"product_id": "SKU1"}}
    if kind == "track":
        body["event"] = "Product Viewed"
    body.update(extra)
    return json.dumps({k: v for k, v in body.items() if v is not None})


EVENTS = "\n".join([
    event("m-zq-1", ZQ["anon"], None, "page"),
    event("m-zq-2", ZQ["anon"], ZQ["id"], "identify",
          traits={"email": ZQ["email"], "first_name": ZQ["first"], "last_name": ZQ["last"]}),
    event("m-zq-3", ZQ["anon"], ZQ["id"], event="Order Completed", properties={"order_id": ZQ["order"]}),
    event("m-zq-4", SHARED_DEVICE, ZQ["id"]),
    '{"messageId": "m-zq-broken", "type": "track", "userId": "' + ZQ["id"] + '", "anonymousId": "' + ZQ["anon"],
    event("m-ot-1", OT["anon"], None, "identify", traits={"email": OT["email"]}),
    event("m-ot-2", OT["anon"], OT["id"]),
    event("m-keep-1", KEEP["anon"], KEEP["id"]),
    event("m-keep-2", SHARED_DEVICE, KEEP["id"]),
    event("m-shared-anon", SHARED_DEVICE, None, "page"),
]) + "\n"

FILES = {"customers": CUSTOMERS, "orders": ORDERS, "payments": PAYMENTS, "tickets": TICKETS, "events": EVENTS}
NAMES = {"events": "events.jsonl"}
# Stand-ins for what dbt and the Python assets build, with the real marts' person columns.
DOWNSTREAM = [
    "create schema if not exists marts",
    "create schema if not exists intermediate",
    "create schema if not exists analysis",
    "create schema if not exists staging",
    "create or replace table marts.customers as select customer_key, email_hash, marketing_consent from raw.customers",
    "create or replace table marts.orders as select order_id, customer_key, total_amount from raw.orders",
    "create or replace table marts.sessions as "
    "select message_id as session_id, anonymous_id, customer_key from raw.events where anonymous_id is not null",
    "create or replace table intermediate.int_events_stitched as "
    "select message_id, coalesce(customer_key, anonymous_id) as person_key, "
    "coalesce(anonymous_id, customer_key) as visitor_id from raw.events",
    "create or replace table marts.experiment_exposures as "
    "select 'exp-1' as experiment_id, coalesce(customer_key, anonymous_id) as unit_key from raw.events",
    "create or replace table marts.customer_scores as select customer_key, 0.7 as churn_probability from raw.customers",
    "create or replace table marts.audience_bad_experience as "
    "select customer_key, 'support' as touchpoint from raw.tickets where csat <= 2",
    "create or replace table analysis.customer_notes as select customer_key, 'note' as note from raw.customers",
    "create or replace table marts.quarantine as "
    "select source, _file, _line, rule, raw_text from raw.quarantine union all "
    "select 'orders', _file, _line, 'orders.customer_id.known', 'order_id=' || order_id || ',customer_key=' || "
    "customer_key from raw.orders",
    "create or replace view staging.stg_customers as select * from raw.customers",
]
MARTS = ["customers", "orders", "sessions", "experiment_exposures", "customer_scores", "audience_bad_experience",
         "quarantine"]


def land(landing: Path, source: str, day: str, content: str, name: str | None = None) -> Path:
    path = landing / source / day / (name or NAMES.get(source, f"{source}.csv"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def ingest(settings) -> dict[str, object]:
    return {s: Ingestor(settings).load_source(s) for s in SOURCES}


def shop(settings) -> None:
    """The landed shop, loaded, the downstream stand-ins built and two serving snapshots published."""
    for source, content in FILES.items():
        land(settings.landing_dir, source, DAY1, content)
    ingest(settings)
    con = duckdb.connect(str(settings.warehouse))
    try:
        for sql in DOWNSTREAM:
            con.execute(sql)
    finally:
        con.close()
    for snapshot in ("build-1", "build-2"):
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            publish_snapshot(con, settings, MARTS, snapshot)


def request(settings, day: str, rows: list[str], name: str = "requests.csv") -> Path:
    body = "request_id,customer_id,email,requested_at\n" + "\n".join(rows) + "\n"
    return land(settings.landing_dir, erasure.REQUESTS_SOURCE, day, body, name)


def warehouse_rows(settings, sql: str, params=None) -> list:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def pii_rows(settings, sql: str, params=None) -> list:
    con = duckdb.connect(str(settings.pii_db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def tables_holding(settings, values: list[str]) -> dict[str, int]:
    """Rows of every base table of the warehouse whose text (any column) contains one of the values."""
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_type = 'BASE TABLE' and table_catalog = current_database()").fetchall()
        out = {}
        for schema, table in tables:
            n = con.execute(f'select count(*) from "{schema}"."{table}" t '
                            "where list_bool_or(list_transform(?::varchar[], lambda v: contains(t::varchar, v)))",
                            [values]).fetchone()[0]
            if n:
                out[f"{schema}.{table}"] = n
        return out
    finally:
        con.close()


def in_file(path: Path, value: str) -> bool:
    return value.encode() in path.read_bytes()


def snapshot_text(settings) -> str:
    return " ".join(str(pq.read_table(p).to_pylist())
                    for p in (settings.serving_dir / "snapshots").rglob("*.parquet"))


@pytest.mark.reliability(area="Privacy", case="Erasure by customer id from a landed request file",
                         outcome="the person is gone from the PII store, raw, downstream tables, quarantine and "
                                 "the serving snapshot; everyone else stays")
def test_erasure_by_customer_id_removes_the_person_everywhere_and_keeps_everyone_else(cx):
    shop(cx)
    person_values = [ZQ_KEY, ZQ["anon"], ZQ["order"], ZQ["id"], "P-ZQ-1", "T-ZQ-1", "O-ZQ-BAD"]
    before = tables_holding(cx, person_values)
    assert {"raw.customers", "raw.orders", "raw.payments", "raw.tickets", "raw.events", "raw.quarantine",
            "marts.customers", "marts.sessions", "intermediate.int_events_stitched", "marts.experiment_exposures",
            "marts.customer_scores", "marts.audience_bad_experience", "analysis.customer_notes",
            "marts.quarantine"} <= set(before)
    assert ZQ_KEY in snapshot_text(cx)
    keep_before = tables_holding(cx, [KEEP_KEY, KEEP["anon"], KEEP["order"]])

    request(cx, DAY2, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00+01:00"])
    run = erasure.process_requests(cx, MARTS)

    assert [e.request.request_id for e in run.erasures] == ["req-zq-1"]
    assert tables_holding(cx, person_values) == {}
    assert tables_holding(cx, [KEEP_KEY, KEEP["anon"], KEEP["order"]]) == keep_before
    # The shared device's anonymous event stays (it cannot be told whose it is); its event with their id goes.
    assert warehouse_rows(cx, "select message_id from raw.events where anonymous_id = ? order by 1",
                          [SHARED_DEVICE]) == [("m-keep-2",), ("m-shared-anon",)]
    assert warehouse_rows(cx, "select count(*) from staging.stg_customers where customer_key = ?", [ZQ_KEY]) == [(0,)]
    assert pii_rows(cx, "select count(*) from identities where value in (?, ?, ?, ?, ?, ?)",
                    [ZQ["id"], ZQ["email"], "447700900123", ZQ["first"].lower(), ZQ["last"].lower(), ZQ["anon"]]
                    ) == [(0,)]
    assert pii_rows(cx, "select count(*) from identities where value = ?", [KEEP["id"]]) == [(1,)]
    assert pii_rows(cx, "select count(*) from quarantine_raw where contains(raw_text, ?)", [ZQ["id"]]) == [(0,)]
    assert pii_rows(cx, "select kind, count(*) from suppression where request_id = 'req-zq-1' group by 1 order by 1"
                    ) == [("anonymous_id", 1), ("customer_id", 1), ("email", 1), ("order_id", 1), ("phone", 1)]
    # One snapshot left, republished from the cleaned warehouse; the person is in no Parquet file.
    assert [p.name for p in (cx.serving_dir / "snapshots").iterdir()] == [run.snapshot_id]
    assert current_dir(cx).resolve().name == run.snapshot_id
    text = snapshot_text(cx)
    assert ZQ_KEY not in text and KEEP_KEY in text
    assert warehouse_rows(cx, "select status, rows_loaded from raw.loaded_files where source = 'erasure_requests'"
                          ) == [("loaded", 1)]


@pytest.mark.reliability(area="Privacy", case="Erasure by email",
                         outcome="the email resolves to the customer key through customers and identify events; "
                                 "their devices, orders and payments go too")
def test_erasure_by_email_resolves_the_person_through_customers_and_identify_events(cx):
    shop(cx)
    request(cx, DAY2, [f"req-ot-1,,{OT['email'].upper()},2026-01-03T09:00:00Z"])
    run = erasure.process_requests(cx, MARTS)

    assert run.erasures[0].customer_keys == [OT_KEY]
    assert tables_holding(cx, [OT_KEY, OT["anon"], OT["order"], "P-OT-1"]) == {}
    assert pii_rows(cx, "select count(*) from identities where value in (?, ?, ?)",
                    [OT["id"], OT["email"], OT["first"].lower()]) == [(0,)]
    assert tables_holding(cx, [ZQ_KEY])  # the other people are untouched
    removed = run.erasures[0].warehouse
    assert removed["raw.events"] == 2 and removed["raw.payments"] == 1 and removed["raw.orders"] == 1


@pytest.mark.reliability(area="Privacy", case="A landing file holding an erased person is delivered again",
                         outcome="their rows are neither loaded nor quarantined nor written to the PII store; "
                                 "each file counts them as suppressed")
def test_suppression_keeps_an_erased_person_out_of_redelivered_files(cx):
    shop(cx)
    request(cx, DAY2, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00Z"])
    erasure.process_requests(cx, MARTS)

    for source, content in FILES.items():
        land(cx.landing_dir, source, DAY3, content)
    # A file whose header is broken is quarantined whole: its head must not bring their text back either.
    land(cx.landing_dir, "customers", DAY3, "customer_id;email\n" + f"{ZQ['id']};{ZQ['email']}\n", "broken.csv")
    results = ingest(cx)

    suppressed = {s: [(f.rel_path, f.rows_suppressed) for f in r.files if f.rows_suppressed]
                  for s, r in results.items()}
    assert suppressed["customers"] == [(f"customers/{DAY3}/customers.csv", 2)]  # the valid row and the bad one
    assert suppressed["orders"] == [(f"orders/{DAY3}/orders.csv", 2)]
    assert suppressed["payments"] == [(f"payments/{DAY3}/payments.csv", 1)]  # by the order id
    assert suppressed["tickets"] == [(f"tickets/{DAY3}/tickets.csv", 1)]
    # Their four events with an id or their device, and the broken line found by the ids in its text.
    assert suppressed["events"] == [(f"events/{DAY3}/events.jsonl", 5)]
    assert warehouse_rows(cx, "select rows_suppressed from raw.loaded_files where _file = ?",
                          [f"orders/{DAY3}/orders.csv"]) == [(2,)]
    assert tables_holding(cx, [ZQ_KEY, ZQ["anon"], ZQ["order"], ZQ["id"], "P-ZQ-1"]) == {}
    assert warehouse_rows(cx, "select count(*) from raw.customers where customer_key = ?", [KEEP_KEY]) == [(2,)]
    assert pii_rows(cx, "select count(*) from identities where value in (?, ?)", [ZQ["id"], ZQ["email"]]) == [(0,)]
    assert pii_rows(cx, "select count(*) from quarantine_raw where contains(raw_text, ?) or contains(raw_text, ?)",
                    [ZQ["id"], ZQ["email"]]) == [(0,)]
    assert pii_rows(cx, "select raw_text from quarantine_raw where _file = ?", [f"customers/{DAY3}/broken.csv"]
                    ) == [("[withheld: the text names an erased person]",)]


@pytest.mark.reliability(area="Privacy", case="Audit log of an erasure",
                         outcome="one append-only line per request with times, customer key and counts per table; "
                                 "no email, customer id, phone or name")
def test_audit_log_records_request_time_and_counts_without_identifiers(cx):
    shop(cx)
    request(cx, DAY2, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00+01:00",
                       f"req-ot-1,,{OT['email']},2026-01-03T09:05:00Z"])
    run = erasure.process_requests(cx, MARTS)

    path = erasure.audit_log_path(cx)
    assert run.audit_log == path and stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for secret in (*ZQ.values(), *OT.values(), "447700900123", ZQ["first"].lower()):
        assert secret not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["request_id"] for e in entries] == ["req-zq-1", "req-ot-1"]
    zq = entries[0]
    assert zq["requested_via"] == "landing" and zq["identifier"] == "customer_id"
    assert zq["file"] == f"erasure_requests/{DAY2}/requests.csv" and zq["line"] == 2
    assert zq["requested_at"] == "2026-01-03T08:00:00+00:00" and zq["processed_at"] >= zq["requested_at"]
    assert zq["customer_keys"] == [ZQ_KEY]
    assert zq["rows_removed"]["warehouse"]["raw.customers"] == 1
    assert zq["rows_removed"]["warehouse"]["marts.customer_scores"] == 1
    assert zq["rows_removed"]["restricted"]["identities"] >= 5
    assert zq["rows_removed"]["restricted"]["quarantine_raw"] == 3  # bad customer row, bad order, broken event
    assert zq["rows_removed_total"] == sum(sum(v.values()) for v in zq["rows_removed"].values())
    assert zq["suppression_added"] == {"anonymous_id": 1, "customer_id": 1, "email": 1, "order_id": 1, "phone": 1}
    assert sorted(zq["space_reclaimed"]) == sorted([cx.warehouse.name, cx.pii_db.name])
    assert zq["serving_snapshot"] == run.snapshot_id


@pytest.mark.reliability(area="Privacy", case="The same erasure request processed again",
                         outcome="nothing is deleted twice and no second audit line is written; a new request "
                                 "for the same person logs 0 rows removed")
def test_processing_a_request_again_is_idempotent(cx):
    shop(cx)
    request(cx, DAY2, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00Z"])
    erasure.process_requests(cx, MARTS)
    assert erasure.process_requests(cx, MARTS).files == []  # the file is in the ledger

    # The same request delivered again in another file, and the first file again with a new request for the
    # same person appended (a new version of a processed path).
    request(cx, DAY3, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00Z"], "again.csv")
    request(cx, DAY2, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00Z", f"req-zq-2,,{ZQ['email']},2026-01-04T09:00:00Z"])
    run = erasure.process_requests(cx, MARTS)

    assert run.already_processed == ["req-zq-1", "req-zq-1"]
    assert warehouse_rows(cx, "select _file, status from raw.loaded_files where source = 'erasure_requests' "
                          "order by _loaded_at, _file") == [
        (f"erasure_requests/{DAY2}/requests.csv", "loaded"), (f"erasure_requests/{DAY2}/requests.csv", "reloaded"),
        (f"erasure_requests/{DAY3}/again.csv", "loaded")]
    assert [(e.request.request_id, e.rows_removed, e.suppression_added) for e in run.erasures] == [
        ("req-zq-2", 0, {})]
    assert [e["request_id"] for e in erasure.read_audit_log(cx)] == ["req-zq-1", "req-zq-2"]
    assert pii_rows(cx, "select count(*) from suppression") == [(5,)]


@pytest.mark.reliability(area="Privacy", case="Bytes of an erased person left in the DuckDB files",
                         outcome="DELETE leaves them in free blocks; the rewrite into fresh files removes them "
                                 "from the warehouse and the PII store")
def test_space_reclaim_removes_the_bytes_delete_leaves_behind(cx):
    shop(cx)
    warehouse_values = [ZQ_KEY, ZQ["anon"], ZQ["order"], ZQ["id"]]
    pii_values = [ZQ["id"], ZQ["email"], ZQ["first"].lower(), ZQ["last"].lower(), "447700900123"]
    # Positive control: the values are in the files before anything is deleted.
    assert all(in_file(cx.warehouse, v) for v in warehouse_values)
    assert all(in_file(cx.pii_db, v) for v in pii_values)

    request(cx, DAY2, [f"req-zq-1,{ZQ['id']},,2026-01-03T09:00:00Z"])
    con = erasure._connect(cx)
    try:
        (landed, _, _), = erasure._pending_files(con, cx)
        requests, _ = erasure.parse_requests(landed, landed.path.read_bytes())
        erased = erasure.erase(con, KEY, requests[0])
    finally:
        con.close()
    assert erased.rows_removed > 0 and tables_holding(cx, warehouse_values) == {}
    # The rows are deleted and checkpointed, yet their bytes are still in both files.
    assert any(in_file(cx.warehouse, v) for v in warehouse_values)
    assert any(in_file(cx.pii_db, v) for v in pii_values)

    mode = stat.S_IMODE(cx.pii_db.stat().st_mode)
    for path in (cx.warehouse, cx.pii_db):
        erasure.reclaim(path)
    for value in warehouse_values:
        assert not in_file(cx.warehouse, value), value
    for value in pii_values:
        assert not in_file(cx.pii_db, value), value
    assert stat.S_IMODE(cx.pii_db.stat().st_mode) == mode
    # The rewritten files are whole: views, other people's rows, the suppression list, and ingest still works.
    assert warehouse_rows(cx, "select count(*) from staging.stg_customers where customer_key = ?",
                          [KEEP_KEY]) == [(1,)]
    assert pii_rows(cx, "select count(*) from suppression") == [(5,)]
    land(cx.landing_dir, "customers", DAY3, CUSTOMERS)
    assert Ingestor(cx).load_source("customers").files[-1].rows_suppressed == 2
    # A connection still open in this process would keep the old file in use: the rewrite refuses to start.
    held = duckdb.connect(str(cx.pii_db))
    try:
        with pytest.raises(duckdb.Error, match="already attached"):
            erasure.reclaim(cx.pii_db)
    finally:
        held.close()
    assert not list(cx.pii_db.parent.glob(".reclaim-*"))


@pytest.mark.reliability(area="Privacy", case="An erasure request row that breaks the contract",
                         outcome="quarantined with file, line and rule; the identifier stays out of the "
                                 "warehouse quarantine")
def test_bad_request_rows_are_quarantined_without_the_identifier_in_the_warehouse(cx):
    request(cx, DAY2, [
        f"req-1,{ZQ['id']},{ZQ['email']},2026-01-03T09:00:00Z",
        f",{ZQ['id']},,2026-01-03T09:00:00Z",
        "req-3,,not-an-email,2026-01-03T09:00:00Z",
        f"req-4,,{OT['email']},2026-01-03 09:00:00",
        f"req-5,{ZQ['id']},,2026-01-03T09:00:00Z",
    ])
    run = erasure.process_requests(cx, [])

    assert [e.request.request_id for e in run.erasures] == ["req-5"] and run.rows_quarantined == 4
    assert warehouse_rows(cx, "select _line, rule from raw.quarantine order by 1") == [
        (2, "erasure_requests.identifier.one_of"),
        (3, "erasure_requests.request_id.required"),
        (4, "erasure_requests.email.format"),
        (5, "erasure_requests.requested_at.timestamp_with_offset"),
    ]
    assert not tables_holding(cx, [ZQ["id"], ZQ["email"], OT["email"], "not-an-email"])
    assert pii_rows(cx, "select _line from quarantine_raw where contains(raw_text, ?)", [OT["email"]]) == [(5,)]
    # Known before any of their data arrived: their rows never load.
    land(cx.landing_dir, "customers", DAY3, CUSTOMERS)
    assert Ingestor(cx).load_source("customers").rows_suppressed == 2


def test_write_request_creates_a_private_file_the_landing_source_reads(cx):
    request_id, path = erasure.write_request(cx, email=OT["email"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.parent.parent == cx.landing_dir / erasure.REQUESTS_SOURCE
    # The landing sensor sees the request file as pending until it is processed.
    assert [p.source for p in pending_files(cx)] == [erasure.REQUESTS_SOURCE]
    con = erasure._connect(cx)
    try:
        (landed, _, _), = erasure._pending_files(con, cx)
    finally:
        con.close()
    requests, bad = erasure.parse_requests(landed, path.read_bytes())
    assert bad == [] and [(r.request_id, r.kind, r.value, r.requested_via) for r in requests] == [
        (request_id, "email", OT["email"], "cli")]
    for bad in ({"customer_id": "x", "email": "y@example.org"}, {"email": "not-an-email"},
                {"customer_id": "x", "request_id": "../elsewhere"}):
        with pytest.raises(ValueError):
            erasure.write_request(cx, **bad)
    erasure.process_requests(cx, [])
    assert pending_files(cx) == []
