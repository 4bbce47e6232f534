"""Great Expectations checks on the model layer: the features models learn from, the scores they write."""

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.ml.assets import FEATURES, customer_scores
from orchestration.defs.quality.checks import gx_check_result
from orchestration.lib.models import FEATURES_TABLE, SCORES_SCHEMA, SCORES_TABLE
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect


def _validate(table: str, layer: str, name: str) -> dg.AssetCheckResult:
    from expectations import suite_for, validate

    with connect(get_settings(), read_only=True) as con:
        frame = con.execute(f"select * from {table}").df()
    return gx_check_result(validate(frame, suite_for(layer, name)))


@dg.asset_check(asset=FEATURES, blocking=True, pool=WAREHOUSE_POOL,
                description="Point-in-time features pass their suite: one row per customer and cutoff, a purchase "
                            "before every cutoff, windows within their totals. Blocks training.")
def customer_features_meets_expectations() -> dg.AssetCheckResult:
    return _validate(FEATURES_TABLE, "features", "customer_features")


@dg.asset_check(asset=customer_scores, blocking=True, pool=WAREHOUSE_POOL,
                description="Scores pass their suite: one row per customer, probabilities in [0, 1], revenue never "
                            "negative, known risk segments, model versions recorded. Blocks the serving snapshot.")
def customer_scores_meets_expectations() -> dg.AssetCheckResult:
    return _validate(f"{SCORES_SCHEMA}.{SCORES_TABLE}", "marts", "customer_scores")
