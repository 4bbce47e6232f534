"""The voice of the customer: every ticket, review and NPS comment masked, then scored for language,
sentiment, intent and topic.

The models live in `ml/voc.py` (plain Python); this asset reads the latest delivered version of every text from
the raw layer, so the dbt build that follows can turn the scores into `voc_texts`, topic series and customer
features in the same invocation as everything else. Scores are rebuilt whole on every run: the texts are few
next to events, and one model scoring everything keeps yesterday's and today's texts comparable.
"""

import dagster as dg

from ml.tracking import TrackingStoreUnavailable
from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.lib.models import code_version, mlflow_store
from orchestration.lib.settings import get_settings
from orchestration.lib.warehouse import connect, replace_table, table_exists

VOC_GROUP = "voc"
TEXT_SCORES = dg.AssetKey(["voc", "text_scores"])
TOPICS = dg.AssetKey(["voc", "topics"])
TEXT_SOURCES = ("tickets", "reviews", "surveys")

SCORE_COLUMNS = {
    "source": "varchar", "text_id": "varchar", "customer_key": "varchar", "created_at": "timestamp",
    "resolved_at": "timestamp", "language": "varchar", "text": "varchar", "sentiment_score": "double",
    "sentiment_label": "varchar", "intent": "varchar", "intent_source": "varchar", "intent_confidence": "double",
    "needs_review": "boolean", "topic_id": "integer", "topic_weight": "double",
}
TOPIC_COLUMNS = {"topic_id": "integer", "label": "varchar", "terms": "varchar", "texts": "bigint"}

# The latest delivered version of each text, ordered as the staging models order versions.
_LATEST = "row_number() over (partition by {key} order by _delivery_date desc, _loaded_at desc, _file desc, _line desc)"
TEXT_QUERIES = {
    "tickets": f"""
        select 'ticket' as source, ticket_id as text_id, customer_key, cast(created_at as timestamp) as created_at,
               cast(resolved_at as timestamp) as resolved_at,
               concat_ws('\n', nullif(subject, ''), nullif(body, '')) as text,
               cast(null as integer) as rating, cast(null as integer) as nps_score, nullif(trim(category), '') as category
        from raw.tickets where ticket_id is not null
        qualify {_LATEST.format(key='ticket_id')} = 1""",
    "reviews": f"""
        select 'review' as source, review_id as text_id, customer_key, cast(created_at as timestamp) as created_at,
               cast(null as timestamp) as resolved_at, concat_ws('\n', nullif(title, ''), nullif(body, '')) as text,
               cast(rating as integer) as rating, cast(null as integer) as nps_score, cast(null as varchar) as category
        from raw.reviews where review_id is not null
        qualify {_LATEST.format(key='review_id')} = 1""",
    "surveys": f"""
        select 'survey' as source, response_id as text_id, customer_key, cast(submitted_at as timestamp) as created_at,
               cast(null as timestamp) as resolved_at, comment as text, cast(null as integer) as rating,
               cast(score as integer) as nps_score, cast(null as varchar) as category
        from raw.surveys where response_id is not null
        qualify {_LATEST.format(key='response_id')} = 1""",
}


def read_texts(con):
    """Every text of the latest delivered versions, in `ml.voc.analyse`'s input shape; empty comments (most
    survey answers) are not texts."""
    import pandas as pd

    parts = [f"select * from ({TEXT_QUERIES[s]})" for s in TEXT_SOURCES if table_exists(con, "raw", s)]
    if not parts:
        return pd.DataFrame(columns=["source", "text_id", "customer_key", "created_at", "resolved_at", "text",
                                     "rating", "nps_score", "category"])
    query = " union all ".join(parts)
    return con.execute(f"select * from ({query}) where trim(coalesce(text, '')) <> '' "
                       "order by created_at, source, text_id").df()


