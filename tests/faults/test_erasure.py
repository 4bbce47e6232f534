"""Erasure on the whole platform: a person erased through the landing source and one through `cxloop erase`
are gone from every warehouse table, the PII store, both database files and every serving snapshot; a
re-delivered file does not bring them back; nor does a full rebuild from landing that keeps the restricted
folder. A customer who withdraws marketing consent in a later CRM file drops out of every audience.

One small simulated shop, one installation, four platform runs and one CLI erasure, in order:
1. the shop is built; three people are chosen (present in orders, events, tickets, scores and an audience);
2. a request file names the first by customer id and a later CRM file withdraws the third's consent; the
   platform job runs (the erasure asset runs before ingest, the marts rebuild without them);
3. `cxloop erase --email` erases the second (the erasure job only: tables swept, no rebuild);
4. the landing files holding the first two are delivered again and the platform job runs;
5. the warehouse and serving folders are deleted and the platform job rebuilds everything from landing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import simulator
from orchestration.cli import execute, main, prepare
from orchestration.lib.erasure import REQUESTS_SOURCE, audit_log_path, read_audit_log
from orchestration.lib.settings import Settings, get_settings
from tests import pii_scan
from tests.conftest import use_installation

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

# The ML tests' shop (tests/e2e/conftest.py): smaller shops train, but their candidates do not beat the
# baselines, so no champion scores anyone and `customer_scores` would be empty.
SHOP = {"customers": 800, "days": 150, "seed": 5}
SMALL_TRAINING = {"CXLOOP_HORIZON_DAYS": "30", "CXLOOP_CUTOFF_STEP_DAYS": "15", "CXLOOP_TRAIN_CUTOFFS": "4"}
AUDIENCES = ("audience_abandoned_carts", "audience_churn_risk_high_value", "audience_bad_experience")
ERASURE_STEP = "privacy__erasure_requests"


@dataclass
class Person:
    key: str
    customer_id: str
    email: str
    anonymous_ids: list[str]
    order_ids: list[str]

    def warehouse_values(self) -> list[str]:
        """What may not appear in any warehouse row: pseudonym, ids, devices, orders, plaintext contacts."""
        return [self.key, self.customer_id, self.email, *self.anonymous_ids, *self.order_ids]


@dataclass
class Stage:
    """Where the erased people were found after one step: table -> rows, per place."""

    warehouse: dict[str, int]
    pii: dict[str, int]
    serving: dict[str, int]
    file_bytes: list[str]
    snapshots: int
    artifacts: list[str]
    audiences_with_withdrawn: list[str] = field(default_factory=list)


@dataclass
class History:
    settings: Settings
    erased: list[Person]
    withdrawn: str
    before: Stage
    after_landing_request: Stage
    after_cli: Stage
    after_redelivery: Stage
    after_rebuild: Stage
    suppressed_by_source: dict[str, int]
    audit: list[dict]
    seconds: dict[str, float]


def installation(mp: pytest.MonkeyPatch, root: Path) -> Settings:
    use_installation(mp, root)
    for name, value in SMALL_TRAINING.items():
        mp.setenv(name, value)
    return get_settings()


def run_platform(settings: Settings):
    result = execute("platform_job", settings, tags={"cxloop/trigger": "test"})
    assert result.success, [e.message for e in result.all_events if e.is_failure][:3]
    return result


def step_seconds(result, step_key: str) -> float:
    for event in result.all_events:
        if event.step_key == step_key and event.event_type_value == "STEP_SUCCESS":
            return event.event_specific_data.duration_ms / 1000
    raise AssertionError(f"step {step_key} did not succeed")


def query(path: Path, sql: str, params=None) -> list:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def rows_naming(con: duckdb.DuckDBPyConnection, relations: list[str], values: list[str]) -> dict[str, int]:
    """Rows of each relation whose text (every column, cast to text) contains one of the values."""
    out = {}
    for relation in relations:
        n = con.execute(f"select count(*) from {relation} t "
                        "where list_bool_or(list_transform(?::varchar[], lambda v: contains(t::varchar, v)))",
                        [values]).fetchone()[0]
        if n:
            out[relation] = n
    return out


def find(settings: Settings, people: list[Person], withdrawn: str | None = None) -> Stage:
    values = [v for p in people for v in p.warehouse_values()]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        tables = [f'"{s}"."{t}"' for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_catalog = current_database()").fetchall()]
        warehouse = rows_naming(con, tables, values)
        audiences = [a for a in AUDIENCES if withdrawn and con.execute(
            f"select count(*) from marts.{a} where customer_key = ?", [withdrawn]).fetchone()[0]]
    finally:
        con.close()
    con = duckdb.connect(str(settings.pii_db), read_only=True)
    try:
        plaintext = [v for p in people for v in (p.customer_id, p.email, *p.anonymous_ids, *p.order_ids)]
        pii = rows_naming(con, ["identities", "quarantine_raw"], plaintext)
    finally:
        con.close()
    con = duckdb.connect()
    try:
        parquet = sorted(settings.serving_dir.rglob("*.parquet"))
        serving = rows_naming(con, [f"read_parquet('{p}')" for p in parquet], values)
    finally:
        con.close()
    in_bytes = [f"{path.name}: {v}" for path in (settings.warehouse, settings.pii_db)
                for v in (*(p.customer_id for p in people), *(p.email for p in people))
                if v.encode() in path.read_bytes()]
    in_bytes += [f"{path.name}: {p.key}" for p in people for path in [settings.warehouse]
                 if p.key.encode() in path.read_bytes()]
    snapshots = len([p for p in (settings.serving_dir / "snapshots").iterdir() if p.is_dir()])
    # Every other artifact (Dagster storage, MLflow, dbt target and logs, reports, alert outbox): ids and keys.
    artifacts = pii_scan.scan(settings, [v for p in people for v in (p.key, p.customer_id, p.email,
                                                                      *p.anonymous_ids)])
    return Stage(warehouse, pii, serving, in_bytes, snapshots, artifacts, audiences)


def choose_people(settings: Settings) -> tuple[list[str], str]:
    """Three customers found in orders, events, tickets, scores and an audience (with consent)."""
    audiences = " union ".join(f"select customer_key from marts.{a}" for a in AUDIENCES)
    keys = [r[0] for r in query(settings.warehouse, f"""
        select c.customer_key from marts.customers c
        where c.customer_key in ({audiences})
            and c.customer_key in (select customer_key from marts.orders)
            and c.customer_key in (select customer_key from raw.events)
            and c.customer_key in (select customer_key from raw.tickets)
            and c.customer_key in (select customer_key from marts.customer_scores)
            and c.customer_key in (select customer_key from raw.customers where email_hash is not null)
        order by c.net_revenue_usd desc, c.customer_key
        limit 3""")]
    assert len(keys) == 3, keys
    return keys[:2], keys[2]


def describe(settings: Settings, key: str) -> Person:
    (customer_id,), = query(settings.pii_db, "select value from identities where kind = 'customer_id' and hash = ?",
                            [key])
    email_hash = query(settings.warehouse, "select any_value(email_hash) from raw.customers where customer_key = ?",
                       [key])[0][0]
    (email,), = query(settings.pii_db, "select value from identities where kind = 'email' and hash = ?",
                      [email_hash])
    # Devices seen with this customer only (a shared device's anonymous events stay: they are nobody's alone).
    anonymous = [r[0] for r in query(settings.warehouse, """
        select anonymous_id from raw.events where customer_key = ? and anonymous_id is not null
        except select anonymous_id from raw.events where customer_key <> ?""", [key, key])]
    orders = [r[0] for r in query(settings.warehouse, "select distinct order_id from raw.orders where customer_key = ?",
                                  [key])]
    return Person(key, customer_id, email, sorted(anonymous), sorted(orders))


def text_of(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8", errors="replace")


def withdraw_consent(settings: Settings, customer_id: str, day: str) -> None:
    """A later CRM file with the customer's latest record, consent withdrawn, updated a second later."""
    rows = []
    for path in sorted(settings.landing_dir.glob("customers/*/*.csv")):
        rows += [r for r in csv.DictReader(io.StringIO(text_of(path))) if r.get("customer_id") == customer_id]
    latest = max(rows, key=lambda r: datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")))
    updated = datetime.fromisoformat(latest["updated_at"].replace("Z", "+00:00")) + timedelta(seconds=1)
    withdrawn = {**latest, "marketing_consent": "false", "updated_at": updated.isoformat()}
    path = settings.landing_dir / "customers" / day / "consent_changes.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(withdrawn), lineterminator="\n")
        writer.writeheader()
        writer.writerow(withdrawn)


def redeliver(settings: Settings, people: list[Person], day: str) -> list[str]:
    """Copy every landing file that names one of the people into a new delivery folder."""
    copied = []
    for source in ("customers", "orders", "payments", "tickets", "events"):
        for path in sorted(settings.landing_dir.glob(f"{source}/*/*")):
            text = text_of(path)
            if any(p.customer_id in text or any(o in text for o in p.order_ids) for p in people):
                target = settings.landing_dir / source / day / f"again_{path.parent.name}_{path.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
                copied.append(target.relative_to(settings.landing_dir).as_posix())
    return copied


@pytest.fixture(scope="module")
def history(tmp_path_factory, dbt_manifest) -> History:
    root = tmp_path_factory.mktemp("erasure") / "cx"
    simulator.generate(out=root / "landing", truth=root / "truth", **SHOP)
    seconds = {}
    with pytest.MonkeyPatch.context() as mp:
        settings = installation(mp, root)
        prepare(settings, quiet=True)
        run_platform(settings)

        erased_keys, withdrawn_key = choose_people(settings)
        erased = [describe(settings, k) for k in erased_keys]
        withdrawn = describe(settings, withdrawn_key)
        before = find(settings, erased, withdrawn_key)
        last_day = date.fromisoformat(max(p.name for p in settings.landing_dir.glob("orders/*")))
        day = lambda n: (last_day + timedelta(days=n)).isoformat()  # noqa: E731

        request = settings.landing_dir / REQUESTS_SOURCE / day(1) / "privacy_desk.csv"
        request.parent.mkdir(parents=True)
        request.write_text("request_id,customer_id,email,requested_at\n"
                           f"desk-0001,{erased[0].customer_id},,{day(1)}T08:00:00+02:00\n")
        withdraw_consent(settings, withdrawn.customer_id, day(1))
        result = run_platform(settings)
        seconds["erasure step in platform_job"] = step_seconds(result, ERASURE_STEP)
        after_landing_request = find(settings, erased[:1], withdrawn_key)

        started = time.monotonic()
        assert main(["erase", "--email", erased[1].email.upper()]) == 0
        seconds["cxloop erase (prepare + erasure_job)"] = time.monotonic() - started
        after_cli = find(settings, erased)

        copied = redeliver(settings, erased, day(2))
        run_platform(settings)
        suppressed = dict(query(settings.warehouse,
                                "select source, sum(rows_suppressed)::bigint from raw.loaded_files "
                                "where list_contains(?, _file) group by 1", [copied]))
        after_redelivery = find(settings, erased, withdrawn_key)

        shutil.rmtree(settings.warehouse.parent)
        shutil.rmtree(settings.serving_dir)
        started = time.monotonic()
        run_platform(settings)
        seconds["full rebuild (platform_job)"] = time.monotonic() - started
        after_rebuild = find(settings, erased, withdrawn_key)
        audit = read_audit_log(settings)
    print(f"\nerasure timings on a {SHOP['customers']}-customer, {SHOP['days']}-day shop: {json.dumps(seconds)}")
    return History(settings, erased, withdrawn_key, before, after_landing_request, after_cli, after_redelivery,
                   after_rebuild, suppressed, audit, seconds)


def nowhere(stage: Stage) -> dict:
    return {k: v for k, v in {"warehouse": stage.warehouse, "pii": stage.pii, "serving": stage.serving,
                              "bytes": stage.file_bytes, "artifacts": stage.artifacts}.items() if v}


def test_the_chosen_people_are_everywhere_before_erasure(history):
    """Positive control: the search finds them in every layer before anything is erased."""
    found = history.before.warehouse
    for table in ('"raw"."customers"', '"raw"."orders"', '"raw"."events"', '"raw"."tickets"', '"marts"."customers"',
                  '"marts"."orders"', '"marts"."customer_scores"', '"features"."customer_features"'):
        assert table in found, table
    assert any("audience_" in t for t in found) and any("sessions" in t for t in found)
    assert history.before.pii and history.before.serving and history.before.artifacts
    assert any(name.startswith("pii.duckdb") for name in history.before.file_bytes)


@pytest.mark.reliability(area="Privacy", case="Erasure request landed, then the platform job",
                         outcome="the person is gone from every warehouse table, the PII store, both database files "
                                 "and the only serving snapshot left")
def test_a_landed_request_erases_the_person_before_the_build(history):
    # Every snapshot is searched: the one the erasure republished and the one the build published after it.
    assert nowhere(history.after_landing_request) == {}


@pytest.mark.reliability(area="Privacy", case="cxloop erase --email",
                         outcome="the person is gone from every table, the PII store, the files and the serving "
                                 "snapshot at once, before any rebuild")
def test_cli_erasure_by_email_removes_the_person_without_a_rebuild(history):
    stage = history.after_cli
    assert nowhere(stage) == {}
    assert stage.snapshots == 1


@pytest.mark.reliability(area="Privacy", case="Files naming erased people are delivered again",
                         outcome="their rows are counted as suppressed per file and nothing of them is loaded")
def test_redelivered_files_do_not_bring_erased_people_back(history):
    assert nowhere(history.after_redelivery) == {}
    suppressed = history.suppressed_by_source
    assert all(suppressed.get(s, 0) > 0 for s in ("customers", "orders", "payments", "tickets", "events")), suppressed


@pytest.mark.reliability(area="Privacy", case="Full rebuild from landing after erasures (restricted folder kept)",
                         outcome="the suppression list keeps erased people out of every rebuilt table and snapshot; "
                                 "requests are not processed twice")
def test_a_full_rebuild_from_landing_keeps_erased_people_out(history):
    assert nowhere(history.after_rebuild) == {}
    assert [e["request_id"] for e in history.audit][:1] == ["desk-0001"] and len(history.audit) == 2


@pytest.mark.reliability(area="Privacy", case="The audit log after erasures on the platform",
                         outcome="one line per request, pseudonymous key and counts only")
def test_audit_log_holds_counts_and_pseudonyms_only(history):
    text = audit_log_path(history.settings).read_text()
    for person in history.erased:
        assert person.customer_id not in text and person.email not in text and person.email.upper() not in text
    landing, cli = history.audit
    assert (landing["requested_via"], landing["customer_keys"]) == ("landing", [history.erased[0].key])
    assert (cli["requested_via"], cli["identifier"], cli["customer_keys"]) == ("cli", "email", [history.erased[1].key])
    for entry in (landing, cli):
        assert entry["rows_removed"]["warehouse"]["raw.orders"] >= 1
        assert entry["rows_removed"]["warehouse"]["raw.events"] >= 1
        assert entry["rows_removed"]["restricted"]["identities"] >= 2
    assert cli["rows_removed"]["warehouse"]["marts.customer_scores"] == 1


@pytest.mark.reliability(area="Privacy", case="Marketing consent withdrawn in a later CRM file",
                         outcome="the customer drops out of every audience at the next build")
def test_withdrawn_consent_drops_the_customer_from_every_audience(history):
    assert history.before.audiences_with_withdrawn  # positive control: in an audience before
    assert history.after_landing_request.audiences_with_withdrawn == []
    assert history.after_rebuild.audiences_with_withdrawn == []
    (consent,), = query(history.settings.warehouse, "select marketing_consent from marts.customers "
                                                     "where customer_key = ?", [history.withdrawn])
    assert consent is False
