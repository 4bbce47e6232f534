"""The BG/NBD + Gamma-Gamma baseline reproduces the published CDNOW fits.

Every LightGBM candidate is promoted only if it beats this baseline, so a baseline that silently fitted
something else (days instead of weeks, orders instead of purchase days, T measured to the wrong day) would
make promotion meaningless. Fader, Hardie & Lee (2005) fit the 1/10 CDNOW sample calibrated to 1997-09-30:
r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; Fader & Hardie's Gamma-Gamma note fits the same customers'
mean repeat spend: p = 6.25, q = 3.74, v = 15.44. The inputs are built the way
`features.customer_features` builds them, in days, and passed through `bgnbd_inputs`.
"""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.baselines import BGNBDGammaGamma, bgnbd_inputs

CALIBRATION_END = date(1997, 9, 30)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


def datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin is not None, "lifetimes is a pinned dependency"
    return Path(spec.origin).parent / "datasets"


@pytest.fixture(scope="module")
def calibration_features() -> pd.DataFrame:
    """One row per sample customer, indexed by the sample's customer index (1-2357), as of 1997-09-30."""
    rows = []
    for line in (datasets() / "CDNOW_sample.txt").read_text().splitlines():
        _, index, day, _, spend = line.split()
        rows.append((int(index), pd.Timestamp(day).date(), float(spend)))
    tx = pd.DataFrame(rows, columns=["customer", "day", "spend"])
    tx = tx[tx["day"] <= CALIBRATION_END]
    days = tx.groupby(["customer", "day"], as_index=False)["spend"].sum()
    first = days.groupby("customer")["day"].transform("min")
    per_customer = days.assign(first=first).groupby("customer")
    repeat_spend = days[days["day"] > first].groupby("customer")["spend"].mean()
    age = lambda d: (CALIBRATION_END - d).days  # noqa: E731
    return pd.DataFrame({
        "repeat_purchase_days": per_customer.size() - 1,
        "purchase_span_days": per_customer.apply(lambda g: (g["day"].max() - g["day"].min()).days),
        "first_purchase_age_days": per_customer["first"].first().map(age),
        "repeat_avg_order_usd": repeat_spend,
    })


@pytest.fixture(scope="module")
def fitted(calibration_features) -> BGNBDGammaGamma:
    return BGNBDGammaGamma().fit(calibration_features)


def test_inputs_match_the_published_summary(calibration_features):
    """Same customers, repeat purchases, recency and T (weeks) as the summary shipped with `lifetimes`."""
    summary = pd.read_csv(datasets() / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
    ours = bgnbd_inputs(calibration_features).set_index(calibration_features.index)
    assert len(ours) == len(summary) == 2357
    summary = summary.loc[ours.index]
    assert (ours["frequency"].to_numpy() == summary["x"].to_numpy()).all()
    np.testing.assert_allclose(ours["recency"], summary["t_x"], atol=0.006)
    np.testing.assert_allclose(ours["T"], summary["T"], atol=0.006)
    np.testing.assert_allclose(ours["monetary_value"], summary["zbar"], atol=0.006)


def test_bgnbd_parameters_are_the_published_ones(fitted):
    assert fitted.penalizers["bgnbd"] == 0.0
    for name, published in PUBLISHED_BGNBD.items():
        assert fitted.bgf.params_[name] == pytest.approx(published, abs=0.002), name


def test_gamma_gamma_parameters_are_the_published_ones(fitted):
    assert fitted.penalizers["gamma_gamma"] == 0.0
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert fitted.ggf.params_[name] == pytest.approx(published, abs=0.01), name


def test_no_purchase_probability_agrees_with_expected_purchases(fitted, calibration_features):
    """P(no purchase in 39 weeks) is a probability, and customers expected to buy more are less likely silent."""
    churn = fitted.churn_probability(calibration_features, 273)
    purchases = fitted.expected_purchases(calibration_features, 273)
    assert ((churn > 0) & (churn < 1)).all()
    assert np.corrcoef(churn, purchases)[0, 1] < -0.5
