"""The whole platform job on a simulated shop, judged against the simulator's truth file.

One shop is generated once. Installation `incremental` loads it without its last delivery day, runs the
platform job, runs it again (nothing may change), then receives the last day and runs a third time.
Installation `clean` loads the whole shop in one run. The truth tests read the incremental installation;
the clean one is the oracle for "incremental equals a single clean load".
"""

from __future__ import annotations

import re
import shutil
from datetime import timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

import simulator
from orchestration.cli import execute, prepare
from orchestration.lib.pseudonymize import pseudonym
from orchestration.lib.settings import Settings
from tests.conftest import TEST_KEY, use_installation

pytestmark = pytest.mark.e2e

SHOP = {"customers": 300, "days": 40, "seed": 11}
KEY = TEST_KEY.encode()


def mart_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1").fetchall()]
        out = {}
        for name in names:
            frame = con.execute(f"select * from marts.{name}").df()
            floats = frame.select_dtypes("float").columns
            frame[floats] = frame[floats].round(9)
            out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        return out
    finally:
        con.close()


def query(settings: Settings, sql: str, params=None) -> pd.DataFrame:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def run_platform(settings: Settings):
    result = execute("platform_job", settings, tags={"cxloop/trigger": "test"})
    failures = [e.message for e in result.all_events if e.is_failure]
    assert result.success, failures[:3]
    return result


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shop")
    simulator.generate(out=root / "landing", truth=root / "truth", **SHOP)
    return root / "landing", root / "truth"


@pytest.fixture(scope="module")
def incremental(shop, tmp_path_factory, dbt_manifest):
    landing, _ = shop
    with pytest.MonkeyPatch.context() as mp:
        settings = use_installation(mp, tmp_path_factory.mktemp("incremental"))
        shutil.copytree(landing, settings.landing_dir)
        last_day = max(p.name for p in settings.landing_dir.glob("*/*"))
        held = settings.landing_dir.parent / "held"
        for day_dir in settings.landing_dir.glob(f"*/{last_day}"):
            target = held / day_dir.parent.name
            target.mkdir(parents=True)
            day_dir.rename(target / last_day)
        prepare(settings, quiet=True)

        first = run_platform(settings)
        marts_first = mart_tables(settings)
        files_first = query(settings, "select count(*) as n from raw.loaded_files").n[0]
        second = run_platform(settings)
        marts_second = mart_tables(settings)
        files_second = query(settings, "select count(*) as n from raw.loaded_files").n[0]
        for source_dir in held.iterdir():
            (source_dir / last_day).rename(settings.landing_dir / source_dir.name / last_day)
        third = run_platform(settings)
        yield {
            "settings": settings, "last_day": last_day, "results": (first, second, third),
            "marts": (marts_first, marts_second, mart_tables(settings)),
            "files": (files_first, files_second),
        }


@pytest.fixture(scope="module")
def clean(shop, tmp_path_factory, dbt_manifest):
    landing, _ = shop
    with pytest.MonkeyPatch.context() as mp:
        settings = use_installation(mp, tmp_path_factory.mktemp("clean"))
        shutil.copytree(landing, settings.landing_dir)
        prepare(settings, quiet=True)
        run_platform(settings)
        yield {"settings": settings, "marts": mart_tables(settings)}


@pytest.fixture(scope="module")
def truth(shop):
    _, truth_dir = shop
    events = pq.read_table(truth_dir / "events.parquet").to_pandas()
    faults = pd.read_csv(truth_dir / "faults.csv", dtype=str, keep_default_na=False)
    identity = pd.read_csv(truth_dir / "identity.csv", dtype=str)
    daily = pd.read_csv(truth_dir / "daily.csv", dtype={"date": str})
    return {"events": events, "faults": faults, "identity": identity, "daily": daily}


def test_second_run_changes_no_mart_row_and_loads_no_file(incremental):
    first, second, _ = incremental["marts"]
    files_first, files_second = incremental["files"]
    assert files_first == files_second
    assert first.keys() == second.keys()
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], obj=f"marts.{name}")


