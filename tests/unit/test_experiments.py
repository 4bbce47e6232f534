"""Experiment read-outs, checked against simulated experiments whose truth is known.

The calibration tests push whole populations of simulated experiments through `analyze` in one call. On
A/A data the false-positive rate and interval coverage must land near their nominal levels, and a planted
lift must be covered about 95% of the time. With fixed seeds these are deterministic checks, and the bands
are several binomial standard errors wide, so only a real miscalibration fails them.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from analytics.experiments import (
    ALLOCATION_COLUMNS,
    DONT_SHIP,
    INVALID_SRM,
    KEEP_RUNNING,
    RESULT_COLUMNS,
    SHIP,
    ExperimentConfig,
    allocation,
    analyze,
    beta_prob_greater,
    empty_results,
    load_experiment_configs,
)

T0 = pd.Timestamp("2024-03-01 12:00")
ARMS = ("control", "treatment")


def _units(exp: np.ndarray, var: np.ndarray, y: np.ndarray, x: np.ndarray | None = None, *,
           metric: str = "converted", variations: tuple[str, ...] = ARMS, exposed: pd.Timestamp = T0,
           seen: np.ndarray | None = None) -> pd.DataFrame:
    """A units table from integer codes. Categorical ids keep millions of rows cheap to build."""
    exp = np.asarray(exp)
    n_exp = int(exp.max()) + 1
    within = pd.Series(exp).groupby(exp).cumcount().to_numpy()
    frame = pd.DataFrame({
        "experiment_id": pd.Categorical.from_codes(exp, categories=[f"exp{i:04d}" for i in range(n_exp)]),
        "unit_key": pd.Categorical.from_codes(within, categories=[f"u{i}" for i in range(int(within.max()) + 1)]),
        "variation_id": pd.Categorical.from_codes(np.asarray(var), categories=list(variations)),
        "variations_seen": np.ones(len(exp), dtype=np.int8) if seen is None else seen,
        "first_exposed_at": exposed,
        metric: y,
    })
    if x is not None:
        frame["pre_" + metric] = x
    return frame


def _from_counts(arms: dict[str, tuple[int, int]], experiment_id: str = "exp",
                 exposed: pd.Timestamp = T0) -> pd.DataFrame:
    """One experiment with exactly the given (units, conversions) per variation and no covariate."""
    parts = []
    for variation, (n, conversions) in arms.items():
        parts.append(pd.DataFrame({
            "experiment_id": experiment_id,
            "unit_key": [f"{variation}-{i}" for i in range(n)],
            "variation_id": variation,
            "variations_seen": 1,
            "first_exposed_at": exposed,
            "converted": (np.arange(n) < conversions).astype(int),
            "pre_converted": 0,
        }))
    return pd.concat(parts, ignore_index=True)


def _treatment(result: pd.DataFrame, variation: str = "treatment") -> pd.Series:
    return result.loc[result["variation_id"] == variation].iloc[0]


def _binary_population(rng: np.random.Generator, p: np.ndarray, per_arm: int, lift: float = 0.0,
                       concentration: float = 2.0) -> pd.DataFrame:
    """Experiments with per_arm units in each of two arms and base rate p[e]. Each unit has a propensity
    drawn from Beta(concentration * p, concentration * (1 - p)), and its before and after conversions are
    independent draws from it, so the CUPED covariate correlates with the outcome at
    rho = 1 / (concentration + 1). Treatment multiplies the propensity by 1 + lift."""
    n_exp = len(p)
    exp = np.repeat(np.arange(n_exp), 2 * per_arm)
    var = np.tile(np.repeat([0, 1], per_arm), n_exp)
    pe = p[exp]
    propensity = rng.beta(concentration * pe, concentration * (1 - pe))
    after = np.where(var == 1, np.minimum(propensity * (1 + lift), 1.0), propensity)
    y = (rng.random(len(exp)) < after).astype(np.int8)
    x = (rng.random(len(exp)) < propensity).astype(np.int8)
    return _units(exp, var, y, x)


@pytest.fixture(scope="module")
def aa_results() -> pd.DataFrame:
    rng = np.random.default_rng(20240301)
    units = _binary_population(rng, rng.uniform(0.05, 0.2, size=1000), per_arm=2000)
    start = time.perf_counter()
    result = analyze(units)
    result.attrs["seconds"] = time.perf_counter() - start
    return result


def test_aa_false_positive_rate_and_coverage_are_nominal(aa_results: pd.DataFrame):
    t = aa_results[~aa_results["is_control"]]
    assert len(t) == 1000
    assert 0.02 <= (t["p_value"] < 0.05).mean() <= 0.08
    assert 0.02 <= (t["cuped_p_value"] < 0.05).mean() <= 0.08
    covers = (t["abs_lift_low"] <= 0) & (t["abs_lift_high"] >= 0)
    assert 0.92 <= covers.mean() <= 0.98
    cuped_covers = (t["cuped_abs_lift_low"] <= 0) & (t["cuped_abs_lift_high"] >= 0)
    assert 0.92 <= cuped_covers.mean() <= 0.98


def test_aa_decisions_chance_to_beat_and_speed(aa_results: pd.DataFrame):
    t = aa_results[~aa_results["is_control"]]
    # Only a significantly better treatment ships, which is about half the false positives.
    assert 0.01 <= (t["decision"] == SHIP).mean() <= 0.045
    # With no true difference the posterior probability is roughly uniform.
    assert abs(t["chance_to_beat_control"].mean() - 0.5) < 0.03
    assert 0.01 <= (t["chance_to_beat_control"] > 0.975).mean() <= 0.045
    # Covariate at rho = 1/3, so CUPED removes about 1/9 of the variance.
    assert t["variance_reduction"].mean() == pytest.approx(1 / 9, abs=0.01)
    assert aa_results.attrs["seconds"] < 15


def test_relative_interval_excludes_zero_exactly_when_the_absolute_one_does(aa_results: pd.DataFrame):
    t = aa_results[~aa_results["is_control"]]
    abs_excludes = (t["abs_lift_low"] > 0) | (t["abs_lift_high"] < 0)
    rel_excludes = (t["rel_lift_low"] > 0) | (t["rel_lift_high"] < 0)
    assert abs_excludes.sum() > 10
    assert (abs_excludes == rel_excludes).all()
    assert (abs_excludes == (t["p_value"] < 0.05)).all()


def test_planted_lift_is_covered_at_the_nominal_rate():
    rng = np.random.default_rng(15)
    concentration, base, lift = 4.0, 0.1, 0.15
    t = analyze(_binary_population(rng, np.full(300, base), per_arm=5000, lift=lift, concentration=concentration))
    t = t[~t["is_control"]]
    # The true lift after capping propensities at 1 (a negligible correction at this base rate).
    prior = stats.beta(concentration * base, concentration * (1 - base))
    treated = integrate.quad(lambda q: min(q * (1 + lift), 1.0) * prior.pdf(q), 0, 1, limit=200)[0]
    true_abs, true_rel = treated - base, treated / base - 1
    assert true_rel == pytest.approx(lift, abs=1e-3)
    assert 0.90 <= ((t["rel_lift_low"] <= true_rel) & (t["rel_lift_high"] >= true_rel)).mean() <= 0.99
    assert 0.90 <= ((t["abs_lift_low"] <= true_abs) & (t["abs_lift_high"] >= true_abs)).mean() <= 0.99
    assert 0.90 <= ((t["cuped_abs_lift_low"] <= true_abs) & (t["cuped_abs_lift_high"] >= true_abs)).mean() <= 0.99
    assert t["rel_lift"].mean() == pytest.approx(true_rel, abs=0.01)


def test_large_planted_lift_ships():
    rng = np.random.default_rng(3)
    n = 50_000
    var = np.repeat([0, 1], n)
    y = (rng.random(2 * n) < np.where(var == 1, 0.115, 0.1)).astype(int)
    result = analyze(_units(np.zeros(2 * n, dtype=int), var, y, (rng.random(2 * n) < 0.1).astype(int)))
    row = _treatment(result)
    assert row["decision"] == SHIP and row["ship_variation"] == "treatment"
    assert row["rel_lift_low"] < 0.15 < row["rel_lift_high"]
    assert "Ship treatment" in row["decision_reason"] and "alpha 0.05" in row["decision_reason"]


def test_required_units_gives_the_configured_power():
    # Control at 30% with a 20% relative MDE: simulate experiments of exactly that size with the MDE
    # as the true effect, and count how often the test finds it.
    config = ExperimentConfig(mde=0.2, power=0.8)
    required = int(analyze(_from_counts({"control": (1000, 300), "treatment": (1000, 300)}), config)
                   ["required_units"].iloc[0])
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert required == int(np.ceil(z**2 * (0.3 * 0.7 + 0.36 * 0.64) / 0.06**2))
    rng = np.random.default_rng(8)
    reps = 400
    exp = np.repeat(np.arange(reps), 2 * required)
    var = np.tile(np.repeat([0, 1], required), reps)
    y = (rng.random(len(exp)) < np.where(var == 1, 0.36, 0.3)).astype(np.int8)
    t = analyze(_units(exp, var, y), config)
    power = (t.loc[~t["is_control"], "p_value"] < 0.05).mean()
    assert 0.74 <= power <= 0.86


def _continuous(rng: np.random.Generator, rho: float, n: int = 20_000) -> pd.DataFrame:
    z = rng.standard_normal(2 * n)
    y = 50 + 5 * (rho * z + np.sqrt(1 - rho**2) * rng.standard_normal(2 * n))
    return _units(np.zeros(2 * n, dtype=int), np.repeat([0, 1], n), y, 10 + 2 * z, metric="revenue_usd")


def test_cuped_narrows_the_interval_by_the_covariates_share_of_variance():
    row = _treatment(analyze(_continuous(np.random.default_rng(4), rho=0.6), ExperimentConfig(metric="revenue_usd")))
    assert row["variance_reduction"] == pytest.approx(0.36, abs=0.02)
    plain = row["abs_lift_high"] - row["abs_lift_low"]
    cuped = row["cuped_abs_lift_high"] - row["cuped_abs_lift_low"]
    assert cuped / plain == pytest.approx(np.sqrt(1 - 0.36), abs=0.02)


def test_cuped_with_an_uninformative_covariate_changes_nothing():
    row = _treatment(analyze(_continuous(np.random.default_rng(5), rho=0.0), ExperimentConfig(metric="revenue_usd")))
    assert row["variance_reduction"] < 0.002
    plain = row["abs_lift_high"] - row["abs_lift_low"]
    cuped = row["cuped_abs_lift_high"] - row["cuped_abs_lift_low"]
    assert cuped / plain < 1.005


def test_constant_covariate_means_no_cuped():
    units = _from_counts({"control": (500, 50), "treatment": (500, 60)})
    units["pre_converted"] = 1
    row = _treatment(analyze(units))
    assert row["variance_reduction"] == 0
    assert row["cuped_abs_lift"] == pytest.approx(row["abs_lift"])
    assert row["cuped_p_value"] == pytest.approx(row["p_value"])


def test_srm_flags_a_55_45_split_but_not_an_exact_half():
    skewed = analyze(_from_counts({"control": (11_000, 1100), "treatment": (9_000, 900)}))
    assert skewed["srm"].all() and skewed["srm_p_value"].iloc[0] < 1e-20
    assert (skewed["decision"] == INVALID_SRM).all() and skewed["ship_variation"].isna().all()
    assert "Sample ratio mismatch" in skewed["decision_reason"].iloc[0]
    even = analyze(_from_counts({"control": (10_000, 1000), "treatment": (10_000, 1000)}))
    assert not even["srm"].any() and even["srm_p_value"].iloc[0] == pytest.approx(1.0)
    # The same 55/45 split is fine when it is the plan.
    planned = analyze(_from_counts({"control": (11_000, 1100), "treatment": (9_000, 900)}),
                      ExperimentConfig(expected_shares={"control": 55, "treatment": 45}))
    assert not planned["srm"].any()


def test_srm_catches_a_variation_that_got_no_traffic_or_should_not_exist():
    config = ExperimentConfig(expected_shares={"control": 1, "treatment": 1, "b": 1})
    result = analyze(_from_counts({"control": (1000, 100), "treatment": (1000, 100)}), config)
    assert set(result["variation_id"]) == {"control", "treatment", "b"}
    assert result.loc[result["variation_id"] == "b", "units"].iloc[0] == 0
    assert (result["decision"] == INVALID_SRM).all()
    unplanned = analyze(_from_counts({"control": (1000, 100), "treatment": (1000, 100), "c": (5, 0)}),
                        ExperimentConfig(expected_shares={"control": 1, "treatment": 1}))
    assert unplanned["srm_p_value"].iloc[0] == 0 and unplanned["srm"].all()


def test_units_that_saw_several_variations_are_excluded_and_counted():
    units = _from_counts({"control": (300, 30), "treatment": (300, 30)})
    # Seven treatment units that did not convert also saw control, and converted afterwards.
    contaminated = units.index[units["variation_id"] == "treatment"][-7:]
    units.loc[contaminated, "variations_seen"] = 2
    units.loc[contaminated, "converted"] = 1
    result = analyze(units)
    assert (result["excluded_units"] == 7).all()
    row = _treatment(result)
    assert row["units"] == 293 and row["conversions"] == 30
    assert row["mean"] == pytest.approx(30 / 293)
    assert result.loc[result["is_control"], "units"].iloc[0] == 300


def _exact_beta_prob_greater(a1: int, b1: int, a0: int, b0: int) -> float:
    """P(X1 > X0) by the closed-form finite sum over X1's integer first parameter."""
    i = np.arange(a1)
    terms = special.betaln(a0 + i, b0 + b1) - np.log(b1 + i) - special.betaln(1 + i, b1) - special.betaln(a0, b0)
    return float(np.exp(terms).sum())


