"""Short-lived connections to the embedded warehouse, and the Parquet files published for readers.

DuckDB lets one process hold a database file at a time, so every holder opens late and closes early, and
everything that only reads (sensors, UIs, reports) reads Parquet published here instead of the live file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from orchestration.lib.settings import SOURCES, Settings


def duckdb_settings(settings: Settings) -> dict[str, str]:
    """DuckDB's memory limit and spill folder for this installation; an unset limit keeps DuckDB's default."""
    out = {"temp_directory": str(settings.duckdb_temp_dir)} if settings.duckdb_temp_dir else {}
    if settings.duckdb_memory_limit:
        out["memory_limit"] = settings.duckdb_memory_limit
    return out


def apply_duckdb_settings(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Set `duckdb_settings` on an open connection (they hold for the whole database instance).

    Set after connecting rather than passed as `config`: DuckDB refuses a second connection to an open file with
    another config, and any connection of this process may be the second. A spill folder already in use cannot be
    switched; the instance then keeps the one it has.
    """
    for name, value in duckdb_settings(settings).items():
        if con.execute("select current_setting(?)", [name]).fetchone()[0] == value:
            continue
        try:
            con.execute(f"set {name} = '{value.replace(chr(39), chr(39) * 2)}'")
        except duckdb.NotImplementedException:
            if name != "temp_directory":
                raise


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    settings.ensure_dirs()
    con = duckdb.connect(str(settings.warehouse), read_only=read_only)
    try:
        con.execute("set timezone = 'UTC'")
        apply_duckdb_settings(con, settings)
        yield con
    finally:
        con.close()


def present_sources(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Sources with at least one loaded row; the others are absent and their marts are skipped."""
    tables = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'raw'").fetchall()}
    return [s for s in SOURCES if s in tables and con.execute(f"select count(*) > 0 from raw.{s}").fetchone()[0]]


# What the dbt project reads besides the landing sources: tables Python assets write before the build
# (name -> schema, table). Present once written; the models tagged `requires_<name>` are skipped until then.
DERIVED_INPUTS = {"voc": ("voc", "text_scores")}
DBT_INPUTS = (*SOURCES, *DERIVED_INPUTS)


def present_inputs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Landing sources with data, then derived inputs whose table exists (empty is a valid state for those)."""
    return present_sources(con) + [name for name, (schema, table) in DERIVED_INPUTS.items()
                                   if table_exists(con, schema, table)]


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name]).fetchone()[0])


def replace_table(settings: Settings, schema: str, table: str, frame, columns: dict[str, str]) -> int:
    """Replace `<schema>.<table>` with `frame` in one transaction, typed by `columns` (name -> SQL type), so
    readers see the old rows or the new ones and an empty frame still leaves a table of the right shape."""
    with connect(settings) as con:
        con.execute(f"create schema if not exists {schema}")
        con.register("new_rows", frame)
        ddl = ", ".join(f"{c} {t}" for c, t in columns.items())
        casts = ", ".join(f"cast({c} as {t})" for c, t in columns.items())
        con.execute("begin")
        con.execute(f"create or replace table {schema}.{table} ({ddl})")
        if len(frame):
            con.execute(f"insert into {schema}.{table} select {casts} from new_rows")
        con.execute("commit")
        con.unregister("new_rows")
        return con.execute(f"select count(*) from {schema}.{table}").fetchone()[0]


def publish_parquet(con: duckdb.DuckDBPyConnection, query: str, target: Path, params=None) -> None:
    """Write a query's result to `target` atomically: readers see the old file or the new one, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    con.execute(f"copy ({query}) to '{tmp}' (format parquet)", params or [])
    os.replace(tmp, target)


def ledger_path(settings: Settings) -> Path:
    return settings.serving_dir / "ledger" / "loaded_files.parquet"


def publish_ledger(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The loaded-files ledger for the landing sensor, which must not open the warehouse."""
    publish_parquet(con, "select source, _file, sha256, size_bytes, status from raw.loaded_files",
                    ledger_path(settings))
