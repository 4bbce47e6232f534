"""The report: one self-contained HTML page per build, written from the published serving snapshot."""

import dagster as dg

from orchestration.defs.serving.assets import serving_snapshot
from orchestration.lib.models import mlflow_store, store_exists
from orchestration.lib.serving import current_dir
from orchestration.lib.settings import get_settings

REPORT_GROUP = "report"
LATEST = "latest.html"
# Reports of earlier runs kept beside the latest; older ones are deleted so the folder does not grow forever.
KEEP_REPORTS = 30


def _prune(folder, keep: int) -> None:
    runs = sorted((p for p in folder.glob("*.html") if p.name != LATEST), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        old.unlink(missing_ok=True)


@dg.asset(group_name=REPORT_GROUP, deps=[serving_snapshot], kinds={"html"})
def report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """A self-contained HTML page (inline SVG charts, no scripts, no network): KPI trends with anomalies and
    their expected bands, funnel by channel, cohort retention heatmap, RFM segments, experiment results with
    intervals and decisions, audience sizes, and the champion models' headline metrics with links to their
    MLflow runs. Reads the published snapshot only, so it needs no warehouse slot. Written as
    `<reports>/<run id>.html` (the last 30 runs are kept) and copied to `<reports>/latest.html`."""
    import shutil

    from analytics.report import render_report

    settings = get_settings()
    models = []
    if store_exists(settings):
        from ml.score import champion_runs

        models = champion_runs(mlflow_store(settings), settings.mlflow_ui_url)
    path = settings.reports_dir / f"{context.run_id}.html"
    summary = render_report(
        current_dir(settings), path, models=models,
        links={"Dagster run": f"{settings.dagster_ui_url}/runs/{context.run_id}",
               "MLflow": settings.mlflow_ui_url},
    )
    latest = settings.reports_dir / LATEST
    tmp = latest.with_name(f".{LATEST}.tmp")
    shutil.copyfile(path, tmp)
    tmp.replace(latest)
    _prune(settings.reports_dir, KEEP_REPORTS)
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.url(path.resolve().as_uri()),
        "path": dg.MetadataValue.path(str(path)),
        "latest": dg.MetadataValue.path(str(latest)),
        "charts": summary["charts"],
        "sections": ", ".join(summary["sections"]),
        "anomalies": summary["anomalies"],
        "experiments": summary["experiments"],
        "bytes": summary["bytes"],
    })
