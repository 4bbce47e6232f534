"""The Dagster instance on Postgres, with runs queued for the daemon: what a team outgrowing one machine changes.

One small simulated shop. The installation differs from the embedded default only by `CXLOOP_DAGSTER_PG_URL`,
pointing at a database of a throwaway Postgres server (`tests/scale/postgres.py`). `cxloop prepare` writes the
instance config; `dagster job launch` submits `daily_job`, which waits QUEUED because nothing is running; then
`dagster-daemon run` starts (schedules, sensors, the run queue, run monitoring, as in production) and dequeues
it. Once the run succeeded and nothing is queued or running, the daemon is stopped with SIGTERM and must exit by
itself. Every assertion reads the Postgres database with psycopg2: the run, its event log (enqueued, dequeued,
started, succeeded, in that order), the asset materializations, the asset catalog, the daemon's heartbeats and
the sensor ticks; and no SQLite storage exists under DAGSTER_HOME.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

import simulator
from orchestration.cli import prepare
from orchestration.lib.settings import PROJECT_ROOT, Settings, get_settings
from tests.conftest import TEST_KEY, use_installation
from tests.scale.postgres import PostgresServer

pytestmark = pytest.mark.scale

SHOP = {"customers": 300, "days": 60, "seed": 11}
DATABASE = "dagster"
RUN_TIMEOUT_S = 900
DAEMON_STOP_S = 60
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
# As stored in `event_logs.dagster_event_type` (the run events keep their older PIPELINE_* names there). The
# coordinator records no event of its own when it dequeues a run: STARTING is the launch it made.
QUEUE_PATH = [e.value for e in (dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING,
                                dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS)]
MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION.value
PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value


@dataclass
class QueuedRun:
    settings: Settings
    server: PostgresServer
    run_id: str
    status_before_daemon: str
    daemon_started_at: float
    daemon_exit: int | None
    daemon_log: str
    seconds: dict[str, float]

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.server.query(DATABASE, sql, params)


def child_env(settings: Settings) -> dict[str, str]:
    """What every Dagster process of the installation sees: its settings (the Postgres URL among them) and this
    venv first on PATH, for dbt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXLOOP_", "DAGSTER_"))}
    env.update(settings.environ())
    env.update({"CXLOOP_PSEUDONYM_KEY": TEST_KEY, "DAGSTER_DISABLE_TELEMETRY": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    return env


def dagster(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name(args[0])), *args[1:]]


def run_status(server: PostgresServer, run_id: str) -> str | None:
    rows = server.query(DATABASE, "select status from runs where run_id = %s", (run_id,))
    return rows[0][0] if rows else None


def wait_until_settled(server: PostgresServer, run_id: str, daemon: subprocess.Popen, log: Path) -> None:
    """Until the run ended and no run of the instance is queued or in progress (a sensor may have asked for
    one meanwhile), failing early when the daemon dies."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        assert daemon.poll() is None, f"dagster-daemon exited ({daemon.returncode}):\n{log.read_text()[-3000:]}"
        active = server.query(DATABASE, "select count(*) from runs where status = any(%s)", (list(ACTIVE),))[0][0]
        if run_status(server, run_id) not in (None, *ACTIVE) and active == 0:
            return
        time.sleep(2)
    pytest.fail(f"run {run_id} still {run_status(server, run_id)} after {RUN_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def stop(daemon: subprocess.Popen) -> int | None:
    """SIGTERM, as a container runtime stops the daemon; its exit code, or None when it had to be killed."""
    if daemon.poll() is not None:
        return daemon.returncode
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(timeout=DAEMON_STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)
        return None


@pytest.fixture(scope="module")
def installation(tmp_path_factory, postgres_server, dbt_manifest) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("pg-dagster") / "cx"
    simulator.generate(out=root / "landing", truth=root / "truth", **SHOP)
    mp = pytest.MonkeyPatch()
    try:
        use_installation(mp, root)
        mp.setenv("CXLOOP_DAGSTER_PG_URL", postgres_server.create_database(DATABASE))
        settings = get_settings()
        prepare(settings, quiet=True)
        yield settings
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def queued_run(installation: Settings, postgres_server: PostgresServer) -> Iterator[QueuedRun]:
    settings, env, seconds = installation, child_env(installation), {}
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    run_id = str(uuid.uuid4())
    started = time.monotonic()
    launch = subprocess.run(dagster("dagster", "job", "launch", "-w", workspace, "-j", "daily_job", "--run-id", run_id,
                                    "--tags", json.dumps({"cxloop/trigger": "test"})),
                            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    seconds["launch"] = time.monotonic() - started
    status_before_daemon = run_status(postgres_server, run_id)

    log = settings.dagster_home / "daemon.log"
    daemon_started_at = time.time()
    with log.open("w") as out:
        daemon = subprocess.Popen(dagster("dagster-daemon", "run", "-w", workspace), env=env, cwd=PROJECT_ROOT,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = time.monotonic()
        wait_until_settled(postgres_server, run_id, daemon, log)
        seconds["run"] = time.monotonic() - started
    finally:
        started = time.monotonic()
        code = stop(daemon)
        seconds["daemon_stop"] = time.monotonic() - started
        # The daemon's code server is its child in the same session: nothing of it may outlive the test.
        try:
            os.killpg(daemon.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print("\nqueued daily_job on Postgres: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    yield QueuedRun(settings=settings, server=postgres_server, run_id=run_id,
                    status_before_daemon=status_before_daemon, daemon_started_at=daemon_started_at, daemon_exit=code, daemon_log=log.read_text(),
                    seconds=seconds)


def test_prepare_writes_postgres_storage_and_the_queue_with_the_shipped_limits(installation: Settings):
    written = yaml.safe_load((installation.dagster_home / "dagster.yaml").read_text())
    shipped = yaml.safe_load((PROJECT_ROOT / "orchestration" / "dagster.yaml").read_text())
    assert written["storage"] == {"postgres": {"postgres_url": {"env": "CXLOOP_DAGSTER_PG_URL"}}}
    assert written["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert {k: written[k] for k in shipped} == shipped
    # The file names the variable; the URL and its password stay in the environment.
    assert installation.dagster_pg_url and installation.dagster_pg_url not in (
        installation.dagster_home / "dagster.yaml").read_text()


def step_failures(queued_run: QueuedRun) -> list[str]:
    """Each failed step of the run and the last lines of its error, from the event log."""
    out = []
    for step, event in queued_run.query("select step_key, event from event_logs where run_id = %s and "
                                        "dagster_event_type = 'STEP_FAILURE' order by id", (queued_run.run_id,)):
        error = json.loads(event)["dagster_event"]["event_specific_data"]["error"]
        out.append(f"{step}: {error['message'].strip()}\n{''.join(error['stack'][-3:])}")
    return out


def test_the_run_waited_in_the_queue_until_the_daemon_started_it(queued_run: QueuedRun):
    assert queued_run.status_before_daemon == "QUEUED"
    assert run_status(queued_run.server, queued_run.run_id) == "SUCCESS", "\n".join(step_failures(queued_run)[:2])
    events = queued_run.query(
        "select dagster_event_type, extract(epoch from timestamp) from event_logs "
        "where run_id = %s and dagster_event_type = any(%s) order by id", (queued_run.run_id, QUEUE_PATH))
    assert [t for t, _ in events] == QUEUE_PATH
    # Enqueued before the daemon ran, started after: only its run queue could have launched it.
    (_, enqueued), (_, starting) = events[0], events[1]
    assert float(enqueued) < queued_run.daemon_started_at < float(starting)
    assert "QueuedRunCoordinatorDaemon - INFO - Launched 1 runs" in re.sub(r"\x1b\[[0-9;]*m", "", queued_run.daemon_log)


def asset_keys(queued_run: QueuedRun, event_type: str) -> set[str]:
    return {k.replace(" ", "") for (k,) in queued_run.query(
        "select distinct asset_key from event_logs where run_id = %s and dagster_event_type = %s",
        (queued_run.run_id, event_type))}


def test_the_event_log_and_the_asset_catalog_are_in_postgres(queued_run: QueuedRun):
    planned, materialized = asset_keys(queued_run, PLANNED), asset_keys(queued_run, MATERIALIZATION)
    print(f"\ndaily_job: {len(materialized)} of {len(planned)} planned assets materialized")
    names = {json.loads(k)[-1] for k in materialized}
    assert '["raw","orders"]' in materialized and {"customers", "kpi_daily", "serving_snapshot"} <= names, names
    assert materialized <= planned
    catalog = {k.replace(" ", "") for (k,) in queued_run.query(
        "select asset_key from asset_keys where last_materialization_timestamp is not null")}
    assert materialized <= catalog
    step_events = queued_run.query(
        "select count(*) from event_logs where run_id = %s and dagster_event_type = 'STEP_SUCCESS'",
        (queued_run.run_id,))[0][0]
    assert step_events > 0


def test_every_run_the_daemon_started_succeeded_one_warehouse_run_at_a_time(queued_run: QueuedRun):
    runs = queued_run.query("select run_id, pipeline_name, status, start_time, end_time from runs order by start_time")
    assert runs and all(status == "SUCCESS" for _, _, status, _, _ in runs), runs
    for (_, _, _, _, end), (_, _, _, start, _) in zip(runs, runs[1:]):
        assert end <= start, f"two runs tagged cxloop/warehouse overlapped: {runs}"


def test_the_daemon_kept_its_state_in_postgres_and_stopped_cleanly(queued_run: QueuedRun):
    daemons = {t for (t,) in queued_run.query("select daemon_type from daemon_heartbeats")}
    assert {"QUEUED_RUN_COORDINATOR", "SCHEDULER", "SENSOR"} <= daemons, daemons
    assert queued_run.query("select count(*) from job_ticks")[0][0] > 0
    assert queued_run.daemon_exit is not None, f"dagster-daemon ignored SIGTERM:\n{queued_run.daemon_log[-3000:]}"
    home = queued_run.settings.dagster_home
    assert not [p for p in home.rglob("*.db") if p.is_file()], "SQLite storage under DAGSTER_HOME"