def test_chance_to_beat_control_is_half_for_symmetric_data_and_near_one_for_a_clear_winner():
    same = _treatment(analyze(_from_counts({"control": (10_000, 1000), "treatment": (10_000, 1000)})))
    assert same["chance_to_beat_control"] == pytest.approx(0.5, abs=1e-6)
    better = _treatment(analyze(_from_counts({"control": (10_000, 1000), "treatment": (10_000, 1300)})))
    assert better["chance_to_beat_control"] > 0.99


@pytest.mark.parametrize("treated, control", [((38, 210), (30, 200)), ((9, 1000), (5, 1000)), ((1, 50), (0, 50)),
                                              ((520, 5000), (480, 5000)), ((3, 40), (900, 9000))])
def test_chance_to_beat_control_matches_exact_sum_and_independent_monte_carlo(treated, control):
    (c1, n1), (c0, n0) = treated, control
    row = _treatment(analyze(_from_counts({"control": (n0, c0), "treatment": (n1, c1)})))
    value = row["chance_to_beat_control"]
    assert value == pytest.approx(_exact_beta_prob_greater(1 + c1, 1 + n1 - c1, 1 + c0, 1 + n0 - c0), abs=1e-9)
    rng = np.random.default_rng(99)
    draws = 1_000_000
    mc = (rng.beta(1 + c1, 1 + n1 - c1, draws) > rng.beta(1 + c0, 1 + n0 - c0, draws)).mean()
    assert value == pytest.approx(mc, abs=0.01)


