"""The voice-of-the-customer models on a small frame built here: masking first, the time split, scores in two
languages, intents left for review, JSON models that predict alike, and the fallbacks."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ml import voc
from ml.voc import SCORED_COLUMNS, TOPIC_COLUMNS, VocConfig, analyse, load_models, nps_label, rating_label

EMAIL = "zelda.quirke@example.org"
PHONE = "+44 7700 900123"
CARD = "4929 1111 2222 3333"
PII_PIECES = (EMAIL, "zelda", "quirke", "example.org", PHONE, "7700 900123", "900123", CARD, "4929111122223333")

REVIEWS = {
    5: ("Love it, great quality and fast delivery", "Excellent product, I would buy again",
        "정말 만족해요 품질이 좋아요"),
    4: ("Good value, nice and comfortable", "Really nice, happy with it", "좋아요 배송도 빨라요"),
    3: ("It is okay, nothing special", "Average product, does the job", "그냥 보통이에요"),
    2: ("Not great, smaller than expected", "Poor quality for the price", "별로예요 실망했어요"),
    1: ("Terrible, it broke after a week", "Very disappointed, arrived damaged", "최악이에요 환불해 주세요"),
}
TICKETS = {
    "delivery": ("Where is my parcel? The tracking has not moved", "My order is late and still not delivered"),
    "refund": ("I want a refund for the damaged item", "Please refund my money, I returned it"),
    "payment": ("My card was declined at checkout", "The payment failed but I was charged"),
}
SURVEYS = {2: "Delivery was terrible and slow", 8: "Fine overall, okay", 10: "Great shop, love it"}


def _texts(reviews: bool = True, tickets: bool = True, categorised: bool = True) -> pd.DataFrame:
    """About 120 reviews, 70 tickets and 30 survey comments over 120 days, with personal data planted in a few."""
    start = pd.Timestamp("2026-01-01", tz="UTC")
    rows = []
    if reviews:
        for i in range(120):
            rating = 5 - i % 5
            options = REVIEWS[rating]
            text = options[(i // 5) % len(options)]
            if i % 40 == 0:
                text += f". Mail me at {EMAIL} or call {PHONE}, card {CARD}"
            rows.append({"source": "review", "text_id": f"R{i:04d}", "created_at": start + pd.Timedelta(hours=24 * i),
                         "text": text, "rating": rating})
    if tickets:
        categories = sorted(TICKETS)
        for i in range(70):
            category = categories[i % 3]
            text = TICKETS[category][(i // 3) % 2]
            if i % 25 == 0:
                text += f" You can reach me at {EMAIL}, {PHONE}; my card {CARD}"
            known = categorised and i < 60
            rows.append({"source": "ticket", "text_id": f"T{i:04d}", "created_at": start + pd.Timedelta(hours=40 * i),
                         "text": text, "category": category if known else (" " if i % 2 else None)})
        rows.append({"source": "ticket", "text_id": "T9999", "created_at": start + pd.Timedelta(days=119),
                     "text": "qwerty zxcv", "category": None})
    for i in range(30):
        score = (2, 8, 10)[i % 3]
        text = SURVEYS[score] + (f" call {PHONE}" if i == 7 else "")
        rows.append({"source": "survey", "text_id": f"S{i:04d}", "created_at": start + pd.Timedelta(days=4 * i),
                     "text": text, "nps_score": score})
    frame = pd.DataFrame(rows, columns=list(voc.INPUT_COLUMNS))
    frame["rating"] = frame["rating"].astype("Int64")
    frame["nps_score"] = frame["nps_score"].astype("Int64")
    return frame


@pytest.fixture(scope="module")
def texts() -> pd.DataFrame:
    return _texts()


@pytest.fixture(scope="module")
def result(texts):
    return analyse(texts)


def _strings(value) -> list[str]:
    """Every string inside a JSON-like value (keys included), numbers left out."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def test_labels_from_stars_and_nps_scores():
    assert [rating_label(r) for r in range(1, 6)] == ["negative"] * 2 + ["neutral"] + ["positive"] * 2
    assert [nps_label(s) for s in (0, 6, 7, 8, 9, 10)] == ["negative"] * 2 + ["neutral"] * 2 + ["positive"] * 2
    with pytest.raises(ValueError):
        rating_label(0)
    with pytest.raises(ValueError):
        nps_label(11)


