"""Jobs and schedules. Every job runs in process: one Python process, one DuckDB writer at a time, and no
per-step re-import of the definitions (about 1.5 s a step with the multiprocess executor)."""

import dagster as dg

WAREHOUSE_RUN_TAG = {"cxloop/warehouse": "write"}


def _warehouse_job(name: str, selection: dg.AssetSelection, description: str):
    """A job that writes the warehouse: in process, and tagged so queued runs wait for each other."""
    return dg.define_asset_job(name=name, selection=selection, executor_def=dg.in_process_executor,
                               tags=WAREHOUSE_RUN_TAG, description=description)


ingest_job = _warehouse_job("ingest_job", dg.AssetSelection.groups("raw"),
                            "Load new landing files into the raw layer and check them.")

platform_job = _warehouse_job("platform_job", dg.AssetSelection.all(),
                              "Every asset of the platform once: what `make run` executes.")

daily_job = _warehouse_job("daily_job", dg.AssetSelection.all(),
                           "Ingest, build the customer data layer with dbt, run every check, publish the serving "
                           "snapshot.")

daily_schedule = dg.ScheduleDefinition(
    name="daily_schedule",
    job=daily_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily ingest + build + checks at 05:00 UTC.",
)