def test_new_delivery_day_adds_that_day(incremental):
    settings, last_day = incremental["settings"], incremental["last_day"]
    new_files = query(settings, "select distinct _delivery_date from raw.loaded_files where _load_id = ?",
                      [incremental["results"][2].run_id])
    assert [str(d.date()) if hasattr(d, "date") else str(d) for d in new_files._delivery_date] == [last_day]
    before, after = incremental["marts"][1]["kpi_daily"], incremental["marts"][2]["kpi_daily"]
    added = set(after.date.astype(str)) - set(before.date.astype(str))
    assert added == {last_day}


def test_incremental_loads_equal_one_clean_load(incremental, clean):
    final, oracle = incremental["marts"][2], clean["marts"]
    assert final.keys() == oracle.keys()
    for name in oracle:
        if name == "quarantine":
            continue  # holds load-time lineage (_delivery_date is equal, but rows are per load)
        pd.testing.assert_frame_equal(final[name], oracle[name], obj=f"marts.{name}")
    cols = ["source", "_file", "_line", "rule"]
    pd.testing.assert_frame_equal(final["quarantine"][cols].sort_values(cols).reset_index(drop=True),
                                  oracle["quarantine"][cols].sort_values(cols).reset_index(drop=True))


def test_unique_events_after_dedup_equal_the_truth(incremental, truth):
    loaded = query(incremental["settings"], "select message_id from staging.stg_segment__events")
    assert len(loaded) == loaded.message_id.nunique()
    assert set(loaded.message_id) == set(truth["events"].message_id)
    raw_lines = query(incremental["settings"], "select count(*) as n from raw.events").n[0]
    assert raw_lines > len(loaded)  # the duplicates were delivered, and removed in staging


def test_every_planted_bad_line_and_row_is_quarantined_with_its_rule(incremental, truth):
    expected = truth["faults"][truth["faults"].expected_rule != ""]
    assert len(expected) > 0
    got = query(incremental["settings"], "select _file, _line, rule from marts.quarantine")
    got_set = {(f, int(line), rule) for f, line, rule in got.itertuples(index=False)}
    want_set = {(f, int(line), rule) for f, line, rule in expected[["file", "line", "expected_rule"]].itertuples(
        index=False)}
    assert want_set - got_set == set(), "planted faults missing from quarantine"
    assert got_set - want_set == set(), "rows quarantined that the truth says are fine"


def test_identity_links_are_recovered(incremental, truth):
    links = query(incremental["settings"], "select anonymous_id, customer_key from marts.identity_links")
    expected = {(row.anonymous_id, pseudonym(KEY, "customer_id", row.customer_id))
                for row in truth["identity"].itertuples()}
    assert set(links.itertuples(index=False, name=None)) == expected


def test_corrected_event_times_are_within_a_second_for_skewed_devices(incremental, truth):
    events = truth["events"]
    skewed = events[events.skew_seconds.abs() > 0][["message_id", "true_ts", "skew_seconds"]]
    assert len(skewed) > 0 and skewed.skew_seconds.abs().max() >= 3600  # some devices are hours off
    loaded = query(incremental["settings"], "select message_id, event_at from staging.stg_segment__events")
    merged = skewed.merge(loaded, on="message_id")
    assert len(merged) == len(skewed)
    true_ts = merged.true_ts.dt.tz_convert(timezone.utc).dt.tz_localize(None)
    error = (merged.event_at - true_ts).dt.total_seconds().abs()
    assert error.max() <= 1.0, merged.assign(error=error).nlargest(3, "error")


def test_late_events_land_in_the_day_they_happened(incremental, truth):
    events = truth["events"]
    late = events[events.is_late][["message_id", "true_ts", "delivery_date"]]
    assert len(late) > 0
    loaded = query(incremental["settings"], "select message_id, event_date from staging.stg_segment__events")
    merged = late.merge(loaded, on="message_id")
    assert len(merged) == len(late)
    true_day = merged.true_ts.dt.tz_convert(timezone.utc).dt.date
    assert (pd.to_datetime(merged.event_date).dt.date == true_day).all()
    assert (pd.to_datetime(merged.delivery_date).dt.date > true_day).all()


