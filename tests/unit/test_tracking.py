"""Telling an unavailable MLflow store from an MLflow answer, and what the error then says."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from ml.tracking import Store, TrackingStoreUnavailable, redacted, unavailability, version_by_alias


def _request_failed(cause: Exception, url: str = "http://store/api/2.0/mlflow/registered-models/create"):
    """What MLflow's REST client raises: its own exception, raised while handling the HTTP library's."""
    try:
        raise cause
    except Exception as exc:
        try:
            raise MlflowException(f"API request to {url} failed with exception {exc}")
        except MlflowException as wrapped:
            return wrapped


def test_a_refused_or_retried_out_request_is_unavailability_and_an_answer_is_not():
    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    assert unavailability(_request_failed(refused)) is refused
    assert unavailability(_request_failed(requests.exceptions.RetryError("too many 503 error responses")))
    assert unavailability(MlflowException("Registered Model with name=x not found",
                                          error_code=RESOURCE_DOES_NOT_EXIST)) is None
    assert unavailability(ValueError("not a store problem")) is None


def test_the_earliest_unavailability_is_named_not_the_failure_to_end_the_run_after_it():
    first = requests.exceptions.RetryError("registered-models/create: too many 503 error responses")
    try:
        raise _request_failed(first)
    except MlflowException:
        # Ending the run while the store is still down: raised while the first error is being handled.
        later = _request_failed(requests.exceptions.RetryError("runs/update: too many 503 error responses"))
    assert unavailability(later) is first


def test_the_error_names_the_store_without_its_password_and_says_what_was_going_on():
    error = TrackingStoreUnavailable("https://ci:s3cret@mlflow.example.com", "registering cxloop-churn",
                                     ConnectionRefusedError(111, "Connection refused"),
                                     "No model version was registered and no alias moved.")
    assert str(error).startswith("MLflow tracking store https://ci:***@mlflow.example.com is unavailable "
                                 "(ConnectionRefusedError: [Errno 111] Connection refused) while registering "
                                 "cxloop-churn. No model version was registered")
    assert "s3cret" not in str(error) and redacted("sqlite:///data/mlflow.db") == "sqlite:///data/mlflow.db"


class _Registry:
    def __init__(self, error: Exception):
        self.error = error

    def get_model_version_by_alias(self, name, alias):
        raise self.error


def test_no_champion_only_when_the_registry_says_so():
    missing_alias = MlflowException("alias champion not found", error_code=INVALID_PARAMETER_VALUE)
    assert version_by_alias(_Registry(missing_alias), "m", "champion") is None
    assert version_by_alias(_Registry(MlflowException("no model", error_code=RESOURCE_DOES_NOT_EXIST)),
                            "m", "champion") is None
    down = _request_failed(requests.exceptions.ConnectionError("Connection refused"))
    with pytest.raises(MlflowException):
        version_by_alias(_Registry(down), "m", "champion")


class _Experiments:
    def __init__(self, existing: dict[str, str] | None = None):
        self.existing = existing or {}
        self.created: list[tuple[str, str | None]] = []

    def get_experiment_by_name(self, name):
        if name in self.existing:
            return type("Experiment", (), {"experiment_id": self.existing[name]})()
        return None

    def create_experiment(self, name, artifact_location=None):
        self.created.append((name, artifact_location))
        return str(len(self.created))


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "https://user:pw@mlflow.example.com", "databricks"])
def test_a_tracking_server_chooses_where_artifacts_go(uri):
    client = _Experiments()
    Store(tracking_uri=uri, artifact_root="file:///srv/cxloop/mlflow/artifacts").experiment_id(client, "cxloop-churn")
    assert client.created == [("cxloop-churn", None)]


def test_a_store_the_client_opens_keeps_artifacts_under_its_artifact_root(tmp_path):
    client = _Experiments()
    store = Store.local(tmp_path / "mlflow")
    store.experiment_id(client, "cxloop-churn")
    assert client.created == [("cxloop-churn", f"{(tmp_path / 'mlflow' / 'artifacts').as_uri()}/cxloop-churn")]
    assert not store.served_artifacts
    existing = _Experiments({"cxloop-ltv": "7"})
    assert store.experiment_id(existing, "cxloop-ltv") == "7" and existing.created == []
