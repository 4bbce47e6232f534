"""Voice of the customer: sentiment, intent and topics of support tickets, product reviews and NPS comments.

`analyse(texts)` is what the orchestration calls, with one row per text; `log_run(result, store, tags)` records
the run in MLflow. Every text is masked (`ml.text.mask_pii`) before anything else reads it, so the models, their
vocabularies and everything returned or logged are built from masked text only.

- **Sentiment** is learnt from reviews, whose stars are the labels (1-2 negative, 3 neutral, 4-5 positive), and
  scores all three sources. TF-IDF of word 1-2-grams and character 2-4-grams within words (which carry Korean
  and misspellings) feeds a class-balanced logistic regression. Held out are the latest `holdout_share` of the
  labelled reviews by `created_at`: a model fitted on the earlier ones only is judged there against VADER (a
  lexicon, English only) and the majority class. The model that scores is then refitted on all labelled reviews,
  so review scores are in-sample; NPS comments, never trained on, are the out-of-domain check (against the NPS
  score's label). Too few labelled reviews, or a single class, leaves VADER for English texts and a neutral 0
  elsewhere (`sentiment_model = "vader-fallback"`).
- **Intent** of a ticket is the agent's category where there is one. The others get the class of a model of
  the same kind trained on categorised tickets (time split and refit as for sentiment) when its probability
  reaches `intent_threshold`, else they are left for an agent (`needs_review`).
- **Topics**: NMF on word TF-IDF of all masked texts; a text's topic is its heaviest component, or -1 when even
  that weighs less than `min_topic_weight` (an empty text, or one made of rare words only).

Same input, same output: fixed seeds, stable sorts, deterministic solvers on one thread; only the timings vary.
The fitted models are exported as plain JSON (`VocResult.model_json`, read back by `load_models`), never
pickled.
"""

from __future__ import annotations

import functools
import math
import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml.text import detect_language, mask_pii

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import pandas as pd

    from ml.tracking import Store

SENTIMENT_LABELS = ("negative", "neutral", "positive")
SOURCES = ("ticket", "review", "survey")
# Who gave a ticket its intent: the agent's category, the model above its threshold, or nobody yet (review).
AGENT, MODEL, REVIEW = INTENT_SOURCES = ("agent", "model", "review")
EXPERIMENT = "cxloop-voc"
MODEL_FORMAT = "cxloop-voc-models/1"
LOGREG = "tfidf-logreg"
VADER_FALLBACK = "vader-fallback"
NO_MODEL = "none"
NO_TOPIC = -1
INPUT_COLUMNS = ("source", "text_id", "created_at", "text", "rating", "nps_score", "category")
SCORED_COLUMNS = ("source", "text_id", "text_masked", "language", "sentiment_score", "sentiment_label", "intent",
                  "intent_source", "intent_confidence", "needs_review", "topic_id", "topic_weight")
TOPIC_COLUMNS = ("topic_id", "label", "terms", "texts")
# The only metrics that differ between two runs on the same input.
TIMING_METRICS = ("fit_seconds", "score_seconds", "texts_per_second")
# VADER's own thresholds on its compound score.
VADER_THRESHOLD = 0.05
# Held-out rows a language needs before its own accuracy is reported.
MIN_LANGUAGE_ROWS = 20
TOPIC_TERMS = 10
LABEL_TERMS = 3

WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 4)
MIN_DF = 2
# Words of two or more letters, in any script (Hangul included); numbers, ids and dates are not words.
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
PREPROCESSOR = "lowercase-digits"
_DIGITS = re.compile(r"\d+")
_PLACEHOLDERS = re.compile(r"\[(?:card|email|phone)\]")
# Greetings and sign-offs open most tickets and say nothing about what they are about.
_TOPIC_EXTRA_STOP_WORDS = ("hi", "hello", "hey", "thanks", "thank", "dear", "regards", "morning", "ok", "okay")


def rating_label(rating: int) -> str:
    """A review's star rating as a sentiment: 1-2 negative, 3 neutral, 4-5 positive."""
    if rating is None or not 1 <= rating <= 5 or int(rating) != rating:
        raise ValueError(f"a rating is 1 to 5, not {rating!r}")
    return SENTIMENT_LABELS[0] if rating <= 2 else SENTIMENT_LABELS[1] if rating == 3 else SENTIMENT_LABELS[2]