def test_beta_prob_greater_is_complementary():
    first = (np.array([3.0, 50.0]), np.array([40.0, 400.0]))
    second = (np.array([900.0, 60.0]), np.array([8100.0, 390.0]))
    p = beta_prob_greater(*first, *second)
    q = beta_prob_greater(*second, *first)
    assert p + q == pytest.approx(np.ones(2), abs=1e-9)


def test_chance_to_beat_for_a_continuous_metric_uses_normal_posteriors():
    rng = np.random.default_rng(6)
    units = _continuous(rng, rho=0.0, n=2000)
    units.loc[units["variation_id"] == "treatment", "revenue_usd"] += 0.2
    row = _treatment(analyze(units, ExperimentConfig(metric="revenue_usd")))
    z = row["abs_lift"] / ((row["abs_lift_high"] - row["abs_lift_low"]) / (2 * stats.norm.ppf(0.975)))
    assert row["chance_to_beat_control"] == pytest.approx(stats.norm.cdf(z), abs=1e-3)
    assert row["chance_to_beat_control"] == pytest.approx(1 - row["p_value"] / 2, abs=1e-3)


def _three_arms(experiment_id: str = "exp", exposed: pd.Timestamp = T0) -> pd.DataFrame:
    return _from_counts({"control": (2000, 100), "b": (2000, 100), "best": (2000, 200), "worst": (2000, 50)},
                        experiment_id, exposed)


