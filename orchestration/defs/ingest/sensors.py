"""Launch ingest when new files land."""


import dagster as dg

from orchestration.defs.jobs import ingest_job
from orchestration.lib.landing import pending_files, run_key
from orchestration.lib.settings import get_settings


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_files_sensor(context: dg.SensorEvaluationContext):
    """Requests an ingest run when files not yet in the published ledger appear in the landing directory.

    Reads only the file system and the published ledger, never the warehouse, so it cannot collide with a
    run holding the DuckDB file. The run key is derived from the pending files' paths and sizes.
    """
    settings = get_settings()
    if not settings.landing_dir.is_dir():
        return dg.SkipReason(f"landing directory {settings.landing_dir} does not exist")
    pending = pending_files(settings)
    if not pending:
        return dg.SkipReason("no new landing files")
    sources = sorted({p.source for p in pending})
    return dg.RunRequest(
        run_key=run_key(pending),
        tags={"cxloop/trigger": "landing", "cxloop/pending_files": str(len(pending)),
              "cxloop/sources": ",".join(sources)},
    )
