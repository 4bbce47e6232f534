"""The text layer on a real warehouse: raw texts holding PII and two languages go in, masked scores come out,
the check passes, the MLflow run holds aggregates only, and a re-run gives the same rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from orchestration.lib.warehouse import connect
from tests import pii_scan
from tests.conftest import use_installation

PII = {"email": "hyejin.parkvoc@example.org", "phone": "+44 7700 900461", "card": "4111 1111 1111 1111",
       "card_dashed": "5555-5555-5555-4444"}
KOREAN_TICKET = "배송이 너무 늦어요. 주문한 지 열흘이 지났는데 아직도 받지 못했습니다."
REDELIVERED = "Edited: the seams came apart after one wash."
ENGLISH_TICKET = "My parcel is late again and nobody answers. Really frustrating."

POSITIVE = ("Love it, great quality and fast delivery.", "Excellent fit, would buy again.",
            "Really nice, arrived on time.", "Perfect colour and soft fabric.")
NEGATIVE = ("Fell apart after a week, very disappointed.", "Arrived damaged and late, poor quality.",
            "Not what the photos showed, returned it.", "Terrible stitching, would not buy again.")
NEUTRAL = ("It's okay, nothing special.", "Average, does the job.", "Fine but shipping was slow.")
CATEGORIES = {"delivery": "Where is my parcel, tracking has not moved for days.",
              "refund": "I want to return the jacket and get my money back.",
              "payment": "My card was declined at checkout twice.",
              "account": "I cannot log in, the reset link does not work."}


def raw_tables(start: datetime) -> dict[str, pd.DataFrame]:
    """Raw rows as another loader might have written them: unmasked contact details in the free text."""
    meta = {"_file": "voc/2026-01-01/part.csv", "_delivery_date": start.date(), "_loaded_at": start}
    reviews, tickets, surveys = [], [], []
    for i in range(90):
        rating, pool = [(5, POSITIVE), (1, NEGATIVE), (3, NEUTRAL)][i % 3]
        reviews.append({"review_id": f"R{i:04d}", "customer_key": f"k{i % 17}", "product_id": "P1",
                        "created_at": start + timedelta(hours=6 * i), "rating": rating,
                        "title": pool[i % len(pool)].split(",")[0], "body": pool[i % len(pool)], "_line": i + 2})
    reviews[5]["body"] += f" Write to me at {PII['email']}."
    for i in range(48):
        category = list(CATEGORIES)[i % 4]
        tickets.append({"ticket_id": f"T{i:04d}", "customer_key": f"k{i % 17}", "created_at": start + timedelta(hours=11 * i),
                        "resolved_at": None, "channel": "email", "category": category if i % 3 else "",
                        "subject": category.capitalize(), "body": CATEGORIES[category], "status": "open",
                        "csat": None, "_line": i + 2})
    tickets[0].update(body=ENGLISH_TICKET + f" Call me on {PII['phone']}.", category="delivery")
    tickets[1].update(subject="배송 지연", body=KOREAN_TICKET, category="")
    tickets[2].update(body=f"You charged my card {PII['card']} twice and {PII['card_dashed']} once.", category="")
    for i in range(30):
        surveys.append({"response_id": f"S{i:04d}", "customer_key": f"k{i % 17}",
                        "submitted_at": start + timedelta(hours=13 * i), "touchpoint": "post_delivery",
                        "score": [10, 2, 8][i % 3], "comment": ["Great service!", "Delivery took far too long.", ""][i % 3],
                        "_line": i + 2})
    tables = {name: pd.DataFrame(rows).assign(**meta)
              for name, rows in (("reviews", reviews), ("tickets", tickets), ("surveys", surveys))}
    # R0003 delivered again a day later with its text edited: only the latest version is a text.
    again = tables["reviews"].iloc[[3]].assign(body=REDELIVERED, _file="voc/2026-01-02/part.csv",
                                               _delivery_date=(start + timedelta(days=1)).date(),
                                               _loaded_at=start + timedelta(days=1))
    tables["reviews"] = pd.concat([tables["reviews"], again], ignore_index=True)
    return tables


def load_raw(settings, tables: dict[str, pd.DataFrame]) -> None:
    with connect(settings) as con:
        con.execute("create schema if not exists raw")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"create or replace table raw.{name} as select * from frame")
            con.unregister("frame")


def materialize_voc(settings) -> dg.ExecuteInProcessResult:
    from orchestration.defs.voc.assets import voc_text_scores
    from orchestration.defs.voc.checks import text_scores_meet_expectations

    return dg.materialize([voc_text_scores, text_scores_meet_expectations], raise_on_error=True)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """One installation for the module: raw texts loaded, the text layer materialized once."""
    with pytest.MonkeyPatch.context() as mp:
        settings = use_installation(mp, tmp_path_factory.mktemp("voc") / "cx")
        load_raw(settings, raw_tables(datetime(2026, 1, 1, 8)))
        result = materialize_voc(settings)
        with connect(settings, read_only=True) as con:
            rows = con.execute("select * from voc.text_scores order by source, text_id").df()
            topics = con.execute("select * from voc.topics order by topic_id").df()
        yield settings, result, rows, topics


@pytest.mark.reliability(area="Privacy", case="Emails, phones and card numbers (spaced and dashed) in raw review, "
                         "ticket and survey text, as another loader could leave them",
                         outcome="Masked before the text layer stores or scores them: none in voc tables, the "
                                 "check's result, the MLflow run (metrics, params, models as JSON) or any other "
                                 "artifact; the text keeps `[email]`, `[phone]`, `[card]`")
def test_pii_in_raw_text_never_reaches_the_text_tables_or_mlflow(scored):
    settings, result, rows, topics = scored
    assert result.success
    joined = " ".join(rows["text"])
    for value in PII.values():
        assert value not in joined
    assert {"[email]", "[phone]", "[card]"} <= {token for token in ("[email]", "[phone]", "[card]") if token in joined}
    with connect(settings, read_only=True) as con:
        stored = " ".join(str(v) for name in ("text_scores", "topics")
                          for row in con.execute(f"select * from voc.{name}").fetchall() for v in row)
    assert not [v for v in PII.values() if v in stored]
    artifacts = [p for p in settings.mlflow_dir.rglob("*") if p.is_file()]
    assert any(p.name == "voc_models.json" for p in artifacts), "the models were logged, so the scan covers them"
    assert pii_scan.scan(settings, list(PII.values()), roots=[settings.mlflow_dir]) == []
    # The search finds what it looks for: the raw layer still holds the planted values.
    assert pii_scan.scan(settings, [PII["card"]], roots=[settings.warehouse.parent])
    check = result.get_asset_check_evaluations()[0]
    assert check.passed and not [v for v in PII.values() if v in str(check.metadata)]


def test_english_and_korean_texts_are_scored_with_their_language(scored):
    _, _, rows, _ = scored
    by_id = rows.set_index(["source", "text_id"])
    english, korean = by_id.loc[("ticket", "T0000")], by_id.loc[("ticket", "T0001")]
    assert english["language"] == "en" and korean["language"] == "ko"
    for row in (english, korean):
        assert -1 <= row["sentiment_score"] <= 1 and row["sentiment_label"] in ("negative", "neutral", "positive")
        assert row["intent_source"] in ("agent", "model", "review")


def test_every_text_is_one_row_and_tickets_get_an_intent_or_a_review_flag(scored):
    _, _, rows, topics = scored
    assert len(rows) == 90 + 48 + 20  # empty survey comments are not texts
    assert not rows.duplicated(["source", "text_id"]).any()
    assert REDELIVERED in rows.set_index("text_id").loc["R0003", "text"]
    tickets = rows[rows["source"] == "ticket"]
    agent = tickets[tickets["intent_source"] == "agent"]
    assert len(agent) == 48 - 16 + 1 - 2  # every third has none; T0000 got one, T0001 and T0002 lost theirs
    assert (agent["intent_confidence"] == 1.0).all()
    unlabelled = tickets[tickets["intent_source"] != "agent"]
    assert ((unlabelled["intent_source"] == "review") == unlabelled["needs_review"]).all()
    assert unlabelled.loc[unlabelled["intent_source"] == "model", "intent"].isin(list(CATEGORIES)).all()
    assert rows.loc[rows["source"] != "ticket", "intent_source"].isna().all()
    assert len(topics) >= 2 and topics["label"].str.len().gt(0).all()


def test_a_rerun_writes_the_same_rows(scored):
    settings, _, rows, topics = scored
    materialize_voc(settings)
    with connect(settings, read_only=True) as con:
        again = con.execute("select * from voc.text_scores order by source, text_id").df()
        topics_again = con.execute("select * from voc.topics order by topic_id").df()
    pd.testing.assert_frame_equal(rows, again)
    pd.testing.assert_frame_equal(topics, topics_again)
