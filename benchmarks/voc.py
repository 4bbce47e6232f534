"""The voice-of-the-customer models on a simulated shop: held-out sentiment and intent accuracy next to VADER and
the majority class, intent coverage, and how fast texts are scored.

    .venv/bin/python benchmarks/voc.py                                   # 2 000 customers, 365 days
    .venv/bin/python benchmarks/voc.py --customers 800 --days 150 --seed 5

Simulates the shop's tickets, reviews and surveys into a temporary landing folder, reads their CSVs straight
from it (ticket subject + body, review title + body, survey comment) and runs `ml.voc.analyse` on them; no
platform run is needed. The last line is a JSON object of the figures.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import shop_arguments  # noqa: E402

SOURCES = {"tickets": "ticket", "reviews": "review", "surveys": "survey"}


def _read(folder: Path, id_column: str):
    """Every delivery of one source, the last delivery of each id kept; a row the CSV reader cannot split (a
    planted extra field) is skipped."""
    import pandas as pd

    frames = [pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
              for path in sorted(folder.glob("*/*.csv"))]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame.drop_duplicates(id_column, keep="last").reset_index(drop=True)


def _joined(first, second):
    return [("\n".join(p for p in (a.strip(), b.strip()) if p)) for a, b in zip(first, second)]


def _integers(values):
    """Whole numbers, missing where the text is none (`five`, `4.5`): the platform quarantines those rows."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.where(numbers.round() == numbers).astype("Int64")


def landing_texts(landing: Path):
    """The texts of the landing folder in `ml.voc.analyse`'s shape."""
    import pandas as pd

    def when(values):
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")

    tickets = _read(landing / "tickets", "ticket_id")
    reviews = _read(landing / "reviews", "review_id")
    surveys = _read(landing / "surveys", "response_id")
    parts = [
        pd.DataFrame({"source": "ticket", "text_id": tickets["ticket_id"], "created_at": when(tickets["created_at"]),
                      "text": _joined(tickets["subject"], tickets["body"]), "rating": None, "nps_score": None,
                      "category": tickets["category"]}),
        pd.DataFrame({"source": "review", "text_id": reviews["review_id"], "created_at": when(reviews["created_at"]),
                      "text": _joined(reviews["title"], reviews["body"]),
                      "rating": _integers(reviews["rating"]),
                      "nps_score": None, "category": None}),
        pd.DataFrame({"source": "survey", "text_id": surveys["response_id"],
                      "created_at": when(surveys["submitted_at"]), "text": surveys["comment"], "rating": None,
                      "nps_score": _integers(surveys["score"]),
                      "category": None}),
    ]
    return pd.concat(parts, ignore_index=True)


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def main() -> int:
    args = shop_arguments(__doc__.splitlines()[0]).parse_args()

    import simulator
    from ml.voc import analyse

    with tempfile.TemporaryDirectory(prefix="cxloop-voc-") as folder:
        root = Path(folder)
        simulator.generate(customers=args.customers, days=args.days, seed=args.seed, out=root / "landing",
                           truth=root / "truth", sources=list(SOURCES), progress=False)
        texts = landing_texts(root / "landing")
    texts = texts[texts["text"].str.strip() != ""].reset_index(drop=True)
    result = analyse(texts)
    m = result.metrics

    print(f"shop: {args.customers} customers, {args.days} days, seed {args.seed}")
    print(f"texts: {len(texts):,} (" + ", ".join(f"{s} {int(m[f'texts_{s}']):,}" for s in SOURCES.values()) + ")")
    languages = result.scored["language"].value_counts()
    print("languages:", ", ".join(f"{k} {v:,}" for k, v in languages.items()))
    print(f"fit {m['fit_seconds']:.1f} s; scoring {m['score_seconds']:.2f} s ({m['texts_per_second']:,.0f} texts/s)")
    print(f"sentiment ({result.params['sentiment_model']}; trained on {int(m['sentiment_train_rows']):,} reviews, "
          f"held out the latest {int(m['sentiment_holdout_rows']):,}):")
    print(f"  {'':<16} {'model':>7} {'VADER':>7} {'majority':>8}")
    print(f"  {'accuracy':<16} {_fmt(m['sentiment_accuracy']):>7} {_fmt(m['vader_accuracy']):>7} "
          f"{_fmt(m['majority_accuracy']):>8}")
    print(f"  {'macro F1':<16} {_fmt(m['sentiment_macro_f1']):>7} {_fmt(m['vader_macro_f1']):>7}")
    languages_scored = sorted(k.removeprefix("sentiment_accuracy_") for k in m
                              if k.startswith("sentiment_accuracy_") and k != "sentiment_accuracy_survey")
    for language in languages_scored:
        print(f"  {'accuracy ' + language:<16} {_fmt(m[f'sentiment_accuracy_{language}']):>7} "
              f"{_fmt(m.get(f'vader_accuracy_{language}')):>7}   ({int(m[f'sentiment_holdout_rows_{language}'])} rows)")
    print(f"  {'NPS comments':<16} {_fmt(m['sentiment_accuracy_survey']):>7} {_fmt(m['vader_accuracy_survey']):>7}"
          f"   ({int(m['survey_rows']):,} comments vs the NPS score's label; never trained on)")
    print(f"intent ({result.params['intent_model']}; trained on {int(m['intent_train_rows']):,} tickets, held out "
          f"{int(m['intent_holdout_rows']):,}):")
    print(f"  accuracy {_fmt(m['intent_accuracy'])}, macro F1 {_fmt(m['intent_macro_f1'])}, majority "
          f"{_fmt(m['intent_majority_accuracy'])}")
    print(f"  coverage at threshold {result.params['intent_threshold']}: {_fmt(m['intent_coverage'])}, accuracy "
          f"there {_fmt(m['intent_accuracy_confident'])}; tickets for review: {int(m['needs_review_rows']):,}")
    print(f"topics ({len(result.topics)}; {int(m['untopiced_rows']):,} texts without one):")
    for row in result.topics.itertuples():
        print(f"  {row.topic_id:>2} {row.label:<40} {row.texts:>6,}")
    model_mb = len(json.dumps(result.model_json)) / 1e6
    print(f"models as JSON: {model_mb:.2f} MB")
    figures = {"customers": args.customers, "days": args.days, "seed": args.seed, "texts": len(texts),
               **{f"texts_{s}": int(m[f"texts_{s}"]) for s in SOURCES.values()},
               "sentiment_model": result.params["sentiment_model"], "intent_model": result.params["intent_model"],
               **{k: (round(v, 4) if math.isfinite(v) else None) for k, v in sorted(m.items())
                  if "accuracy" in k or "macro_f1" in k or k.startswith("intent_coverage")},
               "fit_seconds": round(m["fit_seconds"], 2), "score_seconds": round(m["score_seconds"], 3),
               "texts_per_second": round(m["texts_per_second"]), "topics": len(result.topics),
               "model_json_mb": round(model_mb, 2)}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
