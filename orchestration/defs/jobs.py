"""Jobs and schedules. Every job runs in process: one Python process, one DuckDB writer at a time, and no
per-step re-import of the definitions (about 1.5 s a step with the multiprocess executor)."""

import dagster as dg

from orchestration.defs.ml.assets import churn_model, customer_scores, ltv_model
from orchestration.defs.privacy.assets import erasure_requests
from orchestration.defs.report.assets import report
from orchestration.defs.serving.assets import serving_snapshot
from orchestration.defs.transform.assets import cxloop_activation_models

WAREHOUSE_RUN_TAG = {"cxloop/warehouse": "write"}


def _warehouse_job(name: str, selection: dg.AssetSelection, description: str):
    """A job that writes the warehouse: in process, and tagged so queued runs wait for each other."""
    return dg.define_asset_job(name=name, selection=selection, executor_def=dg.in_process_executor,
                               tags=WAREHOUSE_RUN_TAG, description=description)


ingest_job = _warehouse_job("ingest_job", dg.AssetSelection.groups("raw", "privacy"),
                            "Process pending erasure requests, then load new landing files into the raw layer and "
                            "check them.")

erasure_job = _warehouse_job("erasure_job", dg.AssetSelection.assets(erasure_requests),
                             "Process pending erasure requests only: suppress, delete, reclaim space, republish the "
                             "serving snapshot, append to the audit log (what `cxloop erase` runs).")

platform_job = _warehouse_job("platform_job", dg.AssetSelection.all(),
                              "Every asset of the platform once: what `make run` executes.")

MODEL_ASSETS = dg.AssetSelection.assets(churn_model, ltv_model)

daily_job = _warehouse_job("daily_job", dg.AssetSelection.all() - MODEL_ASSETS,
                           "Ingest, build the customer data layer with dbt, run every check, score customers with "
                           "the champion models, find KPI anomalies, analyse experiments, build the audiences, "
                           "publish the serving snapshot and write the report. Training is weekly.")

training_job = _warehouse_job(
    "training_job",
    MODEL_ASSETS | dg.AssetSelection.assets(customer_scores, cxloop_activation_models, serving_snapshot, report),
    "Retrain the churn and LTV candidates on the current features, promote the winners, rescore, rebuild the "
    "audiences that read the scores, republish and rewrite the report.")



def _utc_schedule(job, cron: str, description: str) -> dg.ScheduleDefinition:
    """A schedule in UTC, running as soon as a Dagster daemon serves the instance."""
    return dg.ScheduleDefinition(name=job.name.replace("_job", "_schedule"), job=job, cron_schedule=cron,
                                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                                 description=description)


daily_schedule = _utc_schedule(daily_job, "0 5 * * *", "Daily ingest + build + checks + scoring at 05:00 UTC.")

training_schedule = _utc_schedule(training_job, "0 6 * * 1",
                                  "Weekly retraining on Mondays at 06:00 UTC, after that day's build.")
