"""Great Expectations check on the anomaly table the alert sensor and the report read."""

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.kpis.assets import kpi_anomalies
from orchestration.defs.quality.checks import validate_table


@dg.asset_check(asset=kpi_anomalies, blocking=True, pool=WAREHOUSE_POOL,
                description="Anomalies pass their suite: one row per day, metric and segment, a known direction "
                            "that agrees with the score's sign, the band ordered around the expected value. Blocks "
                            "the serving snapshot, so alerts never go out from a broken table.")
def kpi_anomalies_meets_expectations() -> dg.AssetCheckResult:
    return validate_table("marts.kpi_anomalies", "marts", "kpi_anomalies")
