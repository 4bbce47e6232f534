"""Publish the marts for readers once the build's blocking checks passed."""


import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.ml.assets import customer_scores
from orchestration.defs.transform.assets import cxloop_dbt_models
from orchestration.lib.dbt import always_built_marts, dbt_project, mart_names
from orchestration.lib.serving import publish_snapshot
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect

MARTS = [*mart_names(dbt_project()), "customer_scores"]


@dg.asset(
    group_name="serving",
    pool=WAREHOUSE_POOL,
    kinds={"parquet"},
    # Only marts that always build: a mart skipped for an absent source must not skip the snapshot.
    # All marts come from one dbt step, so these deps also order the snapshot after the others.
    # Scores too: the snapshot carries the scores of the marts it publishes.
    deps=[*(get_asset_key_for_model([cxloop_dbt_models], m) for m in always_built_marts(dbt_project())),
          customer_scores],
)
def serving_snapshot(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Every mart as Parquet under `<serving>/current/`, swapped atomically.

    Blocking checks on the marts stop this asset, so readers stay on the last good snapshot when a build
    fails its checks. Marts skipped for an absent source are left out. `customer_scores` is published with
    the marts it was scored from.
    """
    settings = get_settings()
    with connect(settings, read_only=True) as con:
        manifest = publish_snapshot(con, settings, MARTS, snapshot_id=context.run_id)
    return dg.MaterializeResult(metadata={
        "snapshot_id": manifest["snapshot_id"],
        "path": dg.MetadataValue.path(str(settings.serving_dir / "current")),
        "row_counts": manifest["row_counts"],
    })
