"""Train a churn or LTV candidate, judge it against its baselines and the champion, log it all to MLflow.

`train(kind, features, labels, ...)` is what the Dagster assets call; it works from a notebook as well,
with the two frames read from the warehouse or the serving snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ml import baselines, models, plots
from ml.config import CHALLENGER, CHAMPION, CHURN, MODEL_NAMES, PRIMARY_METRIC, TrainingConfig
from ml.dataset import Dataset, build
from ml.metrics import churn_metrics, ltv_metrics
from ml.tracking import (
    Store,
    end_stale_runs,
    load_booster,
    mark_abandoned_versions,
    store_errors,
    version_by_alias,
)

MODEL_ARTIFACT = "model"
# Feature groups (by column prefix) whose worth every run measures: the candidate refitted without them,
# scored on the same evaluation cutoff, and their share of the candidate's total gain importance.
ABLATION_GROUPS = {"voc": "voc_"}
BASELINE_RUN_NAMES = {"bgnbd": "baseline: BG/NBD + Gamma-Gamma", "rfm": "baseline: RFM score"}


@dataclass
class Decision:
    """Whether the candidate became champion, and the numbers that decided it."""

    promoted: bool
    alias: str
    metric: str
    candidate: float
    baselines: dict[str, float]
    champion: float | None
    champion_version: str | None
    margin: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingResult:
    kind: str
    model_name: str
    run_id: str
    experiment_id: str
    model_version: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]]
    champion_metrics: dict[str, float] | None
    decision: Decision
    dataset: dict[str, Any]
    fit: dict[str, Any] = field(default_factory=dict)
    ablation: dict[str, float] = field(default_factory=dict)

    @property
    def primary(self) -> float:
        return self.metrics[PRIMARY_METRIC[self.kind]]


def evaluate(kind: str, ds: Dataset, prediction: np.ndarray) -> dict[str, float]:
    """The metrics on every evaluation row, plus ranking among recent buyers (a purchase within one horizon
    before the cutoff): customers long gone are easy to call churned, and they make up a large share of the
    rows, so the headline AUC alone overstates how well active customers are told apart."""
    split = ds.evaluate
    if kind != CHURN:
        return ltv_metrics(split.revenue, prediction)
    metrics = churn_metrics(split.churned, prediction)
    recent = (split.X["recency_days"] <= ds.horizon_days).to_numpy()
    metrics["recent_buyer_share"] = float(recent.mean())
    y = split.churned[recent]
    if 0 < y.sum() < len(y):
        metrics["roc_auc_recent_buyers"] = churn_metrics(y, prediction[recent])["roc_auc"]
    return metrics


def baseline_predictions(kind: str, ds: Dataset) -> dict[str, np.ndarray]:
    """Each baseline's predictions for the evaluation rows. BG/NBD fits the purchase history before the
    evaluation cutoff (no labels); RFM learns its score-to-outcome table from the training rows."""
    bgnbd = baselines.BGNBDGammaGamma().fit(ds.evaluate.X)
    rfm = baselines.RFMScore().fit(ds.train.X, ds.train.churned, ds.train.revenue)
    if kind == CHURN:
        return {"bgnbd": bgnbd.churn_probability(ds.evaluate.X, ds.horizon_days),
                "rfm": rfm.churn_probability(ds.evaluate.X)}
    return {"bgnbd": bgnbd.expected_revenue(ds.evaluate.X, ds.horizon_days),
            "rfm": rfm.expected_revenue(ds.evaluate.X)}


def decide(kind: str, metrics: dict[str, float], baseline_metrics: dict[str, dict[str, float]],
           champion_metrics: dict[str, float] | None, champion_version: str | None, margin: float) -> Decision:
    """Champion only if the candidate beats every baseline and beats the champion, re-evaluated on the same
    evaluation rows, by at least `margin` on the primary metric."""
    metric = PRIMARY_METRIC[kind]
    value = metrics[metric]
    base = {name: m[metric] for name, m in baseline_metrics.items()}
    champ = None if champion_metrics is None else champion_metrics[metric]
    beaten_by = [name for name, v in base.items() if not value > v]
    if not np.isfinite(value):
        promoted, reason = False, f"candidate {metric} is not finite"
    elif beaten_by:
        promoted = False
        reason = (f"candidate {metric} {value:.4f} does not beat baseline "
                  + ", ".join(f"{n} ({base[n]:.4f})" for n in beaten_by))
    elif champ is None:
        promoted = True
        reason = (f"no champion yet; candidate {metric} {value:.4f} beats the baselines "
                  + ", ".join(f"{n} {v:.4f}" for n, v in base.items()))
    elif value >= champ + margin:
        promoted = True
        reason = (f"candidate {metric} {value:.4f} beats champion v{champion_version} {champ:.4f} "
                  f"by {value - champ:+.4f} (margin {margin})")
    else:
        promoted = False
        reason = (f"candidate {metric} {value:.4f} does not beat champion v{champion_version} {champ:.4f} "
                  f"by the margin {margin} ({value - champ:+.4f})")
    return Decision(promoted=promoted, alias=CHAMPION if promoted else CHALLENGER, metric=metric,
                    candidate=value, baselines=base, champion=champ, champion_version=champion_version,
                    margin=margin, reason=reason)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}.{k}": v for k, v in metrics.items() if np.isfinite(v)}


def _note(kind: str, result_lines: list[str]) -> str:
    return "\n".join([f"**{MODEL_NAMES[kind]}** training run", "", *result_lines])


@dataclass
class _Progress:
    """How far a training got: what the error says when the tracking store stops answering."""

    model_name: str
    doing: str = "reading the tracking store"
    version: str | None = None
    alias_moved: bool = False

    def outcome(self) -> str:
        retry = ("Rerun the training once the store answers; runs it left RUNNING are ended as FAILED by the next "
                 "training.")
        if self.alias_moved:
            return f"{self.model_name} v{self.version} was promoted; its tags may be incomplete."
        if self.doing.startswith("promoting"):
            return f"{self.model_name} v{self.version} was registered; its alias move is not confirmed. {retry}"
        if self.version is not None:
            return f"{self.model_name} v{self.version} was registered, never promoted. {retry}"
        return f"No model version was registered and no alias moved. {retry}"


def train(kind: str, features: pd.DataFrame, labels: pd.DataFrame, store: Store,
          config: TrainingConfig | None = None, tags: dict[str, str] | None = None,
          before_register: Callable[[], object] | None = None) -> TrainingResult:
    """Train, judge and log a candidate; register it; move `champion` or `challenger` to it.

    The order makes a failure at any point safe to retry. The candidate's run is logged in full (params,
    metrics, plots, the model, the baseline child runs) before anything is registered; the version is
    registered inside that run, so a failure there leaves the run FAILED, or RUNNING when the store is gone (the
    next training ends it as FAILED); an alias moves only once the run is FINISHED, read back from the store.
    `before_register` is called once, at the moment a crash would matter most: the run logged, nothing
    registered. A store that does not answer raises `TrackingStoreUnavailable`, saying how far training got.
    """
    config = config or TrainingConfig()
    ds = build(features, labels, expected_horizon_days=config.horizon_days)
    progress = _Progress(MODEL_NAMES[kind])
    with store_errors(store.tracking_uri, lambda: progress.doing, progress.outcome):
        return _train(kind, ds, store, config, tags or {}, before_register, progress)


def _train(kind: str, ds: Dataset, store: Store, config: TrainingConfig, tags: dict[str, str],
           before_register: Callable[[], object] | None, progress: _Progress) -> TrainingResult:
    import mlflow
    import mlflow.lightgbm
    from mlflow.entities import RunTag
    from mlflow.models import infer_signature

    model_name = MODEL_NAMES[kind]
    client = store.client()
    experiment_id = store.experiment_id(client, model_name)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    by = ", ".join(f"{k} {tags[k]}" for k in ("dagster.run_id",) if k in tags)
    end_stale_runs(client, experiment_id, (
        f"left RUNNING by a training that stopped before ending it (process killed or tracking store "
        f"unavailable); ended as FAILED by the training started {started}" + (f" ({by})" if by else "")))
    mark_abandoned_versions(client, model_name)

    booster, fit_info = models.fit(kind, ds.train, config)
    prediction = models.predict(booster, ds.evaluate.X)
    metrics = evaluate(kind, ds, prediction)
    base_pred = baseline_predictions(kind, ds)
    base_metrics = {name: evaluate(kind, ds, p) for name, p in base_pred.items()}

    progress.doing = "loading the champion"
    champion = version_by_alias(client, model_name, CHAMPION)
    champion_metrics, champion_pred = None, None
    if champion is not None:
        champion_pred = models.predict(load_booster(model_name, champion.version), ds.evaluate.X)
        champion_metrics = evaluate(kind, ds, champion_pred)
    decision = decide(kind, metrics, base_metrics, champion_metrics,
                      None if champion is None else str(champion.version), config.promotion_margin)
    ablation = ablation_metrics(kind, ds, config, booster, metrics)

    progress.doing = "logging the candidate run"
    description = ds.describe()
    run_tags = {"cxloop.kind": kind, "cxloop.eval_cutoff": ds.eval_cutoff, **tags}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"lightgbm {kind}", tags=run_tags) as run:
        run_id = run.info.run_id
        mlflow.log_params({**{f"lgbm.{k}": v for k, v in config.lgbm_params(kind).items()},
                           "best_iteration": fit_info.best_iteration,
                           "early_stopping_cutoff": fit_info.early_stopping_cutoff,
                           "promotion_margin": config.promotion_margin,
                           **{k: (",".join(v) if isinstance(v, list) else v)
                              for k, v in description.items() if k != "features"},
                           "n_features": len(ds.feature_names)})
        mlflow.log_dict(description, "dataset.json")
        mlflow.log_input(mlflow.data.from_pandas(ds.train.X, name=f"customer_features train <{ds.eval_cutoff}",
                                                 digest=description["data_digest"][:32]), context="training")
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_metrics({k: v for k, v in ablation.items() if np.isfinite(v)})
        for name, m in base_metrics.items():
            mlflow.log_metrics(_prefixed(name, m))
        if champion_metrics is not None:
            mlflow.log_metrics(_prefixed("champion", champion_metrics))
        _log_plots(kind, booster, ds, prediction, base_pred, config.seed)

        sample = ds.train.X.median(numeric_only=True).to_frame().T.astype("float64")
        mlflow.lightgbm.log_model(
            booster, name=MODEL_ARTIFACT,
            signature=infer_signature(ds.evaluate.X.head(100), prediction[:100]),
            # A row of training medians: shows the input schema without any customer's values.
            input_example=sample,
            pip_requirements=[f"lightgbm=={_version('lightgbm')}", f"mlflow=={_version('mlflow')}"],
        )
        for name, m in base_metrics.items():
            with mlflow.start_run(experiment_id=experiment_id, run_name=BASELINE_RUN_NAMES[name], nested=True,
                                  tags={**run_tags, "cxloop.baseline": name}):
                mlflow.log_params({"baseline": name, "eval_cutoff": ds.eval_cutoff,
                                   "horizon_days": ds.horizon_days, "eval_rows": len(ds.evaluate)})
                mlflow.log_metrics({k: v for k, v in m.items() if np.isfinite(v)})

        if before_register is not None:
            before_register()
        progress.doing = f"registering {model_name}"
        version = str(mlflow.register_model(f"runs:/{run_id}/{MODEL_ARTIFACT}", model_name).version)
        progress.version = version
        mlflow.set_tags({"cxloop.model_version": version, "mlflow.runName": f"lightgbm {kind} v{version}"})

    progress.doing = f"promoting {model_name} v{version} to {decision.alias}"
    promote(client, model_name, version, run_id, decision)
    progress.alias_moved = True
    progress.doing = "recording the decision"
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in {
        # Named after what it became, so the runs table reads as the registry's history.
        "mlflow.runName": f"lightgbm {kind} v{version} ({decision.alias})",
        "cxloop.decision": decision.alias,
        "mlflow.note.content": _note(kind, [
            f"- registered as **{model_name} v{version}**, alias **{decision.alias}**",
            f"- decision: {decision.reason}",
            f"- evaluated on cutoff {ds.eval_cutoff} ({len(ds.evaluate)} customers, "
            f"horizon {ds.horizon_days} days); trained on cutoffs "
            f"{', '.join(ds.train_cutoffs)} ({len(ds.train)} rows)",
            f"- data digest {description['data_digest'][:16]}",
            *(f"- without the {group} features: {PRIMARY_METRIC[kind]} "
              f"{ablation[f'without_{group}.{PRIMARY_METRIC[kind]}']:.4f} "
              f"(gain {ablation[f'{group}_{PRIMARY_METRIC[kind]}_gain']:+.4f}, "
              f"{ablation[f'{group}_importance_share']:.1%} of gain importance)"
              for group in ABLATION_GROUPS if f"{group}_importance_share" in ablation),
        ]),
    }.items()])
    client.log_dict(run_id, decision.to_dict(), "promotion_decision.json")

    return TrainingResult(kind=kind, model_name=model_name, run_id=run_id, experiment_id=experiment_id,
                          model_version=version, metrics=metrics, baseline_metrics=base_metrics,
                          champion_metrics=champion_metrics, decision=decision, dataset=description,
                          fit=asdict(fit_info), ablation=ablation)


def ablation_metrics(kind: str, ds: Dataset, config: TrainingConfig, booster,
                     metrics: dict[str, float]) -> dict[str, float]:
    """For each feature group present: the metrics of the same model fitted without it
    (`without_<group>.<metric>`), the primary metric's gain from having it (`<group>_<metric>_gain`) and its
    share of the candidate's gain importance (`<group>_importance_share`)."""
    primary = PRIMARY_METRIC[kind]
    importance = dict(zip(booster.feature_name(), map(float, booster.feature_importance("gain"))))
    total = sum(importance.values()) or 1.0
    out: dict[str, float] = {}
    for group, prefix in ABLATION_GROUPS.items():
        dropped = [c for c in ds.feature_names if c.startswith(prefix)]
        if not dropped:
            continue
        keep = [c for c in ds.feature_names if c not in dropped]
        reduced, _ = models.fit(kind, replace(ds.train, X=ds.train.X[keep]), config)
        without = evaluate(kind, ds, models.predict(reduced, ds.evaluate.X[keep]))
        out.update(_prefixed(f"without_{group}", without))
        out[f"{group}_{primary}_gain"] = metrics[primary] - without[primary]
        out[f"{group}_importance_share"] = sum(importance.get(c, 0.0) for c in dropped) / total
    return out


