"""Training against a real MLflow tracking server that goes down mid-training, then comes back.

A real `mlflow server` (SQLite backend) runs behind a small reverse proxy in this process; the installation
talks to the proxy. The proxy forwards everything until the first model-registry write, then answers 503 to
every request, as a load balancer in front of a dead tracking server does: the candidate runs are logged, the
registration is refused. The platform job must fail in seconds, saying which store is unavailable, with no
version registered and no alias moved. Once the proxy forwards again, the training job must promote both
models, end the runs the failed attempt left RUNNING as FAILED, and score with MLflow's unpickling off.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pytest

import simulator
from ml.config import CHAMPION, MODEL_NAMES
from ml.tracking import RUN_FAILURE_TAG, SECURE_ENV, Store, TrackingStoreUnavailable
from orchestration.cli import execute, prepare
from orchestration.lib.settings import Settings, get_settings
from tests.conftest import use_installation

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

# The shop of the e2e ML tests, where both candidates beat their baselines and are promoted. Smaller shops
# (300 customers over 90 days with 2 training cutoffs, 500 over 150 with 4) train candidates that lose to
# BG/NBD, which would leave nothing to promote after the outage.
SHOP = {"customers": 800, "days": 150, "seed": 5}
SMALL_TRAINING = {"CXLOOP_HORIZON_DAYS": "30", "CXLOOP_CUTOFF_STEP_DAYS": "15", "CXLOOP_TRAIN_CUTOFFS": "4"}
REGISTRY_WRITES = ("/registered-models/create", "/model-versions/create", "/registered-models/alias")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
# With cxloop's client defaults a refused request gives up after 3 retries (about 7 s); a training that fails
# makes a few such requests (its own, ending its run). Far below MLflow's own defaults (minutes a request).
FAIL_WITHIN_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FaultyProxy(ThreadingHTTPServer):
    """Forwards HTTP to the tracking server; once down, answers 503 to everything. `down_on_registry_write`
    takes it down at the first registry write, which is refused too."""

    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.down = False
        self.down_on_registry_write = False
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def admit(self, method: str, path: str) -> bool:
        with self.lock:
            if (not self.down and self.down_on_registry_write and method in ("POST", "PATCH", "DELETE")
                    and any(w in path for w in REGISTRY_WRITES)):
                self.down = True
            if self.down:
                self.refused.append(f"{method} {path}")
                return False
            return True

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyProxy

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.server.admit(self.command, self.path):
            payload = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE",
                                  "message": "tracking server unavailable"}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True
            return
        upstream = self.server.upstream
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            headers["Host"] = upstream.netloc
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle


class TrackingServer:
    """`mlflow server` (SQLite backend) on a free port, with MLflow's unpickling off as `cxloop ui` starts it.
    Started at once, waited for only when first needed: it boots while the shop is simulated."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
             f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            env={**os.environ, **SECURE_ENV}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"mlflow server did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory, request) -> TrackingServer:
    server = TrackingServer(tmp_path_factory.mktemp("mlflow-server"))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="module")
def proxy(tracking_server) -> Iterator[FaultyProxy]:
    server = FaultyProxy(tracking_server.url)
    yield server
    server.close()


@pytest.fixture(scope="module")
def installation(tmp_path_factory, proxy, dbt_manifest) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("outage") / "cx"
    simulator.generate(out=root / "landing", truth=root / "truth", **SHOP)
    mp = pytest.MonkeyPatch()
    try:
        use_installation(mp, root)
        for name, value in SMALL_TRAINING.items():
            mp.setenv(name, value)
        mp.setenv("CXLOOP_MLFLOW_TRACKING_URI", proxy.url)
        # MLflow writes these into the environment when a client connects: restored after the module.
        mp.setenv("MLFLOW_TRACKING_URI", proxy.url)
        mp.setenv("MLFLOW_REGISTRY_URI", proxy.url)
        settings = get_settings()
        prepare(settings, quiet=True)
        yield settings
    finally:
        mp.undo()