def test_thompson_shares_respect_the_floor_sum_to_one_and_favour_the_best_arm():
    shares = allocation(_three_arms(), floor=0.05, seed=1)
    assert list(shares.columns) == list(ALLOCATION_COLUMNS)
    assert shares["traffic_share"].sum() == pytest.approx(1.0)
    assert shares["probability_best"].sum() == pytest.approx(1.0)
    assert (shares["traffic_share"] >= 0.05 - 1e-12).all()
    top = shares.loc[shares["traffic_share"].idxmax()]
    assert top["variation_id"] == "best" and top["probability_best"] > 0.99
    assert shares.loc[shares["variation_id"] == "worst", "traffic_share"].iloc[0] == pytest.approx(0.05)


def test_thompson_is_deterministic_per_seed_and_per_experiment():
    close = _from_counts({"control": (500, 50), "treatment": (500, 55)}, "close")
    first = allocation(close, seed=3)
    assert first.equals(allocation(close, seed=3))
    assert not first["probability_best"].equals(allocation(close, seed=4)["probability_best"])
    # Adding another experiment to the input does not change this one's draws.
    both = allocation(pd.concat([close, _three_arms("other")], ignore_index=True), seed=3)
    assert both.loc[both["experiment_id"] == "close"].reset_index(drop=True).equals(first)
    # Experiments with the same data but different ids still get their own draws.
    twin = allocation(close.assign(experiment_id="twin"), seed=3)
    assert not twin["probability_best"].equals(first["probability_best"])
    # The sampled probability agrees with the exact chance to beat control.
    exact = _treatment(analyze(close))["chance_to_beat_control"]
    sampled = first.loc[first["variation_id"] == "treatment", "probability_best"].iloc[0]
    assert sampled == pytest.approx(exact, abs=0.01)


