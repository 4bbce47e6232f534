"""Shared fixtures: every test gets its own cxloop installation under a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration.lib.settings import Settings, get_settings

TEST_KEY = "cxloop-test-key"
ENV_VARS = ("CXLOOP_HOME", "CXLOOP_DATA_DIR", "CXLOOP_LANDING_DIR", "CXLOOP_WAREHOUSE", "CXLOOP_PII_DB",
            "CXLOOP_SERVING_DIR", "DAGSTER_HOME", "CXLOOP_MLFLOW_DIR", "CXLOOP_PSEUDONYM_KEY",
            "CXLOOP_HORIZON_DAYS", "CXLOOP_CUTOFF_STEP_DAYS", "CXLOOP_TRAIN_CUTOFFS", "CXLOOP_PROMOTION_MARGIN",
            "CXLOOP_MLFLOW_TRACKING_URI", "CXLOOP_CONFIG", "CXLOOP_DAGSTER_UI_URL", "CXLOOP_ALERTS_DIR",
            "CXLOOP_REPORTS_DIR", "CXLOOP_ALERT_WEBHOOK_URL", "CXLOOP_SMTP_HOST", "CXLOOP_SMTP_PORT",
            "CXLOOP_SMTP_USER", "CXLOOP_SMTP_PASSWORD", "CXLOOP_SMTP_STARTTLS", "CXLOOP_ALERT_EMAIL_FROM",
            "CXLOOP_ALERT_EMAIL_TO", "CXLOOP_ALERT_SUPPRESS_HOURS", "CXLOOP_ALERT_LOOKBACK_DAYS", "CXLOOP_ALERT_BREAKDOWNS",
            "CXLOOP_DBT_RUNS_DIR", "CXLOOP_FAILPOINTS", "CXLOOP_DAGSTER_PG_URL", "CXLOOP_ENGINE", "CXLOOP_DBT_TARGET",
            "CXLOOP_LAKE_DIR", "CXLOOP_SPARK_DIR", "CXLOOP_DUCKDB_MEMORY_LIMIT", "CXLOOP_DUCKDB_TEMP_DIR")


def use_installation(monkeypatch: pytest.MonkeyPatch, root: Path) -> Settings:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CXLOOP_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    monkeypatch.setenv("CXLOOP_PSEUDONYM_KEY", TEST_KEY)
    settings = get_settings()
    settings.ensure_dirs()
    return settings


@pytest.fixture
def cx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh, empty installation (landing, warehouse, PII store, Dagster home) under tmp_path."""
    return use_installation(monkeypatch, tmp_path / "cx")


@pytest.fixture(scope="session", autouse=True)
def _no_telemetry():
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    yield


def pytest_configure(config: pytest.Config) -> None:
    """`dbt parse` before collection, as `cxloop prepare` does before any run: test modules import the
    Dagster definitions, which read the dbt manifest. Under pytest-xdist the controller parses once, before it
    starts the workers."""
    if hasattr(config, "workerinput"):
        return
    import tempfile

    from orchestration.cli import prepare

    with tempfile.TemporaryDirectory(prefix="cxloop-prepare-") as tmp, pytest.MonkeyPatch.context() as mp:
        prepare(use_installation(mp, Path(tmp)), quiet=True)


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    path = get_settings().dbt_project_dir / "target" / "manifest.json"
    assert path.exists()
    return path
