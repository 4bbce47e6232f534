"""What every benchmark needs: a fresh installation, the run's step times and model decisions, peak memory.

Benchmarks run the real `platform_job` in process against an installation of their own, so their figures
are the platform's, not a mock's.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

# Variables that could point a run at another installation or change its settings. They are unset before
# each installation because a run writes some of them into the environment itself.
FOREIGN_ENV = ("CXLOOP_LANDING_DIR", "CXLOOP_WAREHOUSE", "CXLOOP_PII_DB", "CXLOOP_SERVING_DIR",
               "CXLOOP_MLFLOW_DIR", "CXLOOP_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI", "CXLOOP_HORIZON_DAYS",
               "CXLOOP_CUTOFF_STEP_DAYS", "CXLOOP_TRAIN_CUTOFFS", "CXLOOP_PROMOTION_MARGIN", "CXLOOP_CONFIG",
               "CXLOOP_ALERTS_DIR", "CXLOOP_REPORTS_DIR", "CXLOOP_ALERT_WEBHOOK_URL", "CXLOOP_SMTP_HOST",
               "CXLOOP_DBT_RUNS_DIR", "CXLOOP_DUCKDB_MEMORY_LIMIT", "CXLOOP_DUCKDB_TEMP_DIR")


def fresh_installation(root: Path, key: str, env: dict[str, str] | None = None):
    """Settings of an installation under `root` with pseudonym key `key` and `env` on top of the defaults."""
    for var in FOREIGN_ENV:
        os.environ.pop(var, None)
    os.environ.update({"CXLOOP_DATA_DIR": str(root), "DAGSTER_HOME": str(root / "dagster"),
                       "CXLOOP_PSEUDONYM_KEY": key, **(env or {})})
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    from orchestration.lib.settings import get_settings

    settings = get_settings()
    settings.ensure_dirs()
    return settings


def step_seconds(result) -> dict[str, float]:
    """Duration of every successful step, longest first."""
    out = {e.step_key: e.event_specific_data.duration_ms / 1000
           for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def failures(result) -> list[str]:
    return [f"{e.step_key}: {e.message}" for e in result.all_events if e.is_failure]


def training_metadata(result) -> dict[str, dict]:
    """The materialization metadata of `churn_model` and `ltv_model`: run, metrics, the promotion decision."""
    out = {}
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        if key in ("churn_model", "ltv_model"):
            out[key] = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    return out


def judged_versions(settings) -> dict[str, tuple[str, str]]:
    """(version, alias) each model is judged by: its champion, else the challenger the gate kept from serving,
    so a benchmark measures the model the platform trained whether or not it would serve."""
    from ml.config import CHALLENGER, CHAMPION, KINDS, MODEL_NAMES
    from ml.tracking import version_by_alias
    from orchestration.lib.models import mlflow_store

    client = mlflow_store(settings).client()
    chosen = {}
    for kind in KINDS:
        for alias in (CHAMPION, CHALLENGER):
            version = version_by_alias(client, MODEL_NAMES[kind], alias)
            if version is not None:
                chosen[kind] = (str(version.version), alias)
                break
        else:
            raise SystemExit(f"{MODEL_NAMES[kind]} has no registered version: the platform trained no model")
    return chosen


def peak_rss_gb() -> float:
    """Peak RSS of this process or its largest child (dbt), in GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024 / 1024


def run_platform(settings, log_path: Path):
    """`platform_job` in process, dbt's output to `log_path`: (Dagster result, wall seconds)."""
    import contextlib
    import logging
    import time

    from orchestration.cli import execute

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    started = time.perf_counter()
    with log_path.open("w") as log, contextlib.redirect_stdout(log):
        result = execute("platform_job", settings, tags={"cxloop/trigger": "benchmark"})
    return result, time.perf_counter() - started


def shop_arguments(description: str, days: int = 365) -> argparse.ArgumentParser:
    """A parser with the simulated shop's size and seed (`--customers`, `--days`, `--seed`); callers add theirs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--seed", type=int, default=7)
    return parser


def simulated_run(settings, args: argparse.Namespace, log_path: Path):
    """Simulate the shop of `args` into the installation's landing folder, prepare dbt and run `platform_job`
    once: (the simulator's summary, the Dagster result, the run's wall seconds). A failed run ends the benchmark
    with its first failures."""
    import simulator
    from orchestration.cli import prepare

    summary = simulator.generate(customers=args.customers, days=args.days, seed=args.seed,
                                 out=settings.landing_dir, truth=settings.truth_dir)
    prepare(settings, quiet=True)
    result, run_s = run_platform(settings, log_path)
    if not result.success:
        print("platform_job failed:", *failures(result)[:3], sep="\n  ", file=sys.stderr)
        raise SystemExit(1)
    return summary, result, run_s
