"""Real transactions through the whole platform: CDNOW, scored after 39 weeks, judged on the next 39.

    .venv/bin/python benchmarks/cdnow.py            # 23,570 customers (make bench-cdnow)
    .venv/bin/python benchmarks/cdnow.py --sample   # the 1/10 sample, 2,357 customers

The simulator cannot tell whether the models work on purchases made by people, so this lands the CDNOW
transactions (shipped with `lifetimes`) as a shop's `customers` and `orders` and runs `platform_job` in a
fresh installation. The split is the one of Fader, Hardie & Lee (2005): calibration to 1997-09-30, holdout
the 39 weeks to 1998-06-30. Only calibration days are landed, so no holdout purchase can reach a feature, a
label or a model; the holdout truth is computed here from the file itself and joined to the scores through
the customers' pseudonyms.

Two predictors are judged on the holdout: the platform's LightGBM models (`marts.customer_scores` as of
1997-10-01, or the registered challenger when the platform promoted none, which the output states) and BG/NBD + Gamma-Gamma (`ml.baselines`) fitted on the scoring-cutoff rows of
`features.customer_features`, i.e. on the same calibration history. The platform's horizon and cutoffs are
fixed before looking at the holdout: a 13-week horizon fits twice into the 39 calibration weeks. LightGBM
therefore predicts 13 weeks while the holdout is 39 weeks long; ROC AUC, Gini and Spearman only compare
orders, so they are unaffected by that scale, and the 13-week table measures both on the horizon LightGBM
was trained for.

The last line printed is one JSON object of headline figures.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import (  # noqa: E402
    failures,
    fresh_installation,
    judged_versions,
    peak_rss_gb,
    run_platform,
    step_seconds,
    training_metadata,
)

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_WEEKS = 39
HOLDOUT_DAYS = HOLDOUT_WEEKS * 7
HOLDOUT_END = CALIBRATION_END + timedelta(days=HOLDOUT_DAYS)
PLATFORM_HORIZON_DAYS = 91
PLATFORM_ENV = {
    "CXLOOP_HORIZON_DAYS": str(PLATFORM_HORIZON_DAYS),
    "CXLOOP_CUTOFF_STEP_DAYS": "14",
    "CXLOOP_TRAIN_CUTOFFS": "6",
}
BENCH_KEY = "cdnow-benchmark-key"
# CDNOW records days, not times: noon UTC keeps every order on its day whatever zone a reader uses.
ORDER_TIME = "T12:00:00+00:00"
SCHEMA_KEYS = ("customers", "calibration_end", "holdout_weeks", "churn_auc_lightgbm", "churn_auc_bgnbd",
               "spend_gini_lightgbm", "spend_gini_bgnbd", "spend_spearman_lightgbm", "spend_spearman_bgnbd",
               "pipeline_s")


def dataset_path(sample: bool) -> Path:
    """The file inside the installed `lifetimes` wheel, found without importing the package."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise SystemExit("lifetimes is not installed in this environment")
    name = "CDNOW_sample.txt" if sample else "CDNOW_master.txt"
    return Path(spec.origin).parent / "datasets" / name


def read_transactions(path: Path) -> pd.DataFrame:
    """One row per CDNOW line.

    The master file has a header and four columns (id, date, CDs, dollars); the sample has no header and an
    extra customer index after the id. Both end in date, quantity, spend, so those are read from the right.
    Spend stays as written (two decimals) for the landing files; `spend_usd` is its number.
    """
    rows = []
    with path.open() as fh:
        for line in fh:
            fields = line.split()
            if not fields or not fields[0].isdigit():
                continue
            rows.append((fields[0], fields[-3], int(fields[-2]), fields[-1]))
    tx = pd.DataFrame(rows, columns=["customer_id", "day", "quantity", "spend"])
    tx["day"] = pd.to_datetime(tx["day"], format="%Y%m%d").dt.date
    tx["spend_usd"] = tx["spend"].astype(float)
    tx["order_id"] = [f"cdnow-{i:06d}" for i in range(1, len(tx) + 1)]
    return tx


def write_landing(calibration: pd.DataFrame, landing: Path) -> dict[str, int]:
    """Calibration transactions as contract files, each delivered on the day it describes.

    A customer is delivered with their first purchase and signed up at it: CDNOW knows nothing else about
    them, so the optional columns get neutral values and no PII is made up.
    """
    first = calibration.groupby("customer_id")["day"].min()
    files = 0
    for day, ids in first.groupby(first).groups.items():
        folder = landing / "customers" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "customers.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["customer_id", "signup_at", "country", "marketing_consent", "updated_at"])
            stamp = day.isoformat() + ORDER_TIME
            out.writerows([cid, stamp, "US", "false", stamp] for cid in sorted(ids))
        files += 1
    for day, orders in calibration.groupby("day"):
        folder = landing / "orders" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = day.isoformat() + ORDER_TIME
        with (folder / "orders.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["order_id", "customer_id", "ordered_at", "status", "currency", "total_amount",
                          "items", "channel", "updated_at"])
            out.writerows([o.order_id, o.customer_id, stamp, "completed", "USD", o.spend, o.quantity, "web", stamp]
                          for o in orders.itertuples(index=False))
        files += 1
    return {"files": files, "customers": len(first), "orders": len(calibration),
            "days": calibration["day"].nunique()}


