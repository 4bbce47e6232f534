"""Baselines every LightGBM candidate is judged against, on the same split.

- BG/NBD with Gamma-Gamma (Fader, Hardie & Lee 2005; `lifetimes`): fitted on the purchase history before
  the cutoff alone, no labels. Churn = P(no purchase in the horizon), exact under BG/NBD because dropout
  can only follow a purchase: (1 - P(alive)) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x).
  Horizon revenue = expected purchases in the horizon * Gamma-Gamma expected spend per purchase.
- RFM: quintile scores of recency, frequency and monetary value from the training rows, summed (3-15); each
  sum predicts the training churn rate and mean horizon revenue of its customers.

Times are in weeks for the BG/NBD fit: the optimiser is better conditioned than in days.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

DAYS_PER_WEEK = 7.0


def bgnbd_inputs(X: pd.DataFrame) -> pd.DataFrame:
    """frequency (repeat purchase days), recency and T (weeks) and the mean repeat spend, from the features."""
    return pd.DataFrame({
        "frequency": X["repeat_purchase_days"].to_numpy(dtype=float),
        "recency": X["purchase_span_days"].to_numpy(dtype=float) / DAYS_PER_WEEK,
        "T": X["first_purchase_age_days"].to_numpy(dtype=float) / DAYS_PER_WEEK,
        "monetary_value": X["repeat_avg_order_usd"].fillna(0).to_numpy(dtype=float),
    })


# Tried in order until the maximum-likelihood fit converges; 0 (plain MLE) first, as published.
PENALIZERS = (0.0, 0.001, 0.01, 0.1)


def _fit_with_penalizer(make, *columns):
    from lifetimes.utils import ConvergenceError

    for penalizer in PENALIZERS:
        try:
            # lifetimes prints the optimiser's state when a fit fails; keep it out of run logs.
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                return make(penalizer).fit(*columns, verbose=False), penalizer
        except ConvergenceError:
            continue
    raise ConvergenceError(f"no convergence with penalizers {PENALIZERS}")


@dataclass
class BGNBDGammaGamma:
    bgf: object = None
    ggf: object = None
    penalizers: dict[str, float] | None = None

    def fit(self, X: pd.DataFrame) -> "BGNBDGammaGamma":
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        data = bgnbd_inputs(X)
        self.bgf, bg_pen = _fit_with_penalizer(lambda c: BetaGeoFitter(penalizer_coef=c),
                                               data["frequency"], data["recency"], data["T"])
        repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
        self.ggf, gg_pen = _fit_with_penalizer(lambda c: GammaGammaFitter(penalizer_coef=c),
                                               repeat["frequency"], repeat["monetary_value"])
        self.penalizers = {"bgnbd": bg_pen, "gamma_gamma": gg_pen}
        return self

    @property
    def params(self) -> dict[str, float]:
        out = {f"bgnbd_{k}": float(v) for k, v in self.bgf.params_.items()}
        out.update({f"gamma_gamma_{k}": float(v) for k, v in self.ggf.params_.items()})
        out.update({f"{k}_penalizer": v for k, v in (self.penalizers or {}).items()})
        return out

    def churn_probability(self, X: pd.DataFrame, horizon_days: float) -> np.ndarray:
        d = bgnbd_inputs(X)
        r, alpha = self.bgf.params_["r"], self.bgf.params_["alpha"]
        t = horizon_days / DAYS_PER_WEEK
        alive = self.bgf.conditional_probability_alive(d["frequency"], d["recency"], d["T"])
        silent_if_alive = ((alpha + d["T"]) / (alpha + d["T"] + t)) ** (r + d["frequency"])
        return np.asarray((1 - alive) + alive * silent_if_alive, dtype=float)

    def expected_purchases(self, X: pd.DataFrame, horizon_days: float) -> np.ndarray:
        d = bgnbd_inputs(X)
        return np.asarray(self.bgf.conditional_expected_number_of_purchases_up_to_time(
            horizon_days / DAYS_PER_WEEK, d["frequency"], d["recency"], d["T"]), dtype=float)

    def expected_revenue(self, X: pd.DataFrame, horizon_days: float) -> np.ndarray:
        d = bgnbd_inputs(X)
        spend = self.ggf.conditional_expected_average_profit(d["frequency"], d["monetary_value"])
        return self.expected_purchases(X, horizon_days) * np.asarray(spend, dtype=float)


@dataclass
class RFMScore:
    """The plain RFM score marketers use, turned into predictions by its training outcomes."""

    edges: dict[str, np.ndarray] | None = None
    churn_by_score: pd.Series | None = None
    revenue_by_score: pd.Series | None = None
    overall_churn: float = 0.5
    overall_revenue: float = 0.0

    COLUMNS = {"r": "recency_days", "f": "orders_count", "m": "monetary_usd"}

    def score(self, X: pd.DataFrame) -> np.ndarray:
        total = np.zeros(len(X), dtype=int)
        for part, column in self.COLUMNS.items():
            quintile = np.searchsorted(self.edges[part], X[column].to_numpy(dtype=float), side="right") + 1
            # Recent is good: the smallest recency gets 5.
            total += (6 - quintile) if part == "r" else quintile
        return total

    def fit(self, X: pd.DataFrame, churned: np.ndarray, revenue: np.ndarray) -> "RFMScore":
        self.edges = {part: np.unique(np.quantile(X[column].to_numpy(dtype=float), [0.2, 0.4, 0.6, 0.8]))
                      for part, column in self.COLUMNS.items()}
        frame = pd.DataFrame({"score": self.score(X), "churned": churned, "revenue": revenue})
        self.churn_by_score = frame.groupby("score")["churned"].mean()
        self.revenue_by_score = frame.groupby("score")["revenue"].mean()
        self.overall_churn = float(np.mean(churned))
        self.overall_revenue = float(np.mean(revenue))
        return self

    def churn_probability(self, X: pd.DataFrame) -> np.ndarray:
        return pd.Series(self.score(X)).map(self.churn_by_score).fillna(self.overall_churn).to_numpy(dtype=float)

    def expected_revenue(self, X: pd.DataFrame) -> np.ndarray:
        return pd.Series(self.score(X)).map(self.revenue_by_score).fillna(self.overall_revenue).to_numpy(dtype=float)
