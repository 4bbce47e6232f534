"""Tell people about KPI anomalies as soon as a snapshot publishes them, and keep retrying until they know."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import dagster as dg

from orchestration.lib.alerts import evaluate
from orchestration.lib.settings import get_settings


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def build_kpi_anomaly_alert_sensor(clock: Callable[[], datetime] = _utc_now) -> dg.SensorDefinition:
    """The alert sensor, reading the evaluation time from `clock`.

    The time decides suppression windows and retry backoff, so it is a parameter: a retry an hour later can be
    exercised without waiting an hour.
    """

    @dg.sensor(
        name="kpi_anomaly_alert_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends new KPI anomalies of the published snapshot to the alert sinks and retries failed "
                    "deliveries; launches no runs.",
    )
    def kpi_anomaly_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        """Alerts about new anomalies in the published `kpi_anomalies` mart and delivers the outbox.

        Reads only the published serving snapshot and the alert outbox, never the warehouse, so it cannot
        collide with a run holding the DuckDB file. It has no job: its work is the side effect of sending, and
        every tick ends in a skip whose reason says what happened. A sink that fails is not an error of the
        tick: the delivery stays pending in the outbox, is retried with backoff on later ticks and shows in
        the reason.
        """
        report = evaluate(get_settings(), now=clock())
        summary = report.summary()
        if report.failed:
            context.log.warning(summary)
        return dg.SkipReason(summary)

    return kpi_anomaly_alert_sensor


kpi_anomaly_alert_sensor = build_kpi_anomaly_alert_sensor()
