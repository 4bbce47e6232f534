"""Figures logged with every training run: importance, SHAP summary, calibration, lift and gains."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ml.metrics import calibration_table, decile_table, gains_curve  # noqa: E402

TOP_FEATURES = 15


def feature_importance(booster) -> plt.Figure:
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name()).sort_values()
    gain = gain[gain > 0].tail(TOP_FEATURES)
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(gain), 4) + 1))
    ax.barh(gain.index, gain.to_numpy() / gain.sum())
    ax.set_xlabel("share of total gain")
    ax.set_title("Feature importance (gain)")
    fig.tight_layout()
    return fig


def shap_summary(contrib: np.ndarray, X: pd.DataFrame, seed: int = 0) -> plt.Figure:
    """Beeswarm-style summary: one dot per row and feature, x = SHAP value, colour = the feature's rank."""
    order = np.argsort(np.abs(contrib).mean(axis=0))[-TOP_FEATURES:]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(order) + 1.5))
    for row, j in enumerate(order):
        values = X.iloc[:, j].to_numpy(dtype=float)
        colour = pd.Series(values).rank(pct=True).fillna(0.5).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, size=len(values))
        ax.scatter(contrib[:, j], row + jitter, c=colour, cmap="coolwarm", s=4, alpha=0.6, linewidths=0)
    ax.set_yticks(range(len(order)), [X.columns[j] for j in order])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("SHAP value (impact on the model output; colour: low → high feature value)")
    ax.set_title("SHAP summary (evaluation cutoff)")
    fig.tight_layout()
    return fig


def calibration(y: np.ndarray, curves: dict[str, np.ndarray]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    for name, p in curves.items():
        table = calibration_table(y, p)
        ax.plot(table["predicted"], table["observed"], marker="o", label=name)
    ax.set_xlabel("predicted churn probability (decile mean)")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration (evaluation cutoff)")
    ax.legend()
    fig.tight_layout()
    return fig


def gains(y: np.ndarray, curves: dict[str, np.ndarray], what: str) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="random")
    for name, score in curves.items():
        share, captured = gains_curve(y, score)
        axes[0].plot(share, captured, label=name)
        deciles = decile_table(y, score)
        axes[1].plot(deciles["decile"], deciles["actual"] / deciles["n"] / max(np.mean(y), 1e-12), marker="o",
                     label=name)
    axes[0].set_xlabel("share of customers, highest score first")
    axes[0].set_ylabel(f"share of {what} captured")
    axes[0].set_title("Cumulative gains")
    axes[0].legend()
    axes[1].axhline(1, color="grey", linestyle="--", linewidth=0.8)
    axes[1].set_xlabel("decile of score (1 = highest)")
    axes[1].set_ylabel(f"lift ({what} per customer / average)")
    axes[1].set_title("Lift by decile")
    fig.tight_layout()
    return fig


def decile_revenue(actual: np.ndarray, curves: dict[str, np.ndarray]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / (len(curves) + 1)
    first = decile_table(actual, next(iter(curves.values())))
    ax.bar(first["decile"] - 0.4 + width / 2, first["actual"], width, label="actual (model deciles)")
    for i, (name, pred) in enumerate(curves.items(), start=1):
        table = decile_table(actual, pred)
        ax.bar(table["decile"] - 0.4 + width * (i + 0.5), table["predicted"], width, label=f"predicted: {name}")
    ax.set_xlabel("decile of predicted horizon revenue (1 = highest)")
    ax.set_ylabel("horizon revenue, USD")
    ax.set_title("Predicted vs actual revenue by decile")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
