"""The ML loop: churn and LTV models trained point in time and tracked in MLflow, and the scores they write.

Training reads `customer_features`/`customer_labels` (built by dbt), trains a LightGBM candidate, evaluates it
next to its baselines and the current champion on the same evaluation cutoff, and promotes it only if it wins
(see `ml.train`). Scoring always uses the `champion` alias, so a candidate that lost is never served.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.tracking import TrackingStoreUnavailable
from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.defs.transform.assets import cxloop_dbt_models
from orchestration.lib.failpoints import FailpointError, failpoint
from orchestration.lib.models import (
    code_version,
    mlflow_store,
    read_scoring_rows,
    read_training_tables,
    store_exists,
    training_config,
    write_scores,
)
from orchestration.lib.settings import get_settings

FEATURES = get_asset_key_for_model([cxloop_dbt_models], "customer_features")
LABELS = get_asset_key_for_model([cxloop_dbt_models], "customer_labels")
ML_GROUP = "ml"


def _before_register() -> None:
    # The moment a crash matters most: the candidate's run is logged, no version registered or alias moved.
    if failpoint("ml.before_register"):
        raise FailpointError("failpoint ml.before_register")


def _store_failure(exc: TrackingStoreUnavailable, consequence: str = "") -> dg.Failure:
    """The step's error when MLflow does not answer: the store, what training was doing, what that left and
    what to do, in its first line (the chained error below it is for diagnosis)."""
    return dg.Failure(description=f"{exc}{' ' + consequence if consequence else ''}",
                      metadata={"tracking_uri": exc.tracking_uri, "while": exc.doing})


def _train(context: dg.AssetExecutionContext, kind: str) -> dg.MaterializeResult:
    from ml.dataset import DatasetError
    from ml.train import train

    settings = get_settings()
    features, labels = read_training_tables(settings)
    try:
        result = train(kind, features, labels, mlflow_store(settings), training_config(settings), tags={
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": context.asset_key.to_user_string(),
            "dagster.job": context.run.job_name,
            "cxloop.code_version": code_version(),
        }, before_register=_before_register)
    except DatasetError as exc:
        # Too little history is a state of the data, not a failure of the run: the marts still publish, the
        # scores stay empty until a model can be trained, and the reason shows here and in the run log.
        context.log.warning(f"{kind} model not trained: {exc}")
        return dg.MaterializeResult(metadata={"trained": False, "reason": dg.MetadataValue.text(str(exc))})
    except TrackingStoreUnavailable as exc:
        raise _store_failure(exc) from exc
    decision = result.decision
    log = context.log.info if decision.promoted else context.log.warning
    log(f"{result.model_name} v{result.model_version} -> {decision.alias}: {decision.reason}")
    headline = {k: dg.MetadataValue.float(round(v, 6)) for k, v in {**result.metrics, **result.ablation}.items()}
    return dg.MaterializeResult(metadata={
        "trained": True,
        "mlflow_run_id": result.run_id,
        "mlflow_run": dg.MetadataValue.url(
            f"{settings.mlflow_ui_url}/#/experiments/{result.experiment_id}/runs/{result.run_id}"),
        "model": f"{result.model_name} v{result.model_version}",
        "alias": decision.alias,
        "promoted": decision.promoted,
        "decision": dg.MetadataValue.text(decision.reason),
        **headline,
        **{f"baseline_{name}_{decision.metric}": dg.MetadataValue.float(round(v, 6))
           for name, v in decision.baselines.items()},
        **({f"champion_{decision.metric}": dg.MetadataValue.float(round(decision.champion, 6))}
           if decision.champion is not None else {}),
        "eval_cutoff": result.dataset["eval_cutoff"],
        "train_cutoffs": ", ".join(result.dataset["train_cutoffs"]),
        "train_rows": result.dataset["train_rows"],
        "eval_rows": result.dataset["eval_rows"],
        "horizon_days": result.dataset["horizon_days"],
        "data_digest": result.dataset["data_digest"],
    })


@dg.asset(group_name=ML_GROUP, pool=WAREHOUSE_POOL, deps=[FEATURES, LABELS], kinds={"lightgbm", "mlflow"})
def churn_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """LightGBM churn classifier (no completed order in the horizon), trained on the training cutoffs and
    evaluated on the latest complete one next to BG/NBD and RFM baselines and the current champion. Registered
    as `cxloop-churn`; alias `champion` only when it wins on ROC AUC by the promotion margin, else
    `challenger`. Metadata: MLflow run, metrics, the decision and its numbers; `trained: false` and the reason
    when the data spans too little history for a training and an evaluation horizon."""
    return _train(context, "churn")


@dg.asset(group_name=ML_GROUP, pool=WAREHOUSE_POOL, deps=[FEATURES, LABELS], kinds={"lightgbm", "mlflow"})
def ltv_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """LightGBM horizon revenue model (Tweedie: most customers spend nothing, a few spend a lot), judged on
    normalized Gini against BG/NBD + Gamma-Gamma, RFM and the champion; registered as `cxloop-ltv`."""
    return _train(context, "ltv")


@dg.asset(group_name=ML_GROUP, pool=WAREHOUSE_POOL, deps=[churn_model, ltv_model, FEATURES],
          kinds={"duckdb", "lightgbm"})
def customer_scores(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Churn probability, predicted horizon revenue and risk segment for every customer with a purchase, as of
    the day after the latest data, from the `champion` of each model (`marts.customer_scores`). Runs after
    every build. A model with no champion yet leaves its columns null; with none at all the table is empty
    and the metadata says why."""
    from ml.dataset import build_scoring
    from ml.score import NoChampionError, champions, empty_scores, missing, score

    settings = get_settings()
    rows = build_scoring(read_scoring_rows(settings))
    try:
        if not store_exists(settings):
            raise NoChampionError(f"no MLflow store at {settings.mlflow_dir} yet: no model has been trained")
        models = champions(mlflow_store(settings))
    except TrackingStoreUnavailable as exc:
        raise _store_failure(exc, "marts.customer_scores keeps its previous scores.") from exc
    except NoChampionError as exc:
        context.log.warning(f"customer_scores left empty: {exc}")
        write_scores(settings, empty_scores())
        return dg.MaterializeResult(metadata={"rows": 0, "reason": dg.MetadataValue.text(str(exc))})
    if missing(models):
        context.log.warning(f"no champion for {', '.join(missing(models))}: its score columns are null")
    scores = score(rows, models, settings.horizon_days)
    count = write_scores(settings, scores)
    return dg.MaterializeResult(metadata={
        "rows": count,
        "as_of_date": str(scores["as_of_date"].iloc[0]) if count else "",
        **{f"{kind}_model_version": champion.version for kind, champion in models.items()},
        "models_without_champion": ", ".join(missing(models)) or "none",
        **({"mean_churn_probability": dg.MetadataValue.float(round(float(scores["churn_probability"].mean()), 6)),
            "risk_segments": dg.MetadataValue.json(scores["risk_segment"].value_counts().to_dict())}
           if count and "churn" in models else {}),
        **({"predicted_revenue_usd": dg.MetadataValue.float(round(float(scores["predicted_ltv_usd"].sum()), 2))}
           if count and "ltv" in models else {}),
    })
