"""Score customers as of the latest data with the champion models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ml import models
from ml.config import CHAMPION, CHURN, LTV, MODEL_NAMES
from ml.dataset import Split
from ml.tracking import Store, TrackingStoreUnavailable, load_booster, unavailability, version_by_alias

RISK_THRESHOLDS = (("high", 0.6), ("medium", 0.3))


class NoChampionError(LookupError):
    """A registered model has no champion yet: train before scoring."""


@dataclass(frozen=True)
class Champion:
    kind: str
    version: str
    booster: object


def champions(store: Store) -> dict[str, Champion]:
    """The booster behind each `champion` alias, resolved once to a version so a promotion during scoring
    cannot mix two versions. A model without a champion is left out; none at all raises NoChampionError; a
    store that does not answer raises TrackingStoreUnavailable."""
    out = {}
    try:
        client = store.client()
        for kind in (CHURN, LTV):
            version = version_by_alias(client, MODEL_NAMES[kind], CHAMPION)
            if version is not None:
                out[kind] = Champion(kind, str(version.version), load_booster(MODEL_NAMES[kind], version.version))
    except Exception as exc:
        # Never read as "no champion": that would write empty scores over good ones.
        cause = unavailability(exc)
        if cause is None:
            raise
        raise TrackingStoreUnavailable(store.tracking_uri, "loading the champions", cause) from exc
    if not out:
        raise NoChampionError(f"no registered model has a '{CHAMPION}' alias in {store.tracking_uri}: train "
                              "the models first (training_job or `make run`); a candidate is promoted only when "
                              "it beats its baselines")
    return out


def champion_runs(store: Store, ui_url: str | None = None) -> list[dict]:
    """Each champion's version, the MLflow run it came from and that run's headline metrics, for reports.

    Baseline metrics are logged on the run as `<baseline>.<metric>`; they are returned apart so a reader sees
    what the model had to beat. Reads the registry only: no booster is loaded.
    """
    from ml.config import PRIMARY_METRIC

    client = store.client()
    out = []
    for kind in (CHURN, LTV):
        version = version_by_alias(client, MODEL_NAMES[kind], CHAMPION)
        if version is None:
            continue
        run = client.get_run(version.run_id)
        metrics = {k: v for k, v in run.data.metrics.items() if "." not in k}
        primary = PRIMARY_METRIC[kind]
        baselines = {k.split(".", 1)[0]: v for k, v in run.data.metrics.items()
                     if k.endswith(f".{primary}") and not k.startswith("champion.")}
        url = f"{ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}" if ui_url else None
        out.append({"kind": kind, "model": MODEL_NAMES[kind], "version": str(version.version), "alias": CHAMPION,
                    "run_id": run.info.run_id, "run_url": url, "metrics": metrics, "baselines": baselines,
                    "primary_metric": primary})
    return out


def missing(models_by_kind: dict[str, Champion]) -> list[str]:
    return [MODEL_NAMES[k] for k in (CHURN, LTV) if k not in models_by_kind]


def risk_segment(probability: np.ndarray) -> np.ndarray:
    out = np.full(len(probability), "low", dtype=object)
    for name, threshold in reversed(RISK_THRESHOLDS):
        out[probability >= threshold] = name
    return out


# The scores table's contract (column: SQL type): what activation tools and the serving snapshot rely on.
SCORE_SCHEMA = {
    "customer_key": "varchar",
    "as_of_date": "date",
    "churn_probability": "double",
    "predicted_ltv_usd": "double",
    "horizon_days": "integer",
    "risk_segment": "varchar",
    "churn_model_version": "varchar",
    "ltv_model_version": "varchar",
    "scored_at": "timestamp",
}


def empty_scores() -> pd.DataFrame:
    """The scores table with no rows, for an installation with no champion yet."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in SCORE_SCHEMA})


def score(rows: Split, models_by_kind: dict[str, Champion], horizon_days: int,
          scored_at: datetime | None = None) -> pd.DataFrame:
    """One row per customer; the columns of a model with no champion are null, never a stand-in."""
    scored_at = scored_at or datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)

    def predict(kind: str) -> np.ndarray:
        if kind not in models_by_kind:
            return np.full(len(rows), np.nan)
        return models.predict(models_by_kind[kind].booster, rows.X)

    def version(kind: str) -> str | None:
        return models_by_kind[kind].version if kind in models_by_kind else None

    churn = predict(CHURN)
    ltv = np.maximum(predict(LTV), 0.0)
    segments = risk_segment(churn)
    segments[np.isnan(churn)] = None
    return pd.DataFrame({
        "customer_key": rows.keys["customer_key"].to_numpy(),
        "as_of_date": pd.to_datetime(rows.keys["cutoff_date"]).dt.date.to_numpy(),
        "churn_probability": churn,
        "predicted_ltv_usd": ltv,
        "horizon_days": np.full(len(rows), horizon_days, dtype=np.int32),
        "risk_segment": segments,
        "churn_model_version": version(CHURN),
        "ltv_model_version": version(LTV),
        "scored_at": scored_at,
    })