def test_daily_kpis_match_the_truth(incremental, truth):
    kpi = query(incremental["settings"], "select cast(date as varchar) as date, orders, sessions from marts.kpi_daily")
    daily = truth["daily"].set_index("date")
    merged = kpi.set_index("date").join(daily, rsuffix="_truth", how="inner")
    assert len(merged) == len(daily)
    assert (merged.orders == merged.orders_truth).all(), merged[merged.orders != merged.orders_truth].head()
    assert (merged.sessions == merged.sessions_truth).all(), merged[merged.sessions != merged.sessions_truth].head()


def test_run_reports_every_check_and_none_failed(incremental):
    result = incremental["results"][2]
    evaluations = result.get_asset_check_evaluations()
    names = {e.asset_check_key.name for e in evaluations}
    assert "raw_events_meets_expectations" in names and "customers_meets_expectations" in names
    assert [e.asset_check_key.name for e in evaluations if not e.passed] == []


def landed_pii(landing: Path, limit: int = 200) -> set[str]:
    """Emails and phone numbers as they were delivered in the customers files."""
    import csv

    values: set[str] = set()
    for path in sorted(landing.glob("customers/*/*.csv")):
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            for row in csv.DictReader(fh):
                for column in ("email", "phone"):
                    if row.get(column) and len(row[column]) >= 8:
                        values.add(row[column].strip())
        if len(values) >= limit:
            break
    return values


def test_no_pii_outside_the_restricted_store(incremental):
    settings = incremental["settings"]
    pii = landed_pii(settings.landing_dir)
    assert len(pii) >= 50
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        # Base tables only (views hold no data of their own); every text column of a row in one regex match
        # against all the values at once.
        pattern = "|".join(re.escape(v) for v in sorted(pii))
        tables = con.execute(
            "select c.table_schema, c.table_name, list(c.column_name order by c.column_name) "
            "from information_schema.columns c join information_schema.tables t "
            "using (table_catalog, table_schema, table_name) "
            "where c.data_type = 'VARCHAR' and t.table_type = 'BASE TABLE' "
            "and c.table_catalog = current_database() group by all").fetchall()
        assert any(table == "customers" for _, table, _ in tables)
        for schema, table, names in tables:
            text = "concat_ws(chr(31), " + ", ".join(f'"{n}"' for n in names) + ")"
            hits = con.execute(f'select count(*) from "{schema}"."{table}" where regexp_matches({text}, ?)',
                               [pattern]).fetchone()[0]
            assert hits == 0, f"PII found in {schema}.{table} ({', '.join(names)})"
        for parquet in settings.serving_dir.rglob("*.parquet"):
            hits = con.execute(
                f"select count(*) from (select concat_ws(chr(31), *columns(*)) as t "
                f"from read_parquet('{parquet}')) where regexp_matches(t, ?)", [pattern]).fetchone()[0]
            assert hits == 0, parquet
    finally:
        con.close()
    # The same scan finds them where they belong: the restricted store keeps the (normalized) values.
    restricted = duckdb.connect(str(settings.pii_db), read_only=True)
    try:
        kept = {v for (v,) in restricted.execute("select value from identities where kind = 'email'").fetchall()}
    finally:
        restricted.close()
    assert {v.lower() for v in pii if "@" in v} <= kept
    # Plain-text and SQLite stores: the Dagster instance (event log, runs) and dbt's target and logs.
    from orchestration.lib.settings import PROJECT_ROOT

    stores = [settings.dagster_home, PROJECT_ROOT / "dbt_project" / "target", PROJECT_ROOT / "dbt_project" / "logs"]
    # One pass per file for all values (dbt's target folder holds a manifest per dbt invocation of the session).
    needles = re.compile(b"|".join(re.escape(v.encode()) for v in sorted(pii)))
    for store in stores:
        for path in (p for p in store.rglob("*") if p.is_file() and p.stat().st_size < 200_000_000):
            hit = needles.search(path.read_bytes())
            assert hit is None, f"PII found in {path}"
