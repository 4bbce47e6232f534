"""Experiments: lift, intervals, SRM, CUPED and a decision per experiment, and a Thompson-sampling allocation.

The statistics live in `analytics/experiments.py` (plain Python, proven calibrated by its tests); this asset
feeds it the exposures dbt built and writes the result where the second dbt step (`experiment_results`, with
its contract and tests) and experimentation tools (`marts.experiment_allocation`) read it.
"""

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.transform.assets import model_key
from orchestration.lib.measure import measure_config
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect, replace_table

EXPOSURES = model_key("experiment_exposures")
EXPERIMENTS_GROUP = "experiments"

STATS_COLUMNS = {
    "experiment_id": "varchar", "variation_id": "varchar", "is_control": "boolean", "metric": "varchar",
    "units": "bigint", "excluded_units": "bigint", "conversions": "double", "mean": "double",
    "control_mean": "double", "abs_lift": "double", "abs_lift_low": "double", "abs_lift_high": "double",
    "rel_lift": "double", "rel_lift_low": "double", "rel_lift_high": "double", "p_value": "double",
    "chance_to_beat_control": "double", "cuped_abs_lift": "double", "cuped_abs_lift_low": "double",
    "cuped_abs_lift_high": "double", "cuped_p_value": "double", "variance_reduction": "double",
    "srm_p_value": "double", "srm": "boolean", "required_units": "bigint", "first_exposure_date": "date",
    "last_exposure_date": "date", "is_running": "boolean", "decision": "varchar", "ship_variation": "varchar",
    "decision_reason": "varchar",
}
ALLOCATION_COLUMNS = {
    "experiment_id": "varchar", "variation_id": "varchar", "probability_best": "double",
    "traffic_share": "double", "floor": "double", "as_of_date": "date",
}


def _decisions_table(results) -> str:
    rows = results.drop_duplicates("experiment_id")
    if rows.empty:
        return "No experiment with exposures yet."
    lines = ["| experiment | decision | reason |", "|---|---|---|"]
    lines += [f"| {r.experiment_id} | {r.decision} | {r.decision_reason} |" for r in rows.itertuples()]
    return "\n".join(lines)


@dg.asset(group_name=EXPERIMENTS_GROUP, pool=WAREHOUSE_POOL, deps=[EXPOSURES], kinds={"duckdb", "python"})
def experiment_analysis(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Per experiment and variation: people analysed (first exposure, single variation, complete outcome
    window), the metric, absolute and relative lift with confidence intervals, p-value, Bayesian chance to
    beat control, CUPED, the sample-ratio-mismatch check and one decision per experiment
    (`analysis.experiment_stats`, published through the `experiment_results` model). For experiments still
    running, a Thompson-sampling traffic allocation with a floor per variation (`marts.experiment_allocation`)."""
    import pandas as pd

    from analytics.experiments import allocation, analyze, load_experiment_configs

    settings = get_settings()
    configs = load_experiment_configs(measure_config(settings).get("experiments") or {})
    with connect(settings, read_only=True) as con:
        units = con.execute(
            "select * from marts.experiment_exposures where window_complete order by experiment_id, unit_key").df()
        window, data_end = con.execute(
            "select max(window_days), max(last_exposed_at) from marts.experiment_exposures").fetchone()
    # Only complete outcome windows are analysed, so "still running" is judged at the end of the data minus
    # one window: the latest exposure whose outcome is known.
    as_of = (pd.Timestamp(data_end) - pd.Timedelta(days=int(window))).date() if data_end is not None else None
    results = analyze(units, configs, as_of=as_of)
    shares = allocation(units, configs, as_of=as_of)
    count = replace_table(settings, "analysis", "experiment_stats", results, STATS_COLUMNS)
    replace_table(settings, "marts", "experiment_allocation", shares, ALLOCATION_COLUMNS)
    for row in results.drop_duplicates("experiment_id").itertuples():
        context.log.info(f"experiment {row.experiment_id}: {row.decision} - {row.decision_reason}")
    return dg.MaterializeResult(metadata={
        "experiments": int(results["experiment_id"].nunique()) if count else 0,
        "rows": count,
        "analysed_units": int(results["units"].sum()) if count else 0,
        "decisions": dg.MetadataValue.md(_decisions_table(results)),
        "allocation_rows": len(shares),
    })
