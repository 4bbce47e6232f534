"""The LightGBM models: churn (binary) and horizon revenue (Tweedie), fitted on the training cutoffs.

The number of boosting rounds is chosen by early stopping on the latest training cutoff (the most recent
labelled period that is not the evaluation period), then the model is refitted on every training cutoff
with that many rounds. The evaluation cutoff is never seen before evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.config import CHURN, TrainingConfig
from ml.dataset import Split


@dataclass
class FitInfo:
    best_iteration: int
    early_stopping_cutoff: str | None
    early_stopping_score: float | None


def _target(kind: str, split: Split) -> np.ndarray:
    return split.churned if kind == CHURN else split.revenue


def fit(kind: str, train: Split, config: TrainingConfig):
    import lightgbm as lgb

    params = config.lgbm_params(kind)
    y = _target(kind, train)
    cutoffs = sorted(train.keys["cutoff_date"].unique())
    best, stop_cutoff, stop_score = config.max_boost_rounds // 3, None, None
    if len(cutoffs) >= 2:
        inner = (train.keys["cutoff_date"] == cutoffs[-1]).to_numpy()
        dtrain = lgb.Dataset(train.X[~inner], y[~inner], free_raw_data=False)
        dvalid = lgb.Dataset(train.X[inner], y[inner], reference=dtrain)
        probe = lgb.train(params, dtrain, num_boost_round=config.max_boost_rounds, valid_sets=[dvalid],
                          callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
        best = max(probe.best_iteration, 10)
        stop_cutoff = pd.Timestamp(cutoffs[-1]).date().isoformat()
        stop_score = float(next(iter(probe.best_score["valid_0"].values())))
    booster = lgb.train(params, lgb.Dataset(train.X, y), num_boost_round=best)
    return booster, FitInfo(best_iteration=best, early_stopping_cutoff=stop_cutoff,
                            early_stopping_score=stop_score)


def predict(booster, X: pd.DataFrame) -> np.ndarray:
    """Predictions with the columns the booster was trained on; a feature it knows but the data lacks (a
    source with no data now) is missing, which LightGBM routes like any missing value."""
    return np.asarray(booster.predict(X.reindex(columns=booster.feature_name())), dtype=float)


def shap_values(booster, X: pd.DataFrame) -> np.ndarray:
    """Per-row SHAP contributions from LightGBM's own TreeSHAP (`pred_contrib`), without the bias column."""
    contrib = booster.predict(X.reindex(columns=booster.feature_name()), pred_contrib=True)
    return np.asarray(contrib)[:, :-1]
