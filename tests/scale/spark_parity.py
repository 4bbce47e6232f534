"""Row-for-row comparison of the tables the DuckDB build and the Spark build of the same dbt project wrote.

DuckDB's side is read from the warehouse file, Spark's from the Parquet files of its warehouse folder, both
through DuckDB so one set of types is compared: timestamps as naive UTC, decimals as exact values, floats
within a relative tolerance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from orchestration.lib.lake import spark_table_dir

FLOAT_TOLERANCE = 1e-9
PARITY_GROUPS = ("marts", "activation", "ml")


@dataclass
class TableDiff:
    table: str
    rows: tuple[int, int] = (0, 0)
    problems: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.problems


def compared_models(manifest_path: Path, groups: tuple[str, ...] = PARITY_GROUPS) -> list[dict]:
    """The table models of the given groups (marts, activation, features), with their key columns from the
    `unique` and `unique_combination` tests."""
    manifest = json.loads(Path(manifest_path).read_text())
    nodes = manifest["nodes"]
    keys: dict[str, list[str]] = {}
    for node in nodes.values():
        if node["resource_type"] != "test" or not node.get("attached_node"):
            continue
        meta = node.get("test_metadata") or {}
        kwargs = meta.get("kwargs", {})
        if meta.get("name") == "unique_combination":
            keys.setdefault(node["attached_node"], list(kwargs["combination_of_columns"]))
        elif meta.get("name") == "unique" and kwargs.get("column_name"):
            keys.setdefault(node["attached_node"], [kwargs["column_name"]])
    models = []
    for unique_id, node in sorted(nodes.items()):
        group = ((node.get("config", {}).get("meta") or {}).get("cxloop") or {}).get("group")
        if node["resource_type"] == "model" and group in groups and node["config"]["materialized"] == "table":
            models.append({"name": node["name"], "schema": node["schema"], "keys": keys.get(unique_id, [])})
    return models


def _normalised_select(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list[tuple[str, str]], str]:
    """Columns and types of `relation`, and a select that casts instants to naive UTC timestamps."""
    described = con.execute(f"describe select * from {relation}").fetchall()
    columns = [(name, "TIMESTAMP" if kind == "TIMESTAMP WITH TIME ZONE" else kind) for name, kind, *_ in described]
    select = ", ".join(f'cast("{name}" as timestamp) as "{name}"' if kind == "TIMESTAMP WITH TIME ZONE"
                       else f'"{name}"' for name, kind, *_ in described)
    return columns, f"select {select} from {relation}"


# Integer widths are not part of parity: without a contract (customer_features) DuckDB sums integers to HUGEINT
# and Spark to BIGINT; the values are compared exactly.
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


def _family(kind: str) -> str:
    return "INTEGER" if kind in INTEGER_TYPES else kind


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


def compare_table(con: duckdb.DuckDBPyConnection, spark_dir_of_table: Path, model: dict,
                  max_examples: int = 3) -> TableDiff:
    """Compare `<schema>.<name>` in the open DuckDB warehouse with the Parquet files Spark wrote for it."""
    name = f"{model['schema']}.{model['name']}"
    diff = TableDiff(name)
    if not any(spark_dir_of_table.glob("*.parquet")):
        diff.problems.append(f"Spark wrote no Parquet files in {spark_dir_of_table}")
        return diff
    duck_columns, duck_select = _normalised_select(con, name)
    spark_columns, spark_select = _normalised_select(con, f"read_parquet('{spark_dir_of_table}/*.parquet')")
    if [c for c, _ in duck_columns] != [c for c, _ in spark_columns]:
        diff.problems.append(f"columns differ: duckdb {[c for c, _ in duck_columns]} "
                             f"spark {[c for c, _ in spark_columns]}")
        return diff
    types = [(c, d, s) for (c, d), (_, s) in zip(duck_columns, spark_columns) if _family(d) != _family(s)]
    if types:
        diff.problems.append(f"types differ (column, duckdb, spark): {types}")
    # Keys first, then every other column, so rows with equal keys (none, when the keys are tested) still line up.
    names = [c for c, _ in duck_columns]
    order = ", ".join(f'"{c}" nulls first' for c in [*model["keys"], *(c for c in names if c not in model["keys"])])
    duck_rows = con.execute(f"{duck_select} order by {order}").fetchall()
    spark_rows = con.execute(f"{spark_select} order by {order}").fetchall()
    diff.rows = (len(duck_rows), len(spark_rows))
    if len(duck_rows) != len(spark_rows):
        diff.problems.append(f"row counts differ: duckdb {len(duck_rows)}, spark {len(spark_rows)}")
        return diff
    examples = []
    for index, (d, s) in enumerate(zip(duck_rows, spark_rows)):
        for column, a, b in zip(names, d, s):
            if not _same(a, b):
                examples.append(f"row {index} {column}: duckdb {a!r} spark {b!r}")
                break
        if len(examples) >= max_examples:
            break
    if examples:
        diff.problems.append("values differ: " + "; ".join(examples))
    return diff


def compare_builds(warehouse: Path, settings, manifest_path: Path) -> list[TableDiff]:
    diffs = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set timezone = 'UTC'")
        for model in compared_models(manifest_path):
            folder = spark_table_dir(settings, model["schema"], model["name"])
            diffs.append(compare_table(con, folder, model))
    return diffs
