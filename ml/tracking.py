"""MLflow: the tracking store, experiments, the registry and the champion/challenger aliases.

One experiment and one registered model per kind (`cxloop-churn`, `cxloop-ltv`). Artifacts live under the
store's artifact root, set per experiment so runs never land in a working-directory `mlruns/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Store:
    """Where runs and models go: a tracking URI (SQLite by default, any MLflow backend) and an artifact root."""

    tracking_uri: str
    artifact_root: str

    @classmethod
    def local(cls, directory: Path) -> "Store":
        directory.mkdir(parents=True, exist_ok=True)
        return cls(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}",
                   artifact_root=(directory / "artifacts").resolve().as_uri())

    def client(self):
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, client, name: str) -> str:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(name, artifact_location=f"{self.artifact_root}/{name}")


def version_by_alias(client, model_name: str, alias: str):
    """The model version holding `alias`, or None when the model or the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def load_booster(model_name: str, version: str | int):
    """The native LightGBM booster of one registered version (never a pickled wrapper)."""
    import mlflow.lightgbm

    return mlflow.lightgbm.load_model(f"models:/{model_name}/{version}")