def nps_label(score: int) -> str:
    """An NPS score as a sentiment: detractors (0-6) negative, passives (7-8) neutral, promoters (9-10)
    positive."""
    if score is None or not 0 <= score <= 10 or int(score) != score:
        raise ValueError(f"an NPS score is 0 to 10, not {score!r}")
    return SENTIMENT_LABELS[0] if score <= 6 else SENTIMENT_LABELS[1] if score <= 8 else SENTIMENT_LABELS[2]


@dataclass(frozen=True)
class VocConfig:
    """One analysis's settings.

    `max_features` bounds each of the two vectorizers of a model (and the topic vectorizer), so the exported
    models stay a few MB. Fewer than `min_labelled` labelled rows (or a single class) and a model is not
    trained: sentiment falls back to VADER, tickets without a category all go to review.
    """

    holdout_share: float = 0.2
    intent_threshold: float = 0.6
    n_topics: int = 8
    min_topic_weight: float = 0.01
    seed: int = 7
    max_features: int = 5000
    min_labelled: int = 30
    logreg_c: float = 1.0


@dataclass
class VocResult:
    """What `analyse` found: the scored rows, the topics, held-out metrics and the models as JSON."""

    scored: pd.DataFrame
    topics: pd.DataFrame
    metrics: dict[str, float]
    params: dict[str, Any]
    confusion: dict[str, dict[str, list]]
    model_json: dict[str, Any]


def _normalise(text: str) -> str:
    """The vectorizers' preprocessor: lowercase, each run of digits one `0` (an order id is not a feature)."""
    return _DIGITS.sub("0", text.lower())


def _topic_text(text: str) -> str:
    return _normalise(_PLACEHOLDERS.sub(" ", text))


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


class TextClassifier:
    """TF-IDF of word 1-2-grams and character 2-4-grams (within word boundaries), side by side, into a
    logistic regression. Either vectorizer may be absent (texts with no words of letters)."""

    kind = LOGREG

    def __init__(self, vectorizers: list, model):
        self.vectorizers = vectorizers
        self.model = model

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.model.classes_)

    def features(self, texts: Sequence[str]):
        from scipy import sparse

        texts = [mask_pii(t or "") for t in texts]
        return sparse.hstack([v.transform(texts) for v in self.vectorizers], format="csr")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in `classes` order. Texts are masked first (a no-op on masked text)."""
        import numpy as np

        if len(texts) == 0:
            return np.zeros((0, len(self.classes)))
        return self.model.predict_proba(self.features(texts))

    def to_json(self) -> dict[str, Any]:
        vectorizers = []
        for v in self.vectorizers:
            terms = sorted(v.vocabulary_, key=v.vocabulary_.__getitem__)
            vectorizers.append({
                "analyzer": v.analyzer, "ngram_range": list(v.ngram_range), "token_pattern": v.token_pattern,
                "preprocessor": PREPROCESSOR, "sublinear_tf": v.sublinear_tf, "norm": v.norm,
                "smooth_idf": v.smooth_idf, "vocabulary": terms, "idf": v.idf_.tolist()})
        return {"kind": self.kind, "classes": list(self.classes), "vectorizers": vectorizers,
                "coef": self.model.coef_.tolist(), "intercept": self.model.intercept_.tolist()}

    @classmethod
    def from_json(cls, spec: dict[str, Any], **kwargs) -> TextClassifier:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizers = []
        for v in spec["vectorizers"]:
            if v["preprocessor"] != PREPROCESSOR:
                raise ValueError(f"unknown preprocessor {v['preprocessor']!r}")
            vectorizer = TfidfVectorizer(
                analyzer=v["analyzer"], ngram_range=tuple(v["ngram_range"]), token_pattern=v["token_pattern"],
                preprocessor=_normalise, sublinear_tf=v["sublinear_tf"], norm=v["norm"],
                smooth_idf=v["smooth_idf"], vocabulary={term: i for i, term in enumerate(v["vocabulary"])})
            vectorizer.idf_ = np.asarray(v["idf"], dtype=np.float64)
            vectorizers.append(vectorizer)
        model = LogisticRegression()
        model.classes_ = np.asarray(spec["classes"], dtype=object)
        model.coef_ = np.asarray(spec["coef"], dtype=np.float64)
        model.intercept_ = np.asarray(spec["intercept"], dtype=np.float64)
        model.n_features_in_ = model.coef_.shape[1]
        return cls(vectorizers, model, **kwargs)


class SentimentModel(TextClassifier):
    """Sentiment from TF-IDF and a logistic regression trained on review stars."""

    def predict(self, texts: Sequence[str]) -> pd.DataFrame:
        """`sentiment_score` (P(positive) - P(negative)) and `sentiment_label` (the likeliest class); an empty
        text is neutral, 0."""
        import numpy as np
        import pandas as pd

        texts = list(texts)
        score = np.zeros(len(texts))
        label = np.full(len(texts), SENTIMENT_LABELS[1], dtype=object)
        filled = [i for i, t in enumerate(texts) if not _blank(t)]
        if filled:
            proba = self.predict_proba([texts[i] for i in filled])
            classes = list(self.classes)

            def column(name: str) -> np.ndarray:
                return proba[:, classes.index(name)] if name in classes else np.zeros(len(filled))

            score[filled] = np.clip(column("positive") - column("negative"), -1.0, 1.0)
            label[filled] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        return pd.DataFrame({"sentiment_score": score, "sentiment_label": label.astype(str)})


class VaderFallback:
    """VADER's compound score for English texts, neutral 0 for the rest: sentiment without labelled reviews."""

    kind = VADER_FALLBACK

    def predict(self, texts: Sequence[str]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        texts = [mask_pii(t or "") for t in texts]
        score = np.zeros(len(texts))
        english = [i for i, t in enumerate(texts) if not _blank(t) and detect_language(t) == "en"]
        if english:
            score[english] = vader_compound([texts[i] for i in english])
        return pd.DataFrame({"sentiment_score": score,
                             "sentiment_label": [vader_label(s) for s in score]})

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "threshold": VADER_THRESHOLD}


