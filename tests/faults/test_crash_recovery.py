"""Runs killed mid-way, runs launched together, a run cancelled: the warehouse converges and nothing hangs.

One small shop. Installation `reference` loads it in one clean run. Installation `crashed` is run as real
`cxloop run` processes (each the leader of its own process group, as a container's main process is) and
killed by SIGKILL at three failpoints: inside an ingest transaction, in the middle of a dbt build, and after
training logged to MLflow but before any model was registered. After each kill the next run must end with
exactly the reference's mart rows. Then two runs are launched at once while a reader queries the serving
snapshot and the sensors tick, and one run is interrupted mid-build.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import dagster as dg
import simulator
from orchestration.cli import prepare
from orchestration.lib.serving import connect_snapshot, read_status
from orchestration.lib.settings import PROJECT_ROOT, Settings, get_settings
from tests.conftest import TEST_KEY, use_installation
from tests.e2e.test_platform import mart_tables

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

SHOP = {"customers": 300, "days": 90, "seed": 23}
SMALL_TRAINING = {"CXLOOP_HORIZON_DAYS": "30", "CXLOOP_CUTOFF_STEP_DAYS": "15", "CXLOOP_TRAIN_CUTOFFS": "2"}
RUN_TIMEOUT_S = 600
LOCK_WORDS = ("Could not set lock", "Conflicting lock", "database is locked")


def installation(mp: pytest.MonkeyPatch, root: Path) -> Settings:
    use_installation(mp, root)
    for name, value in SMALL_TRAINING.items():
        mp.setenv(name, value)
    return get_settings()


def child_env(settings: Settings, failpoints: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXLOOP_")}
    env.update(settings.environ())
    env.update(SMALL_TRAINING)
    env["CXLOOP_PSEUDONYM_KEY"] = TEST_KEY
    if failpoints:
        env["CXLOOP_FAILPOINTS"] = failpoints
    return env


def start(settings: Settings, job: str = "platform_job", failpoints: str | None = None, log: str = "run"):
    """`cxloop run` in its own process group, output to a log file under the installation."""
    path = settings.dagster_home / f"{log}.log"
    out = path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "run", "--job", job],
                            env=child_env(settings, failpoints), cwd=PROJECT_ROOT, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    proc.log_path = path  # type: ignore[attr-defined]
    return proc


def finish(proc) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return code, Path(proc.log_path).read_text()


def run(settings: Settings, **kw) -> tuple[int, str]:
    return finish(start(settings, **kw))


def opens_for_writing(settings: Settings, within_s: float = 10.0) -> bool:
    """True once no process holds the warehouse: a writer can open it."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            duckdb.connect(str(settings.warehouse)).close()
            return True
        except duckdb.IOException:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def files_whole(settings: Settings) -> list[tuple]:
    """Ledger entries whose raw rows do not add up: a file loaded in part. Must be empty."""
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        broken = []
        for source in ("events", "customers", "orders", "payments", "tickets", "reviews", "surveys"):
            broken += con.execute(
                f"""
                select l.source, l._file, l.rows_loaded, count(r._file)
                from raw.loaded_files l left join raw.{source} r on r._file = l._file
                where l.source = ? and l.status = 'loaded'
                group by all having count(r._file) <> l.rows_loaded
                """, [source]).fetchall()
        return broken
    finally:
        con.close()


def registry_state(settings: Settings) -> dict:
    """Registered model versions and aliases in the installation's MLflow store."""
    from mlflow import MlflowClient

    from orchestration.lib.models import mlflow_store

    client = MlflowClient(tracking_uri=mlflow_store(settings).tracking_uri)
    state = {}
    for model in client.search_registered_models():
        versions = sorted(v.version for v in client.search_model_versions(f"name = '{model.name}'"))
        state[model.name] = {"versions": versions, "aliases": dict(sorted(model.aliases.items()))}
    return state