def test_thompson_skips_stopped_experiments_and_lowers_an_impossible_floor():
    running = _from_counts({f"v{i:02d}": (100, 10) for i in range(25)}, "wide")
    stopped = _from_counts({"control": (100, 10), "treatment": (100, 20)}, "old", exposed=T0 - timedelta(days=10))
    shares = allocation(pd.concat([running, stopped], ignore_index=True), floor=0.05)
    assert set(shares["experiment_id"]) == {"wide"}
    assert (shares["floor"] == 1 / 25).all()
    assert shares["traffic_share"].to_numpy() == pytest.approx(np.full(25, 1 / 25))
    assert (shares["as_of_date"] == T0.date()).all()


def test_decision_ship_the_best_significant_treatment():
    result = analyze(_from_counts({"control": (5000, 500), "small": (5000, 600), "big": (5000, 700)}))
    assert (result["decision"] == SHIP).all() and (result["ship_variation"] == "big").all()
    assert "Bonferroni" in result["decision_reason"].iloc[0]


def test_decision_dont_ship_when_a_treatment_is_significantly_worse():
    result = analyze(_from_counts({"control": (10_000, 1000), "treatment": (10_000, 800)}))
    assert (result["decision"] == DONT_SHIP).all() and result["ship_variation"].isna().all()
    assert "significantly worse" in result["decision_reason"].iloc[0]