class IntentModel(TextClassifier):
    """A ticket's intent from TF-IDF and a logistic regression trained on agent categories; a class only when
    its probability reaches `threshold`."""

    def __init__(self, vectorizers: list, model, threshold: float):
        super().__init__(vectorizers, model)
        self.threshold = threshold

    def predict(self, texts: Sequence[str]) -> pd.DataFrame:
        """`intent` (None below the threshold), `intent_confidence` (the top probability; missing for an empty
        text) and `needs_review`."""
        import numpy as np
        import pandas as pd

        texts = list(texts)
        confidence = np.full(len(texts), np.nan)
        intent = np.full(len(texts), None, dtype=object)
        filled = [i for i, t in enumerate(texts) if not _blank(t)]
        if filled:
            proba = self.predict_proba([texts[i] for i in filled])
            confidence[filled] = proba.max(axis=1)
            best = np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
            confident = proba.max(axis=1) >= self.threshold
            intent[np.asarray(filled)[confident]] = best[confident]
        return pd.DataFrame({"intent": pd.Series(intent, dtype=object),
                             "intent_confidence": pd.array(confidence, dtype="Float64"),
                             "needs_review": pd.isna(pd.Series(intent, dtype=object)).to_numpy()})

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "threshold": self.threshold}

    @classmethod
    def from_json(cls, spec: dict[str, Any], **kwargs) -> IntentModel:
        return super().from_json(spec, threshold=spec["threshold"], **kwargs)


@dataclass
class VocModels:
    """The fitted models read back from `VocResult.model_json`: `sentiment.predict(texts)` and
    `intent.predict(texts)` give what `analyse` put in `scored` for those texts."""

    sentiment: SentimentModel | VaderFallback
    intent: IntentModel | None
    topics: list[dict[str, Any]] = field(default_factory=list)


def load_models(model_json: dict[str, Any]) -> VocModels:
    """The models of `VocResult.model_json` (plain JSON, no pickle), ready to predict."""
    if model_json.get("format") != MODEL_FORMAT:
        raise ValueError(f"not a {MODEL_FORMAT} document: format {model_json.get('format')!r}")
    spec = model_json["sentiment"]
    sentiment = SentimentModel.from_json(spec) if spec["kind"] == LOGREG else VaderFallback()
    intent = None if model_json.get("intent") is None else IntentModel.from_json(model_json["intent"])
    return VocModels(sentiment=sentiment, intent=intent, topics=list(model_json.get("topics", [])))


def _vectorizer(analyzer: str, config: VocConfig, min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer == "word":
        return TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, token_pattern=TOKEN_PATTERN,
                               preprocessor=_normalise, sublinear_tf=True, min_df=min_df,
                               max_features=config.max_features)
    return TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, preprocessor=_normalise,
                           sublinear_tf=True, min_df=min_df, max_features=config.max_features)


