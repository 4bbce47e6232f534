"""Great Expectations check on the traffic allocation experimentation tools read."""

import dagster as dg

from orchestration.defs.experiments.assets import experiment_analysis
from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.quality.checks import validate_table


@dg.asset_check(asset=experiment_analysis, blocking=True, pool=WAREHOUSE_POOL,
                description="The Thompson-sampling allocation passes its suite: one row per experiment and "
                            "variation, shares in [0, 1] and never below the floor. The statistics themselves are "
                            "checked on `experiment_results` by dbt tests and a suite.")
def experiment_allocation_meets_expectations() -> dg.AssetCheckResult:
    return validate_table("marts.experiment_allocation", "marts", "experiment_allocation")