def server_client(url: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def registry(url: str) -> dict[str, dict]:
    """Each registered model's versions (version: run id) and aliases, read from the server itself."""
    client = server_client(url)
    out = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        out[model.name] = {"versions": {v.version: v.run_id for v in versions}, "aliases": dict(model.aliases)}
    return out


def runs(url: str) -> dict[str, object]:
    """Every run of the two experiments by id, read from the server itself."""
    from mlflow.entities import ViewType

    client = server_client(url)
    ids = [e.experiment_id for e in (client.get_experiment_by_name(n) for n in MODEL_NAMES.values()) if e]
    return {r.info.run_id: r for r in client.search_runs(ids, run_view_type=ViewType.ALL)} if ids else {}


def step_times(result) -> dict[str, float]:
    """Seconds from each step's start to its end (success or failure), from the run's event log."""
    with dg.DagsterInstance.get() as instance:
        records = instance.all_logs(result.run_id)
    started, out = {}, {}
    for record in records:
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            out[event.step_key] = record.timestamp - started[event.step_key]
    return out


def step_failures(result) -> dict[str, dict]:
    """Per failed step: the message a reader sees first, the whole error, and how long the step ran."""
    times = step_times(result)
    out = {}
    for event in result.all_events:
        if event.is_step_failure:
            data = event.event_specific_data
            description = data.user_failure_data.description if data.user_failure_data else None
            out[event.step_key] = {"message": description or data.error.message, "error": data.error.to_string(),
                                   "seconds": times.get(event.step_key)}
    return out


@dataclass
class Attempt:
    result: object
    seconds: float
    registry: dict
    runs: dict
    failures: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def failed_attempt(installation, proxy, tracking_server) -> Attempt:
    """The platform job with the proxy going down at the first registry write."""
    tracking_server.wait_ready()
    proxy.down_on_registry_write = True
    started = time.monotonic()
    result = execute("platform_job", installation, tags={"cxloop/trigger": "test"})
    seconds = time.monotonic() - started
    return Attempt(result=result, seconds=seconds, registry=registry(tracking_server.url),
                   runs=runs(tracking_server.url), failures=step_failures(result))


@pytest.fixture(scope="module")
def retried(failed_attempt, installation, proxy, tracking_server) -> Attempt:
    """The training job once the proxy forwards again."""
    proxy.down, proxy.down_on_registry_write = False, False
    started = time.monotonic()
    result = execute("training_job", installation, tags={"cxloop/trigger": "test"})
    return Attempt(result=result, seconds=time.monotonic() - started, registry=registry(tracking_server.url),
                   runs=runs(tracking_server.url), failures=step_failures(result))


@pytest.mark.reliability(area="Model tracking", case="MLflow tracking server down from the first registry write",
                         outcome="Training fails in seconds with an error naming the store as unavailable; no "
                                 "model version registered, no alias moved")
def test_an_outage_at_registration_fails_clearly_and_promotes_nothing(failed_attempt, proxy, installation):
    attempt = failed_attempt
    assert not attempt.result.success
    assert proxy.refused and any(w in proxy.refused[0] for w in REGISTRY_WRITES), proxy.refused[:3]
    assert {"churn_model", "ltv_model"} <= set(attempt.failures), attempt.failures.keys()
    churn = attempt.failures["churn_model"]["message"]
    assert f"MLflow tracking store {proxy.url} is unavailable" in churn, churn
    assert "while registering cxloop-churn" in churn and "No model version was registered" in churn, churn
    # The cause named is the refused registration, not the failure to end the run that followed it.
    assert "registered-models/create" in churn and "503" in churn, churn
    assert len(churn) < 1000, churn
    # Everything before the registry write reached the server: the candidate run, its model and baselines.
    logged = [r for r in attempt.runs.values() if r.data.tags.get("cxloop.kind") == "churn"
              and "cxloop.baseline" not in r.data.tags]
    assert len(logged) == 1 and logged[0].data.metrics.get("roc_auc"), attempt.runs
    assert logged[0].info.status in ("RUNNING", "FAILED")
    for name, state in attempt.registry.items():
        assert state == {"versions": {}, "aliases": {}}, (name, state)
    # The marts still published: a tracking outage costs the models, not the data.
    con = duckdb.connect(str(installation.warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from marts.customers").fetchone()[0] > 100
    finally:
        con.close()


@pytest.mark.reliability(area="Model tracking", case="MLflow tracking server down when a training starts",
                         outcome="The training step fails in seconds (MLflow's own retry defaults would hold it "
                                 "for minutes), naming the store; nothing is logged")
def test_a_training_that_starts_during_the_outage_fails_fast(failed_attempt, proxy):
    ltv = failed_attempt.failures["ltv_model"]
    assert f"MLflow tracking store {proxy.url} is unavailable" in ltv["message"], ltv["message"]
    assert "No model version was registered" in ltv["message"]
    assert ltv["seconds"] < FAIL_WITHIN_S, ltv
    assert not [r for r in failed_attempt.runs.values() if r.data.tags.get("cxloop.kind") == "ltv"]
    print(f"\nstep failure times with the store down: ltv_model {ltv['seconds']:.1f} s (store down from its "
          f"start), churn_model {failed_attempt.failures['churn_model']['seconds']:.1f} s (trained, logged, "
          f"refused at registration); platform_job {failed_attempt.seconds:.1f} s")


@pytest.mark.reliability(area="Model tracking", case="Training rerun after the MLflow tracking server is back",
                         outcome="Succeeds and promotes both models; the runs the failed attempt left RUNNING are "
                                 "ended as FAILED, tagged with the reason; only a FINISHED run is promoted")
def test_a_retry_once_the_store_is_back_promotes_and_ends_the_stale_runs(failed_attempt, retried,
                                                                          tracking_server):
    assert retried.result.success, retried.failures
    client = server_client(tracking_server.url)
    for kind, name in MODEL_NAMES.items():
        state = retried.registry[name]
        assert CHAMPION in state["aliases"], state
        champion = state["aliases"][CHAMPION]
        run = retried.runs[state["versions"][champion]]
        assert run.info.status == "FINISHED" and run.data.tags["cxloop.decision"] == CHAMPION
        assert run.data.tags["mlflow.runName"] == f"lightgbm {kind} v{champion} (champion)"
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"dataset.json",
                                                                         "promotion_decision.json"}
        # Every version comes from the retry, none from the failed attempt.
        assert not set(state["versions"].values()) & set(failed_attempt.runs)
    stale = [run_id for run_id, r in failed_attempt.runs.items() if r.info.status == "RUNNING"]
    assert stale, "the outage left no run RUNNING: nothing for the retry to clean up"
    # The candidate runs of the failed attempt end FAILED; its baseline child runs had finished before the
    # outage and stay FINISHED, under a failed parent.
    candidates = [run_id for run_id, r in failed_attempt.runs.items() if "cxloop.baseline" not in r.data.tags]
    assert candidates
    for run_id in candidates:
        assert retried.runs[run_id].info.status in ("FAILED", "KILLED"), run_id
    for run_id in stale:
        assert "ended as FAILED by the training started" in retried.runs[run_id].data.tags[RUN_FAILURE_TAG]
    assert not [r for r in retried.runs.values() if r.info.status == "RUNNING"]


@pytest.mark.reliability(area="Model tracking", case="Scoring with MLflow pickle deserialization off",
                         outcome="The champions load as native LightGBM boosters and every customer is scored")
def test_scores_come_from_the_champions_with_unpickling_off(retried, installation):
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    con = duckdb.connect(str(installation.warehouse), read_only=True)
    try:
        scores = con.execute("select * from marts.customer_scores").df()
        customers = con.execute("select count(*) from features.customer_features "
                                "where cutoff_role = 'score'").fetchone()[0]
    finally:
        con.close()
    assert len(scores) == customers > 100 and scores.churn_probability.notna().all()
    for kind, name in MODEL_NAMES.items():
        assert set(scores[f"{kind}_model_version"]) == {retried.registry[name]["aliases"][CHAMPION]}


@pytest.mark.reliability(area="Model tracking", case="MLflow tracking server refusing connections",
                         outcome="Training fails in seconds with an error naming the store")
def test_a_refused_connection_fails_training_in_seconds(failed_attempt, installation):
    from ml.train import train
    from orchestration.lib.models import read_training_tables, training_config

    features, labels = read_training_tables(installation)
    dead = f"http://127.0.0.1:{free_port()}"
    store = Store(tracking_uri=dead, artifact_root=(installation.mlflow_dir / "dead").resolve().as_uri())
    started = time.monotonic()
    with pytest.raises(TrackingStoreUnavailable) as failure:
        train("churn", features, labels, store, training_config(installation))
    seconds = time.monotonic() - started
    assert f"MLflow tracking store {dead} is unavailable" in str(failure.value)
    assert "Connection refused" in str(failure.value) or "ConnectionError" in str(failure.value)
    assert seconds < FAIL_WITHIN_S
    print(f"\ntraining against a refused connection failed after {seconds:.1f} s")
