"""The simulator writes the landing contract exactly, and its truth directory describes the files it wrote.

The contract checks here are an independent, deliberately plain reading of `docs/data-contract.md` (python's
csv and json modules, no simulator code), so a simulator bug cannot hide behind shared helpers.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest

import simulator
from simulator.cli import main

SMALL = {"customers": 150, "days": 20, "seed": 7}
BLOCKED = {**SMALL, "block_customers": 50}
MEDIUM = {"customers": 1500, "days": 40, "seed": 11}
DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
MONEY = re.compile(r"^\d+(\.\d{1,2})?$")
CURRENCIES = {"USD", "EUR", "GBP"}
BOOLEANS = {"true", "false", "1", "0", "yes", "no"}

# source -> (required columns, {column: check}) following the contract's row rules.
RULES = {
    "customers": (("customer_id",), {"signup_at": "ts", "updated_at": "ts", "birth_year": "birth_year",
                                     "marketing_consent": "bool"}),
    "orders": (("order_id", "customer_id", "ordered_at"),
               {"ordered_at": "ts", "updated_at": "ts", "status": {"placed", "completed", "cancelled", "refunded"},
                "currency": CURRENCIES, "total_amount": "money", "discount_amount": "money", "items": "int",
                "channel": {"web", "mobile", "store"}}),
    "payments": (("payment_id", "order_id", "attempted_at"),
                 {"attempted_at": "ts", "status": {"succeeded", "failed"}, "amount": "money"}),
    "tickets": (("ticket_id", "customer_id", "created_at"),
                {"created_at": "ts", "resolved_at": "ts", "channel": {"email", "chat", "phone"},
                 "csat": ("int", 1, 5)}),
    "reviews": (("review_id", "customer_id", "created_at"), {"created_at": "ts", "rating": ("int", 1, 5)}),
    "surveys": (("response_id", "customer_id", "submitted_at"), {"submitted_at": "ts", "score": ("int", 0, 10)}),
}
REQUIRED_HEADER = {
    "customers": {"customer_id", "email", "phone", "first_name", "last_name", "country", "city", "birth_year",
                  "signup_at", "acquisition_channel", "marketing_consent", "updated_at"},
    "orders": {"order_id", "customer_id", "ordered_at", "status", "currency", "total_amount", "discount_amount",
               "items", "channel", "updated_at"},
    "payments": {"payment_id", "order_id", "attempted_at", "method", "status", "failure_code", "amount"},
    "tickets": {"ticket_id", "customer_id", "created_at", "channel", "category", "subject", "body", "status",
                "resolved_at", "csat"},
    "reviews": {"review_id", "customer_id", "product_id", "created_at", "rating", "title", "body"},
    "surveys": {"response_id", "customer_id", "submitted_at", "touchpoint", "score", "comment"},
}


def parse_ts(value: str) -> dt.datetime | None:
    if not TS.match(value):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _is_int(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None


def violations(source: str, row: dict[str, str]) -> set[str]:
    """Rules of the contract's table that one CSV record breaks."""
    required, checks = RULES[source]
    broken = {f"{source}.{c}.required" for c in required if not row[c]}
    for column, check in checks.items():
        value = row[column]
        if value == "":
            continue
        ok = True
        rule = "accepted_values"
        if check == "ts":
            ok, rule = parse_ts(value) is not None, "timestamp_with_offset"
        elif check == "money":
            if not MONEY.match(value.lstrip("-")):
                ok, rule = False, "number"
            elif value.startswith("-"):
                ok, rule = False, "non_negative"
        elif check == "int":
            ok, rule = _is_int(value), "integer"
        elif check == "birth_year":
            if not _is_int(value):
                ok, rule = False, "integer"
            else:
                ok, rule = 1900 <= int(value) <= 2026, "range"
        elif check == "bool":
            ok = value.lower() in BOOLEANS
        elif isinstance(check, tuple):
            if not _is_int(value):
                ok, rule = False, "integer"
            else:
                ok, rule = check[1] <= int(value) <= check[2], "range"
        else:
            ok = value in check
        if not ok:
            broken.add(f"{source}.{column}.{rule}")
    return broken


