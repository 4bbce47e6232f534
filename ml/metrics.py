"""Evaluation metrics for churn probabilities and horizon-revenue predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6


def _deciles(score: np.ndarray) -> np.ndarray:
    """Decile 1 = highest scores; ties broken by position so every decile has the same size (±1)."""
    order = np.argsort(-score, kind="stable")
    ranks = np.empty(len(score), dtype=int)
    ranks[order] = np.arange(len(score))
    return ranks * 10 // max(len(score), 1) + 1


def calibration_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Mean predicted vs observed rate in ten equal-count bins of the prediction, lowest first."""
    frame = pd.DataFrame({"y": y, "p": p, "bin": 11 - _deciles(np.asarray(p))})
    table = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return table.reset_index()


def churn_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    top = _deciles(p) == 1
    table = calibration_table(y, p)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "top_decile_lift": float(y[top].mean() / y.mean()) if y.mean() > 0 else float("nan"),
        # Expected calibration error over the ten bins of the calibration plot.
        "calibration_error": float(np.average(np.abs(table["predicted"] - table["observed"]), weights=table["n"])),
        "base_rate": float(y.mean()),
    }


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of `actual` ordered by `predicted`, divided by the Gini of the perfect order (1 = perfect)."""

    def gini(a: np.ndarray, s: np.ndarray) -> float:
        order = np.lexsort((np.arange(len(s)), -s))
        cum = np.cumsum(a[order]) / a.sum()
        return float(np.sum(cum - np.arange(1, len(a) + 1) / len(a)) / len(a))

    actual = np.asarray(actual, dtype=float)
    if actual.sum() <= 0:
        return float("nan")
    return gini(actual, np.asarray(predicted, dtype=float)) / gini(actual, actual)


def decile_table(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"actual": actual, "predicted": predicted, "decile": _deciles(np.asarray(predicted))})
    table = frame.groupby("decile").agg(predicted=("predicted", "sum"), actual=("actual", "sum"),
                                        n=("actual", "size"))
    return table.reset_index()


def ltv_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    table = decile_table(actual, predicted)
    nonzero = table[table["actual"] > 0]
    return {
        "normalized_gini": normalized_gini(actual, predicted),
        "spearman": float(spearmanr(actual, predicted).statistic),
        # Revenue per decile of predicted value: how far off each decile's total is, on average.
        "decile_mape": float(np.mean(np.abs(nonzero["predicted"] - nonzero["actual"]) / nonzero["actual"])),
        "mae": float(np.mean(np.abs(actual - predicted))),
        "total_predicted": float(predicted.sum()),
        "total_actual": float(actual.sum()),
        "total_ratio": float(predicted.sum() / actual.sum()) if actual.sum() > 0 else float("nan"),
    }


def gains_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of the population contacted (by descending score) vs share of the total `y` captured."""
    order = np.lexsort((np.arange(len(score)), -np.asarray(score)))
    captured = np.cumsum(np.asarray(y, dtype=float)[order])
    total = captured[-1] if len(captured) and captured[-1] > 0 else 1.0
    return np.arange(1, len(y) + 1) / len(y), captured / total
