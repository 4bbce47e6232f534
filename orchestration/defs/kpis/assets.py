"""KPI anomalies: every KPI and its breakdowns scored against a robust, weekday-aware expectation.

The method and its defaults are in `analytics/anomalies.py`; which metrics are watched, how sensitively and in
which direction is configuration (`config/cxloop.yml`, docs/act-and-measure.md). The alert sensor in this folder
reads the published result, never this asset's table.
"""

import dagster as dg

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.transform.assets import model_key
from orchestration.lib.measure import measure_config
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect, replace_table

SEGMENTS = model_key("kpi_segments_daily")
KPIS_GROUP = "kpis"

ANOMALY_COLUMNS = {
    "date": "date", "metric": "varchar", "dimension": "varchar", "segment": "varchar", "value": "double",
    "expected": "double", "lower": "double", "upper": "double", "score": "double", "direction": "varchar",
    "volume": "double", "drilldown_dimension": "varchar", "drilldown_segment": "varchar", "drilldown": "varchar",
}
BAND_COLUMNS = {
    "date": "date", "metric": "varchar", "value": "double", "expected": "double", "lower": "double",
    "upper": "double", "score": "double",
}
RECENT_DAYS = 14


def _recent_table(anomalies, latest) -> str:
    """The last two weeks' anomalies of whole KPIs as a Markdown table for the asset's metadata."""
    import pandas as pd

    recent = anomalies[(anomalies["dimension"] == "all")
                       & (pd.to_datetime(anomalies["date"]) > pd.Timestamp(latest) - pd.Timedelta(days=RECENT_DAYS))]
    if recent.empty:
        return f"No anomaly in the last {RECENT_DAYS} days."
    lines = ["| date | metric | value | expected band | direction | score | drill-down |",
             "|---|---|---|---|---|---|---|"]
    for row in recent.itertuples():
        lines.append(f"| {pd.Timestamp(row.date).date()} | {row.metric} | {row.value:,.4g} | "
                     f"{row.lower:,.4g} - {row.upper:,.4g} | {row.direction} | {row.score:+.1f} | "
                     f"{row.drilldown or ''} |")
    return "\n".join(lines)


@dg.asset(group_name=KPIS_GROUP, pool=WAREHOUSE_POOL, deps=[SEGMENTS], kinds={"duckdb", "python"})
def kpi_anomalies(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Days on which a KPI (sessions, orders, booked revenue, booked order value, first orders, conversion,
    payment success, CSAT, NPS, funnel step rates, texts by topic, negative text share) or one of its breakdowns
    left its expected band, with value, expected, band, robust score and direction, and for a whole KPI the
    segment that moved most (`marts.kpi_anomalies`). Also writes `marts.kpi_expected`, every scored day's band,
    for the report's charts."""
    from analytics.anomalies import detect, expected_bands, load_monitors

    settings = get_settings()
    monitors = load_monitors(measure_config(settings).get("anomalies"))
    with connect(settings, read_only=True) as con:
        series = con.execute("select * from marts.kpi_segments_daily order by date, dimension, segment").df()
    anomalies = detect(series, monitors)
    bands = expected_bands(series, monitors)
    count = replace_table(settings, "marts", "kpi_anomalies", anomalies, ANOMALY_COLUMNS)
    replace_table(settings, "marts", "kpi_expected", bands, BAND_COLUMNS)
    latest = series["date"].max() if len(series) else None
    whole = anomalies[anomalies["dimension"] == "all"]
    if latest is not None and len(whole):
        context.log.info(f"{len(whole)} KPI anomalies, {count - len(whole)} in breakdowns")
    return dg.MaterializeResult(metadata={
        "anomalies": count,
        "kpi_anomalies": len(whole),
        "monitors": ", ".join(m.metric for m in monitors),
        "latest_day": str(latest.date()) if latest is not None else "",
        "recent": dg.MetadataValue.md(_recent_table(anomalies, latest) if latest is not None else "No data."),
    })
