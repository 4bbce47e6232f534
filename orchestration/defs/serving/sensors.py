"""Say so when a build ends without publishing: in the run's own event log, and in `status.json` for alerts."""

import dagster as dg

from orchestration.lib.serving import record_not_published, stale_message
from orchestration.lib.settings import get_settings

SNAPSHOT_KEY = dg.AssetKey("serving_snapshot")


def unpublished_reasons(instance: dg.DagsterInstance, run_id: str) -> list[str] | None:
    """Why a run that planned the serving snapshot did not publish it; None if it published or never planned to.

    Read from the run's event log, so the in-process CLI and the daemon's sensor see the same thing.
    """
    records = instance.get_records_for_run(run_id, of_type={
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE}, limit=100_000).records
    planned = materialized = False
    reasons: list[str] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED and event.asset_key == SNAPSHOT_KEY:
            planned = True
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == SNAPSHOT_KEY:
            materialized = True
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                reasons.append(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed")
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed check itself is listed
            first = (error.message.strip().splitlines() or [""])[0][:200] if error else ""
            reasons.append(f"step {event.step_key} failed" + (f": {first}" if first else ""))
    if not planned or materialized:
        return None
    return reasons or ["the run ended before the snapshot step"]


def announce_unpublished(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """If the run did not publish, record it in `status.json` and write the message into the run's log."""
    reasons = unpublished_reasons(instance, run_id)
    if reasons is None:
        return None
    message = stale_message(record_not_published(get_settings(), run_id, reasons))
    run = instance.get_run_by_id(run_id)
    if run is not None:
        instance.report_engine_event(message, dagster_run=run)
    return message


@dg.run_failure_sensor(
    name="serving_not_published_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a build fails before publishing the serving snapshot, records that readers stay on the "
                "last good snapshot (status.json, read by the next alert) and says so in the failed run's log.",
)
def serving_not_published_sensor(context: dg.RunFailureSensorContext) -> None:
    """Runs started by the daemon or the UI; `cxloop run` does the same itself when its run ends."""
    message = announce_unpublished(context.instance, context.dagster_run.run_id)
    if message:
        context.log.warning(message)