def test_scored_has_one_row_per_text_in_order_with_the_columns(texts, result):
    scored = result.scored
    assert list(scored.columns) == list(SCORED_COLUMNS)
    assert scored["text_id"].tolist() == texts["text_id"].tolist()
    assert scored["sentiment_score"].between(-1, 1).all()
    assert set(scored["sentiment_label"]) <= set(voc.SENTIMENT_LABELS)
    assert list(result.topics.columns) == list(TOPIC_COLUMNS)
    assert 1 <= len(result.topics) <= VocConfig().n_topics
    assert result.params["sentiment_model"] == voc.LOGREG and result.params["intent_model"] == voc.LOGREG
    for name in ("sentiment_accuracy", "vader_accuracy", "majority_accuracy", "intent_accuracy",
                 "intent_coverage", "sentiment_accuracy_survey", "vader_accuracy_survey"):
        assert 0 <= result.metrics[name] <= 1, name
    assert set(result.confusion) == {"sentiment", "vader", "intent"}


def test_personal_data_never_leaves_analyse(result):
    scored_text = result.scored.to_csv()
    topics_text = result.topics.to_csv()
    models_text = json.dumps(result.model_json, ensure_ascii=False)
    model_strings = " ".join(_strings(result.model_json))
    params_text = json.dumps(result.params, ensure_ascii=False)
    for piece in PII_PIECES:
        assert piece not in scored_text and piece not in topics_text and piece not in params_text, piece
        assert piece not in model_strings, piece
        if not piece.replace(" ", "").isdigit():  # digit runs may occur by chance inside a coefficient
            assert piece not in models_text, piece
    assert "[email]" in scored_text and "[phone]" in scored_text and "[card]" in scored_text


def test_english_and_korean_texts_are_both_scored(texts, result):
    scored = result.scored.set_index("text_id")
    english = scored.loc["R0000"]  # 5 stars, English
    korean = scored.loc["R0010"]  # 5 stars, Korean
    assert (english["language"], korean["language"]) == ("en", "ko")
    assert english["sentiment_score"] > 0 and english["sentiment_label"] == "positive"
    assert math.isfinite(korean["sentiment_score"]) and korean["sentiment_label"] in voc.SENTIMENT_LABELS
    negative = scored.loc["R0004"]  # 1 star, English
    assert negative["sentiment_score"] < 0


def test_intents_come_from_agents_then_the_model_then_review(result):
    tickets = result.scored[result.scored["source"] == "ticket"]
    others = result.scored[result.scored["source"] != "ticket"]
    assert others["intent"].isna().all() and others["intent_source"].isna().all()
    assert not others["needs_review"].any()
    agent = tickets[tickets["intent_source"] == "agent"]
    assert len(agent) == 60 and (agent["intent_confidence"] == 1.0).all() and not agent["needs_review"].any()
    model = tickets[tickets["intent_source"] == "model"]
    assert (model["intent_confidence"] >= 0.6).all() and model["intent"].notna().all()
    review = tickets[tickets["intent_source"] == "review"]
    assert "T9999" in set(review["text_id"])  # words the model never saw
    assert review["needs_review"].all() and review["intent"].isna().all()
    assert (review["intent_confidence"] < 0.6).all()


def test_a_strict_threshold_sends_every_uncategorised_ticket_to_review(texts):
    strict = analyse(texts, VocConfig(intent_threshold=0.999))
    open_tickets = strict.scored[(strict.scored["source"] == "ticket") & (strict.scored["intent_source"] != "agent")]
    assert len(open_tickets) == 11
    assert open_tickets["needs_review"].all() and (open_tickets["intent_source"] == "review").all()
    assert open_tickets["intent"].isna().all() and open_tickets["intent_confidence"].notna().all()


def test_the_latest_rows_are_held_out_and_never_trained_on(texts):
    reviews = texts[texts["source"] == "review"].sample(frac=1.0, random_state=3)  # order must not matter
    train, held = voc.time_split(reviews, 0.2)
    assert (len(train), len(held)) == (96, 24)
    assert train["created_at"].max() < held["created_at"].min()
    assert set(train["text_id"]).isdisjoint(held["text_id"])

    planted = held.copy()
    planted["text"] = planted["text"] + " xylophonic"
    model = voc.fit_classifier(train["text"].tolist(), train["rating"].map(rating_label).tolist(), VocConfig())
    assert "xylophonic" not in model.vectorizers[0].vocabulary_
    refit = voc.fit_classifier(pd.concat([train, planted])["text"].tolist(),
                               pd.concat([train, planted])["rating"].map(rating_label).tolist(), VocConfig())
    assert "xylophonic" in refit.vectorizers[0].vocabulary_


def test_metrics_count_the_split(result):
    m = result.metrics
    assert (m["sentiment_train_rows"], m["sentiment_holdout_rows"], m["sentiment_labelled_rows"]) == (96, 24, 120)
    assert (m["intent_train_rows"], m["intent_holdout_rows"]) == (48, 12)
    assert m["texts"] == 221 and m["texts_review"] == 120 and m["texts_ticket"] == 71 and m["texts_survey"] == 30
    # 24 held-out reviews, a third of them Korean: no language has the 20 rows its own accuracy needs.
    assert not any(k.startswith(("sentiment_accuracy_en", "sentiment_accuracy_ko")) for k in m)
    assert m["score_seconds"] > 0 and m["texts_per_second"] > 0