def mlflow_runs(settings: Settings) -> list:
    from mlflow import MlflowClient

    from orchestration.lib.models import mlflow_store

    client = MlflowClient(tracking_uri=mlflow_store(settings).tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, max_results=1000)


def run_statuses(settings: Settings) -> dict[str, dg.DagsterRunStatus]:
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        return {r.run_id: r.status for r in instance.get_runs()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault-shop")
    simulator.generate(out=root / "landing", truth=root / "truth", **SHOP)
    return root / "landing"


@pytest.fixture(scope="module")
def reference_run(shop, tmp_path_factory, dbt_manifest):
    """The clean run, started in its own process so it overlaps the crash sequence on a second core."""
    with pytest.MonkeyPatch.context() as mp:
        settings = installation(mp, tmp_path_factory.mktemp("reference"))
        shutil.copytree(shop, settings.landing_dir)
        prepare(settings, quiet=True)
    return settings, start(settings, log="reference")


@pytest.fixture(scope="module")
def reference(reference_run):
    settings, proc = reference_run
    code, log = finish(proc)
    assert code == 0, log[-3000:]
    return {"settings": settings, "marts": mart_tables(settings)}


@pytest.fixture(scope="module")
def crashed(shop, reference_run, tmp_path_factory, dbt_manifest):
    """The kill sequence; each step's observations are recorded for the tests below."""
    with pytest.MonkeyPatch.context() as mp:
        settings = installation(mp, tmp_path_factory.mktemp("crashed"))
        shutil.copytree(shop, settings.landing_dir)
        prepare(settings, quiet=True)
        seen: dict = {"settings": settings}

        code, log = run(settings, failpoints="ingest.before_commit=kill", log="kill-ingest")
        seen["ingest_kill"] = {"code": code, "log": log, "free": opens_for_writing(settings),
                               "partial_files": files_whole(settings), "runs": run_statuses(settings)}
        code, log = run(settings, log="after-ingest-kill")
        seen["after_ingest"] = {"code": code, "log": log, "marts": mart_tables(settings),
                                "runs": run_statuses(settings)}

        code, log = run(settings, failpoints="dbt.mid_build=kill", log="kill-dbt")
        seen["dbt_kill"] = {"code": code, "log": log, "free": opens_for_writing(settings),
                            "marts": mart_tables(settings)}
        code, log = run(settings, log="after-dbt-kill")
        seen["after_dbt"] = {"code": code, "log": log, "marts": mart_tables(settings)}

        registry_before = registry_state(settings)
        code, log = run(settings, failpoints="ml.before_register=kill", log="kill-training")
        seen["training_kill"] = {"code": code, "log": log, "registry_before": registry_before,
                                 "registry": registry_state(settings),
                                 "running": [r.info.run_id for r in mlflow_runs(settings)
                                             if r.info.status == "RUNNING"]}
        code, log = run(settings, log="after-training-kill")
        seen["after_training"] = {"code": code, "log": log, "marts": mart_tables(settings),
                                  "runs": {r.info.run_id: r.info.status for r in mlflow_runs(settings)}}
        yield seen


def assert_same_marts(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for name in expected:
        assert actual[name].equals(expected[name]), f"marts.{name} differs from a clean run"


@pytest.mark.reliability(area="Crash", case="SIGKILL inside an ingest transaction",
                         outcome="No file is half loaded; the killed run is marked failed and its slot freed by "
                                 "the next run, which converges to a clean run's marts")
def test_a_kill_during_ingest_leaves_no_half_loaded_file_and_the_next_run_converges(crashed, reference):
    killed = crashed["ingest_kill"]
    assert killed["code"] == -signal.SIGKILL, killed["log"][-2000:]
    assert killed["free"], "a process still holds the warehouse after the kill"
    assert killed["partial_files"] == []
    assert dg.DagsterRunStatus.STARTED in killed["runs"].values()
    after = crashed["after_ingest"]
    assert after["code"] == 0, after["log"][-3000:]
    ghost = [run_id for run_id, status in killed["runs"].items() if status == dg.DagsterRunStatus.STARTED]
    assert all(after["runs"][run_id] == dg.DagsterRunStatus.FAILURE for run_id in ghost)
    assert_same_marts(after["marts"], reference["marts"])


@pytest.mark.reliability(area="Crash", case="SIGKILL in the middle of the dbt build",
                         outcome="dbt dies with the run (process group); every mart still holds its last "
                                 "complete version; the next run converges to a clean run's marts")
def test_a_kill_during_dbt_leaves_whole_tables_and_the_next_run_converges(crashed, reference):
    killed = crashed["dbt_kill"]
    assert killed["code"] == -signal.SIGKILL, killed["log"][-2000:]
    assert killed["free"], "dbt outlived the run and still holds the warehouse"
    assert_same_marts(killed["marts"], reference["marts"])
    after = crashed["after_dbt"]
    assert after["code"] == 0, after["log"][-3000:]
    assert_same_marts(after["marts"], reference["marts"])


@pytest.mark.reliability(area="Crash", case="SIGKILL during training, after MLflow logging, before registration",
                         outcome="No model version registered and no alias moved; the orphaned MLflow runs are "
                                 "ended as failed by the next training; the next run converges")
def test_a_kill_during_training_promotes_nothing_and_the_next_run_converges(crashed, reference):
    killed = crashed["training_kill"]
    assert killed["code"] == -signal.SIGKILL, killed["log"][-2000:]
    assert killed["registry"] == killed["registry_before"]
    assert killed["registry_before"], "no model was registered before the kill"
    assert killed["running"], "the kill left no MLflow run behind: the failpoint fired too early"
    after = crashed["after_training"]
    assert after["code"] == 0, after["log"][-3000:]
    assert all(after["runs"][run_id] in ("FAILED", "KILLED") for run_id in killed["running"])
    assert_same_marts(after["marts"], reference["marts"])


@pytest.fixture(scope="module")
def concurrent(crashed):
    """Two daily runs launched at once on the recovered installation, a reader and the sensors polling."""
    settings: Settings = crashed["settings"]
    reads = {"ok": 0, "errors": []}
    ticks = {"ok": 0, "errors": []}
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with connect_snapshot() as con:
                    con.execute("select count(*) from customers").fetchone()
                reads["ok"] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                reads["errors"].append(repr(exc))
            time.sleep(0.2)

    with pytest.MonkeyPatch.context() as mp:
        installation(mp, settings.landing_dir.parent)
        from orchestration.defs.ingest.sensors import landing_files_sensor
        from orchestration.defs.kpis.sensors import kpi_anomaly_alert_sensor

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        procs = [start(settings, job="daily_job", log=f"concurrent-{i}") for i in range(2)]
        with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            while any(p.poll() is None for p in procs):
                for sensor in (landing_files_sensor, kpi_anomaly_alert_sensor):
                    try:
                        sensor(dg.build_sensor_context(instance=instance))
                        ticks["ok"] += 1
                    except Exception as exc:  # noqa: BLE001
                        ticks["errors"].append(repr(exc))
                time.sleep(1)
        outcomes = [finish(p) for p in procs]
        stop.set()
        thread.join(timeout=10)
        return {"outcomes": outcomes, "reads": reads, "ticks": ticks, "marts": mart_tables(settings),
                "runs": run_statuses(settings)}


@pytest.mark.reliability(area="Concurrency", case="Two runs launched at once, a reader and sensor ticks during them",
                         outcome="Steps serialize on the warehouse pool; both runs succeed, no lock error; "
                                 "readers and sensors read the published snapshot throughout")
def test_two_runs_at_once_serialize_while_readers_and_sensors_keep_reading(concurrent, reference):
    for code, log in concurrent["outcomes"]:
        assert code == 0, log[-3000:]
        assert not [w for w in LOCK_WORDS if w in log]
    assert concurrent["reads"]["errors"] == []
    assert concurrent["reads"]["ok"] > 10
    assert concurrent["ticks"]["errors"] == []
    assert concurrent["ticks"]["ok"] > 4
    assert_same_marts(concurrent["marts"], reference["marts"])


def wait_for_step(settings: Settings, step_prefix: str, timeout_s: float = 300) -> str:
    """The run id of the first run that started a step whose key begins with `step_prefix`."""
    deadline = time.monotonic() + timeout_s
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        known = {r.run_id for r in instance.get_runs()}
        while time.monotonic() < deadline:
            for r in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                if r.run_id in known:
                    continue
                records = instance.get_records_for_run(r.run_id, of_type=dg.DagsterEventType.STEP_START).records
                if any(rec.event_log_entry.step_key.startswith(step_prefix) for rec in records):
                    return r.run_id
            time.sleep(0.3)
    raise AssertionError(f"no run reached {step_prefix} within {timeout_s} s")


@pytest.mark.reliability(area="Concurrency", case="A run cancelled (SIGINT) while it holds the warehouse slot",
                         outcome="The run ends cancelled or failed, its pool slot is freed, and the next run "
                                 "starts and succeeds at once")
def test_a_cancelled_run_frees_its_concurrency_slot(concurrent, crashed, reference):
    settings: Settings = crashed["settings"]
    proc = start(settings, job="daily_job", log="cancelled")
    run_id = wait_for_step(settings, "cxloop_dbt_models")
    os.killpg(proc.pid, signal.SIGINT)
    code, log = finish(proc)
    assert code != 0
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        status = instance.get_run_by_id(run_id).status
        claimed = instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
    assert status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE), log[-2000:]
    assert [c for c in claimed if c.run_id == run_id] == []
    started = time.monotonic()
    code, log = run(settings, job="daily_job", log="after-cancel")
    assert code == 0, log[-3000:]
    assert time.monotonic() - started < RUN_TIMEOUT_S
    assert_same_marts(mart_tables(settings), reference["marts"])


@pytest.mark.reliability(area="Write-audit-publish", case="A blocking check fails after a good build",
                         outcome="The snapshot is not swapped: readers stay on the last good one; status.json, "
                                 "the run's log, the summary and the next alert say so")
def test_a_failed_check_keeps_readers_on_the_last_good_snapshot(crashed, tmp_path):
    settings: Settings = crashed["settings"]
    before = read_status(settings)
    assert before["state"] == "published"
    code, log = run(settings, job="daily_job", failpoints="check.orders_meets_expectations=fail", log="failed-check")
    assert code != 0
    status = read_status(settings)
    assert status["state"] == "stale"
    assert status["snapshot_id"] == before["snapshot_id"]
    assert status["reasons"] == ["check orders_meets_expectations on marts/orders failed"]
    assert os.path.realpath(settings.serving_dir / "current").endswith(before["snapshot_id"])
    assert "NOT PUBLISHED" in log and before["snapshot_id"] in log
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        messages = [r.event_log_entry.dagster_event.message for r in instance.get_records_for_run(
            status["failed_run_id"], of_type=dg.DagsterEventType.ENGINE_EVENT).records]
    assert any("Readers stay on the last good snapshot" in m for m in messages)

    from orchestration.lib.alerts import LogSink, evaluate

    with pytest.MonkeyPatch.context() as mp:
        installation(mp, settings.landing_dir.parent)
        log_sink = LogSink(tmp_path / "alerts.log")
        report = evaluate(get_settings(), sinks=[log_sink])
        assert report.alerts_delivered >= 1
        sent = (tmp_path / "alerts.log").read_text()
        assert "Serving snapshot not updated" in sent and before["snapshot_id"] in sent
        assert evaluate(get_settings(), sinks=[log_sink]).alerts_enqueued == 0