class PromotionError(RuntimeError):
    """A version whose run did not finish cannot take an alias."""


def promote(client, model_name: str, version: str, run_id: str, decision: Decision) -> None:
    """Move the decided alias to `version`, then record the decision on it. Only a version whose run is
    FINISHED, as the store says now, is considered: a run that failed or never ended may lack part of what the
    decision rests on."""
    status = client.get_run(run_id).info.status
    if status != "FINISHED":
        raise PromotionError(f"{model_name} v{version}: its run {run_id} is {status}, not FINISHED; not promoted")
    _apply_decision(client, model_name, version, decision)


def _apply_decision(client, model_name: str, version: str, decision: Decision) -> None:
    # The alias first: it is the promotion, one call; a version with neither alias nor decision tag was never
    # judged, and the next training tags it abandoned.
    client.set_registered_model_alias(model_name, decision.alias, version)
    client.set_model_version_tag(model_name, version, "decision", decision.alias)
    client.set_model_version_tag(model_name, version, "decision_reason", decision.reason)
    client.set_model_version_tag(model_name, version, decision.metric, f"{decision.candidate:.6f}")
    client.update_model_version(model_name, version, description=decision.reason)
    if decision.promoted:
        client.update_registered_model(model_name, description=(
            f"Serving: v{version} (alias champion). {decision.reason}"))


def _log_plots(kind: str, booster, ds: Dataset, prediction: np.ndarray, base_pred: dict[str, np.ndarray],
               seed: int) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    curves = {"lightgbm": prediction, **{BASELINE_RUN_NAMES[k].removeprefix("baseline: "): v
                                        for k, v in base_pred.items()}}
    figures = {"feature_importance.png": plots.feature_importance(booster)}
    sample = ds.evaluate.X.sample(n=min(len(ds.evaluate), 2000), random_state=seed)
    figures["shap_summary.png"] = plots.shap_summary(models.shap_values(booster, sample), sample, seed)
    if kind == CHURN:
        figures["calibration.png"] = plots.calibration(ds.evaluate.churned, curves)
        figures["lift_gains.png"] = plots.gains(ds.evaluate.churned, curves, "churners")
    else:
        figures["lift_gains.png"] = plots.gains(ds.evaluate.revenue, curves, "horizon revenue")
        figures["decile_revenue.png"] = plots.decile_revenue(ds.evaluate.revenue, curves)
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"plots/{name}")
        plt.close(fig)
    mlflow.log_text(json.dumps(dict(zip(booster.feature_name(),
                                        map(float, booster.feature_importance("gain")))), indent=2),
                    "feature_importance.json")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
