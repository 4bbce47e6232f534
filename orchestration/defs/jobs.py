"""Jobs and schedules. Every job runs in process: one Python process, one DuckDB writer at a time, and no
per-step re-import of the definitions (about 1.5 s a step with the multiprocess executor)."""


import dagster as dg

WAREHOUSE_RUN_TAG = {"cxloop/warehouse": "write"}

ingest_job = dg.define_asset_job(
    name="ingest_job",
    selection=dg.AssetSelection.groups("raw"),
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAG,
    description="Load new landing files into the raw layer and check them.",
)

platform_job = dg.define_asset_job(
    name="platform_job",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAG,
    description="Every asset of the platform once: what `make run` executes.",
)

daily_job = dg.define_asset_job(
    name="daily_job",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAG,
    description="Ingest, build the customer data layer with dbt, run every check, publish the serving snapshot.",
)

daily_schedule = dg.ScheduleDefinition(
    name="daily_schedule",
    job=daily_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily ingest + build + checks at 05:00 UTC.",
)
