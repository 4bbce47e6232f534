"""Great Expectations check on the text layer's output, before dbt builds anything on it."""

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.quality.checks import validate_table
from orchestration.defs.voc.assets import TEXT_SCORES


@dg.asset_check(asset=TEXT_SCORES, blocking=True, pool=WAREHOUSE_POOL,
                description="`voc.text_scores` passes its suite: one row per text, scores in [-1, 1], known labels, "
                            "confidences in [0, 1], every ticket labelled or marked for review, and no email, phone "
                            "number or card-like number left in any text. Blocks the dbt build.")
def text_scores_meet_expectations() -> dg.AssetCheckResult:
    return validate_table("voc.text_scores", "voc", "text_scores")