def _accuracy_table(metrics: dict[str, float]) -> str:
    rows = [("sentiment (reviews, held out)", "sentiment_accuracy", "vader_accuracy", "majority_accuracy"),
            ("sentiment (NPS comments)", "sentiment_accuracy_survey", "vader_accuracy_survey", None),
            ("intent (tickets, held out)", "intent_accuracy", None, "intent_majority_accuracy")]
    lines = ["| task | model | VADER | majority |", "|---|---|---|---|"]
    for name, model, vader, majority in rows:
        cells = [f"{metrics[k]:.3f}" if k and k in metrics else "" for k in (model, vader, majority)]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(TEXT_SCORES, group_name=VOC_GROUP, kinds={"duckdb", "scikitlearn", "mlflow"},
                     deps=[dg.AssetKey(["raw", s]) for s in TEXT_SOURCES],
                     description="One row per ticket, review and NPS comment (latest version): the text masked "
                                 "(emails, phones, card-like numbers), its language, sentiment score and label, "
                                 "ticket intent with confidence or a review flag, and topic (`voc.text_scores`)."),
        dg.AssetSpec(TOPICS, group_name=VOC_GROUP, kinds={"duckdb", "scikitlearn"},
                     description="The topics of the current topic model: id, readable label (top three terms), "
                                 "top terms and size (`voc.topics`)."),
    ],
    pool=WAREHOUSE_POOL,
)
def voc_text_scores(context: dg.AssetExecutionContext):
    """Masks and scores every text, writes both tables in the warehouse and logs the run (held-out accuracy next
    to the VADER and majority baselines, confusion matrices, topics, the models as JSON) to the MLflow experiment
    `cxloop-voc`. A tracking store that does not answer costs the MLflow run, not the scores."""
    from ml.voc import analyse, log_run

    settings = get_settings()
    with connect(settings, read_only=True) as con:
        texts = read_texts(con)
    result = analyse(texts)
    scored = result.scored.copy()
    for column in ("customer_key", "created_at", "resolved_at"):
        scored[column] = texts[column].to_numpy()
    scored = scored.rename(columns={"text_masked": "text"})
    count = replace_table(settings, "voc", "text_scores", scored[list(SCORE_COLUMNS)], SCORE_COLUMNS)
    topics = replace_table(settings, "voc", "topics", result.topics[list(TOPIC_COLUMNS)], TOPIC_COLUMNS)

    run_id, run_note = "", "not logged: no texts"
    if count:
        try:
            store = mlflow_store(settings)
            run_id = log_run(result, store, tags={
                "dagster.run_id": context.run.run_id,
                "dagster.asset_key": TEXT_SCORES.to_user_string(),
                "dagster.job": context.run.job_name,
                "cxloop.code_version": code_version(),
            })
            run_note = run_id
        except TrackingStoreUnavailable as exc:
            context.log.warning(f"text scores written; the MLflow run was not logged: {exc}")
            run_note = f"not logged: {exc}"
    metrics = result.metrics
    by_source = scored["source"].value_counts().to_dict() if count else {}
    metadata = {
        "texts": count,
        "by_source": dg.MetadataValue.json({k: int(v) for k, v in by_source.items()}),
        "languages": dg.MetadataValue.json(
            {k: int(v) for k, v in scored["language"].value_counts().to_dict().items()} if count else {}),
        "negative_share": dg.MetadataValue.float(
            round(float((scored["sentiment_label"] == "negative").mean()), 4) if count else 0.0),
        "tickets_for_review": int(scored["needs_review"].fillna(False).sum()) if count else 0,
        "topics": dg.MetadataValue.md("\n".join(f"- {r.topic_id}: {r.label} ({r.texts})"
                                                for r in result.topics.itertuples()) or "none"),
        "accuracy": dg.MetadataValue.md(_accuracy_table(metrics)),
        "texts_per_second": dg.MetadataValue.float(round(float(metrics.get("texts_per_second", 0.0)), 1)),
        "mlflow_run_id": run_note,
    }
    if run_id:
        import mlflow

        experiment_id = mlflow.get_run(run_id).info.experiment_id
        metadata["mlflow_run"] = dg.MetadataValue.url(
            f"{settings.mlflow_ui_url}/#/experiments/{experiment_id}/runs/{run_id}")
    yield dg.MaterializeResult(asset_key=TEXT_SCORES, metadata=metadata)
    yield dg.MaterializeResult(asset_key=TOPICS, metadata={"topics": topics})