def read_csv_records(path: Path):
    """(start line, header, fields) of every record; lines are physical, the header is line 1."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        previous_end = reader.line_num
        for fields in reader:
            yield previous_end + 1, header, fields
            previous_end = reader.line_num


def read_event_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def landing_files(landing: Path) -> list[Path]:
    return sorted(p for p in landing.rglob("*") if p.is_file())


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in landing_files(root)}


def run(base: Path, name: str, **kwargs) -> tuple[Path, Path, dict]:
    landing = base / name / "landing"
    summary = simulator.generate(out=landing, **kwargs)
    return landing, base / name / "truth", summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("sim")
    return {
        "small": run(base, "small", **SMALL),
        "again": run(base, "again", **SMALL),
        "other_seed": run(base, "other_seed", **{**SMALL, "seed": 8}),
        "subset": run(base, "subset", **SMALL, sources=["customers", "orders"]),
        "clean": run(base, "clean", **SMALL, faults=False),
        "blocked": run(base, "blocked", **BLOCKED),
        "blocked_parallel": run(base, "blocked_parallel", **BLOCKED, workers=2),
    }


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return run(tmp_path_factory.mktemp("sim_medium"), "medium", **MEDIUM)


@pytest.fixture(scope="module")
def small(runs):
    return runs["small"]


def faults_of(truth: Path) -> pd.DataFrame:
    return pd.read_csv(truth / "faults.csv", dtype=str, keep_default_na=False)


def event_lines(landing: Path):
    """(file, line, text) of every line in every events file."""
    for path in landing_files(landing / "events"):
        rel = str(path.relative_to(landing))
        for number, text in enumerate(read_event_lines(path), start=1):
            yield rel, number, text


def parsed_events(landing: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for rel, number, text in event_lines(landing):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out[(rel, number)] = obj
    return out


def test_same_seed_gives_identical_bytes_and_another_seed_differs(runs):
    small_landing, small_truth, _ = runs["small"]
    again_landing, again_truth, _ = runs["again"]
    assert digest(small_landing) == digest(again_landing)
    assert digest(small_truth) == digest(again_truth)
    other = digest(runs["other_seed"][0])
    mine = digest(small_landing)
    assert set(other) == set(mine)
    assert all(other[k] != mine[k] for k in mine if k.startswith("events/"))


def test_layout_is_source_date_file(small):
    landing, _, summary = small
    start = dt.date.fromisoformat(summary["period"]["start_date"])
    end = dt.date.fromisoformat(summary["period"]["end_date"])
    suffixes = Counter()
    per_day = Counter()
    for path in landing_files(landing):
        source, day, name = path.relative_to(landing).parts
        assert source in simulator.SOURCES
        assert DATE_DIR.match(day) and start <= dt.date.fromisoformat(day) <= end
        if source == "events":
            assert name.endswith((".jsonl", ".jsonl.gz"))
            suffixes[".gz" if name.endswith(".gz") else ".jsonl"] += 1
            per_day[day] += 1
        else:
            assert name == f"{source}_{day}.csv"
    assert suffixes[".gz"] > 0 and suffixes[".jsonl"] > 0
    assert max(per_day.values()) == 2
    assert {p.name for p in landing.iterdir()} == set(simulator.SOURCES)


@pytest.mark.parametrize("which", ["small", "clean", "medium", "blocked"])
def test_csv_rows_obey_the_contract_except_recorded_bad_rows(runs, medium, which):
    landing, truth, _ = medium if which == "medium" else runs[which]
    faults = faults_of(truth)
    expected = {(r.file, int(r.line)): r.expected_rule for r in faults.itertuples() if r.kind == "bad_row"}
    found = {}
    rows = 0
    for source in RULES:
        for path in landing_files(landing / source):
            rel = str(path.relative_to(landing))
            for line, header, fields in read_csv_records(path):
                assert REQUIRED_HEADER[source] <= set(header), rel
                rows += 1
                if len(fields) != len(header):
                    found[(rel, line)] = {f"{source}.columns"}
                    continue
                broken = violations(source, dict(zip(header, fields)))
                if broken:
                    found[(rel, line)] = broken
    assert rows > 100
    assert set(found) == set(expected)
    for place, rule in expected.items():
        assert found[place] == {rule}, place
    if which != "clean":
        rules = set(expected.values())
        for source in RULES:
            assert any(r.startswith(source + ".") for r in rules), source
    else:
        assert faults.empty


@pytest.mark.parametrize("which", ["small", "clean", "medium", "blocked"])
def test_every_event_line_is_a_segment_message_except_recorded_malformed(runs, medium, which):
    landing, truth, summary = medium if which == "medium" else runs[which]
    faults = faults_of(truth)
    malformed = {(r.file, int(r.line)) for r in faults.itertuples() if r.kind == "malformed_json"}
    assert set(faults[faults.kind == "malformed_json"].expected_rule) <= {"events.json"}
    bad = set()
    lines = 0
    for rel, number, text in event_lines(landing):
        lines += 1
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            bad.add((rel, number))
            continue
        assert obj["type"] in {"track", "page", "screen", "identify"}
        assert obj.get("anonymousId") or obj.get("userId")
        assert re.fullmatch(r"[0-9a-f-]{36}", obj["messageId"])
        for key in ("timestamp", "sentAt", "receivedAt"):
            assert parse_ts(obj[key]) is not None, (rel, number, key)
        assert obj["context"]["channel"] in {"web", "mobile", "server"}
        if obj["type"] == "track":
            assert obj["event"]
        if obj["type"] == "identify":
            assert obj["userId"] and obj["traits"]["email"].endswith(("example.com", "example.org", "example.net"))
        if obj["context"]["channel"] == "web":
            assert set(obj["context"]["page"]) == {"path", "referrer", "title", "url"}
            assert obj["context"]["device"]["id"]
    assert bad == malformed
    assert lines == summary["counts"]["event_lines"]
    if which != "clean":
        assert len(malformed) >= 3
    else:
        assert not malformed


@pytest.mark.parametrize("which", ["small", "blocked"])
def test_truth_counts_match_the_event_files(runs, which):
    landing, truth, summary = runs[which]
    counts = summary["counts"]
    events = parsed_events(landing)
    ids = Counter(obj["messageId"] for obj in events.values())
    assert len(ids) == counts["events_unique"]
    assert sum(ids.values()) - len(ids) == counts["duplicate_lines"] > 0
    truth_events = pd.read_parquet(truth / "events.parquet")
    assert set(truth_events.message_id) == set(ids)
    assert truth_events.duplicate_lines.sum() == counts["duplicate_lines"]
    assert dict(zip(truth_events.message_id, truth_events.duplicate_lines + 1)) == dict(ids)
    for row in truth_events.itertuples():
        assert events[(row.file, row.line)]["messageId"] == row.message_id
    faults = faults_of(truth)
    dups = faults[faults.kind == "duplicate_event"]
    assert len(dups) == counts["duplicate_lines"]
    for row in dups.itertuples():
        assert events[(row.file, int(row.line))]["messageId"] == row.key
    same_file = later = 0
    for row in dups.itertuples():
        original = truth_events.loc[truth_events.message_id == row.key].iloc[0]
        same_file += original.file == row.file
        later += row.file.split("/")[1] > original.file.split("/")[1]
    assert same_file > 0 and later > 0
    assert counts["order_completed_events"] == (truth_events.event == "Order Completed").sum()


def test_skew_correction_recovers_the_true_time(small):
    landing, truth, summary = small
    events = parsed_events(landing)
    truth_events = pd.read_parquet(truth / "events.parquet")
    skewed = 0
    for row in truth_events.itertuples():
        obj = events[(row.file, row.line)]
        ts, sent, received = (parse_ts(obj[k]) for k in ("timestamp", "sentAt", "receivedAt"))
        corrected = received - (sent - ts)
        delta = (corrected - row.true_ts.to_pydatetime()).total_seconds()
        assert 0 <= delta < 0.8, (row.message_id, delta)
        assert 0 <= (sent - ts).total_seconds() <= 60
        if abs((ts - row.true_ts.to_pydatetime()).total_seconds()) > 60:
            skewed += 1
            assert row.skew_seconds != 0
    assert skewed > 0
    assert (truth_events.skew_seconds.abs() >= 86400).any()
    faults = faults_of(truth)
    assert len(faults[faults.kind == "skewed_device"]) == summary["counts"]["skewed_devices"] >= 2


def test_late_events_arrive_two_to_seven_days_after_receipt(small):
    _, truth, summary = small
    truth_events = pd.read_parquet(truth / "events.parquet")
    folder = pd.to_datetime(truth_events.file.str.split("/").str[1]).dt.date
    received = truth_events.received_at.dt.date
    late = truth_events.is_late
    assert late.sum() == summary["counts"]["late_events"] > 0
    gap = pd.Series([(f - r).days for f, r in zip(folder, received)])
    assert (gap[~late.values] == 0).all()
    assert gap[late.values].between(2, 7).all()
    assert (folder == truth_events.delivery_date).all()


def test_every_order_completed_event_has_its_order_row(small):
    landing, truth, _ = small
    rows = {}
    for path in landing_files(landing / "orders"):
        for _, header, fields in read_csv_records(path):
            row = dict(zip(header, fields))
            rows.setdefault(row["order_id"], []).append(row)
    completed = [obj for obj in parsed_events(landing).values() if obj.get("event") == "Order Completed"]
    assert completed
    for obj in completed:
        props = obj["properties"]
        versions = rows[props["order_id"]]
        assert {v["customer_id"] for v in versions} == {obj["userId"]}
        assert {v["total_amount"] for v in versions} == {f"{props['total']:.2f}"}
        assert {v["currency"] for v in versions} == {props["currency"]}
        assert sum(p["quantity"] for p in props["products"]) == int(versions[0]["items"])
    store = [r for versions in rows.values() for r in versions if r["channel"] == "store"]
    assert store
    customers = set()
    for path in landing_files(landing / "customers"):
        customers |= {fields[0] for _, _, fields in read_csv_records(path)}
    faults = faults_of(truth)
    orphans = set(faults[faults.kind == "orphan_order"].key)
    assert orphans
    unknown = {oid for oid, versions in rows.items() if versions[0]["customer_id"] not in customers}
    assert unknown == orphans


def test_order_lifecycle_and_payments(medium):
    landing, truth, _ = medium
    rows = defaultdict(list)
    for path in landing_files(landing / "orders"):
        for _, header, fields in read_csv_records(path):
            row = dict(zip(header, fields))
            if len(fields) == len(header) and not violations("orders", row):
                rows[row["order_id"]].append((path.parent.name, row))
    latest = {oid: max(v, key=lambda x: parse_ts(x[1]["updated_at"]))[1] for oid, v in rows.items()}
    assert any(len(v) > 1 for v in rows.values())
    refunded = [oid for oid, row in latest.items() if row["status"] == "refunded"]
    assert refunded
    for oid in refunded:
        days = sorted(day for day, _ in rows[oid])
        assert len(days) > 1 and days[0] < days[-1]
    refund_events = {obj["properties"]["order_id"] for obj in parsed_events(landing).values()
                     if obj.get("event") == "Order Refunded"}
    assert refund_events == set(refunded)

    attempts = defaultdict(list)
    for path in landing_files(landing / "payments"):
        for _, header, fields in read_csv_records(path):
            row = dict(zip(header, fields))
            if len(fields) == len(header) and not violations("payments", row):
                attempts[row["order_id"]].append(row)
    failed_then_ok = failed_only = 0
    for oid, tries in attempts.items():
        tries.sort(key=lambda r: parse_ts(r["attempted_at"]))
        statuses = [t["status"] for t in tries]
        assert "succeeded" not in statuses[:-1]
        for t in tries:
            assert (t["failure_code"] != "") == (t["status"] == "failed")
            assert t["failure_code"] in {"", "card_declined", "insufficient_funds", "expired_card",
                                         "processing_error"}
        if statuses[0] == "failed" and statuses[-1] == "succeeded":
            failed_then_ok += 1
        if set(statuses) == {"failed"} and oid in latest:
            failed_only += 1
            assert latest[oid]["status"] in {"cancelled", "placed"}
    assert failed_then_ok > 0 and failed_only > 0


def test_sessions_are_separated_by_thirty_minutes_of_inactivity(small):
    _, truth, _ = small
    ev = pd.read_parquet(truth / "events.parquet")
    ev = ev[ev.anonymous_id.notna()].sort_values(["anonymous_id", "true_ts", "session_no"], kind="stable")
    gap = ev.groupby("anonymous_id").true_ts.diff().dt.total_seconds()
    new_session = ev.groupby("anonymous_id").session_no.diff().fillna(0) != 0
    assert (gap[new_session] > 30 * 60).all()
    assert (gap[~new_session].fillna(0) < 30 * 60).all()
    assert (gap[~new_session].fillna(0) >= 0).all()


@pytest.mark.parametrize("which", ["small", "blocked"])
def test_identity_truth_matches_the_events(runs, which):
    landing, truth, _ = runs[which]
    identity = pd.read_csv(truth / "identity.csv", dtype=str)
    events = parsed_events(landing)
    identifies = defaultdict(set)
    for obj in events.values():
        if obj["type"] == "identify":
            identifies[obj["anonymousId"]].add(obj["userId"])
    assert {k: v.pop() for k, v in identifies.items()} == dict(zip(identity.anonymous_id, identity.customer_id))
    assert identity.customer_id.value_counts().max() >= 2
    ev = pd.read_parquet(truth / "events.parquet")
    never = ev[ev.customer_id.isna() & ev.anonymous_id.notna()].anonymous_id.unique()
    assert len(never) > 0 and not set(never) & set(identity.anonymous_id)
    before_login = ev[ev.customer_id.notna() & ev.user_id.isna()]
    assert len(before_login) > 0


def _block_of(name: str) -> str:
    return re.search(r"\.(b\d{4})\.", name).group(1)


def test_blocked_shop_names_files_per_block_and_numbers_ids_apart(runs):
    landing, truth, summary = runs["blocked"]
    assert summary["blocks"] == {"count": 3, "block_customers": 50, "customers": [50, 50, 50]}
    days = summary["period"]["days"]
    csv_days = defaultdict(set)
    for path in landing_files(landing):
        source, day, name = path.relative_to(landing).parts
        if source == "events":
            assert re.fullmatch(rf"events_{day}_0[01]\.b000[0-2]\.jsonl(\.gz)?", name), name
        else:
            assert re.fullmatch(rf"{source}_{day}\.b000[0-2]\.csv", name), name
            csv_days[(source, _block_of(name))].add(day)
    for source in RULES:
        assert len(csv_days[(source, "b0000")]) == days  # block 0 keeps a file for every day

    customers = pd.read_csv(truth / "customers.csv", dtype=str)
    assert len(customers) == summary["counts"]["customers"] == 150 and customers.customer_id.is_unique
    assert customers.customer_id.str[1:5].value_counts().to_dict() == {"0000": 50, "0001": 50, "0002": 50}
    blocks_of = defaultdict(set)  # (source, id) -> blocks whose files carry it
    for source, key in (("customers", "customer_id"), ("orders", "order_id"), ("payments", "payment_id"),
                        ("tickets", "ticket_id"), ("reviews", "review_id"), ("surveys", "response_id")):
        for path in landing_files(landing / source):
            for _, header, fields in read_csv_records(path):
                blocks_of[(source, dict(zip(header, fields))[key])].add(_block_of(path.name))
    for rel, _, text in event_lines(landing):
        message = re.match(r'\{"messageId":"([0-9a-f-]{36})"', text)
        if message:
            blocks_of[("events", message.group(1))].add(_block_of(rel))
    assert all(len(b) == 1 for b in blocks_of.values())
    assert {s for s, _ in blocks_of} == set(simulator.SOURCES)

    events = pd.read_parquet(truth / "events.parquet")
    assert events.message_id.is_unique and len(events) == summary["counts"]["events_unique"]
    assert events.session_no.nunique() == events.session_no.max() == summary["counts"]["sessions"]
    assert events.groupby("session_no").file.agg(lambda f: len({_block_of(x) for x in f})).max() == 1
    faults = faults_of(truth)
    orphan_orders = set(faults[faults.kind == "orphan_order"].key)
    orphan_customers = {fields[header.index("customer_id")] for path in landing_files(landing / "orders")
                        for _, header, fields in read_csv_records(path)
                        if fields[header.index("order_id")] in orphan_orders}
    assert orphan_customers and not orphan_customers & set(customers.customer_id)
    daily = pd.read_csv(truth / "daily.csv")
    assert daily.events.sum() == summary["counts"]["events_unique"]
    assert daily.tickets.sum() == summary["counts"]["tickets"]


def test_blocked_shop_is_its_blocks_and_workers_change_no_byte(runs, tmp_path):
    from simulator import blocks, core

    landing, truth, summary = runs["blocked"]
    parallel_landing, parallel_truth, _ = runs["blocked_parallel"]
    assert digest(landing) == digest(parallel_landing)
    assert digest(truth) == digest(parallel_truth)

    sizes = blocks.block_sizes(SMALL["customers"], BLOCKED["block_customers"])
    parts = [core.run_block(core.Block(index=i, count=len(sizes), customers=size, seed=SMALL["seed"],
                                       start_day=core._start_day(core.DEFAULT_START_DATE), days=SMALL["days"],
                                       out=tmp_path / "landing", truth=tmp_path / f"truth{i}",
                                       sources=simulator.SOURCES, faults=True), summary["args"])
             for i, size in enumerate(sizes)]
    assert digest(tmp_path / "landing") == digest(landing)  # each block alone writes the same files
    for key, value in summary["counts"].items():
        if isinstance(value, dict):
            assert value == {k: sum(p["counts"][key][k] for p in parts) for k in value}, key
        else:
            assert value == sum(p["counts"][key] for p in parts), key
    assert summary["files"] == {s: sum(p["files"][s] for p in parts) for s in simulator.SOURCES}
    realised = summary["experiments"][0]["realised"]["treatment"]
    assert realised["units"] == sum(p["experiments"][0]["realised"]["treatment"]["units"] for p in parts)
    for name in ("customers.csv", "identity.csv"):
        rows = [line for i in range(len(parts))
                for line in (tmp_path / f"truth{i}" / name).read_text().splitlines()[1:]]
        assert (truth / name).read_text().splitlines()[1:] == rows


def test_a_shop_that_fits_one_block_is_written_as_before(runs, tmp_path):
    """Block size changes nothing for a shop no larger than one block: the same files, names and ids."""
    landing, truth, summary = run(tmp_path, "one_block", **SMALL, block_customers=SMALL["customers"])
    assert digest(landing) == digest(runs["small"][0])
    assert digest(truth) == digest(runs["small"][1])
    assert "blocks" not in summary


def test_gzip_events_writes_every_event_file_gzipped_with_the_same_lines(runs, tmp_path):
    """`gzip_events` changes only the events' encoding: every event file is gzipped, each holds the lines the
    plain run wrote, the CSV sources are byte for byte the same and the truth names the gzipped files."""
    landing, truth, summary = run(tmp_path, "gzipped", **BLOCKED, gzip_events=True)
    plain_landing, plain_truth, plain_summary = runs["blocked"]
    gzipped = landing_files(landing / "events")
    assert gzipped and all(p.name.endswith(".jsonl.gz") for p in gzipped)

    def unzipped_name(path: Path, root: Path) -> str:
        return str(path.relative_to(root)).removesuffix(".gz")

    plain = {unzipped_name(p, plain_landing): read_event_lines(p) for p in landing_files(plain_landing / "events")}
    assert {unzipped_name(p, landing): read_event_lines(p) for p in gzipped} == plain
    csv_digest = {k: v for k, v in digest(landing).items() if not k.startswith("events/")}
    assert csv_digest == {k: v for k, v in digest(plain_landing).items() if not k.startswith("events/")}
    files = set(pd.read_parquet(truth / "events.parquet", columns=["file"])["file"].dropna())
    assert files and files <= {str(p.relative_to(landing)) for p in gzipped}
    assert summary["counts"] == plain_summary["counts"]


def test_sources_subset_writes_only_those_folders_with_the_same_bytes(runs):
    subset_landing, subset_truth, summary = runs["subset"]
    assert {p.name for p in subset_landing.iterdir()} == {"customers", "orders"}
    full = digest(runs["small"][0])
    part = digest(subset_landing)
    assert part and all(full[k] == v for k, v in part.items())
    assert set(faults_of(subset_truth).source) <= {"customers", "orders"}
    assert summary["sources"] == ["customers", "orders"]


def test_clean_run_describes_the_same_shop(runs):
    small_truth = runs["small"][1]
    clean_truth = runs["clean"][1]
    assert (clean_truth / "customers.csv").read_bytes() == (small_truth / "customers.csv").read_bytes()
    clean = pd.read_parquet(clean_truth / "events.parquet")
    assert not clean.is_late.any() and (clean.skew_seconds == 0).all() and (clean.duplicate_lines == 0).all()
    small = pd.read_parquet(small_truth / "events.parquet")
    assert list(clean.message_id) == list(small.message_id)
    assert (clean.true_ts == small.true_ts).all()


def test_experience_drives_tone_churn_and_the_experiment(medium):
    landing, truth, summary = medium
    customers = pd.read_csv(truth / "customers.csv", keep_default_na=False)
    troubled = set(customers[customers.bad_experiences > 0].customer_id)
    assert 0 < len(troubled) < len(customers)

    def rows(source):
        out = []
        for path in landing_files(landing / source):
            for _, header, fields in read_csv_records(path):
                if len(fields) == len(header):
                    row = dict(zip(header, fields))
                    if not violations(source, row):
                        out.append(row)
        return out

    surveys = pd.DataFrame(rows("surveys")).astype({"score": int})
    surveys["troubled"] = surveys.customer_id.isin(troubled)
    means = surveys.groupby("troubled").score.mean()
    assert means[True] < means[False] - 0.5
    tickets = pd.DataFrame(rows("tickets"))
    per_customer = tickets.customer_id.value_counts()
    rate_troubled = per_customer.reindex(list(troubled)).fillna(0).mean()
    others = set(customers.customer_id) - troubled
    assert rate_troubled > 2 * per_customer.reindex(list(others)).fillna(0).mean()
    rated = tickets[tickets.csat != ""].astype({"csat": int})
    assert rated[rated.customer_id.isin(troubled)].csat.mean() < rated[~rated.customer_id.isin(troubled)].csat.mean()
    reviews = pd.DataFrame(rows("reviews")).astype({"rating": int})
    assert reviews[reviews.customer_id.isin(troubled)].rating.mean() < reviews[
        ~reviews.customer_id.isin(troubled)].rating.mean()
    assert churn_hazard_after_first_bad_experience(customers, summary) > 1.5 * churn_hazard_before(customers, summary)

    experiment = next(e for e in summary["experiments"] if e["experiment_id"] == "checkout_button")
    realised = experiment["realised"]
    lift = realised["treatment"]["session_conversion"] / realised["control"]["session_conversion"] - 1
    assert experiment["planted_relative_lift"] == 0.15
    assert 0.05 < lift < 0.25
    exposures = pd.read_csv(truth / "experiments.csv")
    assert set(exposures.experiment_id) == {"checkout_button", "aa_homepage"}
    assert set(exposures[exposures.experiment_id == "checkout_button"].variation_id) == {"control", "treatment"}


def _risk_windows(customers: pd.DataFrame, summary: dict):
    """(start, first bad experience or None, end, churned) per customer, in days since the period start."""
    start = pd.Timestamp(summary["period"]["start_date"], tz="UTC")
    end = (pd.Timestamp(summary["period"]["end_date"], tz="UTC") - start).days + 1
    for row in customers.itertuples():
        begin = max(0.0, (pd.Timestamp(row.signup_at) - start).total_seconds() / 86400)
        churn = (pd.Timestamp(row.churned_at, tz="UTC") - start).days if row.churned_at else None
        bad = ((pd.Timestamp(row.first_bad_experience_at) - start).total_seconds() / 86400
               if row.first_bad_experience_at else None)
        yield begin, bad, churn if churn is not None else end, churn is not None


def churn_hazard_before(customers: pd.DataFrame, summary: dict) -> float:
    events = exposure = 0.0
    for begin, bad, stop, churned in _risk_windows(customers, summary):
        until = stop if bad is None else min(bad, stop)
        exposure += max(until - begin, 0)
        events += churned and (bad is None or stop < bad)
    return events / exposure


def churn_hazard_after_first_bad_experience(customers: pd.DataFrame, summary: dict) -> float:
    events = exposure = 0.0
    for _, bad, stop, churned in _risk_windows(customers, summary):
        if bad is None or stop < bad:
            continue
        exposure += stop - bad
        events += churned
    return events / exposure


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """Many customers over a few weeks, payments only: enough volume per day to see one-day incidents."""
    return run(tmp_path_factory.mktemp("sim_busy"), "busy", customers=5000, days=25, seed=5, sources=["payments"])


def test_incident_days_stand_out(busy):
    landing, truth, summary = busy
    assert {p.name for p in landing.iterdir()} == {"payments"}
    assert not (truth / "events.parquet").exists()
    daily = pd.read_csv(truth / "daily.csv")
    incidents = {i["kind"]: i["date"] for i in summary["incidents"]}
    drop = daily[daily.date == incidents["traffic_drop"]].iloc[0]
    assert drop.sessions < 0.7 * daily.sessions.median()
    spike = daily[daily.date == incidents["payment_failure_spike"]].iloc[0]
    overall = daily.first_attempt_failures.sum() / daily.first_attempts.sum()
    assert spike.first_attempt_failures / spike.first_attempts > 2 * overall


def test_text_fields_carry_quoted_newlines_and_fictional_contacts(medium):
    landing, _, _ = medium
    multiline = contacts = 0
    for path in landing_files(landing / "tickets"):
        raw = path.read_bytes().decode("utf-8")
        assert raw.count("\r\n") >= 1
        for _, _, fields in read_csv_records(path):
            body = fields[6]
            multiline += "\n" in body
            contacts += "@example." in body or "555-01" in body or "7700 900" in body
    assert multiline > 0 and contacts > 0


def valid_rows(landing: Path, source: str) -> list[dict[str, str]]:
    """Records of a CSV source that break no contract rule (planted bad rows left out)."""
    out = []
    for path in landing_files(landing / source):
        for _, header, fields in read_csv_records(path):
            if len(fields) == len(header):
                row = dict(zip(header, fields))
                if not violations(source, row):
                    out.append(row)
    return out


HANGUL = re.compile("[\uac00-\ud7a3]")
POSITIVE_WORDS = re.compile(r"\b(love|great|perfect|excellent|recommend|happy|beautiful|quickly|fast)\b", re.I)
NEGATIVE_WORDS = re.compile(r"\b(disappointed|poor|broke|cheap|late|terrible|rubbish|awful|waste|nightmare)\b",
                            re.I)
TICKET_CATEGORIES = {"delivery", "refund", "payment", "product", "account"}
TEST_CARDS = {"4111111111111111", "4242424242424242", "5555555555554444", "5105105105105100", "378282246310005",
              "6011111111111117"}
CARD_LIKE = re.compile(r"\b\d{4}[ -]?\d{4,6}[ -]?\d{4,5}(?:[ -]?\d{4})?\b")


def test_review_text_follows_the_rating_only_loosely(medium):
    """Tone correlates with the stars, but the same words appear under different ratings."""
    reviews = valid_rows(medium[0], "reviews")
    assert len(reviews) > 50
    ratings_by_body = defaultdict(set)
    ratings_by_sentence = defaultdict(set)
    for row in reviews:
        rating = int(row["rating"])
        ratings_by_body[row["body"].strip().lower()].add(rating)
        for sentence in re.split(r"[.!?]\s*", row["body"].lower()):
            if sentence.strip():
                ratings_by_sentence[sentence.strip()].add(rating)
    assert any(len(r) > 1 for r in ratings_by_body.values())
    assert any(max(r) - min(r) >= 2 for r in ratings_by_sentence.values())
    positive = [int(r["rating"]) for r in reviews if POSITIVE_WORDS.search(r["title"] + " " + r["body"])]
    negative = [int(r["rating"]) for r in reviews if NEGATIVE_WORDS.search(r["title"] + " " + r["body"])]
    assert len(positive) >= 10 and len(negative) >= 5
    assert sum(positive) / len(positive) > sum(negative) / len(negative) + 0.5


def test_ticket_categories_are_often_blank_while_open(medium):
    tickets = valid_rows(medium[0], "tickets")
    assert {t["category"] for t in tickets} <= TICKET_CATEGORIES | {""}
    blank = [t["category"] == "" for t in tickets]
    assert 0.15 < sum(blank) / len(blank) < 0.6
    waiting = [b for b, t in zip(blank, tickets) if t["status"] in {"open", "pending"}]
    settled = [b for b, t in zip(blank, tickets) if t["status"] not in {"open", "pending"}]
    assert waiting and settled
    assert sum(waiting) / len(waiting) > sum(settled) / len(settled)


def test_some_customers_write_in_korean_and_keep_to_one_language(medium):
    landing = medium[0]
    texts = [(t["customer_id"], t["subject"] + " " + t["body"]) for t in valid_rows(landing, "tickets")]
    texts += [(r["customer_id"], r["title"] + " " + r["body"]) for r in valid_rows(landing, "reviews")]
    texts += [(s["customer_id"], s["comment"]) for s in valid_rows(landing, "surveys") if s["comment"]]
    korean = [bool(HANGUL.search(text)) for _, text in texts]
    assert 0.005 < sum(korean) / len(texts) < 0.15
    languages = defaultdict(set)
    for (customer, _), is_korean in zip(texts, korean):
        languages[customer].add(is_korean)
    assert all(len(found) == 1 for found in languages.values())
    assert sum(found == {True} for found in languages.values()) >= 3


def test_some_payment_tickets_quote_a_test_card_number(medium):
    tickets = valid_rows(medium[0], "tickets")
    quoted = [m.group(0) for t in tickets for m in CARD_LIKE.finditer(t["body"])]
    assert quoted
    assert {re.sub(r"[ -]", "", q) for q in quoted} <= TEST_CARDS
    assert len(quoted) < 0.05 * len(tickets)


def test_cli_writes_defaults_beside_out_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "data" / "landing"
    args = ["--customers", "30", "--days", "5", "--seed", "3", "--out", str(out), "--quiet",
            "--sources", "events,customers"]
    assert main(args) == 0
    assert (tmp_path / "data" / "truth" / "summary.json").exists()
    assert {p.name for p in out.iterdir()} == {"events", "customers"}
    assert main(args) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main(["--sources", "events,nope"])


def test_csv_line_numbers_count_quoted_newlines(tmp_path):
    """Each row's recorded line is where csv.reader sees the record start, also after multi-line fields."""
    import numpy as np

    from simulator.landing import write_table
    from simulator.tables import Table
    from simulator.world import Period

    values = {"a": np.array(["1", "2", "3", "4"], dtype=object),
              "b": np.array(["x\ny", "plain", "p\nq\nr", "end"], dtype=object)}
    period = Period.build(20454, 1)
    table = Table("tickets", ("a", "b"), values, np.zeros(4, dtype=np.int64), np.arange(4))
    files, lines, written = write_table(tmp_path, table, period)
    starts = [line for line, _, _ in read_csv_records(tmp_path / written[0])]
    assert list(lines) == starts == [2, 4, 5, 8]
