"""Great Expectations suites (in `expectations/`) as blocking Dagster asset checks on every raw source and mart.

A raw check validates the rows of the source's latest load (earlier loads were checked when they arrived),
so its cost follows the delivery, not the history. A mart check validates the whole mart. Either way the rows
reach Great Expectations in batches (`CHECK_BATCH_VECTORS`), so a check's memory follows the batch, not the
table.
An error-severity failure blocks everything downstream; the check's metadata names each rule, its count and a
PII-free sample. An expectation that raises is reported as an error, never as a pass.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.transform.assets import model_key
from orchestration.lib.dbt import dbt_project, mart_names
from orchestration.lib.failpoints import failpoint
from orchestration.lib.settings import SOURCES, get_settings
from orchestration.lib.warehouse import connect, table_exists


def gx_check_result(outcome) -> dg.AssetCheckResult:
    """A Great Expectations outcome as a Dagster check result: error or warn severity, PII-free metadata."""
    severity = dg.AssetCheckSeverity.WARN if outcome.severity == "warn" else dg.AssetCheckSeverity.ERROR
    metadata = outcome.to_metadata()
    metadata["summary"] = dg.MetadataValue.text(metadata["summary"])
    return dg.AssetCheckResult(passed=outcome.success, severity=severity, metadata=metadata,
                               description=outcome.summary()[:1000])


# DuckDB hands results over in vectors of 2,048 rows: 128 of them make a batch of 262,144 rows, about 300 MB of
# pandas for a raw events batch.
CHECK_BATCH_VECTORS = 128


def warehouse_reader(query: str, params: Sequence[Any] = ()):
    """A `validate_batches` reader over a warehouse query: each call runs it on a read-only connection.

    `read(None)` streams every column, batch by batch, and always yields at least one (possibly empty) batch;
    `read(columns)` streams just those columns.
    """
    def read(columns: Sequence[str] | None) -> Iterator[Any]:
        select = "*" if columns is None else ", ".join('"' + column.replace('"', '""') + '"' for column in columns)
        with connect(get_settings(), read_only=True) as con:
            con.execute(f"select {select} from ({query}) as checked", list(params))
            batch = con.fetch_df_chunk(CHECK_BATCH_VECTORS)
            yield batch
            while len(batch):
                batch = con.fetch_df_chunk(CHECK_BATCH_VECTORS)
                if len(batch):
                    yield batch

    return read


def validate_table(table: str, layer: str, name: str) -> dg.AssetCheckResult:
    """Validate a whole warehouse table (`schema.table`) against the suite `<layer>.<name>`, in batches."""
    from expectations import suite_for, validate_batches

    return gx_check_result(validate_batches(warehouse_reader(f"select * from {table}"), suite_for(layer, name)))


def _raw_check(source: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name=f"raw_{source}_meets_expectations",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"The `raw.{source}` rows of the latest load pass the `raw.{source}` Great Expectations "
                    "suite (columns, types, keys present, accepted values, ranges). Blocks the dbt build.",
    )
    def raw_source_check() -> dg.AssetCheckResult:
        from expectations import suite_for, validate_batches

        latest_load = f"""
            select * from raw.{source} where _load_id = (
                select _load_id from raw.loaded_files
                where source = ? and status in ('loaded', 'reloaded') order by _loaded_at desc limit 1)
        """
        with connect(get_settings(), read_only=True) as con:
            loaded = con.execute(f"select exists({latest_load})", [source]).fetchone()[0]
        if not loaded:
            return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "summary": "no rows loaded yet"})
        return gx_check_result(validate_batches(warehouse_reader(latest_load, [source]), suite_for("raw", source)))

    return raw_source_check


def _mart_check(mart: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=model_key(mart),
        name=f"{mart}_meets_expectations",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"The `{mart}` mart passes its Great Expectations suite (primary key, ranges, "
                    "consistency between columns). Blocks publishing the serving snapshot.",
    )
    def mart_check() -> dg.AssetCheckResult:
        with connect(get_settings(), read_only=True) as con:
            if not table_exists(con, "marts", mart):
                return dg.AssetCheckResult(passed=False, metadata={"summary": f"marts.{mart} does not exist"})
        if failpoint(f"check.{mart}_meets_expectations"):
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                       metadata={"summary": "failed on purpose (failpoint)"})
        return validate_table(f"marts.{mart}", "marts", mart)

    return mart_check


raw_checks = [_raw_check(source) for source in SOURCES]
mart_checks = [_mart_check(mart) for mart in mart_names(dbt_project())]
