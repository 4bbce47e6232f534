"""`cxloop`: prepare the project, run the platform once, open the UIs.

`cxloop run` is what `make run` calls: it prepares the dbt manifest and the Dagster instance, fills an empty
landing directory with a simulated shop, executes `platform_job` (every asset) through Dagster against the
local instance, so the run shows in the UI, and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestration.lib.settings import PROJECT_ROOT, Settings, get_settings

DEMO_CUSTOMERS = 2000
DEMO_DAYS = 365
DEMO_SEED = 7


INSTANCE_TEMPLATE = PROJECT_ROOT / "orchestration" / "dagster.yaml"
# Appended to the shipped instance config when `CXLOOP_DAGSTER_PG_URL` is set. The file names the variable, so
# the URL and its password stay in the environment of each Dagster process and out of $DAGSTER_HOME.
POSTGRES_INSTANCE = """
# Written by `cxloop prepare` because CXLOOP_DAGSTER_PG_URL is set: runs, event logs and schedules in Postgres,
# shared by every webserver, daemon and run worker that sees the same variable. Runs are queued and the daemon
# starts them within the limits above.
storage:
  postgres:
    postgres_url:
      env: CXLOOP_DAGSTER_PG_URL
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
"""


# SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3; cxloop installs psycopg2, so the URL names it.
PG_URL_SCHEME = "postgresql+psycopg2"


def instance_yaml(settings: Settings) -> str:
    """The Dagster instance config of this installation: the shipped `orchestration/dagster.yaml` (pools, run
    tag limits, run monitoring), plus Postgres storage and the queued run coordinator when the settings name a
    Postgres database. Without one, exactly the shipped file: SQLite under `dagster_home`."""
    text = INSTANCE_TEMPLATE.read_text()
    if not settings.dagster_pg_url:
        return text
    scheme, has_scheme, _ = settings.dagster_pg_url.partition("://")
    if scheme != PG_URL_SCHEME:
        # Checked here, once, rather than as "No module named 'psycopg'" in every Dagster process. Only the
        # scheme is echoed: the rest holds the password.
        found = f"it starts with {scheme}://" if has_scheme else "it has no scheme"
        raise SystemExit(f"CXLOOP_DAGSTER_PG_URL must start with {PG_URL_SCHEME}:// ({found}): "
                         "the Dagster instance connects through psycopg2")
    return text + POSTGRES_INSTANCE


def write_instance_yaml(settings: Settings) -> bool:
    """Write $DAGSTER_HOME/dagster.yaml when it differs from `instance_yaml`, so a changed setting never meets
    a stale file. Returns whether it was written."""
    path = settings.dagster_home / "dagster.yaml"
    text = instance_yaml(settings)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(f".dagster.yaml.{os.getpid()}")
    tmp.write_text(text)
    # Atomic: a webserver or daemon reading the file at this moment sees the old config or the new one.
    os.replace(tmp, path)
    return True


# What `dbt parse` writes that others read, moved into the project's target/ in this order (the manifest last).
PARSE_OUTPUTS = ("partial_parse.msgpack", "semantic_manifest.json", "manifest.json")


def prepare(settings: Settings, quiet: bool = False) -> None:
    """Directories, the Dagster instance config, and the dbt manifest (`dbt parse`).

    dbt parses into a private folder and the manifest is then renamed into the project's `target/`, so a
    process loading the definitions (the Dagster UI, a run, another installation's `prepare`) never reads a
    half-written manifest. The previous partial-parse state is copied in first, so parsing stays incremental.
    """
    settings.ensure_dirs()
    write_instance_yaml(settings)
    target = settings.dbt_project_dir / "target"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parse-", dir=target) as private:
        if (target / PARSE_OUTPUTS[0]).exists():
            shutil.copy2(target / PARSE_OUTPUTS[0], private)
        dbt = Path(sys.executable).with_name("dbt")
        cmd = [str(dbt), "parse", "--project-dir", str(settings.dbt_project_dir),
               "--profiles-dir", str(settings.dbt_project_dir), "--target", settings.dbt_target,
               "--target-path", private, "--quiet"]
        proc = subprocess.run(cmd, env={**os.environ, **settings.environ()}, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"dbt parse failed (exit {proc.returncode})")
        for name in PARSE_OUTPUTS:
            if (Path(private) / name).exists():
                os.replace(Path(private) / name, target / name)
    if not quiet:
        print(f"prepared: dbt manifest in {settings.dbt_project_dir / 'target'}, "
              f"Dagster instance in {settings.dagster_home}")


def landing_is_empty(settings: Settings) -> bool:
    root = settings.landing_dir
    return not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def simulate_if_empty(settings: Settings, customers: int, days: int, seed: int) -> bool:
    if not landing_is_empty(settings):
        print(f"landing: using existing files in {settings.landing_dir}")
        return False
    import simulator

    print(f"landing: {settings.landing_dir} is empty; simulating a shop "
          f"({customers} customers, {days} days, seed {seed})")
    simulator.generate(customers=customers, days=days, seed=seed, out=settings.landing_dir,
                       truth=settings.truth_dir)
    return True


def load_definitions():
    from orchestration.definitions import defs

    return defs() if callable(defs) else defs


def process_tags() -> dict[str, str]:
    """Where an in-process run executes, so a later run can tell whether its process is still alive."""
    return {"cxloop/host": socket.gethostname(), "cxloop/pid": str(os.getpid())}


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        # A restarted container can hand a new process the pid of the one that died; this one runs nothing yet.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance) -> list[str]:
    """End the in-process runs of this host whose process died (SIGKILL, OOM) and free their pool slots.

    Nothing else would: no daemon monitors a run executed in process, so a killed run would stay STARTED and
    keep its `warehouse` slot, and every later run would wait for it forever.
    """
    import dagster as dg

    host = socket.gethostname()
    released = []
    active = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=active)):
        pid = run.tags.get("cxloop/pid")
        if run.tags.get("cxloop/host") != host or not pid or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, message=f"run process {pid} died without ending the run; "
                                                "marked failed and its concurrency slots freed by the next run")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def execute(job_name: str, settings: Settings, tags: dict[str, str] | None = None, log_level: str = "WARNING",
            asset_selection=None, asset_check_selection=None):
    """Run a job in process against the local Dagster instance, returning the Dagster result. `asset_selection`
    (asset keys) runs only those assets of the job, with their checks, or with just the checks of
    `asset_check_selection` (check keys; empty for none) when that is given."""
    import dagster as dg

    os.environ.update(settings.environ())
    definitions = load_definitions()
    job = definitions.resolve_job_def(job_name)
    if asset_check_selection is not None:
        if not asset_selection:
            raise ValueError("asset_check_selection needs an asset_selection")
        job = job.get_subset(asset_selection=set(asset_selection), asset_check_selection=set(asset_check_selection))
        asset_selection = None
    with dg.DagsterInstance.get() as instance:
        release_dead_runs(instance)
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=asset_selection,
            tags={**(tags or {}), **process_tags()},
            # The full event stream is in the Dagster UI; the terminal gets warnings and the summary.
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        from orchestration.defs.serving.sensors import announce_unpublished

        # No daemon watches an in-process run: say here what the failure sensor says for daemon runs.
        announce_unpublished(instance, result.run_id)
        return result


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.lib.summary import print_summary

    settings = get_settings()
    started = time.monotonic()
    prepare(settings)
    simulate_if_empty(settings, args.customers, args.days, args.seed)
    log_path = settings.dagster_home / "last_run.log"
    what = " (every asset)" if args.job == "platform_job" else ""
    print(f"running {args.job}{what} in process; dbt output goes to {log_path}, "
          "the full event log to the Dagster UI (`make ui`)", flush=True)
    # MLflow reports each registration at INFO; the summary says what was registered and why.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with log_path.open("w") as log, contextlib.redirect_stdout(log):
        result = execute(args.job, settings, tags={"cxloop/trigger": "cli"})
    print_summary(settings, result, elapsed=time.monotonic() - started)
    return 0 if result.success else 1


def cmd_prepare(args: argparse.Namespace) -> int:
    prepare(get_settings())
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from orchestration.lib.summary import print_summary

    print_summary(get_settings(), None, elapsed=None)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Write an erasure request into the landing requests folder and process it now with `erasure_job`.

    The job runs through Dagster like any other, so it waits for a build holding the warehouse. Prints counts
    only: the identifier given is never echoed or logged.
    """
    from orchestration.lib.erasure import audit_log_path, read_audit_log, write_request

    settings = get_settings()
    if args.request_id and any(e.get("request_id") == args.request_id for e in read_audit_log(settings)):
        print(f"erasure request {args.request_id} was processed already: see {audit_log_path(settings)}")
        return 0
    prepare(settings, quiet=True)
    try:
        request_id, path = write_request(settings, customer_id=args.customer_id, email=args.email,
                                         request_id=args.request_id)
    except ValueError as exc:
        print(f"cxloop erase: {exc}", file=sys.stderr)
        return 2
    print(f"erasure request {request_id} written to {path}", flush=True)
    result = execute("erasure_job", settings, tags={"cxloop/trigger": "cli"})
    entry = next((e for e in read_audit_log(settings) if e.get("request_id") == request_id), None)
    if not result.success or entry is None:
        print(f"erasure request {request_id} not processed (run {result.run_id} failed, see the Dagster UI); "
              "the request file stays pending and the next run processes it")
        return 1
    print(f"erased: {entry['rows_removed_total']} row(s) removed, customer key(s) {entry['customer_keys'] or 'none'}")
    for store, tables in entry["rows_removed"].items():
        for table, n in tables.items():
            print(f"  {store:<11} {table:<40} {n:>8,}")
    print(f"suppressed for later loads: {entry['suppression_added'] or 'already on the list'}")
    print(f"audit log: {audit_log_path(settings)} (request {request_id})")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Dagster (webserver + daemon) and, once a tracking store exists, MLflow; both on `--host` only."""
    settings = get_settings()
    prepare(settings, quiet=True)
    bin_dir = Path(sys.executable).parent
    from ml.tracking import SECURE_ENV

    # `dagster dev` prepares the dbt manifest itself and looks for `dbt` on PATH: put this venv first.
    # SECURE_ENV: no unpickling of models or artifacts in the MLflow UI, Dagster or the runs it launches.
    env = {**os.environ, **settings.environ(), **SECURE_ENV,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    procs = [subprocess.Popen(
        [str(bin_dir / "dagster"), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
         "-h", args.host, "-p", str(args.dagster_port)], env=env, cwd=PROJECT_ROOT)]
    print(f"Dagster UI: http://{args.host}:{args.dagster_port}")
    from orchestration.lib.models import mlflow_store

    store = mlflow_store(settings)
    if store.served_artifacts:
        # A tracking server has its own UI; `mlflow ui` cannot use a server as its backend store.
        print(f"MLflow UI: {settings.mlflow_ui_url} (the tracking server's)")
    elif settings.mlflow_tracking_uri or (settings.mlflow_dir / "mlflow.db").exists():
        procs.append(subprocess.Popen(
            # One worker: each loads MLflow on its own (seconds of CPU), and a local UI needs no more.
            [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", store.tracking_uri, "--workers", "1",
             "--host", args.host, "--port", str(args.mlflow_port)], env=env, cwd=PROJECT_ROOT))
        print(f"MLflow UI: http://{args.host}:{args.mlflow_port}")
    else:
        print("MLflow UI: not started (no tracking store yet; it appears after models are trained)")
    print("Ctrl-C stops both.")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cxloop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="prepare, simulate if the landing dir is empty, run every asset, summarize")
    run.add_argument("--customers", type=int, default=DEMO_CUSTOMERS)
    run.add_argument("--days", type=int, default=DEMO_DAYS)
    run.add_argument("--seed", type=int, default=DEMO_SEED)
    run.add_argument("--job", default="platform_job")
    run.set_defaults(func=cmd_run)

    sub.add_parser("prepare", help="dbt parse and Dagster instance config").set_defaults(func=cmd_prepare)
    sub.add_parser("summary", help="print the summary of the current warehouse").set_defaults(func=cmd_summary)

    erase = sub.add_parser("erase", help="erase a person everywhere (GDPR art. 17) and keep them out of later loads")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id")
    who.add_argument("--email")
    erase.add_argument("--request-id", help="the request's reference (default: a new UUID)")
    erase.set_defaults(func=cmd_erase)

    ui = sub.add_parser("ui", help="Dagster UI and MLflow UI on localhost")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--dagster-port", type=int, default=3000)
    ui.add_argument("--mlflow-port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
