"""Publish the marts for readers once the build's blocking checks passed."""


import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.experiments.assets import experiment_analysis
from orchestration.defs.kpis.assets import kpi_anomalies
from orchestration.defs.ml.assets import customer_scores
from orchestration.defs.transform.assets import model_key
from orchestration.lib.dbt import always_built_marts, dbt_project, mart_names
from orchestration.lib.serving import publish_snapshot
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect

# dbt marts and audiences, then the tables Python assets write into the marts schema.
MARTS = [*mart_names(dbt_project()), "customer_scores", "kpi_anomalies", "kpi_expected", "experiment_allocation"]


@dg.asset(
    group_name="serving",
    pool=WAREHOUSE_POOL,
    kinds={"parquet"},
    # Only marts that always build: a mart skipped for an absent source must not skip the snapshot.
    # All marts come from one dbt step, so these deps also order the snapshot after the others.
    # Scores too: the snapshot carries the scores of the marts it publishes.
    deps=[*(model_key(m) for m in always_built_marts(dbt_project())),
          customer_scores, kpi_anomalies, experiment_analysis],
)
def serving_snapshot(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Every mart as Parquet under `<serving>/current/`, swapped atomically.

    Blocking checks on the marts stop this asset, so readers stay on the last good snapshot when a build
    fails its checks. Marts skipped for an absent source are left out. `customer_scores`, `kpi_anomalies`
    (with `kpi_expected`) and `experiment_allocation` are published with the marts they were computed from.
    """
    settings = get_settings()
    with connect(settings, read_only=True) as con:
        manifest = publish_snapshot(con, settings, MARTS, snapshot_id=context.run_id)
    return dg.MaterializeResult(metadata={
        "snapshot_id": manifest["snapshot_id"],
        "path": dg.MetadataValue.path(str(settings.serving_dir / "current")),
        "row_counts": manifest["row_counts"],
    })
