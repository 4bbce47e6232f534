"""The dbt project on Spark builds the same marts as on DuckDB, row for row.

One small simulated shop is built the normal way on DuckDB (ingest, text layer, dbt, models, scores), its dbt
sources are exported to the Parquet lake, and the same project runs with `--target spark` on a local Spark
session over that lake. Every table of the marts, activation and feature groups is then compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import simulator
from orchestration.cli import execute, prepare
from orchestration.defs.transform.assets import dbt_build_args
from orchestration.lib import lake
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect, present_inputs
from tests.conftest import use_installation
from tests.scale.spark_parity import compare_builds

pytestmark = pytest.mark.scale

SHOP = {"customers": 300, "days": 90, "seed": 11}
# A 30-day horizon leaves evaluation and training cutoffs inside 90 days, so the feature tables have rows.
SHOP_ENV = {"CXLOOP_HORIZON_DAYS": "30", "CXLOOP_CUTOFF_STEP_DAYS": "15", "CXLOOP_TRAIN_CUTOFFS": "4"}
# Files Spark and Derby drop into the working directory when nothing says otherwise.
STRAY = ("spark-warehouse", "metastore_db", "derby.log")


def _dbt_spark(settings, command: list[str], target_path: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [str(dbt), *command, "--target", "spark", "--project-dir", str(settings.dbt_project_dir),
           "--profiles-dir", str(settings.dbt_project_dir), "--target-path", str(target_path)]
    proc = subprocess.run(cmd, env={**os.environ, **settings.environ()}, cwd=settings.dbt_project_dir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(command[:1])} on spark failed:\n{proc.stdout[-6000:]}{proc.stderr[-3000:]}"


def test_spark_builds_the_same_marts_as_duckdb(tmp_path, monkeypatch, dbt_manifest):
    root = tmp_path / "cx"
    simulator.generate(out=root / "landing", truth=root / "truth", **SHOP)
    settings = use_installation(monkeypatch, root)
    for name, value in SHOP_ENV.items():
        monkeypatch.setenv(name, value)
    # Set through monkeypatch so they are restored after the test (execute() exports the settings' environment).
    monkeypatch.setenv("CXLOOP_LAKE_DIR", str(root / "lake"))
    monkeypatch.setenv("CXLOOP_SPARK_DIR", str(root / "spark"))
    settings = get_settings()
    stray_before = {p for p in STRAY if (settings.dbt_project_dir / p).exists() or Path(p).exists()}

    started = time.monotonic()
    prepare(settings, quiet=True)
    result = execute("platform_job", settings, tags={"cxloop/trigger": "test"})
    assert result.success, [e.message for e in result.all_events if e.is_failure][:3]
    duckdb_seconds = time.monotonic() - started

    started = time.monotonic()
    exported = lake.export_sources(settings)
    assert {"raw.orders", "raw.events", "voc.text_scores"} <= exported.keys()
    with connect(settings, read_only=True) as con:
        present = present_inputs(con)
    # The same vars and exclusions as the DuckDB build, in one invocation (each starts Spark and registers the
    # lake). Generic tests are left out: the row-for-row match below covers them, and on two cores they would
    # take minutes; the singular tests (reconciliations) run.
    build = dbt_build_args(present, settings.model_vars())
    excluded = build[build.index("--exclude") + 1].split() if "--exclude" in build else []
    build = [*build[:3], "--exclude", " ".join([*excluded, "test_type:generic"])]
    target_path = settings.dbt_runs_dir / "spark-parity"
    _dbt_spark(settings, build, target_path)
    spark_seconds = time.monotonic() - started

    diffs = compare_builds(settings.warehouse, settings, target_path / "manifest.json")
    print(f"\nDuckDB platform run {duckdb_seconds:.0f} s; lake export and dbt on Spark {spark_seconds:.0f} s")
    print(f"lake: {json.dumps(exported)}")
    for diff in diffs:
        status = "same" if diff.equal else "DIFFERENT"
        print(f"{status:9} {diff.table} rows duckdb={diff.rows[0]} spark={diff.rows[1]}")
        for problem in diff.problems:
            print(f"          {problem}")
    compared = {d.table for d in diffs}
    assert {"marts.orders", "marts.customers", "marts.kpi_daily", "features.customer_features"} <= compared
    assert all(d.rows[0] for d in diffs if d.table in ("marts.orders", "marts.customers", "marts.sessions"))
    assert [d.table for d in diffs if not d.equal] == []

    spark_files = root / "spark"
    assert (spark_files / "warehouse" / "marts.db").is_dir() and (spark_files / "metastore_db").is_dir()
    stray_after = {p for p in STRAY if (settings.dbt_project_dir / p).exists() or Path(p).exists()}
    assert stray_after <= stray_before, f"Spark wrote {stray_after - stray_before} outside the data folder"
