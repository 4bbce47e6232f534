"""A trained installation shared by the ML tests and the MLflow UI test: one simulated shop, the platform job
run twice on the same data (the second run must promote nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import simulator
from orchestration.cli import execute, prepare
from orchestration.lib.settings import Settings, get_settings
from tests.conftest import use_installation

# Long enough for a 30-day horizon: the evaluation cutoff 30 days before the end, four training cutoffs from
# 60 days before it, every 15 days.
ML_SHOP = {"customers": 800, "days": 150, "seed": 5}
ML_ENV = {"CXLOOP_HORIZON_DAYS": "30", "CXLOOP_CUTOFF_STEP_DAYS": "15", "CXLOOP_TRAIN_CUTOFFS": "4"}


def ml_installation(mp: pytest.MonkeyPatch, root: Path) -> Settings:
    use_installation(mp, root)
    for name, value in ML_ENV.items():
        mp.setenv(name, value)
    return get_settings()


@dataclass
class Trained:
    root: Path
    settings: Settings
    first: object
    second: object

    def activate(self, mp: pytest.MonkeyPatch) -> Settings:
        """Point the environment at this installation again (inside a test's own monkeypatch)."""
        return ml_installation(mp, self.root)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, dbt_manifest) -> Trained:
    root = tmp_path_factory.mktemp("trained") / "cx"
    simulator.generate(out=root / "landing", truth=root / "truth", **ML_SHOP)
    with pytest.MonkeyPatch.context() as mp:
        settings = ml_installation(mp, root)
        prepare(settings, quiet=True)
        first = execute("platform_job", settings, tags={"cxloop/trigger": "test"})
        assert first.success, [e.message for e in first.all_events if e.is_failure][:3]
        second = execute("platform_job", settings, tags={"cxloop/trigger": "test"})
        assert second.success, [e.message for e in second.all_events if e.is_failure][:3]
    return Trained(root=root, settings=settings, first=first, second=second)
