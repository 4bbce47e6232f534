"""MLflow: the tracking store, experiments, the registry and the champion/challenger aliases.

One experiment and one registered model per kind (`cxloop-churn`, `cxloop-ltv`). With a store the client
opens itself (the local SQLite default, a database URI) artifacts live under the store's artifact root, set per
experiment so runs never land in a working-directory `mlruns/`. With a tracking server the server chooses: its
served artifact store (`--artifacts-destination`) or its default artifact root, so every machine that trains
writes to the same place.

A store that does not answer fails the caller with `TrackingStoreUnavailable`, which names the store and
what was being done; MLflow's HTTP retries are bounded (`CLIENT_DEFAULTS`) so that takes seconds, not minutes.
Runs an interrupted training left `RUNNING` are ended as `FAILED` by the next one (`end_stale_runs`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# MLflow's own client settings, set by cxloop only where the environment does not already set them. MLflow's
# defaults (7 retries, backoff factor 2, 120 s timeout) keep a client on a dead store for about four minutes
# per request, and a failed training makes several (ending its run, the next model's lookup); these give up
# on a refused connection or repeated 5xx answers in under 10 s, and on a store that accepts connections but
# never answers in about 2 minutes (4 tries of 30 s).
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Never unpickle a model or artifact. cxloop's models are native LightGBM boosters (a text file), which load
# without pickle; a pickled model in the store is nothing cxloop wrote, and unpickling it runs its code. Set
# in every process that uses this module and in the MLflow UI that `cxloop ui` starts; not overridable.
SECURE_ENV = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}

# Tracking URIs of a server (MLflow's, Databricks'): it decides where an experiment's artifacts go.
SERVER_SCHEMES = ("http", "https", "databricks")

RUN_FAILURE_TAG = "cxloop.failure"
ABANDONED = "abandoned"


class TrackingStoreUnavailable(RuntimeError):
    """The MLflow tracking store did not answer: connection refused or reset, timed out, or 5xx answers after
    MLflow's retries."""

    def __init__(self, tracking_uri: str, doing: str, cause: BaseException, outcome: str = ""):
        self.tracking_uri = redacted(tracking_uri)
        self.doing = doing
        detail = " ".join(f"{type(cause).__name__}: {cause}".split())
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        super().__init__(f"MLflow tracking store {self.tracking_uri} is unavailable ({detail}) while {doing}."
                         + (f" {outcome}" if outcome else ""))


def configure_client() -> None:
    """Apply `CLIENT_DEFAULTS` (unless set) and `SECURE_ENV` to this process: MLflow reads both per call."""
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.update(SECURE_ENV)


@contextmanager
def store_errors(tracking_uri: str, doing: Callable[[], str], outcome: Callable[[], str] = lambda: "") -> Iterator[None]:
    """Turn an error that means the store did not answer into `TrackingStoreUnavailable` (what was being done,
    read when it happens, and what that left); every other error passes unchanged."""
    try:
        yield
    except TrackingStoreUnavailable:
        raise
    except Exception as exc:
        cause = unavailability(exc)
        if cause is None:
            raise
        raise TrackingStoreUnavailable(tracking_uri, doing(), cause, outcome()) from exc


def redacted(uri: str) -> str:
    """The URI without a password (`http://user:secret@host` -> `http://user:***@host`)."""
    return re.sub(r"(//[^/:@]+):[^/@]*@", r"\1:***@", uri)


def unavailability(exc: BaseException) -> BaseException | None:
    """The exception behind `exc` that says the store did not answer, or None when it did (a wrong argument, a
    missing model, a bug): only the former is worth a retry once the store is back. Of several, the earliest,
    deepest in the chain: a failure to end a run after the store went away is not the news."""
    import requests
    from mlflow.exceptions import MlflowException

    def says_unavailable(e: BaseException) -> bool:
        # RetryError: retried 5xx answers ran out; ConnectionError covers refused, reset and DNS failures.
        return (isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                               requests.exceptions.RetryError, ConnectionError, TimeoutError))
                or (isinstance(e, MlflowException) and e.get_http_status_code() in (502, 503, 504))
                or (type(e).__name__ == "OperationalError" and type(e).__module__.startswith("sqlalchemy")))

    # Both links: urllib3 raises `MaxRetryError(...) from reason`, so the error that was being handled when
    # the request failed hangs off __context__ while __cause__ leads to a dead end.
    found, found_depth, seen = None, -1, set()
    stack: list[tuple[BaseException, int]] = [(exc, 0)]
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if depth > found_depth and says_unavailable(current):
            found, found_depth = current, depth
        stack.extend((e, depth + 1) for e in (current.__cause__, current.__context__) if e is not None)
    return found