def test_decision_dont_ship_when_the_sample_is_complete_or_the_experiment_stopped_without_a_winner():
    flat = {"control": (20_000, 2000), "treatment": (20_000, 2010)}
    complete = analyze(_from_counts(flat), ExperimentConfig(mde=0.2))
    assert complete["required_units"].iloc[0] < 20_000
    assert (complete["decision"] == DONT_SHIP).all() and "reached" in complete["decision_reason"].iloc[0]
    small = {"control": (2000, 200), "treatment": (2000, 201)}
    stopped = analyze(_from_counts(small), as_of=(T0 + timedelta(days=3)).date())
    assert not stopped["is_running"].any()
    assert (stopped["decision"] == DONT_SHIP).all() and "stopped" in stopped["decision_reason"].iloc[0]


def test_decision_keep_running_when_undecided_or_too_small():
    undecided = analyze(_from_counts({"control": (2000, 200), "treatment": (2000, 201)}),
                        as_of=(T0 + timedelta(days=2)).date())
    assert undecided["is_running"].all()
    assert (undecided["decision"] == KEEP_RUNNING).all() and undecided["ship_variation"].isna().all()
    assert "Keep running" in undecided["decision_reason"].iloc[0]
    # A huge effect on 60 units per variation is still below min_units.
    tiny = analyze(_from_counts({"control": (60, 3), "treatment": (60, 40)}))
    assert _treatment(tiny)["p_value"] < 1e-6
    assert (tiny["decision"] == KEEP_RUNNING).all() and "below the 100" in tiny["decision_reason"].iloc[0]


def test_decision_invalid_srm_overrides_a_significant_winner():
    result = analyze(_from_counts({"control": (11_000, 1100), "treatment": (9_000, 1400)}))
    assert _treatment(result)["p_value"] < 1e-6
    assert (result["decision"] == INVALID_SRM).all()


def test_bonferroni_blocks_a_win_that_only_clears_the_uncorrected_alpha():
    two = analyze(_from_counts({"control": (10_000, 1000), "treatment": (10_000, 1090)}))
    assert 0.025 < _treatment(two)["p_value"] < 0.05
    assert (two["decision"] == SHIP).all()
    three = analyze(_from_counts({"control": (10_000, 1000), "treatment": (10_000, 1090), "other": (10_000, 1000)}))
    assert (three["decision"] == KEEP_RUNNING).all()
    assert "alpha 0.025, Bonferroni-corrected from 0.05 for 2 treatments" in three["decision_reason"].iloc[0]


def test_result_schema_and_row_order():
    result = analyze(_from_counts({"b": (200, 20), "control": (200, 25), "a": (200, 22)}))
    assert list(result.columns) == list(RESULT_COLUMNS)
    assert list(result["variation_id"]) == ["control", "a", "b"]
    assert result["is_control"].tolist() == [True, False, False]
    control = result.iloc[0]
    assert all(np.isnan(control[c]) for c in ("abs_lift", "rel_lift_low", "p_value", "chance_to_beat_control",
                                              "cuped_abs_lift_high", "cuped_p_value"))
    assert control["control_mean"] == control["mean"] == pytest.approx(0.125)
    assert result["units"].dtype == np.int64 and result["excluded_units"].dtype == np.int64
    assert result["first_exposure_date"].iloc[0] == T0.date() and result["metric"].iloc[0] == "converted"
    empty = empty_results()
    assert list(empty.columns) == list(RESULT_COLUMNS) and empty.empty
    assert analyze(_from_counts({"control": (1, 0)}).iloc[:0]).dtypes.equals(empty.dtypes)