def test_same_input_same_output(texts, result):
    again = analyse(texts)
    pd.testing.assert_frame_equal(again.scored, result.scored)
    pd.testing.assert_frame_equal(again.topics, result.topics)
    assert json.dumps(again.model_json) == json.dumps(result.model_json)
    assert again.params == result.params and again.confusion == result.confusion
    timeless = {k: v for k, v in result.metrics.items() if k not in voc.TIMING_METRICS}
    assert {k: v for k, v in again.metrics.items() if k not in voc.TIMING_METRICS} == pytest.approx(timeless,
                                                                                                    nan_ok=True)


def test_models_read_back_from_json_predict_what_analyse_scored(result):
    models = load_models(json.loads(json.dumps(result.model_json)))
    scored = result.scored
    again = models.sentiment.predict(scored["text_masked"].tolist())
    np.testing.assert_array_equal(again["sentiment_score"].to_numpy(), scored["sentiment_score"].to_numpy())
    assert again["sentiment_label"].tolist() == scored["sentiment_label"].tolist()

    guessed = scored[scored["intent_source"].isin(["model", "review"])]
    intents = models.intent.predict(guessed["text_masked"].tolist())
    assert intents["intent"].tolist() == guessed["intent"].tolist()
    np.testing.assert_array_equal(intents["intent_confidence"].to_numpy(dtype=float),
                                  guessed["intent_confidence"].to_numpy(dtype=float))
    assert [t["label"] for t in models.topics] == result.topics["label"].tolist()


def test_topics_are_labelled_by_their_top_terms(result):
    for row in result.topics.itertuples():
        terms = row.terms.split(", ")
        assert row.label == " / ".join(terms[:3]) and row.label == row.label.lower()
        assert "email" not in terms and "phone" not in terms  # the placeholders are no words
    assigned = result.scored["topic_id"]
    assert result.topics["texts"].sum() == (assigned >= 0).sum()


def test_without_reviews_sentiment_falls_back_to_vader_for_english():
    fallback = analyse(_texts(reviews=False))
    assert fallback.params["sentiment_model"] == voc.VADER_FALLBACK
    assert fallback.metrics["sentiment_fallback"] == 1.0 and math.isnan(fallback.metrics["sentiment_accuracy"])
    assert fallback.model_json["sentiment"]["kind"] == voc.VADER_FALLBACK
    scored = fallback.scored.set_index("text_id")
    assert scored.loc["S0002", "sentiment_label"] == "positive"  # "Great shop, love it"
    assert scored.loc["S0000", "sentiment_label"] == "negative"  # "Delivery was terrible and slow"
    korean = analyse(pd.DataFrame({"source": ["survey"], "text_id": ["S1"], "text": ["정말 최고예요"],
                                   "created_at": [pd.Timestamp("2026-01-01", tz="UTC")], "nps_score": [10]}))
    assert korean.scored.loc[0, "language"] == "ko"
    assert (korean.scored.loc[0, "sentiment_score"], korean.scored.loc[0, "sentiment_label"]) == (0.0, "neutral")
    again = load_models(fallback.model_json).sentiment.predict(fallback.scored["text_masked"].tolist())
    assert again["sentiment_score"].tolist() == fallback.scored["sentiment_score"].tolist()


def test_without_categorised_tickets_every_ticket_needs_review():
    open_only = analyse(_texts(categorised=False))
    tickets = open_only.scored[open_only.scored["source"] == "ticket"]
    assert open_only.params["intent_model"] == voc.NO_MODEL and open_only.model_json["intent"] is None
    assert tickets["needs_review"].all() and (tickets["intent_source"] == "review").all()
    assert tickets["intent"].isna().all() and tickets["intent_confidence"].isna().all()
    assert math.isnan(open_only.metrics["intent_accuracy"])


def test_no_texts_gives_empty_frames_with_the_columns():
    empty = analyse(_texts(reviews=False, tickets=False).iloc[0:0])
    assert list(empty.scored.columns) == list(SCORED_COLUMNS) and empty.scored.empty
    assert list(empty.topics.columns) == list(TOPIC_COLUMNS) and empty.topics.empty
    assert empty.metrics["texts"] == 0 and empty.params["sentiment_model"] == voc.VADER_FALLBACK


def test_fewer_texts_than_topics_gives_fewer_topics():
    few = pd.DataFrame({"source": ["survey"] * 3, "text_id": ["a", "b", "c"],
                        "created_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True),
                        "text": ["delivery was slow", "great prices", ""]})
    result = analyse(few, VocConfig(n_topics=8))
    assert 1 <= len(result.topics) <= 2
    assert result.scored.loc[2, "topic_id"] == voc.NO_TOPIC