def fit_classifier(texts: Sequence[str], labels: Sequence[str], config: VocConfig, cls: type = SentimentModel,
                   **kwargs) -> TextClassifier:
    """Fit vectorizers and the logistic regression on `texts` (masked first) and `labels`, which need two
    classes. Terms must occur in `MIN_DF` texts (in one, for a handful of texts)."""
    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    texts = [mask_pii(t or "") for t in texts]
    min_df = MIN_DF if len(texts) >= 10 * MIN_DF else 1
    vectorizers, blocks = [], []
    for analyzer in ("word", "char_wb"):
        vectorizer = _vectorizer(analyzer, config, min_df)
        try:
            blocks.append(vectorizer.fit_transform(texts))
        except ValueError:
            continue  # no term in any text: no word of letters in the whole corpus
        vectorizers.append(vectorizer)
    if not vectorizers:
        raise ValueError("no text has any term to learn from")
    model = LogisticRegression(C=config.logreg_c, class_weight="balanced", max_iter=2000,
                               random_state=config.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs on tiny, separable data
        model.fit(sparse.hstack(blocks, format="csr"), list(labels))
    return cls(vectorizers, model, **kwargs)


def time_split(frame: pd.DataFrame, share: float, time_column: str = "created_at"
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, held out): the latest `share` of the rows by `time_column` are held out, the rest train.

    Ties in time are broken by `text_id` when there is one, so the split is the same every run; rows without a
    time count as the oldest. At least one row is held out and one kept when `share` > 0 and there are two rows.
    """
    n = len(frame)
    keys = [time_column] + (["text_id"] if "text_id" in frame.columns and time_column != "text_id" else [])
    ordered = frame.sort_values(keys, kind="mergesort", na_position="first")
    held = int(math.floor(share * n + 0.5))
    if share > 0 and n >= 2:
        held = min(max(held, 1), n - 1)
    held = min(held, n)
    return ordered.iloc[: n - held], ordered.iloc[n - held:]


def vader_compound(texts: Sequence[str]) -> list[float]:
    analyzer = _vader()
    return [float(analyzer.polarity_scores(t)["compound"]) if not _blank(t) else 0.0 for t in texts]


def vader_label(compound: float) -> str:
    if compound >= VADER_THRESHOLD:
        return SENTIMENT_LABELS[2]
    if compound <= -VADER_THRESHOLD:
        return SENTIMENT_LABELS[0]
    return SENTIMENT_LABELS[1]


@functools.cache
def _vader():
    """VADER's analyser, loaded once: its lexicon ships inside the package, nothing is downloaded."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _prepare(texts: pd.DataFrame) -> pd.DataFrame:
    """The input with missing optional columns added, texts masked, labels derived and the language told."""
    import numpy as np
    import pandas as pd

    missing = [c for c in ("source", "text_id", "created_at", "text") if c not in texts.columns]
    if missing:
        raise ValueError(f"texts lack columns {missing}")
    frame = pd.DataFrame(index=pd.RangeIndex(len(texts)))
    frame["source"] = texts["source"].astype(str).to_numpy()
    unknown = sorted(set(frame["source"]) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; expected {list(SOURCES)}")
    frame["text_id"] = texts["text_id"].astype(str).to_numpy()
    frame["created_at"] = pd.to_datetime(texts["created_at"], utc=True, errors="coerce").array
    raw = [t if isinstance(t, str) else "" for t in texts["text"].to_numpy()]
    frame["text_masked"] = [mask_pii(t) for t in raw]
    frame["language"] = [detect_language(t) for t in frame["text_masked"]]
    frame["blank"] = np.asarray([_blank(t) for t in frame["text_masked"]], dtype=bool)

    def numbers(column: str, low: int, high: int) -> np.ndarray:
        if column not in texts.columns:
            return np.full(len(texts), np.nan)
        values = pd.to_numeric(pd.Series(texts[column].to_numpy()), errors="coerce")
        values = values.to_numpy(dtype=float, na_value=np.nan)
        ok = (values >= low) & (values <= high) & (values == np.round(values))
        return np.where(ok, values, np.nan)

    rating = numbers("rating", 1, 5)
    nps = numbers("nps_score", 0, 10)
    frame["rating_label"] = [rating_label(int(r)) if s == "review" and not np.isnan(r) else None
                             for s, r in zip(frame["source"], rating)]
    frame["nps_label"] = [nps_label(int(v)) if s == "survey" and not np.isnan(v) else None
                          for s, v in zip(frame["source"], nps)]
    if "category" in texts.columns:
        category = [c.strip() if isinstance(c, str) and c.strip() else None for c in texts["category"].to_numpy()]
    else:
        category = [None] * len(texts)
    frame["category"] = [c if s == "ticket" else None for s, c in zip(frame["source"], category)]
    return frame


def _accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    if len(truth) == 0:
        return float("nan")
    return float(sum(t == p for t, p in zip(truth, predicted)) / len(truth))


def _macro_f1(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    if len(truth) == 0:
        return float("nan")
    return float(f1_score(list(truth), list(predicted), labels=list(labels), average="macro", zero_division=0))


def _confusion(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, list]:
    """Rows are the true labels, columns the predicted ones."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    return {"labels": list(labels), "matrix": matrix}


def _majority(labels: Sequence[str], order: Sequence[str]) -> str:
    """The most frequent label; ties go to the first in `order`, so the baseline is the same every run."""
    counts = Counter(labels)
    rank = {label: i for i, label in enumerate(order)}
    return min(counts, key=lambda label: (-counts[label], rank.get(label, len(rank)), label))


def _labelled(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[frame[column].notna() & ~frame["blank"]]


def _sentiment(frame: pd.DataFrame, config: VocConfig, metrics: dict, params: dict, confusion: dict,
               clock: dict) -> SentimentModel | VaderFallback:
    """Evaluate on the time split, then fit the scoring model on all labelled reviews (or fall back)."""
    labelled = _labelled(frame, "rating_label")
    labels = labelled["rating_label"].tolist()
    for name in ("sentiment_accuracy", "sentiment_macro_f1", "vader_accuracy", "vader_macro_f1",
                 "majority_accuracy"):
        metrics[name] = float("nan")
    metrics["sentiment_labelled_rows"] = float(len(labelled))
    metrics["sentiment_train_rows"] = 0.0
    metrics["sentiment_holdout_rows"] = 0.0
    if len(labelled) < config.min_labelled or len(set(labels)) < 2:
        reason = ("no labelled reviews" if not labels else f"{len(labels)} labelled reviews, fewer than "
                  f"{config.min_labelled}" if len(labels) < config.min_labelled else "one class in the reviews")
        params.update(sentiment_model=VADER_FALLBACK, sentiment_fallback_reason=reason)
        metrics["sentiment_fallback"] = 1.0
        return VaderFallback()
    params["sentiment_model"] = LOGREG
    metrics["sentiment_fallback"] = 0.0

    train, held = time_split(labelled, config.holdout_share)
    if len(held) and train["rating_label"].nunique() >= 2:
        started = time.perf_counter()
        model = fit_classifier(train["text_masked"].tolist(), train["rating_label"].tolist(), config)
        clock["fit"] += time.perf_counter() - started
        truth = held["rating_label"].tolist()
        predicted = model.predict(held["text_masked"].tolist())["sentiment_label"].tolist()
        vader = [vader_label(c) for c in vader_compound(held["text_masked"].tolist())]
        majority = _majority(train["rating_label"].tolist(), SENTIMENT_LABELS)
        metrics.update(
            sentiment_accuracy=_accuracy(truth, predicted),
            sentiment_macro_f1=_macro_f1(truth, predicted, SENTIMENT_LABELS),
            vader_accuracy=_accuracy(truth, vader),
            vader_macro_f1=_macro_f1(truth, vader, SENTIMENT_LABELS),
            majority_accuracy=_accuracy(truth, [majority] * len(truth)),
            sentiment_train_rows=float(len(train)),
            sentiment_holdout_rows=float(len(held)),
        )
        languages = held["language"].tolist()
        for language in sorted(set(languages)):
            rows = [i for i, lang in enumerate(languages) if lang == language]
            if len(rows) >= MIN_LANGUAGE_ROWS:
                metrics[f"sentiment_accuracy_{language}"] = _accuracy([truth[i] for i in rows],
                                                                      [predicted[i] for i in rows])
                metrics[f"vader_accuracy_{language}"] = _accuracy([truth[i] for i in rows], [vader[i] for i in rows])
                metrics[f"sentiment_holdout_rows_{language}"] = float(len(rows))
        confusion["sentiment"] = _confusion(truth, predicted, SENTIMENT_LABELS)
        confusion["vader"] = _confusion(truth, vader, SENTIMENT_LABELS)
        params["sentiment_holdout_start"] = held["created_at"].min().isoformat()
        params["sentiment_majority_class"] = majority

    started = time.perf_counter()
    model = fit_classifier(labelled["text_masked"].tolist(), labels, config)
    clock["fit"] += time.perf_counter() - started
    params["sentiment_classes"] = ",".join(model.classes)
    return model


def _intent(frame: pd.DataFrame, config: VocConfig, metrics: dict, params: dict, confusion: dict,
            clock: dict) -> IntentModel | None:
    """Evaluate on the time split, then fit the model that labels uncategorised tickets on all categorised
    ones; None when there are too few of them or a single category."""
    labelled = _labelled(frame, "category")
    labels = labelled["category"].tolist()
    for name in ("intent_accuracy", "intent_macro_f1", "intent_coverage", "intent_accuracy_confident",
                 "intent_majority_accuracy"):
        metrics[name] = float("nan")
    metrics["intent_labelled_rows"] = float(len(labelled))
    metrics["intent_train_rows"] = 0.0
    metrics["intent_holdout_rows"] = 0.0
    if len(labelled) < config.min_labelled or len(set(labels)) < 2:
        params["intent_model"] = NO_MODEL
        params["intent_fallback_reason"] = ("no categorised tickets" if not labels else
                                            f"{len(labels)} categorised tickets, fewer than {config.min_labelled}"
                                            if len(labels) < config.min_labelled else "one ticket category")
        return None
    params["intent_model"] = LOGREG

    train, held = time_split(labelled, config.holdout_share)
    if len(held) and train["category"].nunique() >= 2:
        started = time.perf_counter()
        model = fit_classifier(train["text_masked"].tolist(), train["category"].tolist(), config,
                               cls=IntentModel, threshold=config.intent_threshold)
        clock["fit"] += time.perf_counter() - started
        truth = held["category"].tolist()
        proba = model.predict_proba(held["text_masked"].tolist())
        predicted = [model.classes[i] for i in proba.argmax(axis=1)]
        confident = [p >= config.intent_threshold for p in proba.max(axis=1)]
        sure = [i for i, c in enumerate(confident) if c]
        classes = sorted(set(model.classes) | set(truth))
        majority = _majority(train["category"].tolist(), sorted(set(train["category"])))
        metrics.update(
            intent_accuracy=_accuracy(truth, predicted),
            intent_macro_f1=_macro_f1(truth, predicted, classes),
            intent_coverage=float(len(sure) / len(truth)),
            intent_accuracy_confident=_accuracy([truth[i] for i in sure], [predicted[i] for i in sure]),
            intent_majority_accuracy=_accuracy(truth, [majority] * len(truth)),
            intent_train_rows=float(len(train)),
            intent_holdout_rows=float(len(held)),
        )
        confusion["intent"] = _confusion(truth, predicted, classes)
        params["intent_holdout_start"] = held["created_at"].min().isoformat()
        params["intent_majority_class"] = majority

    started = time.perf_counter()
    model = fit_classifier(labelled["text_masked"].tolist(), labels, config, cls=IntentModel,
                           threshold=config.intent_threshold)
    clock["fit"] += time.perf_counter() - started
    params["intent_classes"] = ",".join(model.classes)
    return model


def _topics(masked: list[str], config: VocConfig, clock: dict) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """NMF topics of all texts: (topics with their terms, each text's topic id, each text's weight)."""
    import numpy as np
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    n = len(masked)
    topic_id = np.full(n, NO_TOPIC, dtype=np.int64)
    weight = np.zeros(n)
    filled = [i for i, t in enumerate(masked) if not _blank(t)]
    if not filled or config.n_topics < 1:
        return [], topic_id, weight
    started = time.perf_counter()
    # Small corpora keep every term; larger ones drop terms of one text and terms in over half of them.
    many = len(filled) >= 20
    vectorizer = TfidfVectorizer(analyzer="word", token_pattern=TOKEN_PATTERN, preprocessor=_topic_text,
                                 stop_words=sorted(ENGLISH_STOP_WORDS | set(_TOPIC_EXTRA_STOP_WORDS)),
                                 sublinear_tf=True, min_df=MIN_DF if many else 1, max_df=0.5 if many else 1.0,
                                 max_features=config.max_features)
    try:
        X = vectorizer.fit_transform([masked[i] for i in filled])
    except ValueError:
        return [], topic_id, weight  # nothing but stop words, numbers and placeholders
    k = min(config.n_topics, len(filled), X.shape[1])
    nmf = NMF(n_components=k, init="nndsvda", random_state=config.seed, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a usable, and still deterministic, factorisation
        nmf.fit(X)
    clock["fit"] += time.perf_counter() - started

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W = nmf.transform(X)
    best = W.argmax(axis=1)
    top = W.max(axis=1)
    topic_id[filled] = np.where(top >= config.min_topic_weight, best, NO_TOPIC)
    weight[filled] = top
    clock["score"] += time.perf_counter() - started

    vocabulary = vectorizer.get_feature_names_out()
    topics = []
    for t, row in enumerate(nmf.components_):
        order = [j for j in np.argsort(-row, kind="stable")[:TOPIC_TERMS] if row[j] > 0]
        terms = [str(vocabulary[j]) for j in order]
        topics.append({"topic_id": t, "label": " / ".join(terms[:LABEL_TERMS]), "terms": terms})
    return topics, topic_id, weight


def _empty_scored() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({
        "source": pd.Series(dtype=str), "text_id": pd.Series(dtype=str), "text_masked": pd.Series(dtype=str),
        "language": pd.Series(dtype=str), "sentiment_score": pd.Series(dtype="float64"),
        "sentiment_label": pd.Series(dtype=str), "intent": pd.Series(dtype=object),
        "intent_source": pd.Series(dtype=object), "intent_confidence": pd.Series(dtype="Float64"),
        "needs_review": pd.Series(dtype=bool), "topic_id": pd.Series(dtype="int64"),
        "topic_weight": pd.Series(dtype="float64")})


def analyse(texts: pd.DataFrame, config: VocConfig = VocConfig()) -> VocResult:
    """Sentiment, intent and topic of every text, with held-out metrics and the models as JSON.

    `texts` has one row per text: `source` (ticket, review or survey), `text_id`, `created_at` (UTC), `text`
    (may contain personal data; masked here first), and where they apply `rating` (reviews, 1-5), `nps_score`
    (surveys, 0-10) and `category` (tickets, set by an agent; blank when unknown). `scored` keeps the input's
    row order.
    """
    import importlib

    from threadpoolctl import threadpool_limits

    # Imported before the clocks start, so the timings are the models' own.
    for module in ("sklearn.decomposition", "sklearn.feature_extraction.text", "sklearn.linear_model"):
        importlib.import_module(module)

    # One BLAS/OpenMP thread: the same bits on any machine, and on corpora of this size more threads cost more
    # than they give, above all when other steps of a run compete for the cores.
    with threadpool_limits(limits=1):
        return _analyse(texts, config)


def _analyse(texts: pd.DataFrame, config: VocConfig) -> VocResult:
    import numpy as np
    import pandas as pd

    frame = _prepare(texts)
    metrics: dict[str, float] = {"texts": float(len(frame))}
    for source in SOURCES:
        metrics[f"texts_{source}"] = float((frame["source"] == source).sum())
    params: dict[str, Any] = {
        "holdout_share": config.holdout_share, "intent_threshold": config.intent_threshold,
        "n_topics": config.n_topics, "min_topic_weight": config.min_topic_weight, "seed": config.seed,
        "max_features": config.max_features, "min_labelled": config.min_labelled, "logreg_c": config.logreg_c,
        "split": "time (latest rows held out)", "word_ngrams": "-".join(map(str, WORD_NGRAMS)),
        "char_wb_ngrams": "-".join(map(str, CHAR_NGRAMS)), "min_df": MIN_DF, "class_weight": "balanced",
        "vader_threshold": VADER_THRESHOLD, "scikit_learn": _version("scikit-learn"),
        "vadersentiment": _version("vaderSentiment"),
    }
    confusion: dict[str, dict[str, list]] = {}
    clock = {"fit": 0.0, "score": 0.0}

    sentiment = _sentiment(frame, config, metrics, params, confusion, clock)
    intent = _intent(frame, config, metrics, params, confusion, clock)

    masked = frame["text_masked"].tolist()
    started = time.perf_counter()
    scores = sentiment.predict(masked)
    tickets = np.flatnonzero((frame["source"] == "ticket").to_numpy())
    agent = np.asarray([c if isinstance(c, str) else None for c in frame["category"]], dtype=object)
    intent_value = np.full(len(frame), None, dtype=object)
    intent_source = np.full(len(frame), None, dtype=object)
    confidence = np.full(len(frame), np.nan)
    needs_review = np.zeros(len(frame), dtype=bool)
    by_agent = [i for i in tickets if agent[i] is not None]
    intent_value[by_agent] = agent[by_agent]
    intent_source[by_agent] = AGENT
    confidence[by_agent] = 1.0
    open_tickets = np.asarray([i for i in tickets if agent[i] is None], dtype=np.int64)
    if len(open_tickets):
        if intent is None:
            intent_source[open_tickets] = REVIEW
            needs_review[open_tickets] = True
        else:
            guessed = intent.predict([masked[i] for i in open_tickets])
            intent_value[open_tickets] = guessed["intent"].to_numpy(dtype=object)
            confidence[open_tickets] = guessed["intent_confidence"].to_numpy(dtype=float, na_value=np.nan)
            needs_review[open_tickets] = guessed["needs_review"].to_numpy()
            intent_source[open_tickets] = [REVIEW if r else MODEL for r in needs_review[open_tickets]]
    clock["score"] += time.perf_counter() - started

    topics, topic_id, topic_weight = _topics(masked, config, clock)
    counts = Counter(topic_id.tolist())
    params["topics"] = len(topics)

    scored = _empty_scored() if len(frame) == 0 else pd.DataFrame({
        "source": frame["source"].to_numpy(), "text_id": frame["text_id"].to_numpy(),
        "text_masked": masked, "language": frame["language"].to_numpy(),
        "sentiment_score": scores["sentiment_score"].to_numpy(dtype=float),
        "sentiment_label": scores["sentiment_label"].to_numpy(),
        "intent": pd.Series(intent_value, dtype=object), "intent_source": pd.Series(intent_source, dtype=object),
        "intent_confidence": pd.array(confidence, dtype="Float64"), "needs_review": needs_review,
        "topic_id": topic_id, "topic_weight": topic_weight})
    topics_frame = pd.DataFrame({
        "topic_id": pd.Series([t["topic_id"] for t in topics], dtype="int64"),
        "label": pd.Series([t["label"] for t in topics], dtype=str),
        "terms": pd.Series([", ".join(t["terms"]) for t in topics], dtype=str),
        "texts": pd.Series([counts.get(t["topic_id"], 0) for t in topics], dtype="int64")})

    surveys = (frame["source"] == "survey").to_numpy() & frame["nps_label"].notna().to_numpy() \
        & ~frame["blank"].to_numpy()
    truth = frame.loc[surveys, "nps_label"].tolist()
    vader = [vader_label(c) for c in vader_compound(frame.loc[surveys, "text_masked"].tolist())]
    metrics["sentiment_accuracy_survey"] = _accuracy(truth, scored.loc[surveys, "sentiment_label"].tolist())
    metrics["vader_accuracy_survey"] = _accuracy(truth, vader)
    metrics["survey_rows"] = float(len(truth))
    metrics["needs_review_rows"] = float(needs_review.sum())
    metrics["untopiced_rows"] = float(counts.get(NO_TOPIC, 0))
    metrics["fit_seconds"] = clock["fit"]
    metrics["score_seconds"] = clock["score"]
    metrics["texts_per_second"] = len(frame) / clock["score"] if clock["score"] > 0 else float("nan")

    model_json = {"format": MODEL_FORMAT, "sentiment": sentiment.to_json(),
                  "intent": None if intent is None else intent.to_json(),
                  "topics": [{"topic_id": t["topic_id"], "label": t["label"], "terms": t["terms"]} for t in topics]}
    return VocResult(scored=scored, topics=topics_frame, metrics=metrics, params=params, confusion=confusion,
                     model_json=model_json)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def confusion_figure(name: str, confusion: dict[str, list]):
    """A confusion matrix as a heatmap, counts written in the cells (rows true, columns predicted)."""
    import numpy as np

    from ml.plots import plt

    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2.5, 1.0 * len(labels) + 1.5))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{name}: held-out confusion (accuracy {accuracy:.3f})")
    fig.tight_layout()
    return fig


def log_run(result: VocResult, store: Store, tags: dict[str, str]) -> str:
    """Log one analysis to the `cxloop-voc` experiment of `store` (created as training creates its own) and
    return the run id. Logged: params, metrics, the confusion matrices (JSON and plots), `topics.json` and `voc_models.json`
    (vocabularies and coefficients, built from masked text). Never a text, an example or an input sample.
    """
    import mlflow

    from ml.plots import plt
    from ml.tracking import store_errors

    with store_errors(store.tracking_uri, lambda: "logging a voice-of-the-customer run"):
        client = store.client()
        experiment_id = store.experiment_id(client, EXPERIMENT)
        run_tags = {"cxloop.kind": "voc", **tags}
        with mlflow.start_run(experiment_id=experiment_id, run_name="voice of the customer", tags=run_tags) as run:
            mlflow.log_params({k: (v if not isinstance(v, str) else v[:500]) for k, v in result.params.items()})
            mlflow.log_metrics({k: float(v) for k, v in result.metrics.items() if math.isfinite(v)})
            mlflow.log_dict(result.confusion, "confusion.json")
            for name, matrix in result.confusion.items():
                fig = confusion_figure(name, matrix)
                mlflow.log_figure(fig, f"plots/confusion_{name}.png")
                plt.close(fig)
            mlflow.log_dict({"topics": result.topics.to_dict(orient="records")}, "topics.json")
            mlflow.log_dict(result.model_json, "voc_models.json")
            return run.info.run_id
