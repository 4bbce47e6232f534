"""Raw assets: one per landing source, loading new files into `raw.<source>` with bad rows quarantined."""


import dagster as dg

from orchestration.lib.ingest import Ingestor, ensure_raw_schema
from orchestration.lib.settings import SOURCES, get_settings
from orchestration.lib.warehouse import connect, publish_ledger

WAREHOUSE_POOL = "warehouse"
# Pending erasure requests are processed first, so the suppression list is in force before new files load
# (orchestration/defs/privacy/assets.py, which imports this module; hence the key, not the asset).
ERASURE_REQUESTS = dg.AssetKey(["privacy", "erasure_requests"])

DESCRIPTIONS = {
    "events": "Segment-spec web and app events (track/page/identify/screen), one row per delivered message; "
              "duplicates kept here and removed in staging.",
    "customers": "CRM customer records, pseudonymized; every delivered version kept, latest wins in staging.",
    "orders": "Shop orders, every delivered version (status changes arrive as new versions).",
    "payments": "Payment attempts against orders, succeeded or failed.",
    "tickets": "Support tickets with channel, category, masked text and CSAT.",
    "reviews": "Product reviews with 1-5 ratings and masked text.",
    "surveys": "NPS survey responses (0-10) with masked comments.",
}


def _raw_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", source],
        group_name="raw",
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "python"},
        deps=[ERASURE_REQUESTS],
        description=(
            f"{DESCRIPTIONS[source]}\n\nLoads files under `<landing>/{source}/<delivery date>/` that were not "
            "loaded before (by path and SHA-256), each in one transaction. Rows that break the contract go "
            "to `raw.quarantine` with file, line and rule; PII is replaced by keyed pseudonyms."
        ),
    )
    def raw_source(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = get_settings()
        result = Ingestor(settings, load_id=context.run_id).load_source(source)
        with connect(settings) as con:
            total = con.execute(f"select count(*) from raw.{source}").fetchone()[0]
            publish_ledger(con, settings)
        new_files = result.loaded
        for f in new_files:
            if f.rows_quarantined:
                context.log.info(
                    f"{f.rel_path}: {f.rows_quarantined} row(s) quarantined: "
                    + ", ".join(f"{rule} x{n}" for rule, n in sorted(f.rules.items()))
                )
        if result.rows_quarantined:
            context.log.warning(
                f"raw.{source}: {result.rows_quarantined} row(s) quarantined in {len(new_files)} new file(s): "
                + ", ".join(f"{rule} x{n}" for rule, n in result.rules().items())
            )
        for f in new_files:
            if f.status == "reloaded":
                context.log.warning(f"{f.rel_path}: re-delivered with new content; loaded again as a new version "
                                    "(rows it shares with the earlier version are deduplicated in staging)")
            if f.drift:
                context.log.error(
                    f"{f.rel_path}: schema drift suspected, most rows break the same rule: "
                    + ", ".join(f"{rule} x{n} of {f.rows_loaded + f.rows_quarantined}" for rule, n in f.drift.items())
                    + "; the rows are quarantined, not loaded"
                )
        unknown_columns = {f.rel_path: f.unknown_columns for f in new_files if f.unknown_columns}
        if unknown_columns:
            names = sorted({c for columns in unknown_columns.values() for c in columns})
            context.log.warning(f"raw.{source}: {len(unknown_columns)} new file(s) carry columns the contract "
                                f"does not know, ignored: {names[:20]}")
        if result.ignored:
            context.log.warning(f"ignored paths that break the landing layout: {result.ignored[:20]}")
        return dg.MaterializeResult(
            metadata={
                "present": total > 0,
                "files_new": len(new_files),
                "files_total": len(result.files),
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "rows_suppressed": result.rows_suppressed,
                "quarantine_rules": result.rules(),
                "rows_in_table": total,
                "delivery_dates_loaded": sorted({str(f.delivery_date) for f in new_files}),
                "ignored_paths": result.ignored[:100],
                "files_reloaded": [f.rel_path for f in new_files if f.status == "reloaded"][:100],
                "unknown_columns": dict(list(unknown_columns.items())[:100]),
                "schema_drift": {f.rel_path: f.drift for f in new_files if f.drift},
                "dagster/row_count": total,
            }
        )

    return raw_source


raw_assets = [_raw_asset(source) for source in SOURCES]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", "quarantine"], group_name="raw", kinds={"duckdb"},
                     description="Rows that broke the landing contract: source, file, line, rule, message and "
                                 "PII-masked raw text. Written by every raw asset in the same transaction as "
                                 "the rows it loads.",
                     deps=[a.key for a in raw_assets]),
        dg.AssetSpec(["raw", "loaded_files"], group_name="raw", kinds={"duckdb"},
                     description="Ledger of landed files (path, SHA-256, rows loaded and quarantined, CSV "
                                 "header and unknown columns); each version of a file is loaded once.",
                     deps=[a.key for a in raw_assets]),
    ],
    pool=WAREHOUSE_POOL,
    group_name="raw",
)
def ingest_ledger(context: dg.AssetExecutionContext):
    """Reports the quarantine and the file ledger after the raw assets ran (they write both)."""
    settings = get_settings()
    with connect(settings) as con:
        ensure_raw_schema(con)
        quarantined = con.execute("select count(*) from raw.quarantine").fetchone()[0]
        by_rule = dict(con.execute(
            "select rule, count(*) from raw.quarantine group by 1 order by 2 desc limit 50").fetchall())
        files = con.execute("select count(*) from raw.loaded_files").fetchone()[0]
    yield dg.MaterializeResult(asset_key=["raw", "quarantine"], metadata={
        "dagster/row_count": quarantined, "by_rule": by_rule})
    yield dg.MaterializeResult(asset_key=["raw", "loaded_files"], metadata={"dagster/row_count": files})
