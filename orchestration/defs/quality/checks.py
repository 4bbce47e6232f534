"""Great Expectations suites (in `expectations/`) as blocking Dagster asset checks on every raw source and mart.

A raw check validates the rows of the source's latest load (earlier loads were checked when they arrived),
so its cost follows the delivery, not the history. A mart check validates the whole mart. An
error-severity failure blocks everything downstream; the check's metadata names each rule, its count and a
PII-free sample. An expectation that raises is reported as an error, never as a pass.
"""

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


def validate_table(table: str, layer: str, name: str) -> dg.AssetCheckResult:
    """Validate a whole warehouse table (`schema.table`) against the suite `<layer>.<name>`."""
    from expectations import suite_for, validate

    with connect(get_settings(), read_only=True) as con:
        frame = con.execute(f"select * from {table}").df()
    return gx_check_result(validate(frame, suite_for(layer, name)))


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
        from expectations import suite_for, validate

        with connect(get_settings(), read_only=True) as con:
            frame = con.execute(
                f"""
                select * from raw.{source} where _load_id = (
                    select _load_id from raw.loaded_files
                    where source = ? and status in ('loaded', 'reloaded') order by _loaded_at desc limit 1)
                """,
                [source],
            ).df()
        if frame.empty:
            return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "summary": "no rows loaded yet"})
        return gx_check_result(validate(frame, suite_for("raw", source)))

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
        from expectations import suite_for, validate

        with connect(get_settings(), read_only=True) as con:
            if not table_exists(con, "marts", mart):
                return dg.AssetCheckResult(passed=False, metadata={"summary": f"marts.{mart} does not exist"})
            frame = con.execute(f"select * from marts.{mart}").df()
        if failpoint(f"check.{mart}_meets_expectations"):
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                       metadata={"summary": "failed on purpose (failpoint)"})
        return gx_check_result(validate(frame, suite_for("marts", mart)))

    return mart_check


raw_checks = [_raw_check(source) for source in SOURCES]
mart_checks = [_mart_check(mart) for mart in mart_names(dbt_project())]
