"""Training, evaluation and scoring sets from the point-in-time features and labels built by dbt.

`customer_features` has one row per customer and cutoff, `customer_labels` the outcome of each evaluation
and training row. Rows of training cutoffs train, the evaluation cutoff (whose horizon is complete and
overlaps no training label) evaluates, the scoring cutoff (the day after the latest data) is scored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

KEY_COLUMNS = ("customer_key", "cutoff_date", "cutoff_role")
LABEL_COLUMNS = ("churned", "horizon_net_usd")


@dataclass
class Split:
    """Features (numeric, no identifiers) and labels of one role; `keys` keeps the row identities apart."""

    keys: pd.DataFrame
    X: pd.DataFrame
    labels: pd.DataFrame

    def __len__(self) -> int:
        return len(self.X)

    @property
    def churned(self) -> np.ndarray:
        return self.labels["churned"].to_numpy(dtype=float)

    @property
    def revenue(self) -> np.ndarray:
        return self.labels["horizon_net_usd"].to_numpy(dtype=float)


@dataclass
class Dataset:
    train: Split
    evaluate: Split
    score: Split
    feature_names: list[str]
    horizon_days: int

    @property
    def train_cutoffs(self) -> list[str]:
        return sorted({_day(c) for c in self.train.keys["cutoff_date"]})

    @property
    def eval_cutoff(self) -> str:
        return _day(self.evaluate.keys["cutoff_date"].iloc[0])

    @property
    def score_cutoff(self) -> str | None:
        return _day(self.score.keys["cutoff_date"].iloc[0]) if len(self.score) else None

    def digest(self) -> str:
        """SHA-256 over the training and evaluation rows (features and labels), order-independent of the
        query: identical data gives an identical digest. No row leaves the process."""
        h = hashlib.sha256()
        for split in (self.train, self.evaluate):
            frame = pd.concat([split.keys.reset_index(drop=True), split.X.reset_index(drop=True),
                               split.labels.reset_index(drop=True)], axis=1)
            frame = frame.sort_values(["cutoff_date", "customer_key"]).reset_index(drop=True)
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        """The training-set description logged with every run: sizes, cutoffs, horizon, digest, base rates."""
        return {
            "train_rows": len(self.train),
            "eval_rows": len(self.evaluate),
            "score_rows": len(self.score),
            "train_cutoffs": self.train_cutoffs,
            "eval_cutoff": self.eval_cutoff,
            "score_cutoff": self.score_cutoff,
            "horizon_days": self.horizon_days,
            "features": self.feature_names,
            "train_churn_rate": round(float(self.train.churned.mean()), 6),
            "eval_churn_rate": round(float(self.evaluate.churned.mean()), 6),
            "train_mean_horizon_usd": round(float(self.train.revenue.mean()), 4),
            "eval_mean_horizon_usd": round(float(self.evaluate.revenue.mean()), 4),
            "data_digest": self.digest(),
        }


def _day(value) -> str:
    return pd.Timestamp(value).date().isoformat()


class DatasetError(ValueError):
    """The features and labels cannot make a training set (too little history, missing roles)."""


def feature_columns(features: pd.DataFrame) -> list[str]:
    """Every numeric column except the keys: a new feature in dbt reaches the model without code here."""
    return [c for c in features.columns
            if c not in KEY_COLUMNS and pd.api.types.is_numeric_dtype(features[c])
            and not pd.api.types.is_bool_dtype(features[c])]


def _split(rows: pd.DataFrame, names: list[str]) -> Split:
    rows = rows.sort_values(["cutoff_date", "customer_key"]).reset_index(drop=True)
    labels = rows.reindex(columns=list(LABEL_COLUMNS)).astype("float64")
    return Split(keys=rows[list(KEY_COLUMNS)], X=rows[names].astype("float64"), labels=labels)


def build(features: pd.DataFrame, labels: pd.DataFrame, min_train_rows: int = 50,
          expected_horizon_days: int | None = None) -> Dataset:
    """The three splits; `expected_horizon_days` guards against labels built with another horizon than the
    settings now say (dbt has not rebuilt them since the setting changed)."""
    names = feature_columns(features)
    labelled = features.merge(labels[["customer_key", "cutoff_date", *LABEL_COLUMNS, "horizon_days"]],
                              on=["customer_key", "cutoff_date"], how="left", validate="one_to_one")
    train, evaluate, score = (_split(labelled[labelled["cutoff_role"] == role], names)
                              for role in ("train", "evaluate", "score"))
    if len(evaluate) == 0:
        raise DatasetError("no evaluation rows: the data must span more than one label horizon "
                           "(cxloop_horizon_days) after the first purchase")
    if len(train) < min_train_rows:
        raise DatasetError(f"{len(train)} training rows (need {min_train_rows}): the data must span two label "
                           "horizons plus history; shorten the horizon or load more history")
    for part, name in ((train, "train"), (evaluate, "evaluate")):
        if part.labels.isna().any().any():
            raise DatasetError(f"{name} rows without labels: customer_labels is older than customer_features")
    horizon = labels["horizon_days"].dropna().unique()
    if len(horizon) != 1:
        raise DatasetError(f"customer_labels mixes horizons {sorted(horizon)}")
    if expected_horizon_days is not None and int(horizon[0]) != expected_horizon_days:
        raise DatasetError(f"customer_labels were built with a {int(horizon[0])}-day horizon, the settings say "
                           f"{expected_horizon_days}: rebuild the features with dbt (daily_job) before training")
    return Dataset(train=train, evaluate=evaluate, score=score, feature_names=names, horizon_days=int(horizon[0]))


def build_scoring(features: pd.DataFrame) -> Split:
    """The scoring rows alone (features as of the day after the latest data), for `ml.score`."""
    return _split(features[features["cutoff_role"] == "score"], feature_columns(features))
