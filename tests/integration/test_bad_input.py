"""Bad input and schema drift in landing files: each case is quarantined or rejected with file, line and rule.

Small hand-written landing files against a real DuckDB warehouse, ingest only. docs/data-contract.md states
the decision for each case; the `reliability` marks list them in docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime
from decimal import Decimal

import duckdb
import pytest

from orchestration.lib import contract
from orchestration.lib.failpoints import FailpointError
from orchestration.lib.ingest import Ingestor, ensure_raw_schema
from orchestration.lib.settings import PROJECT_ROOT
from tests.integration.test_ingest import event, land, rows

DAY = "2026-01-02"  # delivery folder of most files below: records may be dated up to 2026-01-03T23:59:59Z

ORDERS_HEADER = "order_id,customer_id,ordered_at,status,currency,total_amount,discount_amount,items,channel,updated_at"


def order(order_id: str, **values: str) -> str:
    row = {"order_id": order_id, "customer_id": "C1", "ordered_at": "2026-01-01T11:00:00Z", "status": "completed",
           "currency": "USD", "total_amount": "10.50", "discount_amount": "0", "items": "1", "channel": "web",
           "updated_at": "2026-01-01T11:00:00Z"}
    row.update(values)
    return ",".join(row[c] for c in ORDERS_HEADER.split(","))


def orders_csv(*lines: str, header: str = ORDERS_HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


# One valid record per CSV source, by column; a test changes one field at a time.
VALID = {
    "customers": {"customer_id": "C1", "email": "ann@example.com", "phone": "+1 555 123 4567", "first_name": "Ann",
                  "last_name": "Lee", "country": "US", "city": "Austin", "birth_year": "1980",
                  "signup_at": "2026-01-01T10:00:00Z", "acquisition_channel": "organic",
                  "marketing_consent": "true", "updated_at": "2026-01-01T10:00:00Z"},
    "orders": dict(zip(ORDERS_HEADER.split(","), order("O1").split(","))),
    "payments": {"payment_id": "P1", "order_id": "O1", "attempted_at": "2026-01-01T11:00:00Z", "method": "card",
                 "status": "succeeded", "failure_code": "", "amount": "10.50"},
    "tickets": {"ticket_id": "T1", "customer_id": "C1", "created_at": "2026-01-01T12:00:00Z", "channel": "email",
                "category": "delivery", "subject": "Late", "body": "Where is it?", "status": "closed",
                "resolved_at": "2026-01-01T13:00:00Z", "csat": "4"},
    "reviews": {"review_id": "R1", "customer_id": "C1", "product_id": "SKU1", "created_at": "2026-01-01T12:00:00Z",
                "rating": "5", "title": "Good", "body": "Works"},
    "surveys": {"response_id": "S1", "customer_id": "C1", "submitted_at": "2026-01-01T12:00:00Z",
                "touchpoint": "post_purchase", "score": "9", "comment": "Fine"},
}


def source_csv(source: str, records: list[dict[str, str]], columns: list[str] | None = None) -> str:
    columns = columns or list(VALID[source])
    return "\n".join([",".join(columns), *(",".join(r[c] for c in columns) for r in records)]) + "\n"


def quarantine(settings) -> list[tuple[str, int, str]]:
    return rows(settings, "select _file, _line, rule from raw.quarantine order by _file, _line, rule")


def ledger(settings) -> list[tuple]:
    return rows(settings, "select _file, status, rows_loaded, rows_quarantined, header_columns, unknown_columns "
                          "from raw.loaded_files order by _loaded_at, _file")


@pytest.mark.reliability(area="Bad values", case="Naive timestamp (no offset) in a CSV file",
                         outcome="row quarantined with its line, rule `<source>.<column>.timestamp_with_offset`")
def test_naive_csv_timestamps_are_quarantined_with_line_and_rule(cx):
    land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(
        order("O1"), order("O2", ordered_at="2026-01-01T11:00:00"), order("O3", updated_at="2026-01-01 11:00"),
        order("O4", ordered_at="2026-01-01T11:00:00+01:00")))
    result = Ingestor(cx).load_source("orders")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 2)
    assert quarantine(cx) == [("orders/2026-01-02/orders.csv", 3, "orders.ordered_at.timestamp_with_offset"),
                              ("orders/2026-01-02/orders.csv", 4, "orders.updated_at.timestamp_with_offset")]
    assert rows(cx, "select order_id, ordered_at from raw.orders order by 1") == [
        ("O1", datetime(2026, 1, 1, 11)), ("O4", datetime(2026, 1, 1, 10))]  # stored in UTC


@pytest.mark.reliability(area="Bad values", case="Naive timestamp (no offset) in an event",
                         outcome="line quarantined, rule `events.<field>.timestamp_with_offset` "
                                 "(receivedAt, timestamp, sentAt)")
def test_naive_event_timestamps_are_quarantined_with_line_and_rule(cx):
    land(cx.landing_dir, "events", DAY, "a.jsonl", "\n".join([
        event("ok"), event("r", receivedAt="2026-01-01T10:00:06"), event("t", timestamp="2026-01-01 10:00:00"),
        event("s", sentAt="2026-01-01T10:00:05")]) + "\n")
    assert Ingestor(cx).load_source("events").rows_loaded == 1
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (2, "events.receivedAt.timestamp_with_offset"), (3, "events.timestamp.timestamp_with_offset"),
        (4, "events.sentAt.timestamp_with_offset")]


@pytest.mark.reliability(area="Bad values", case="Future-dated record in a CSV file",
                         outcome="row quarantined, rule `<source>.<column>.not_future` (timestamp later than the "
                                 "end of the day after the delivery date); the limit does not read the clock")
def test_future_dated_csv_records_are_quarantined_for_every_business_timestamp(cx):
    limit, just_before = "2026-01-04T00:00:00Z", "2026-01-03T23:59:59Z"
    expected = []
    for source, spec in contract.CSV_SOURCES.items():
        future_columns = [c.name for c in spec.columns if c.not_future]
        assert future_columns, source
        timestamps = [c.name for c in spec.columns if c.kind == "timestamp"]
        edge = dict(VALID[source], **{c: just_before for c in timestamps})
        records = [edge]
        for i, column in enumerate(future_columns, start=2):
            records.append(dict(VALID[source], **{spec.key: f"X{i}", column: limit}))
            expected.append((f"{source}/{DAY}/{source}.csv", i + 1, f"{source}.{column}.not_future"))
        # An offset counts: 00:30 at +01:00 is still 23:30 UTC on the allowed day.
        records.append(dict(VALID[source], **{spec.key: "late-ok", timestamps[0]: "2026-01-04T00:30:00+01:00"}))
        land(cx.landing_dir, source, DAY, f"{source}.csv", source_csv(source, records))
        result = Ingestor(cx).load_source(source)
        assert (result.rows_loaded, result.rows_quarantined) == (2, len(future_columns)), source
    assert quarantine(cx) == sorted(expected)
    assert {c for _, _, r in expected for c in [r.split(".")[1]]} >= {
        "ordered_at", "updated_at", "attempted_at", "created_at", "signup_at", "submitted_at", "resolved_at"}


@pytest.mark.reliability(area="Bad values", case="Future-dated event (server time)",
                         outcome="line quarantined, rule `events.receivedAt.not_future`; a device `timestamp` in "
                                 "the future loads (its skew is corrected in staging)")
def test_future_received_at_is_quarantined_but_device_time_is_not(cx):
    land(cx.landing_dir, "events", DAY, "a.jsonl", "\n".join([
        event("edge", receivedAt="2026-01-03T23:59:59.999Z"),
        event("future", receivedAt="2026-01-04T00:00:00Z"),
        event("skewed", timestamp="2026-03-01T10:00:00Z", sentAt="2026-03-01T10:00:05Z")]) + "\n")
    Ingestor(cx).load_source("events")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [(2, "events.receivedAt.not_future")]
    assert rows(cx, "select message_id from raw.events order by 1") == [("edge",), ("skewed",)]


@pytest.mark.reliability(area="Bad values", case="Records dated after today in a future delivery folder",
                         outcome="loaded: `not_future` is relative to the delivery date, so a rebuild months later "
                                 "gives the same rows")
def test_future_rule_does_not_depend_on_the_wall_clock(cx):
    land(cx.landing_dir, "orders", "2099-06-01", "orders.csv", orders_csv(
        order("O1", ordered_at="2099-06-01T10:00:00Z", updated_at="2099-06-02T10:00:00Z")))
    land(cx.landing_dir, "orders", "2020-06-01", "orders.csv", orders_csv(order("O2")))
    Ingestor(cx).load_source("orders")
    assert rows(cx, "select order_id from raw.orders") == [("O1",)]
    assert quarantine(cx) == [("orders/2020-06-01/orders.csv", 2, "orders.ordered_at.not_future")]


@pytest.mark.reliability(area="Bad values", case="Negative amount",
                         outcome="row quarantined, rule `<source>.<column>.non_negative` "
                                 "(orders total and discount, payments amount, events revenue)")
def test_negative_amounts_are_quarantined(cx):
    land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(
        order("O1"), order("O2", total_amount="-10.50"), order("O3", discount_amount="-1")))
    payment = dict(VALID["payments"], payment_id="P2", amount="-0.01")
    land(cx.landing_dir, "payments", DAY, "payments.csv", source_csv("payments", [VALID["payments"], payment]))
    land(cx.landing_dir, "events", DAY, "a.jsonl", "\n".join([
        event("ok", properties={"revenue": 5}),
        event("neg", event="Order Completed", properties={"revenue": -5})]) + "\n")
    for source in ("orders", "payments", "events"):
        Ingestor(cx).load_source(source)
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (2, "events.revenue.non_negative"), (3, "orders.total_amount.non_negative"),
        (4, "orders.discount_amount.non_negative"), (3, "payments.amount.non_negative")]
    assert rows(cx, "select count(*) from raw.orders union all select count(*) from raw.payments "
                    "union all select count(*) from raw.events") == [(1,), (1,), (1,)]


@pytest.mark.reliability(area="Bad values", case="Unknown currency",
                         outcome="row quarantined, rule `orders.currency.accepted_values` (ISO-4217 codes of the "
                                 "currency seed only, upper case)")
def test_unknown_currency_is_quarantined(cx):
    land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(
        order("O1", currency="EUR"), order("O2", currency="XXX"), order("O3", currency="EURO"),
        order("O4", currency="usd")))
    Ingestor(cx).load_source("orders")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (3, "orders.currency.accepted_values"), (4, "orders.currency.accepted_values"),
        (5, "orders.currency.accepted_values")]


@pytest.mark.reliability(area="Bad values", case="Non-UTF-8 bytes",
                         outcome="record quarantined, rule `<source>.encoding` (CSV) or `events.encoding`; the "
                                 "file's other records load")
def test_non_utf8_records_are_quarantined_and_the_rest_loads(cx):
    latin1 = orders_csv(order("O1"), order("O2"), order("O3")).encode()
    latin1 = latin1.replace(b"O2,C1", "O2,Cé".encode("latin-1") + b"1")
    # A quoted field over two lines with a bad byte on its second line: quarantined at the record's first line.
    latin1 += b'O4,C1,2026-01-01T11:00:00Z,completed,USD,1,0,1,web,"2026-01-01T11:00:00Z\n\xff"\nO5,C1,' \
              b'2026-01-01T11:00:00Z,completed,USD,1,0,1,web,2026-01-01T11:00:00Z\n'
    land(cx.landing_dir, "orders", DAY, "orders.csv", latin1)
    land(cx.landing_dir, "events", DAY, "a.jsonl", (event("ok") + "\n").encode()
         + b'{"messageId":"bad\xe9","type":"track"}\n' + (event("ok2") + "\n").encode())
    Ingestor(cx).load_source("orders")
    Ingestor(cx).load_source("events")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (2, "events.encoding"), (3, "orders.encoding"), (5, "orders.encoding")]
    assert rows(cx, "select order_id, _line from raw.orders order by 1") == [("O1", 2), ("O3", 4), ("O5", 7)]


@pytest.mark.reliability(area="Bad values", case="Unbalanced quote in a CSV file",
                         outcome="the line with the stray quote is quarantined (rule `<source>.quoting`) and "
                                 "reading resumes on the next line, so the rows it swallowed load")
def test_unbalanced_quote_costs_one_line_not_the_rest_of_the_file(cx):
    land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(
        order("O1"),
        order("O2", channel='"web'),            # line 3: the quote opens and is never closed
        order("O3"),
        order("O4"),
        # Well quoted over two lines: read as one record starting on line 6 (and quarantined for its channel).
        'O5,C1,2026-01-01T11:00:00Z,completed,USD,1,0,1,"web\nsite",2026-01-01T11:00:00Z',
        order("O6")))
    result = Ingestor(cx).load_source("orders")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (3, "orders.quoting"), (6, "orders.channel.accepted_values")]
    assert rows(cx, "select order_id, _line from raw.orders order by 1") == [
        ("O1", 2), ("O3", 4), ("O4", 5), ("O6", 8)]
    assert (result.rows_loaded, result.rows_quarantined) == (4, 2)
    (message,) = rows(cx, "select message from raw.quarantine where _line = 3")[0]
    assert "reading resumed on line 4" in message


@pytest.mark.reliability(area="Bad values", case="Quote closed in the wrong place (CSV)",
                         outcome="row quarantined, rule `<source>.quoting`: never loaded as a record of the right "
                                 "width that holds the next record's text (what the lenient csv module does)")
def test_misplaced_quote_is_never_loaded_as_a_merged_record(cx):
    # Lenient csv parsing reads lines 2-3 as one record of three fields: ['1', 'bad,x\n2,b"', 'c'].
    header = "review_id,customer_id,created_at,rating,title"
    text = (f"{header}\n"
            'R1,C1,2026-01-01T12:00:00Z,5,"bad,x\n'
            'R2,C1,2026-01-01T12:00:00Z,4,"ok" title\n'
            'R3,C1,2026-01-01T12:00:00Z,3,"Say ""hi"", twice"\n'
            'R4,C1,2026-01-01T12:00:00Z,3,plain "inner" quotes\n')
    land(cx.landing_dir, "reviews", DAY, "reviews.csv", text)
    Ingestor(cx).load_source("reviews")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [(2, "reviews.quoting"), (3, "reviews.quoting")]
    assert rows(cx, "select review_id, title from raw.reviews order by 1") == [
        ("R3", 'Say "hi", twice'), ("R4", 'plain "inner" quotes')]


@pytest.mark.reliability(area="Bad values", case="Quote never closed before the end of the file",
                         outcome="last record quarantined, rule `<source>.quoting`; the restricted store keeps its "
                                 "text")
def test_quote_open_at_end_of_file_is_quarantined(cx):
    land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(order("O1"), 'O2,C1,"2026-01-01T11:00:00Z,x'))
    Ingestor(cx).load_source("orders")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [(3, "orders.quoting")]
    pii = duckdb.connect(str(cx.pii_db), read_only=True)
    assert pii.execute("select raw_text from quarantine_raw").fetchall() == [('O2,C1,"2026-01-01T11:00:00Z,x',)]
    pii.close()


@pytest.mark.reliability(area="Bad values", case="Quoted CSV field over the csv module's 128 KiB default",
                         outcome="loads: fields up to 16 MiB are read whole, so a long multi-line text is not split "
                                 "into bad fragments")
def test_long_multiline_field_loads_whole(cx):
    body = '"' + "a long line of text\n" * 12_000 + '"'
    records = [dict(VALID["tickets"], ticket_id=f"T{i}", body=body if i == 2 else "short") for i in (1, 2, 3)]
    land(cx.landing_dir, "tickets", DAY, "t.csv", source_csv("tickets", records))
    result = Ingestor(cx).load_source("tickets")
    assert (result.rows_loaded, result.rows_quarantined) == (3, 0)
    assert rows(cx, "select ticket_id, _line, length(body) from raw.tickets order by 1") == [
        ("T1", 2, 5), ("T2", 3, len(body) - 2), ("T3", 12_004, 5)]


@pytest.mark.reliability(area="Bad values", case="JSON line of 10 MB (events)",
                         outcome="line quarantined, rule `events.size` (over 1 MiB); the warehouse copy is cut to "
                                 "4 KiB and the other lines load")
def test_ten_megabyte_event_line_is_quarantined(cx):
    huge = event("huge", properties={"blob": "x" * (10 << 20)})
    land(cx.landing_dir, "events", DAY, "a.jsonl", "\n".join([event("a"), huge, event("b")]) + "\n")
    result = Ingestor(cx).load_source("events")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert rows(cx, "select _line, rule, length(raw_text) <= 4096 from raw.quarantine") == [(2, "events.size", True)]


@pytest.mark.reliability(area="Bad values", case="Event revenue or total that is not a number",
                         outcome="line quarantined, rule `events.revenue.number` / `events.total.number`, instead "
                                 "of loading a null amount; numeric strings load")
def test_event_amounts_that_are_not_numbers_are_quarantined(cx):
    land(cx.landing_dir, "events", DAY, "a.jsonl", "\n".join([
        event("num", properties={"revenue": 12.5, "total": 13}),
        event("text-num", properties={"revenue": "12.50"}),
        event("null", properties={"revenue": None}),
        event("comma", properties={"revenue": "12,50"}),
        event("word", properties={"revenue": "EUR 12.50"}),
        event("bool", properties={"revenue": True}),
        event("object", properties={"revenue": {"amount": 12.5}}),
        event("total", properties={"total": "n/a"}),
        event("huge", properties={"revenue": 1e25})]) + "\n")
    Ingestor(cx).load_source("events")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (4, "events.revenue.number"), (5, "events.revenue.number"), (6, "events.revenue.number"),
        (7, "events.revenue.number"), (8, "events.total.number"), (9, "events.revenue.number")]
    assert rows(cx, "select message_id, revenue, total from raw.events order by _line") == [
        ("num", Decimal("12.50"), Decimal("13.00")), ("text-num", Decimal("12.50"), None), ("null", None, None)]


@pytest.mark.reliability(area="Schema drift", case="Required column missing from a CSV header",
                         outcome="file rejected, one quarantine row with rule `<source>.header` naming the missing "
                                 "and unknown columns; other files load")
def test_missing_required_column_rejects_the_file(cx):
    land(cx.landing_dir, "orders", DAY, "a.csv", orders_csv(order("O1")).replace("ordered_at", "order_date", 1))
    land(cx.landing_dir, "orders", DAY, "b.csv", orders_csv(order("O2")))
    result = Ingestor(cx).load_source("orders")
    assert [(f.rel_path, f.status) for f in result.files] == [
        ("orders/2026-01-02/a.csv", "rejected"), ("orders/2026-01-02/b.csv", "loaded")]
    (rule, message), = rows(cx, "select rule, message from raw.quarantine")
    assert rule == "orders.header" and "ordered_at" in message and "`order_date` (renamed?)" in message
    assert rows(cx, "select order_id from raw.orders") == [("O2",)]


@pytest.mark.reliability(area="Schema drift", case="Extra unknown column in a CSV file",
                         outcome="file loads, the column is ignored and named in the ledger "
                                 "(`raw.loaded_files.unknown_columns`) and in the asset's warning and metadata")
def test_unknown_columns_are_ignored_and_recorded(cx):
    header = ORDERS_HEADER.replace("status,", "status,coupon_code,") + ",notes"
    line = order("O1").replace("completed,", "completed,SAVE10,") + ",gift"
    land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(line, header=header))
    result = Ingestor(cx).load_source("orders")
    assert [(f.status, f.unknown_columns) for f in result.files] == [("loaded", ["coupon_code", "notes"])]
    assert rows(cx, "select order_id, status, total_amount from raw.orders") == [("O1", "completed", Decimal("10.50"))]
    (_, status, _, _, header_columns, unknown), = ledger(cx)
    assert status == "loaded" and unknown == ["coupon_code", "notes"] and header_columns == header.split(",")


@pytest.mark.reliability(area="Schema drift", case="Optional column renamed or dropped after earlier deliveries had it",
                         outcome="file rejected, rule `<source>.header.drift`, naming the missing column and the "
                                 "unknown ones; a source's first files may lack optional columns (nulls)")
def test_renamed_optional_column_is_drift_and_rejects_the_file(cx):
    first = {k: v for k, v in VALID["customers"].items() if k != "city"}
    land(cx.landing_dir, "customers", "2026-01-01", "a.csv", source_csv("customers", [first], list(first)))
    land(cx.landing_dir, "customers", "2026-01-02", "b.csv",
         source_csv("customers", [dict(VALID["customers"], customer_id="C2")]))
    renamed = {("email_address" if k == "email" else k): v for k, v in VALID["customers"].items()}
    land(cx.landing_dir, "customers", "2026-01-03", "c.csv",
         source_csv("customers", [dict(renamed, customer_id="C3")], list(renamed)))
    result = Ingestor(cx).load_source("customers")
    assert {f.rel_path[-5:]: f.status for f in result.files} == {"a.csv": "loaded", "b.csv": "loaded",
                                                                  "c.csv": "rejected"}
    (file, line, rule, message), = rows(cx, "select _file, _line, rule, message from raw.quarantine")
    assert (file, line, rule) == ("customers/2026-01-03/c.csv", 1, "customers.header.drift")
    assert message == ("`email` present in earlier deliveries is missing; unknown columns: `email_address` "
                       "(renamed?)")
    assert "city" not in message  # the first file lacked `city`: tolerated, loaded as null
    assert rows(cx, "select _line, city is null from raw.customers order by _file") == [(2, True), (2, False)]

    # A later run judges new files against the ledger; a late file in an older folder only against older ones.
    land(cx.landing_dir, "customers", "2026-01-04", "d.csv",
         source_csv("customers", [dict(first, customer_id="C4")], list(first)))
    land(cx.landing_dir, "customers", "2026-01-01", "late.csv",
         source_csv("customers", [dict(first, customer_id="C5")], list(first)))
    later = Ingestor(cx).load_source("customers")
    assert {f.rel_path: f.status for f in later.files if f.status != "skipped"} == {
        "customers/2026-01-01/late.csv": "loaded", "customers/2026-01-04/d.csv": "rejected"}
    assert rows(cx, "select rule, message from raw.quarantine where _file like '%d.csv'") == [
        ("customers.header.drift", "`city` present in earlier deliveries is missing")]


@pytest.mark.reliability(area="Schema drift", case="File without a header row",
                         outcome="file rejected, rule `<source>.header`; its first row is treated as data and kept "
                                 "out of the ledger and the message (it may hold personal data)")
def test_file_without_header_is_rejected_without_leaking_its_first_row(cx):
    land(cx.landing_dir, "customers", DAY, "c.csv", source_csv("customers", [VALID["customers"]]).split("\n", 1)[1])
    result = Ingestor(cx).load_source("customers")
    assert [(f.status, f.unknown_columns) for f in result.files] == [("rejected", [])]
    (rule, message), = rows(cx, "select rule, message from raw.quarantine")
    assert rule == "customers.header" and "ann@example.com" not in message and "Ann" not in message
    assert [(status, header) for _, status, _, _, header, _ in ledger(cx)] == [("rejected", None)]


@pytest.mark.reliability(area="Re-delivery", case="Warehouse from a release that refused changed files",
                         outcome="`ensure_raw_schema` adds the ledger columns in place; a version recorded as "
                                 "`changed` (not loaded) loads on the next run as `reloaded`")
def test_existing_ledger_is_migrated_and_refused_versions_load(cx):
    path = land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(order("O1"), order("O2")))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    con = duckdb.connect(str(cx.warehouse))
    con.execute("create schema raw")
    con.execute("""create table raw.loaded_files (source varchar, _file varchar, _delivery_date date,
                   sha256 varchar, size_bytes bigint, rows_loaded bigint, rows_quarantined bigint, status varchar,
                   _loaded_at timestamp, _load_id varchar)""")
    con.execute("insert into raw.loaded_files values "
                "('orders', 'orders/2026-01-02/orders.csv', '2026-01-02', 'first', 1, 1, 0, 'loaded', "
                "'2026-01-02', 'old'), "
                "('orders', 'orders/2026-01-02/orders.csv', '2026-01-02', ?, 1, 0, 1, 'changed', '2026-01-03', 'old')",
                [digest])
    ensure_raw_schema(con)
    ensure_raw_schema(con)  # idempotent
    con.close()
    result = Ingestor(cx).load_source("orders")
    assert [(f.status, f.rows_loaded) for f in result.files] == [("reloaded", 2)]
    assert [(s, h) for _, s, _, _, h, _ in ledger(cx)] == [
        ("loaded", None), ("changed", None), ("reloaded", ORDERS_HEADER.split(","))]
    assert [f.status for f in Ingestor(cx).load_source("orders").files] == ["skipped"]


@pytest.mark.reliability(area="Schema drift", case="What the run reports",
                         outcome="the raw asset warns about unknown columns and re-delivered files and logs an error "
                                 "for a file most of whose rows break one rule; metadata names the files")
def test_raw_asset_reports_unknown_columns_drift_and_redelivery(cx):
    import dagster as dg

    from orchestration.defs.ingest.assets import raw_assets

    path = land(cx.landing_dir, "orders", DAY, "o.csv", orders_csv(order("O0")))
    Ingestor(cx).load_source("orders")
    # Re-delivered with an extra column, and with `items` now written as decimals in every row.
    path.write_text(orders_csv(*[order(f"O{i}", items="2.0") + ",X" for i in range(6)],
                               header=ORDERS_HEADER + ",coupon_code"))
    asset = next(a for a in raw_assets if a.key == dg.AssetKey(["raw", "orders"]))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([asset], instance=instance)
    metadata = {k: v.value for k, v in result.asset_materializations_for_node(asset.op.name)[0].metadata.items()}
    assert metadata["files_reloaded"] == ["orders/2026-01-02/o.csv"]
    assert metadata["unknown_columns"] == {"orders/2026-01-02/o.csv": ["coupon_code"]}
    assert metadata["schema_drift"] == {"orders/2026-01-02/o.csv": {"orders.items.integer": 6}}
    logs = [(r.level, r.user_message) for r in instance.all_logs(result.run_id) if r.level >= logging.WARNING]
    assert any(level == logging.ERROR and "schema drift" in m and "orders.items.integer x6 of 6" in m
               for level, m in logs)
    assert any(level == logging.WARNING and "['coupon_code']" in m for level, m in logs)
    assert any(level == logging.WARNING and "re-delivered" in m for level, m in logs)


@pytest.mark.parametrize("column, value, rule", [
    pytest.param("total_amount", '"12,50"', "orders.total_amount.number", id="decimal-comma",
                 marks=pytest.mark.reliability(area="Schema drift", case="Amounts written as \"12,50\"",
                                               outcome="every row quarantined, rule `orders.total_amount.number`; "
                                                       "the file is reported as drift, nothing loads as null")),
    pytest.param("total_amount", "EUR 12.50", "orders.total_amount.number", id="currency-prefix",
                 marks=pytest.mark.reliability(area="Schema drift", case="Amounts written as \"EUR 12.50\"",
                                               outcome="every row quarantined, rule `orders.total_amount.number`; "
                                                       "the file is reported as drift, nothing loads as null")),
    pytest.param("items", "2.0", "orders.items.integer", id="integer-as-float",
                 marks=pytest.mark.reliability(area="Schema drift", case="Integers written as \"2.0\"",
                                               outcome="every row quarantined, rule `orders.items.integer` (never "
                                                       "rounded); the file is reported as drift")),
    pytest.param("ordered_at", "01/01/2026 11:00", "orders.ordered_at.timestamp_with_offset", id="date-format",
                 marks=pytest.mark.reliability(area="Schema drift", case="Timestamps in another format",
                                               outcome="every row quarantined, rule "
                                                       "`orders.ordered_at.timestamp_with_offset`; reported as "
                                                       "drift")),
])
def test_changed_type_quarantines_every_row_and_reports_drift(cx, column, value, rule):
    land(cx.landing_dir, "orders", "2026-01-01", "a.csv", orders_csv(order("O0")))
    good = Ingestor(cx).load_source("orders")
    assert good.files[0].drift == {}
    lines = [order(f"O{i}", **{column: value}) for i in range(1, 9)] + [order("O9")]
    land(cx.landing_dir, "orders", DAY, "b.csv", orders_csv(*lines))
    result = Ingestor(cx).load_source("orders")
    (drifted,) = [f for f in result.files if f.status == "loaded"]
    assert (drifted.rows_loaded, drifted.rows_quarantined, drifted.drift) == (1, 8, {rule: 8})
    assert [line for _, line, r in quarantine(cx) if r == rule] == list(range(2, 10))
    # The raw table (and so every mart) gains only the one good row: no row loads with a null in its place.
    assert rows(cx, f"select order_id, {column} is not null from raw.orders order by 1") == [
        ("O0", True), ("O9", True)]


@pytest.mark.reliability(area="Schema drift", case="Booleans written as \"maybe\"",
                         outcome="row quarantined, rule `customers.marketing_consent.boolean`")
def test_unknown_boolean_words_are_quarantined(cx):
    records = [dict(VALID["customers"], customer_id=f"C{i}", marketing_consent=word)
               for i, word in enumerate(["true", "No", "1", "maybe", "2", ""])]
    land(cx.landing_dir, "customers", DAY, "c.csv", source_csv("customers", records))
    Ingestor(cx).load_source("customers")
    assert [(line, rule) for _, line, rule in quarantine(cx)] == [
        (5, "customers.marketing_consent.boolean"), (6, "customers.marketing_consent.boolean")]
    assert rows(cx, "select marketing_consent from raw.customers order by _line") == [(True,), (False,), (True,),
                                                                                     (None,)]


@pytest.mark.reliability(area="Schema drift", case="Unknown top-level keys in an event",
                         outcome="tolerated and ignored, as Segment adds keys over time; the event loads")
def test_unknown_event_keys_are_tolerated(cx):
    land(cx.landing_dir, "events", DAY, "a.jsonl", event("m1", integrations={"All": True}, version=2,
                                                         _metadata={"bundled": []}) + "\n")
    assert Ingestor(cx).load_source("events").rows_loaded == 1
    assert quarantine(cx) == []


@pytest.mark.reliability(area="Re-delivery", case="File re-delivered with extra rows (same path, new bytes)",
                         outcome="loaded again as a new version (status `reloaded`, one ledger row per SHA-256, "
                                 "a warning); the extra rows arrive, shared rows are duplicates staging removes")
def test_redelivered_csv_loads_its_extra_rows_and_keeps_both_versions_traceable(cx):
    path = land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(order("O1"), order("O2", currency="XXX")))
    Ingestor(cx).load_source("orders")
    path.write_text(orders_csv(order("O1"), order("O2", currency="XXX"), order("O3", status="refunded")))
    result = Ingestor(cx).load_source("orders")
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in result.files] == [("reloaded", 2, 1)]
    assert rows(cx, "select order_id, count(*) from raw.orders group by 1 order by 1") == [("O1", 2), ("O3", 1)]
    assert [(s, loaded) for _, s, loaded, _, _, _ in ledger(cx)] == [("loaded", 1), ("reloaded", 2)]
    assert rows(cx, "select count(distinct sha256) from raw.loaded_files") == [(2,)]
    # The bad row is reported by both loads; the quarantine mart keeps its first report.
    assert quarantine(cx) == [("orders/2026-01-02/orders.csv", 3, "orders.currency.accepted_values")] * 2
    pii = duckdb.connect(str(cx.pii_db), read_only=True)
    assert pii.execute("select count(distinct _loaded_at) from quarantine_raw").fetchall() == [(2,)]
    pii.close()
    assert [f.status for f in Ingestor(cx).load_source("orders").files] == ["skipped"]


@pytest.mark.reliability(area="Re-delivery", case="Crash while loading a re-delivered file",
                         outcome="nothing of the attempt stays; the next run loads the new version once and the "
                                 "restricted store keeps one copy per loaded version")
def test_redelivery_after_a_crash_is_loaded_once(cx, monkeypatch):
    path = land(cx.landing_dir, "orders", DAY, "orders.csv", orders_csv(order("O1", currency="XXX")))
    Ingestor(cx).load_source("orders")
    path.write_text(orders_csv(order("O1", currency="XXX"), order("O2")))
    monkeypatch.setenv("CXLOOP_FAILPOINTS", "ingest.before_commit=raise")
    with pytest.raises(FailpointError):
        Ingestor(cx).load_source("orders")
    monkeypatch.delenv("CXLOOP_FAILPOINTS")
    assert [f.status for f in Ingestor(cx).load_source("orders").files] == ["reloaded"]
    assert rows(cx, "select order_id from raw.orders") == [("O2",)]
    pii = duckdb.connect(str(cx.pii_db), read_only=True)
    assert pii.execute("select count(*), count(distinct _loaded_at) from quarantine_raw").fetchall() == [(2, 2)]
    pii.close()


STAGING_KEYS = {
    "stg_segment__events": "message_id", "stg_crm__customers": "customer_key", "stg_shop__orders": "order_id",
    "stg_shop__payments": "payment_id", "stg_support__tickets": "ticket_id", "stg_reviews__reviews": "review_id",
    "stg_surveys__responses": "response_id",
}


@pytest.mark.reliability(area="Re-delivery", case="Raw rows delivered more than once",
                         outcome="every staging model keeps one row per key (events: first delivery of a messageId; "
                                 "the others: latest version), so duplicates never reach the marts")
def test_every_staging_model_keeps_one_row_per_key():
    folder = PROJECT_ROOT / "dbt_project" / "models" / "staging"
    # Models over the raw layer; the text layer's (`source('voc', ...)`) reads one row per text already.
    over_raw = {path.stem for path in folder.glob("stg_*.sql") if "source('raw'" in path.read_text()}
    assert over_raw - set(STAGING_KEYS) == {"stg_ingest__quarantine"}
    for model, key in STAGING_KEYS.items():
        sql = (folder / f"{model}.sql").read_text()
        window = re.search(r"row_number\(\) over \(\s*partition by (\w+)\s+order by ([^)]*)\)\s*as (\w+)", sql)
        assert window and window.group(1) == key, f"{model} does not rank the rows of each {key}"
        assert re.search(rf"where {window.group(3)} = 1\s", sql), f"{model} does not keep rank 1 only"
        assert "_line" in window.group(2), model  # ties between versions are broken down to the line
        yml = (folder / f"{model}.yml").read_text()
        column = yml[yml.index(f"- name: {key}\n"):]
        assert "- unique" in column.split("- name:", 2)[1], f"{model}.{key} has no unique test"
