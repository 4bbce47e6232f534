"""The raw layer as Parquet, for dbt engines that cannot read the DuckDB warehouse file.

Ingest and the Python assets write into DuckDB; every table the dbt project declares as a source is exported
here to `<lake_dir>/<schema>/<table>/`, one folder per table, which Spark registers as an external table of the
same name before each build (macro `cxloop_register_lake`). The marts Spark builds come back the other way:
`attach_marts` puts DuckDB views over the Parquet files of Spark's warehouse, so readers keep one SQL dialect.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import duckdb

from orchestration.lib.settings import Settings
from orchestration.lib.warehouse import connect, table_exists


def source_tables(manifest_path: Path) -> list[tuple[str, str]]:
    """Every `(schema, table)` the dbt project reads as a source, from the manifest so no table is named here."""
    manifest = json.loads(Path(manifest_path).read_text())
    return sorted({(s["schema"], s.get("identifier") or s["name"]) for s in manifest["sources"].values()})


def table_models(manifest_path: Path) -> list[tuple[str, str]]:
    """Every `(schema, table)` the dbt project materializes as a table on the manifest's target."""
    manifest = json.loads(Path(manifest_path).read_text())
    return sorted((n["schema"], n.get("alias") or n["name"]) for n in manifest["nodes"].values()
                  if n["resource_type"] in ("model", "seed")
                  and n["config"].get("materialized") in ("table", "seed", "incremental"))


def table_dir(lake_dir: Path, schema: str, table: str) -> Path:
    return lake_dir / schema / table


def _replace_dir(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    """Write `query` as `target/data.parquet`, swapping the folder whole so a reader never sees half of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir()
    con.execute(f"copy ({query}) to '{tmp / 'data.parquet'}' (format parquet)")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def export_sources(settings: Settings, manifest_path: Path | None = None) -> dict[str, int]:
    """Export every dbt source table that exists in the warehouse to the lake; returns `schema.table` -> rows.

    Tables not written yet (scores before the first training) are left out, and a stale copy of one is removed,
    so Spark never reads rows DuckDB no longer has.
    """
    manifest_path = manifest_path or settings.dbt_project_dir / "target" / "manifest.json"
    exported: dict[str, int] = {}
    with connect(settings, read_only=True) as con:
        for schema, table in source_tables(manifest_path):
            target = table_dir(settings.lake_dir, schema, table)
            if not table_exists(con, schema, table):
                shutil.rmtree(target, ignore_errors=True)
                continue
            _replace_dir(con, f"select * from {schema}.{table}", target)
            exported[f"{schema}.{table}"] = con.execute(f"select count(*) from {schema}.{table}").fetchone()[0]
    return exported


def spark_table_dir(settings: Settings, schema: str, table: str) -> Path:
    """Where Spark's session catalog keeps a managed table (`spark.sql.warehouse.dir`, see profiles.yml)."""
    return settings.spark_dir / "warehouse" / f"{schema}.db" / table


def attach_marts(con: duckdb.DuckDBPyConnection, settings: Settings, tables: Iterable[tuple[str, str]]) -> list[str]:
    """Create DuckDB views `<schema>.<table>` over the Parquet files Spark wrote; returns the views made.

    Spark writes timestamps as instants (TIMESTAMP WITH TIME ZONE); the views cast them back to the naive UTC
    timestamps DuckDB's own marts hold, so a reader sees the same types whichever engine built the marts.
    """
    made = []
    for schema, table in tables:
        folder = spark_table_dir(settings, schema, table)
        if not any(folder.glob("*.parquet")):
            continue
        scan = f"read_parquet('{folder}/*.parquet')"
        columns = con.execute(f"describe select * from {scan}").fetchall()
        select = ", ".join(
            f'cast("{name}" as timestamp) as "{name}"' if kind == "TIMESTAMP WITH TIME ZONE" else f'"{name}"'
            for name, kind, *_ in columns)
        con.execute(f"create schema if not exists {schema}")
        kind = con.execute("select table_type from information_schema.tables where table_schema = ? "
                           "and table_name = ?", [schema, table]).fetchone()
        if kind and kind[0] == "BASE TABLE":
            con.execute(f"drop table {schema}.{table}")
        con.execute(f"create or replace view {schema}.{table} as select {select} from {scan}")
        made.append(f"{schema}.{table}")
    return made