def test_default_control_is_control_then_a_then_alphabetical():
    def control_of(arms: dict[str, tuple[int, int]], config: ExperimentConfig | None = None) -> str:
        result = analyze(_from_counts(arms), config)
        return result.loc[result["is_control"], "variation_id"].iloc[0]

    assert control_of({"treatment": (10, 1), "control": (10, 1)}) == "control"
    assert control_of({"b": (10, 1), "a": (10, 1)}) == "a"
    assert control_of({"y": (10, 1), "x": (10, 1)}) == "x"
    assert control_of({"y": (10, 1), "x": (10, 1)}, ExperimentConfig(control="y")) == "y"
    with pytest.raises(ValueError, match="not among its variations"):
        control_of({"y": (10, 1), "x": (10, 1)}, ExperimentConfig(control="control"))


def test_per_experiment_configs_and_bad_input():
    units = pd.concat([_from_counts({"control": (300, 30), "treatment": (300, 30)}, "one"),
                       _from_counts({"control": (300, 30), "treatment": (300, 30)}, "two")], ignore_index=True)
    units["orders"] = units["converted"] * 2
    result = analyze(units, {"two": ExperimentConfig(metric="orders")})
    assert result.groupby("experiment_id")["metric"].first().to_dict() == {"one": "converted", "two": "orders"}
    assert result.loc[result["experiment_id"] == "two", "conversions"].tolist() == [60.0, 60.0]
    with pytest.raises(ValueError, match="missing columns: unit_key"):
        analyze(units.drop(columns="unit_key"))
    with pytest.raises(ValueError, match="more than one row"):
        analyze(pd.concat([units, units.iloc[:1]], ignore_index=True))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        analyze(units.assign(converted=units["converted"] * 2))


def _units_for_default_config() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    return pd.DataFrame({
        "experiment_id": "unlisted", "unit_key": [f"u{i}" for i in range(2 * n)],
        "variation_id": ["control"] * n + ["treatment"] * n, "variations_seen": 1,
        "first_exposed_at": pd.Timestamp("2026-03-01"), "converted": rng.binomial(1, 0.1, 2 * n),
        "orders": 0, "revenue_usd": 0.0, "pre_converted": 0, "pre_orders": 0, "pre_revenue_usd": 0.0,
    })


def test_load_experiment_configs_merges_defaults_and_rejects_unknown_keys():
    configs = load_experiment_configs({
        "defaults": {"alpha": 0.01, "min_units": 500},
        "experiments": {
            "checkout_button": {"metric": "converted", "control": "control"},
            "aa_homepage": {"control": "a", "alpha": 0.05, "expected_shares": {"a": 1, "b": 1}},
            "plain": None,
        },
    })
    assert configs["checkout_button"] == ExperimentConfig(alpha=0.01, min_units=500, control="control")
    assert configs["aa_homepage"].alpha == 0.05 and configs["aa_homepage"].min_units == 500
    assert dict(configs["aa_homepage"].expected_shares) == {"a": 0.5, "b": 0.5}
    assert configs["plain"] == ExperimentConfig(alpha=0.01, min_units=500)
    # An experiment the file does not list is analysed with the file's defaults.
    assert configs.default == ExperimentConfig(alpha=0.01, min_units=500)
    units = _units_for_default_config()
    reasons = analyze(units, configs).decision_reason
    assert reasons.str.contains("below the 500 needed").all(), reasons.iloc[0]
    assert load_experiment_configs(None) == {}
    with pytest.raises(ValueError, match="alhpa"):
        load_experiment_configs({"experiments": {"x": {"alhpa": 0.1}}})
    with pytest.raises(ValueError, match="mde_pct"):
        load_experiment_configs({"defaults": {"mde_pct": 5}})
    with pytest.raises(ValueError, match="experiment"):
        load_experiment_configs({"experiment": {}})
    with pytest.raises(ValueError, match="x: metric"):
        load_experiment_configs({"experiments": {"x": {"metric": "clicks"}}})