def holdout_truth(tx: pd.DataFrame, population: pd.Index) -> pd.DataFrame:
    """Per calibration customer: purchases and spend in the 39 holdout weeks and in their first 13."""
    after = tx[(tx["day"] > CALIBRATION_END) & (tx["day"] <= HOLDOUT_END)]
    first13 = after[after["day"] <= CALIBRATION_END + timedelta(days=PLATFORM_HORIZON_DAYS)]
    truth = pd.DataFrame(index=population)
    truth["holdout_orders"] = after.groupby("customer_id").size().reindex(population, fill_value=0)
    truth["holdout_spend"] = after.groupby("customer_id")["spend_usd"].sum().reindex(population, fill_value=0.0)
    truth["orders_13w"] = first13.groupby("customer_id").size().reindex(population, fill_value=0)
    truth["spend_13w"] = first13.groupby("customer_id")["spend_usd"].sum().reindex(population, fill_value=0.0)
    truth["churned"] = (truth["holdout_orders"] == 0).astype(float)
    truth["churned_13w"] = (truth["orders_13w"] == 0).astype(float)
    return truth


def read_platform_outputs(settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    import duckdb

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        scores = con.execute("select customer_key, as_of_date, churn_probability, predicted_ltv_usd "
                             "from marts.customer_scores").df()
        features = con.execute("select * from features.customer_features where cutoff_role = 'score'").df()
    finally:
        con.close()
    return scores, features


def lightgbm_scores(settings, platform_scores: pd.DataFrame, features: pd.DataFrame
                    ) -> tuple[pd.DataFrame, dict[str, str]]:
    """The platform's LightGBM scores, and which registered version made each.

    `customer_scores` leaves a model's columns null while it has no champion: the promotion gate keeps a
    candidate that lost to its baselines on the evaluation cutoff from being served. The candidate is still
    registered (alias `challenger`), so it is scored here on the same scoring rows and with the same code as
    the asset, and the output says so: what is measured is the model the platform trained, whether or not it
    would be served.
    """
    from ml.config import CHAMPION, MODEL_NAMES
    from ml.dataset import build_scoring
    from ml.score import Champion, score
    from ml.tracking import load_booster

    chosen = judged_versions(settings)
    used = {kind: f"{MODEL_NAMES[kind]} v{version} ({alias})" for kind, (version, alias) in chosen.items()}
    if len(platform_scores) and all(alias == CHAMPION for _, alias in chosen.values()):
        return platform_scores, used
    boosters = {kind: Champion(kind, version, load_booster(MODEL_NAMES[kind], version))
                for kind, (version, alias) in chosen.items()}
    scored = score(build_scoring(features), boosters, settings.horizon_days)
    return scored[["customer_key", "as_of_date", "churn_probability", "predicted_ltv_usd"]], used


def ranking(actual_churn, churn_score, actual_spend, spend_score) -> dict[str, float]:
    from ml.metrics import churn_metrics, ltv_metrics

    ltv = ltv_metrics(actual_spend, spend_score)
    return {"churn_auc": churn_metrics(actual_churn, churn_score)["roc_auc"],
            "spend_gini": ltv["normalized_gini"], "spend_spearman": ltv["spearman"],
            "predicted_total": ltv["total_predicted"], "actual_total": ltv["total_actual"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="the 1/10 sample (2,357 customers)")
    parser.add_argument("--workdir", type=Path,
                        help="installation folder, must be empty or absent; kept (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary installation")
    args = parser.parse_args(argv)

    if args.workdir is not None:
        root = args.workdir.expanduser().resolve()
        if root.exists() and any(root.iterdir()):
            parser.error(f"--workdir {root} is not empty: the benchmark needs a fresh installation")
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="cxloop-cdnow-"))
    try:
        return run(args, root)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, root: Path) -> int:
    timings: dict[str, float] = {}
    source = dataset_path(args.sample)
    tx = read_transactions(source)
    calibration = tx[tx["day"] <= CALIBRATION_END]

    settings = fresh_installation(root, BENCH_KEY, PLATFORM_ENV)
    t0 = time.perf_counter()
    landed = write_landing(calibration, settings.landing_dir)
    timings["write landing files"] = time.perf_counter() - t0
    print(f"CDNOW {source.name}: {tx['customer_id'].nunique():,} customers, {len(tx):,} transactions "
          f"{tx['day'].min()} to {tx['day'].max()}; {(tx['spend_usd'] == 0).sum()} with spend 0")
    print(f"landed calibration only (to {CALIBRATION_END}): {landed['customers']:,} customers, "
          f"{landed['orders']:,} orders on {landed['days']} days, {landed['files']} files in {settings.landing_dir}")
    print("platform settings: " + ", ".join(f"{k}={v}" for k, v in PLATFORM_ENV.items()), flush=True)

    from ml.baselines import BGNBDGammaGamma
    from ml.config import PRIMARY_METRIC
    from ml.metrics import churn_metrics
    from orchestration.cli import prepare
    from orchestration.lib.pseudonymize import pseudonym

    t0 = time.perf_counter()
    prepare(settings, quiet=True)
    timings["prepare (dbt parse)"] = time.perf_counter() - t0

    log_path = root / "run.log"
    result, pipeline_s = run_platform(settings, log_path)
    timings["platform_job"] = pipeline_s
    if not result.success:
        print(f"platform_job failed after {pipeline_s:.1f} s (dbt output in {log_path}, kept with --keep or "
              "--workdir):", file=sys.stderr)
        for line in failures(result)[:10]:
            print(f"  {line[:2000]}", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    platform_scores, features = read_platform_outputs(settings)
    scores, lightgbm_models = lightgbm_scores(settings, platform_scores, features)
    population = pd.Index(sorted(calibration["customer_id"].unique()), name="customer_id")
    truth = holdout_truth(tx, population)
    key = settings.pseudonym_key()
    truth["customer_key"] = [pseudonym(key, "customer_id", cid) for cid in population]

    as_of = sorted(str(d) for d in pd.to_datetime(scores["as_of_date"]).dt.date.unique())
    scored = truth.join(scores.set_index("customer_key"), on="customer_key", how="inner")
    unscored = truth[~truth["customer_key"].isin(scores["customer_key"])]
    unknown_scores = int((~scores["customer_key"].isin(truth["customer_key"])).sum())

    bgnbd = BGNBDGammaGamma().fit(features)
    rows = features.set_index("customer_key").reindex(scored["customer_key"])
    missing_features = int(rows["first_purchase_age_days"].isna().sum())
    bg_churn = bgnbd.churn_probability(rows, HOLDOUT_DAYS)
    bg_spend = bgnbd.expected_revenue(rows, HOLDOUT_DAYS)
    bg_purchases = bgnbd.expected_purchases(rows, HOLDOUT_DAYS)
    bg_churn_13w = bgnbd.churn_probability(rows, PLATFORM_HORIZON_DAYS)
    bg_spend_13w = bgnbd.expected_revenue(rows, PLATFORM_HORIZON_DAYS)

    y, spend = scored["churned"].to_numpy(), scored["holdout_spend"].to_numpy()
    y13, spend13 = scored["churned_13w"].to_numpy(), scored["spend_13w"].to_numpy()
    lgb_churn, lgb_spend = scored["churn_probability"].to_numpy(), scored["predicted_ltv_usd"].to_numpy()
    full = {"LightGBM": ranking(y, lgb_churn, spend, lgb_spend),
            "BG/NBD + Gamma-Gamma": ranking(y, bg_churn, spend, bg_spend)}
    first13 = {"LightGBM": ranking(y13, lgb_churn, spend13, lgb_spend),
               "BG/NBD + Gamma-Gamma": ranking(y13, bg_churn_13w, spend13, bg_spend_13w)}
    auc_by_purchases = churn_metrics(y, 1 / (1 + bg_purchases))["roc_auc"]
    timings["evaluate"] = time.perf_counter() - t0

    print()
    print(f"platform_job succeeded in {pipeline_s:.1f} s; marts.customer_scores: {len(platform_scores):,} rows")
    for name, meta in training_metadata(result).items():
        metric = PRIMARY_METRIC[name.removesuffix("_model")]
        baselines = ", ".join(f"{k.removeprefix('baseline_').removesuffix('_' + metric)} {v:.4f}"
                              for k, v in meta.items() if k.startswith("baseline_"))
        print(f"  {name}: {meta.get('model')} -> {meta.get('alias')}; on the platform's evaluation cutoff "
              f"{str(meta.get('eval_cutoff'))[:10]} {metric} {meta.get(metric, float('nan')):.4f} "
              f"(baselines: {baselines}); {meta.get('train_rows')} training rows from cutoffs "
              f"{meta.get('train_cutoffs')}")
    if len(platform_scores) and all(m.endswith("(champion)") for m in lightgbm_models.values()):
        print(f"LightGBM scores: marts.customer_scores as of {', '.join(as_of)}")
    else:
        print(f"LightGBM scores: NOT SERVED by the platform (no champion, see above); the registered models "
              f"{', '.join(lightgbm_models.values())} score the {len(scores):,} scoring rows as of {', '.join(as_of)}")
    print(f"holdout population: {len(truth):,} calibration customers; scored {len(scored):,}; "
          f"without a score row {len(unscored):,}; score rows of unknown customers {unknown_scores}")
    if len(unscored):
        print(f"  NOT SCORED (excluded from every metric below): {', '.join(unscored.index[:20])}"
              + (" ..." if len(unscored) > 20 else ""))
    if missing_features:
        print(f"  {missing_features} scored customers have no scoring-cutoff features row (BG/NBD cannot use them)")
    print(f"BG/NBD fit on {len(features):,} scoring-cutoff rows: "
          + ", ".join(f"{k} {v:.4g}" for k, v in bgnbd.params.items()))
    churn_rate = float(y.mean())
    print(f"holdout {CALIBRATION_END + timedelta(days=1)} to {HOLDOUT_END} ({HOLDOUT_WEEKS} weeks): "
          f"churn rate {churn_rate:.3f}, spend {spend.sum():,.2f} USD")
    print()
    print(f"{'39-week holdout':<24} {'churn ROC AUC':>14} {'spend Gini':>11} {'spend Spearman':>15}")
    for name, m in full.items():
        print(f"{name:<24} {m['churn_auc']:>14.4f} {m['spend_gini']:>11.4f} {m['spend_spearman']:>15.4f}")
    print(f"BG/NBD predicts {full['BG/NBD + Gamma-Gamma']['predicted_total']:,.0f} USD of "
          f"{spend.sum():,.0f} USD holdout spend "
          f"({full['BG/NBD + Gamma-Gamma']['predicted_total'] / spend.sum():.1%}); ranking customers by BG/NBD "
          f"expected purchases instead of P(no purchase) gives churn ROC AUC {auc_by_purchases:.4f}")
    print()
    print(f"{'first 13 weeks only':<24} {'churn ROC AUC':>14} {'spend Gini':>11} {'spend Spearman':>15}")
    for name, m in first13.items():
        print(f"{name:<24} {m['churn_auc']:>14.4f} {m['spend_gini']:>11.4f} {m['spend_spearman']:>15.4f}")
    print(f"13-week spend {spend13.sum():,.0f} USD; predicted: LightGBM {lgb_spend.sum():,.0f} USD "
          f"({lgb_spend.sum() / spend13.sum():.1%}), BG/NBD {bg_spend_13w.sum():,.0f} USD "
          f"({bg_spend_13w.sum() / spend13.sum():.1%})")
    print("(LightGBM predicts 13-week revenue; ROC AUC, Gini and Spearman compare rankings, not scale)")
    print()
    print("timings:")
    for stage, seconds in timings.items():
        print(f"  {stage:<59} {seconds:8.1f} s")
    for step, seconds in list(step_seconds(result).items())[:8]:
        print(f"    step {step:<54} {seconds:8.1f} s")
    print(f"  peak RSS (this process and its children): {peak_rss_gb():.2f} GB")
    if args.workdir is not None or args.keep:
        print(f"installation kept in {root}")

    lgb, bg = full["LightGBM"], full["BG/NBD + Gamma-Gamma"]
    summary = {
        "customers": int(tx["customer_id"].nunique()),
        "calibration_end": CALIBRATION_END.isoformat(),
        "holdout_weeks": HOLDOUT_WEEKS,
        "churn_auc_lightgbm": round(lgb["churn_auc"], 4),
        "churn_auc_bgnbd": round(bg["churn_auc"], 4),
        "spend_gini_lightgbm": round(lgb["spend_gini"], 4),
        "spend_gini_bgnbd": round(bg["spend_gini"], 4),
        "spend_spearman_lightgbm": round(lgb["spend_spearman"], 4),
        "spend_spearman_bgnbd": round(bg["spend_spearman"], 4),
        "pipeline_s": round(pipeline_s, 1),
        "scored": int(len(scored)),
        "customer_scores_rows": int(len(platform_scores)),
        "lightgbm_models": lightgbm_models,
        "unscored": int(len(unscored)),
        "as_of_date": as_of[0] if len(as_of) == 1 else as_of,
        "holdout_churn_rate": round(churn_rate, 4),
        "bgnbd_predicted_spend_share": round(bg["predicted_total"] / bg["actual_total"], 4),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }
    assert all(k in summary for k in SCHEMA_KEYS)
    print(json.dumps(summary))
    return 0 if all(math.isfinite(summary[k]) for k in SCHEMA_KEYS if isinstance(summary[k], float)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
