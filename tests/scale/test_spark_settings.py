"""Engine selection and the Parquet lake, without starting Spark."""

from __future__ import annotations

import json

import duckdb
import pytest

from orchestration.lib import lake
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect

pytestmark = pytest.mark.scale


def test_engine_picks_the_dbt_target_and_keeps_spark_files_in_the_data_folder(cx, monkeypatch):
    for name in ("CXLOOP_ENGINE", "CXLOOP_DBT_TARGET", "CXLOOP_LAKE_DIR", "CXLOOP_SPARK_DIR"):
        monkeypatch.delenv(name, raising=False)
    default = get_settings()
    assert (default.engine, default.dbt_target) == ("duckdb", "duckdb")

    monkeypatch.setenv("CXLOOP_ENGINE", "spark")
    spark = get_settings()
    assert (spark.engine, spark.dbt_target) == ("spark", "spark")
    data = cx.warehouse.parent.parent
    assert spark.lake_dir == data / "lake" and spark.spark_dir == data / "spark"
    assert spark.environ()["CXLOOP_SPARK_DIR"] == str(data / "spark")

    monkeypatch.setenv("CXLOOP_DBT_TARGET", "spark_thrift")
    assert get_settings().dbt_target == "spark_thrift"

    monkeypatch.setenv("CXLOOP_ENGINE", "postgres")
    with pytest.raises(ValueError, match="CXLOOP_ENGINE"):
        get_settings()


def test_export_writes_every_existing_source_and_drops_stale_ones(cx, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"sources": {
        "source.cxloop.raw.orders": {"schema": "raw", "name": "orders", "identifier": "orders"},
        "source.cxloop.cxloop.customer_scores": {"schema": "marts", "name": "customer_scores"},
    }}))
    stale = lake.table_dir(cx.lake_dir, "marts", "customer_scores")
    stale.mkdir(parents=True)
    with connect(cx) as con:
        con.execute("create schema raw")
        con.execute("create table raw.orders as select 'o1' as order_id, timestamp '2026-01-02 03:04:05.678' as at")

    assert lake.export_sources(cx, manifest) == {"raw.orders": 1}
    assert not stale.exists()
    rows = duckdb.sql(f"select * from read_parquet('{lake.table_dir(cx.lake_dir, 'raw', 'orders')}/*.parquet')")
    assert rows.fetchall()[0][0] == "o1"