@dataclass(frozen=True)
class Store:
    """Where runs and models go: a tracking URI (SQLite by default, any MLflow backend) and an artifact root, used
    when the tracking URI is not a server's (`served_artifacts`)."""

    tracking_uri: str
    artifact_root: str | None = None

    @classmethod
    def local(cls, directory: Path) -> "Store":
        directory.mkdir(parents=True, exist_ok=True)
        return cls(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}",
                   artifact_root=(directory / "artifacts").resolve().as_uri())

    def client(self):
        import mlflow
        from mlflow.tracking import MlflowClient

        configure_client()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @property
    def served_artifacts(self) -> bool:
        """True for a tracking server: its experiments take the server's artifact location. A client-side path
        there would send each machine's artifacts to its own disk, where the server and the other machines
        cannot read them."""
        # A bare `databricks` (the default profile) has no scheme of its own.
        return (urlsplit(self.tracking_uri).scheme or self.tracking_uri).lower() in SERVER_SCHEMES

    def experiment_id(self, client, name: str) -> str:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        if self.served_artifacts or not self.artifact_root:
            return client.create_experiment(name)
        return client.create_experiment(name, artifact_location=f"{self.artifact_root}/{name}")


def version_by_alias(client, model_name: str, alias: str):
    """The model version holding `alias`, or None when the model or the alias does not exist yet. Any other
    error (the store not answering) is raised: read as "no champion", it would promote a candidate unjudged
    or leave the scores empty."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        # The model missing (RESOURCE_DOES_NOT_EXIST) or the alias missing (INVALID_PARAMETER_VALUE).
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def end_stale_runs(client, experiment_id: str, reason: str) -> list[str]:
    """End as FAILED every run of the experiment still RUNNING, tagged `cxloop.failure` with `reason`.

    A training ends its own runs, FAILED on an error; only a process killed mid-run, or a store that went away
    before the run could be ended, leaves one RUNNING. Called when a training starts, before it opens its own
    run: one training per model runs at a time (the `warehouse` pool in Dagster), so any RUNNING run then is
    one nobody will finish. Returns the ids of the runs ended."""
    from mlflow.entities import ViewType

    runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", run_view_type=ViewType.ACTIVE_ONLY,
                              max_results=1000)
    for run in runs:
        client.set_tag(run.info.run_id, RUN_FAILURE_TAG, reason)
        client.set_terminated(run.info.run_id, "FAILED")
    return [run.info.run_id for run in runs]


def mark_abandoned_versions(client, model_name: str) -> list[str]:
    """Tag `decision=abandoned` every version with no alias and no decision: registered by a training that
    stopped before its promotion step, so never judged. They stay in the registry, visibly not candidates."""
    out = []
    for version in client.search_model_versions(f"name = '{model_name}'"):
        if "decision" in version.tags or client.get_model_version(model_name, version.version).aliases:
            continue
        reason = "registered by a training that stopped before its promotion step; never judged or promoted"
        client.set_model_version_tag(model_name, version.version, "decision", ABANDONED)
        client.set_model_version_tag(model_name, version.version, "decision_reason", reason)
        client.update_model_version(model_name, version.version, description=reason)
        out.append(str(version.version))
    return out


def load_booster(model_name: str, version: str | int):
    """The native LightGBM booster of one registered version (never a pickled wrapper: with pickle
    deserialization off, MLflow refuses to load one)."""
    import mlflow.lightgbm

    configure_client()
    return mlflow.lightgbm.load_model(f"models:/{model_name}/{version}")
