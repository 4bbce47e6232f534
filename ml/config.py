"""What a training run is asked to do: horizon, cutoffs, promotion margin and LightGBM settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHURN = "churn"
LTV = "ltv"
KINDS = (CHURN, LTV)

# Model names in the MLflow registry; also the experiment names.
MODEL_NAMES = {CHURN: "cxloop-churn", LTV: "cxloop-ltv"}
# The metric a candidate must improve to be promoted: ranking quality, which both the model and its
# baselines are judged on.
PRIMARY_METRIC = {CHURN: "roc_auc", LTV: "normalized_gini"}

CHAMPION = "champion"
CHALLENGER = "challenger"

_COMMON_PARAMS: dict[str, Any] = {
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "deterministic": True,
    "force_row_wise": True,
    # One thread: on a small table OpenMP threads cost more than they give, and contend badly with the
    # other processes of a run (measured under load on 4,400 rows: 0.025 s an iteration with 2 threads,
    # 0.003 s with 1).
    "num_threads": 1,
    "verbose": -1,
}


def _default_params(kind: str) -> dict[str, Any]:
    if kind == CHURN:
        return {**_COMMON_PARAMS, "objective": "binary", "metric": "binary_logloss"}
    # Horizon revenue is zero for most customers and heavy-tailed for the rest: Tweedie (compound
    # Poisson-gamma) models exactly that mass at zero plus a skewed positive part.
    return {**_COMMON_PARAMS, "objective": "tweedie", "tweedie_variance_power": 1.3, "metric": "tweedie"}


@dataclass(frozen=True)
class TrainingConfig:
    """One training run's settings. `horizon_days` is the horizon the labels must have been built with (dbt
    fixes it, with the cutoffs, when it builds `customer_features`/`customer_labels`); None accepts any.

    A candidate is promoted when its primary metric beats every baseline and beats the champion,
    re-evaluated on the same evaluation cutoff, by at least `promotion_margin`.
    """

    horizon_days: int | None = 90
    promotion_margin: float = 0.005
    seed: int = 7
    max_boost_rounds: int = 2000
    early_stopping_rounds: int = 40
    params: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: _default_params(k) for k in KINDS})

    def lgbm_params(self, kind: str) -> dict[str, Any]:
        return {**self.params[kind], "seed": self.seed}
