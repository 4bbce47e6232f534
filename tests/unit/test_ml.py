"""Pure parts of the ML loop: metrics, the promotion gate, the baselines' plumbing, the training set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.config import CHALLENGER, CHAMPION
from ml.dataset import DatasetError, build, feature_columns
from ml.metrics import churn_metrics, decile_table, ltv_metrics, normalized_gini
from ml.score import risk_segment
from ml.train import decide


def test_normalized_gini_is_one_for_the_perfect_order_and_near_zero_for_noise():
    rng = np.random.default_rng(1)
    actual = rng.gamma(0.5, 100, size=5000) * (rng.random(5000) < 0.4)
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) < -0.9
    assert abs(normalized_gini(actual, rng.random(5000))) < 0.05
    # Only the order matters.
    assert normalized_gini(actual, np.log1p(actual)) == pytest.approx(1.0)


def test_churn_metrics_against_hand_computed_values():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.6, 0.2, 0.3, 0.4, 0.05, 0.15])
    m = churn_metrics(y, p)
    # Positives ranked 1,2,4,6 of 10: AUC = pairs won / 24.
    assert m["roc_auc"] == pytest.approx(21 / 24)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["top_decile_lift"] == pytest.approx(1 / 0.4)
    assert m["base_rate"] == pytest.approx(0.4)


def test_ltv_metrics_totals_and_deciles():
    actual = np.arange(100, dtype=float)
    m = ltv_metrics(actual, actual * 2)
    assert m["total_ratio"] == pytest.approx(2.0) and m["decile_mape"] == pytest.approx(1.0)
    assert m["spearman"] == pytest.approx(1.0)
    table = decile_table(actual, actual)
    assert list(table["n"]) == [10] * 10 and table["actual"].iloc[0] == sum(range(90, 100))


def _decide(candidate, baselines, champion=None, margin=0.005):
    return decide("churn", {"roc_auc": candidate}, {k: {"roc_auc": v} for k, v in baselines.items()},
                  None if champion is None else {"roc_auc": champion}, None if champion is None else "3", margin)


def test_promotion_gate():
    first = _decide(0.80, {"bgnbd": 0.75, "rfm": 0.70})
    assert first.promoted and first.alias == CHAMPION and "no champion yet" in first.reason
    loses_to_baseline = _decide(0.80, {"bgnbd": 0.81, "rfm": 0.70})
    assert not loses_to_baseline.promoted and loses_to_baseline.alias == CHALLENGER
    assert "bgnbd" in loses_to_baseline.reason and "rfm" not in loses_to_baseline.reason
    within_margin = _decide(0.804, {"bgnbd": 0.75, "rfm": 0.70}, champion=0.80)
    assert not within_margin.promoted and "margin" in within_margin.reason
    assert _decide(0.806, {"bgnbd": 0.75, "rfm": 0.70}, champion=0.80).promoted
    tie = _decide(0.80, {"bgnbd": 0.75, "rfm": 0.70}, champion=0.80, margin=0.0)
    assert tie.promoted  # a zero margin promotes an equal candidate: the margin is the only guard
    assert not _decide(float("nan"), {"bgnbd": 0.75, "rfm": 0.70}).promoted


def test_risk_segments():
    assert list(risk_segment(np.array([0.95, 0.6, 0.59, 0.3, 0.1]))) == ["high", "high", "medium", "medium", "low"]


def _frames(train_cutoffs=3, customers=40, horizon=30):
    rows, labels = [], []
    cutoffs = [("2026-06-01", "score"), ("2026-05-02", "evaluate")] + [
        (str(pd.Timestamp("2026-04-02") - pd.Timedelta(days=15 * i))[:10], "train") for i in range(train_cutoffs)]
    for cutoff, role in cutoffs:
        for i in range(customers):
            rows.append({"customer_key": f"k{i}", "cutoff_date": pd.Timestamp(cutoff), "cutoff_role": role,
                         "recency_days": i + 1, "orders_count": 1 + i % 3, "segment_flag": i % 2 == 0})
            if role != "score":
                labels.append({"customer_key": f"k{i}", "cutoff_date": pd.Timestamp(cutoff), "cutoff_role": role,
                               "horizon_days": horizon, "churned": i % 2 == 0, "horizon_net_usd": float(i)})
    return pd.DataFrame(rows), pd.DataFrame(labels)


def test_dataset_splits_by_role_and_keeps_identifiers_out_of_the_features():
    features, labels = _frames()
    ds = build(features, labels)
    assert ds.feature_names == ["recency_days", "orders_count"] == feature_columns(features)
    assert (len(ds.train), len(ds.evaluate), len(ds.score)) == (120, 40, 40)
    assert ds.eval_cutoff == "2026-05-02" and ds.train_cutoffs[-1] == "2026-04-02" and ds.horizon_days == 30
    assert "customer_key" not in ds.train.X.columns
    assert ds.describe()["data_digest"] == build(features.sample(frac=1, random_state=3), labels).describe()["data_digest"]
    changed = labels.copy()
    changed.loc[0, "horizon_net_usd"] += 1
    assert build(features, changed).digest() != ds.digest()


def test_dataset_explains_too_little_history():
    features, labels = _frames(train_cutoffs=0)
    with pytest.raises(DatasetError, match="training rows"):
        build(features, labels)
    features, labels = _frames(horizon=30)
    with pytest.raises(DatasetError, match="30-day horizon, the settings say 90"):
        build(features, labels, expected_horizon_days=90)
    assert build(features, labels, expected_horizon_days=30).horizon_days == 30
    no_eval = features[features.cutoff_role != "evaluate"]
    with pytest.raises(DatasetError, match="evaluation rows"):
        build(no_eval, labels[labels.cutoff_role != "evaluate"])
