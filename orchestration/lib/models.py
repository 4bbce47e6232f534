"""What the ML assets need from the installation: the MLflow store, the training config, the code version,
and the point-in-time tables read from the warehouse."""

from __future__ import annotations

import subprocess
from functools import cache

import pandas as pd

from ml.config import TrainingConfig
from ml.score import SCORE_SCHEMA
from ml.tracking import Store
from orchestration.lib.settings import PROJECT_ROOT, Settings
from orchestration.lib.warehouse import connect, replace_table

FEATURES_TABLE = "features.customer_features"
LABELS_TABLE = "features.customer_labels"
SCORES_SCHEMA, SCORES_TABLE = "marts", "customer_scores"


def mlflow_store(settings: Settings) -> Store:
    if settings.mlflow_tracking_uri:
        return Store(tracking_uri=settings.mlflow_tracking_uri,
                     artifact_root=(settings.mlflow_dir / "artifacts").resolve().as_uri())
    return Store.local(settings.mlflow_dir)


def store_exists(settings: Settings) -> bool:
    """False only when the local store was never created: then there is no champion, and no need to load
    MLflow (seconds) to learn that."""
    return bool(settings.mlflow_tracking_uri) or (settings.mlflow_dir / "mlflow.db").exists()


def training_config(settings: Settings) -> TrainingConfig:
    return TrainingConfig(horizon_days=settings.horizon_days, promotion_margin=settings.promotion_margin)


@cache
def code_version() -> str:
    """The git commit of the project (with `-dirty` for local changes), else the package version."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"cxloop-{version('cxloop')}"


def read_training_tables(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    with connect(settings, read_only=True) as con:
        return (con.execute(f"select * from {FEATURES_TABLE}").df(),
                con.execute(f"select * from {LABELS_TABLE}").df())


def read_scoring_rows(settings: Settings) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(f"select * from {FEATURES_TABLE} where cutoff_role = 'score'").df()


def write_scores(settings: Settings, scores: pd.DataFrame) -> int:
    """Replace `marts.customer_scores` in one transaction: readers see the old scores or the new ones."""
    return replace_table(settings, SCORES_SCHEMA, SCORES_TABLE, scores, SCORE_SCHEMA)
