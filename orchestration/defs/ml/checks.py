"""Great Expectations checks on the model layer: the features models learn from, the scores they write."""

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.ml.assets import FEATURES, customer_scores
from orchestration.defs.quality.checks import validate_table
from orchestration.lib.models import FEATURES_TABLE, SCORES_SCHEMA, SCORES_TABLE


@dg.asset_check(asset=FEATURES, blocking=True, pool=WAREHOUSE_POOL,
                description="Point-in-time features pass their suite: one row per customer and cutoff, a purchase "
                            "before every cutoff, windows within their totals. Blocks training.")
def customer_features_meets_expectations() -> dg.AssetCheckResult:
    return validate_table(FEATURES_TABLE, "features", "customer_features")


@dg.asset_check(asset=customer_scores, blocking=True, pool=WAREHOUSE_POOL,
                description="Scores pass their suite: one row per customer, probabilities in [0, 1], revenue never "
                            "negative, known risk segments, model versions recorded. Blocks the serving snapshot.")
def customer_scores_meets_expectations() -> dg.AssetCheckResult:
    return validate_table(f"{SCORES_SCHEMA}.{SCORES_TABLE}", "marts", "customer_scores")
