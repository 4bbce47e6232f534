"""The ML loop on a simulated shop: point in time, promoted only when better, scored with the champion,
tracked in MLflow without customer data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.config import CHALLENGER, CHAMPION, MODEL_NAMES, TrainingConfig
from ml.tracking import Store, load_booster, version_by_alias
from orchestration.lib.models import mlflow_store
from tests import pii_scan
from tests.e2e.test_platform import landed_card_numbers, landed_pii

pytestmark = pytest.mark.e2e


def materialization(result, key: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    assert len(events) == 1, key
    return {k: getattr(v, "value", v) for k, v in events[0].materialization.metadata.items()}


def warehouse(settings, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def client(trained):
    return mlflow_store(trained.settings).client()


def test_first_run_promotes_both_models_and_fills_the_scores(trained, client):
    for key, kind in (("churn_model", "churn"), ("ltv_model", "ltv")):
        meta = materialization(trained.first, key)
        assert meta["trained"] is True and meta["promoted"] is True and meta["alias"] == CHAMPION, meta
        champion = version_by_alias(client, MODEL_NAMES[kind], CHAMPION)
        assert champion is not None and meta["model"] == f"{MODEL_NAMES[kind]} v{champion.version}"
        run = client.get_run(meta["mlflow_run_id"])
        assert run.data.tags["cxloop.decision"] == CHAMPION
    scores = warehouse(trained.settings, "select * from marts.customer_scores")
    scoring_rows = warehouse(trained.settings,
                             "select count(*) as n from features.customer_features where cutoff_role = 'score'")
    assert len(scores) == scoring_rows.n[0] > 100
    assert scores.customer_key.is_unique
    assert scores.churn_probability.between(0, 1).all() and (scores.predicted_ltv_usd >= 0).all()
    assert set(scores.risk_segment) <= {"high", "medium", "low"}


def test_a_second_run_on_the_same_data_promotes_nothing(trained, client):
    for key, kind in (("churn_model", "churn"), ("ltv_model", "ltv")):
        first, second = materialization(trained.first, key), materialization(trained.second, key)
        assert second["promoted"] is False and second["alias"] == CHALLENGER, second
        assert second["data_digest"] == first["data_digest"]
        assert "does not beat champion" in second["decision"]
        champion = version_by_alias(client, MODEL_NAMES[kind], CHAMPION)
        assert first["model"].endswith(f" v{champion.version}")
        assert version_by_alias(client, MODEL_NAMES[kind], CHALLENGER).version != champion.version


def test_scores_come_from_the_champion(trained, client):
    scores = warehouse(trained.settings, "select * from marts.customer_scores order by customer_key")
    rows = warehouse(trained.settings, "select * from features.customer_features where cutoff_role = 'score' "
                                       "order by customer_key")
    for kind, column in (("churn", "churn_probability"), ("ltv", "predicted_ltv_usd")):
        champion = version_by_alias(client, MODEL_NAMES[kind], CHAMPION)
        assert set(scores[f"{kind}_model_version"]) == {str(champion.version)}
        booster = load_booster(MODEL_NAMES[kind], champion.version)
        expected = booster.predict(rows[booster.feature_name()].astype("float64"))
        np.testing.assert_allclose(scores[column], np.maximum(expected, 0) if kind == "ltv" else expected,
                                   rtol=1e-9)


def test_training_runs_say_what_won_on_what_data_and_why(trained, client):
    meta = materialization(trained.first, "churn_model")
    run = client.get_run(meta["mlflow_run_id"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert int(params["train_rows"]) > 0 and int(params["eval_rows"]) > 0
    assert params["horizon_days"] == "30" and len(params["data_digest"]) == 64
    assert params["eval_cutoff"] == meta["eval_cutoff"]
    for metric in ("roc_auc", "pr_auc", "log_loss", "brier", "top_decile_lift", "calibration_error"):
        assert metric in metrics and f"bgnbd.{metric}" in metrics and f"rfm.{metric}" in metrics, metric
    assert tags["dagster.run_id"] == trained.first.run_id
    assert tags["dagster.asset_key"] == "churn_model"
    assert tags["cxloop.code_version"]
    assert "champion" in tags["mlflow.note.content"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"dataset.json", "promotion_decision.json", "plots"} <= artifacts
    assert {"plots/feature_importance.png", "plots/shap_summary.png", "plots/calibration.png",
            "plots/lift_gains.png"} <= plots
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert {c.data.tags["cxloop.baseline"] for c in children} == {"bgnbd", "rfm"}
    version = version_by_alias(client, "cxloop-churn", CHAMPION)
    assert version.run_id == run.info.run_id and version.tags["decision"] == CHAMPION
    model_info = json.loads(Path(client.download_artifacts(run.info.run_id, "dataset.json")).read_text())
    assert model_info["eval_cutoff"] == meta["eval_cutoff"]


def test_churn_run_shows_what_the_text_features_add(trained, client):
    features = warehouse(trained.settings, "select * from features.customer_features")
    voc = ["voc_texts_90d", "voc_negative_share", "voc_last_sentiment", "voc_open_complaint_topics"]
    assert set(voc) <= set(features.columns)
    assert features["voc_texts_90d"].gt(0).any() and features["voc_negative_share"].notna().any()
    assert features["voc_negative_share"].dropna().between(0, 1).all()
    meta = materialization(trained.first, "churn_model")
    run = client.get_run(meta["mlflow_run_id"])
    metrics = run.data.metrics
    assert 0.5 < metrics["without_voc.roc_auc"] <= 1
    assert metrics["voc_roc_auc_gain"] == pytest.approx(metrics["roc_auc"] - metrics["without_voc.roc_auc"])
    assert 0 < metrics["voc_importance_share"] < 1
    assert "without the voc features" in run.data.tags["mlflow.note.content"]
    importance = json.loads(Path(client.download_artifacts(run.info.run_id, "feature_importance.json")).read_text())
    assert set(voc) <= set(importance)


def test_text_models_are_tracked_with_held_out_accuracy_next_to_the_baselines(trained, client):
    meta = materialization(trained.first, "voc/text_scores")
    run = client.get_run(meta["mlflow_run_id"])
    metrics, params = run.data.metrics, run.data.params
    assert metrics["sentiment_holdout_rows"] >= 20 and metrics["intent_holdout_rows"] >= 20
    for metric in ("sentiment_accuracy", "vader_accuracy", "majority_accuracy", "intent_accuracy",
                   "intent_majority_accuracy", "intent_coverage"):
        assert 0 <= metrics[metric] <= 1, metric
    assert metrics["sentiment_accuracy"] > metrics["majority_accuracy"]
    assert metrics["intent_accuracy"] > metrics["intent_majority_accuracy"]
    assert params and run.data.tags["dagster.run_id"] == trained.first.run_id
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"voc_models.json", "topics.json"} <= artifacts
    texts = warehouse(trained.settings, "select language, source from marts.voc_texts")
    assert {"ticket", "review", "survey"} == set(texts["source"]) and {"en", "ko"} <= set(texts["language"])


def test_a_worse_candidate_stays_challenger(trained, tmp_path):
    """Shuffled training labels make a candidate that has learned nothing: it is logged and registered, never
    promoted. The evaluation labels stay true, so the champion is judged as before."""
    from ml.train import train

    store_dir = tmp_path / "mlflow"
    shutil.copytree(trained.settings.mlflow_dir, store_dir)
    store = Store(tracking_uri=f"sqlite:///{store_dir / 'mlflow.db'}", artifact_root=(store_dir / "artifacts").as_uri())
    client = store.client()
    champion_before = version_by_alias(client, "cxloop-churn", CHAMPION).version
    features = warehouse(trained.settings, "select * from features.customer_features")
    # Ordered, so the shuffle below is the same permutation in every installation.
    labels = warehouse(trained.settings, "select * from features.customer_labels order by customer_key, cutoff_date")
    rng = np.random.default_rng(0)
    train_rows = labels["cutoff_role"] == "train"
    labels.loc[train_rows, "churned"] = rng.permutation(labels.loc[train_rows, "churned"].to_numpy())
    result = train("churn", features, labels, store, TrainingConfig(horizon_days=30))
    assert result.decision.promoted is False and result.decision.alias == CHALLENGER
    # What keeps it out is the gate: it does not beat the champion re-evaluated on the same rows (a model of
    # noise can still edge past a weak baseline on a small shop, so the baselines alone would not do).
    assert result.metrics["roc_auc"] < result.decision.champion + TrainingConfig().promotion_margin
    assert version_by_alias(client, "cxloop-churn", CHAMPION).version == champion_before
    assert str(version_by_alias(client, "cxloop-churn", CHALLENGER).version) == result.model_version
    assert client.get_run(result.run_id).data.tags["cxloop.decision"] == CHALLENGER


def test_no_pii_and_no_customer_rows_in_the_mlflow_store(trained):
    pii = landed_pii(trained.settings.landing_dir) | landed_card_numbers(trained.settings.landing_dir)
    keys = set(warehouse(trained.settings, "select customer_key from marts.customer_scores").customer_key)
    assert len(pii) > 50 and len(keys) > 100 and landed_card_numbers(trained.settings.landing_dir)
    needles = [v.encode() for v in pii | keys]
    files = [p for p in trained.settings.mlflow_dir.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in files) and any(p.suffix == ".png" for p in files)
    for path in files:
        data = path.read_bytes()
        found = [n.decode() for n in needles if n in data]
        assert not found, f"{path} contains {found[:3]}"
    # And nowhere else a trained installation writes (warehouse, snapshot, Dagster, dbt files, report, alerts).
    assert pii_scan.scan(trained.settings, pii) == []


def test_features_as_of_a_cutoff_ignore_everything_after_it(trained, tmp_path):
    """Change, delete and add data after the evaluation cutoff (keeping the latest day, so the cutoffs stay
    where they are), rebuild the features with dbt: every row as of that cutoff or earlier is identical, and
    the scoring rows, which may see the change, do change."""
    settings = trained.settings
    copy = tmp_path / "cxloop.duckdb"
    shutil.copy(settings.warehouse, copy)
    con = duckdb.connect(str(copy))
    cutoff = con.execute("select cutoff_date from intermediate.int_feature_cutoffs "
                         "where cutoff_role = 'evaluate'").fetchone()[0]
    last = con.execute("select max(cast(ordered_at as date)) from raw.orders").fetchone()[0]
    before = con.execute("select * from features.customer_features where cutoff_date <= ?", [cutoff]).df()
    scoring_before = con.execute("select * from features.customer_features where cutoff_role = 'score'").df()
    after = "cast({col} as date) >= $cutoff and cast({col} as date) < $last"
    params = {"cutoff": cutoff, "last": last}
    # Events are dated by their corrected event time, which only the staging table knows.
    con.execute(f"delete from raw.events where message_id in (select message_id from staging.stg_segment__events "
                f"where {after.format(col='event_at')})", params)
    for table, col in (("payments", "attempted_at"), ("surveys", "submitted_at"), ("reviews", "created_at"),
                       ("tickets", "created_at")):
        con.execute(f"delete from raw.{table} where {after.format(col=col)}", params)
    con.execute(f"update raw.orders set total_amount = total_amount * 3 where {after.format(col='ordered_at')}",
                params)
    # A refund and ticket resolutions that happen after the cutoff, on orders and tickets from before it that
    # were neither refunded nor resolved by then.
    con.execute("""
        insert into raw.orders
        select raw.order_id, raw.customer_key, raw.ordered_at, 'refunded', raw.currency, raw.total_amount,
               raw.discount_amount, raw.items, raw.channel, cast($cutoff as timestamp) + interval 2 day, raw._file,
               raw._line, raw._delivery_date, raw._loaded_at, raw._load_id
        from raw.orders as raw
        inner join staging.stg_shop__orders as latest
            on raw.order_id = latest.order_id and raw.updated_at = latest.updated_at
        where latest.order_date < $cutoff and latest.status = 'completed'
    """, {"cutoff": cutoff})
    changed = con.execute("update raw.tickets set resolved_at = cast($cutoff as timestamp) + interval 1 day, csat = 1 "
                          "where cast(created_at as date) < $cutoff "
                          "and (resolved_at is null or cast(resolved_at as date) >= $cutoff)",
                          {"cutoff": cutoff}).fetchone()[0]
    assert changed > 0
    con.close()

    env = {**settings.environ(), "CXLOOP_WAREHOUSE": str(copy), "PATH": str(Path(sys.executable).parent)}
    vars_ = json.dumps(settings.model_vars())
    proc = subprocess.run([str(Path(sys.executable).with_name("dbt")), "run", "--select", "+customer_features",
                           "--vars", vars_, "--project-dir", str(settings.dbt_project_dir),
                           "--profiles-dir", str(settings.dbt_project_dir), "--target-path", str(tmp_path / "target")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]

    con = duckdb.connect(str(copy), read_only=True)
    rebuilt = con.execute("select * from features.customer_features where cutoff_date <= ?", [cutoff]).df()
    scoring_after = con.execute("select * from features.customer_features where cutoff_role = 'score'").df()
    con.close()
    order = ["cutoff_date", "customer_key"]
    assert len(before) > 500
    pd.testing.assert_frame_equal(before.sort_values(order).reset_index(drop=True),
                                  rebuilt.sort_values(order).reset_index(drop=True))
    assert not scoring_before.sort_values(order).reset_index(drop=True).equals(
        scoring_after.sort_values(order).reset_index(drop=True))
