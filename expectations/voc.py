"""Suites for the text layer: the scores the Python asset writes (`voc.text_scores`) and the two marts over it.

Besides shapes and ranges, every suite that holds text checks that no email, phone number or card-like
number survived masking. The text column is sensitive, so a failing sample shows the row's key only.
"""

from __future__ import annotations

from expectations.suite import (
    Rule,
    Suite,
    accepted_values,
    between,
    columns_present,
    non_negative,
    not_null,
    primary_key,
    rate,
    required,
)
from ml.voc import INTENT_SOURCES, SENTIMENT_LABELS, SOURCES

SCORE_COLUMNS = ("source", "text_id", "customer_key", "created_at", "resolved_at", "language", "text",
                 "sentiment_score", "sentiment_label", "intent", "intent_source", "intent_confidence",
                 "needs_review", "topic_id", "topic_weight")
TEXT_KEY = ("source", "text_id")


def unmasked_pii(table: str, column: str) -> Rule:
    """No value of `column` still holds an email, a phone number or a card-like number."""
    from ml.text import CARD_RE, EMAIL_RE, PHONE_RE

    pattern = "|".join(f"(?:{p.pattern})" for p in (CARD_RE, EMAIL_RE, PHONE_RE))
    return Rule(f"{table}.{column}.pii_masked", "expect_column_values_to_not_match_regex",
                {"column": column, "regex": pattern})


def scored_text_rules(t: str) -> tuple[Rule, ...]:
    """What holds for every scored text wherever it is stored."""
    return (
        # `source` and `text_id` are the key, checked by each suite's primary key rules.
        *(not_null(t, c) for c in ("language", "sentiment_score", "sentiment_label", "topic_id")),
        accepted_values(t, "source", SOURCES),
        accepted_values(t, "sentiment_label", SENTIMENT_LABELS),
        accepted_values(t, "intent_source", INTENT_SOURCES),
        between(t, "sentiment_score", -1, 1),
        *rate(t, "intent_confidence"),
        between(t, "topic_id", -1),
        # A ticket is labelled by the agent or the model, or marked for review.
        required(t, "intent_source", when={"source": "ticket"}),
        unmasked_pii(t, "text"),
    )


def text_scores() -> Suite:
    t = "text_scores"
    return Suite(name="voc.text_scores", key=TEXT_KEY, sensitive=frozenset({"text"}), rules=(
        columns_present(t, SCORE_COLUMNS),
        *primary_key(t, TEXT_KEY),
        *scored_text_rules(t),
        *non_negative(t, "topic_weight"),
    ))


SUITES = {"voc.text_scores": text_scores}
