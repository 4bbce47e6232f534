"""Training and promotion against an MLflow tracking server with a Postgres backend and served artifacts.

The production command, deploy/mlflow/server.sh, starts `mlflow server` on 127.0.0.1 with its runs, models and
aliases in a database of a throwaway Postgres server (`tests/scale/postgres.py`) and its artifacts destination
in a temporary folder instead of a bucket, which it serves to clients as `mlflow-artifacts:/`. The installation differs from the e2e ML installation only by
`CXLOOP_MLFLOW_TRACKING_URI`. One `platform_job` on the e2e ML shop trains, registers and promotes both models;
the registry must then be in Postgres, every artifact under the server's destination (none in the
installation's local MLflow folder: machines that train share what they log), and each champion must load by
its alias as a native LightGBM booster with MLflow's unpickling off.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import simulator
from ml.config import CHAMPION, MODEL_NAMES
from ml.tracking import Store
from orchestration.cli import execute, prepare
from orchestration.lib.settings import PROJECT_ROOT, Settings, get_settings
from tests.browser import Server, free_port, start_server
from tests.e2e.conftest import ML_SHOP, ml_installation
from tests.scale.postgres import PostgresServer

pytestmark = pytest.mark.scale

DATABASE = "mlflow"
SERVED = "mlflow-artifacts:/"


SERVER_SCRIPT = PROJECT_ROOT / "deploy" / "mlflow" / "server.sh"


@dataclass
class TrackingServer:
    """deploy/mlflow/server.sh on a free port: Postgres backend store, artifacts served from `destination`."""

    server: Server
    destination: Path

    @property
    def url(self) -> str:
        return self.server.url

    @classmethod
    def start(cls, root: Path, backend_store_uri: str) -> "TrackingServer":
        destination = root / "artifacts"
        destination.mkdir()
        port = free_port()
        env = {**os.environ, "MLFLOW": str(Path(sys.executable).with_name("mlflow")),
               "CXLOOP_MLFLOW_BACKEND_STORE_URI": backend_store_uri,
               "CXLOOP_MLFLOW_ARTIFACTS_DESTINATION": str(destination),
               "CXLOOP_MLFLOW_HOST": "127.0.0.1", "CXLOOP_MLFLOW_PORT": str(port), "CXLOOP_MLFLOW_WORKERS": "1"}
        server = start_server(["bash", SERVER_SCRIPT], f"http://127.0.0.1:{port}/health", timeout=180, env=env)
        server.url = f"http://127.0.0.1:{port}"
        return cls(server=server, destination=destination)


@dataclass
class Trained:
    settings: Settings
    server: TrackingServer
    postgres: PostgresServer
    seconds: float

    def client(self):
        return Store(tracking_uri=self.server.url).client()

    def local_path(self, artifact_uri: str) -> Path:
        """Where an `mlflow-artifacts:/` URI of this server lives on its disk."""
        assert artifact_uri.startswith(SERVED), artifact_uri
        return self.server.destination / artifact_uri[len(SERVED):].lstrip("/")


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory, postgres_server: PostgresServer) -> Iterator[TrackingServer]:
    tracking = TrackingServer.start(tmp_path_factory.mktemp("mlflow-server"), postgres_server.create_database(DATABASE))
    try:
        yield tracking
    finally:
        tracking.server.stop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tracking_server: TrackingServer, postgres_server: PostgresServer,
            dbt_manifest) -> Iterator[Trained]:
    root = tmp_path_factory.mktemp("pg-mlflow") / "cx"
    simulator.generate(out=root / "landing", truth=root / "truth", **ML_SHOP)
    mp = pytest.MonkeyPatch()
    try:
        ml_installation(mp, root)
        mp.setenv("CXLOOP_MLFLOW_TRACKING_URI", tracking_server.url)
        # MLflow writes these into the environment when a client connects: restored after the module.
        mp.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
        mp.setenv("MLFLOW_REGISTRY_URI", tracking_server.url)
        settings = get_settings()
        prepare(settings, quiet=True)
        started = time.monotonic()
        result = execute("platform_job", settings, tags={"cxloop/trigger": "test"})
        seconds = time.monotonic() - started
        assert result.success, [e.message for e in result.all_events if e.is_failure][:3]
        print(f"\nplatform_job against the Postgres-backed tracking server: {seconds:.1f} s")
        yield Trained(settings=settings, server=tracking_server, postgres=postgres_server, seconds=seconds)
    finally:
        mp.undo()


def test_both_models_are_registered_and_promoted_in_the_postgres_registry(trained: Trained):
    client = trained.client()
    for name in MODEL_NAMES.values():
        champion = client.get_model_version_by_alias(name, CHAMPION)
        assert champion.status == "READY" and int(champion.version) >= 1
    rows = trained.postgres.query(DATABASE, "select name, alias, version from registered_model_aliases")
    assert {(name, CHAMPION) for name in MODEL_NAMES.values()} <= {(n, a) for n, a, _ in rows}, rows
    versions = trained.postgres.query(DATABASE, "select name, version from model_versions")
    assert {n for n, _ in versions} >= set(MODEL_NAMES.values())


def test_every_artifact_is_under_the_served_destination_and_none_is_local(trained: Trained):
    client = trained.client()
    for experiment in client.search_experiments():
        if experiment.name.startswith("cxloop-"):
            assert experiment.artifact_location.startswith(SERVED), experiment
    for name in MODEL_NAMES.values():
        champion = client.get_model_version_by_alias(name, CHAMPION)
        model_dir = trained.local_path(client.get_model_version_download_uri(name, champion.version))
        files = sorted(str(p.relative_to(trained.server.destination)) for p in model_dir.rglob("*") if p.is_file())
        assert (model_dir / "MLmodel").is_file(), files[:20]
        assert any(f.endswith((".lgb", ".txt")) for f in files), files
    local = trained.settings.mlflow_dir / "artifacts"
    assert not local.exists() or not [p for p in local.rglob("*") if p.is_file()], f"artifacts written to {local}"


def test_each_champion_loads_by_its_alias_as_a_native_booster(trained: Trained):
    import lightgbm
    import mlflow.lightgbm

    trained.client()  # points MLflow at the server and turns unpickling off
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    for name in MODEL_NAMES.values():
        booster = mlflow.lightgbm.load_model(f"models:/{name}@{CHAMPION}")
        assert isinstance(booster, lightgbm.Booster) and booster.num_feature() > 0
