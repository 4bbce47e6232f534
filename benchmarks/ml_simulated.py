"""Churn and LTV models on the simulated shop, next to the ceiling the simulator's hidden state allows.

    .venv/bin/python benchmarks/ml_simulated.py                        # 2,000 and 20,000 customers, 365 days
    .venv/bin/python benchmarks/ml_simulated.py --sizes 2000 --keep /tmp/ml-bench

Real data never says how good a churn model could be. The simulator can: it knows each customer's latent
purchase rates and churn hazard, so the probability that a customer places no completed order in the label
horizon can be computed from the truth files and ranked against the same labels the model is judged on. That
AUC is the ceiling; the gap between it and the model is what better features or models could still win.

Per size, in a fresh installation (a temporary folder, or under `--keep`): simulate the shop, run
`platform_job` in process as `make run` does (default settings: 90-day horizon, six training cutoffs 30 days
apart), then on the rows of the evaluation cutoff

- re-predict with the registered churn and LTV champions and check that the AUC and Gini agree with the
  training run's metadata, next to the BG/NBD baseline's figures from the same metadata;
- rank the same rows by the ceiling probability (see `ceiling_churn_probability`).

Training cost is measured apart from the platform run: a child process (`--train-only`) reads the
installation's `customer_features`/`customer_labels` and runs `ml.train.train` for churn and LTV into a
scratch MLflow store, timing each kind and reporting its own peak RSS (VmHWM).

A table goes to stdout, and as the last line one JSON object with the figures of every size.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import (  # noqa: E402
    fresh_installation,
    judged_versions,
    run_platform,
    step_seconds,
    training_metadata,
)

BENCH_KEY = "ml-simulated-benchmark-key"
SCRATCH_MLFLOW = "bench-train-mlflow"
TRAINING_REPORT = "bench-training.json"
SCHEMA_KEYS = ("customers", "days", "events", "orders", "train_rows", "eval_rows", "n_features",
               "churn_auc_model", "churn_auc_ceiling", "churn_auc_bgnbd", "ltv_gini_model", "ltv_gini_bgnbd",
               "train_s_churn", "train_s_ltv", "train_peak_rss_gb", "platform_s")


def daily_order_rate(truth: pd.DataFrame) -> np.ndarray:
    """Expected completed (or later refunded) orders per active day, from the latent rates in the truth.

    Mirrors `simulator.world`: online, Poisson(browse_rate) sessions a day (x1.15 at weekends, at most two),
    each ordering with P_VIEW * p_add * P_ORDER_GIVEN_ADD (checkout lift for the treatment group), where p_add
    is the clipped value the simulator derives from purchase_rate (orders per 30 days); in store,
    Poisson(store_rate / 30). Online orders whose payment finally fails or that the customer cancels do not
    count as purchases in the labels. Ignored: the one-day incidents, days a device is not logged in, and the
    delay before a store customer's device becomes active.
    """
    from simulator import catalog, world

    if world.MAX_SESSIONS_PER_DAY != 2:
        raise SystemExit("daily_order_rate assumes at most two sessions a day; update it with simulator.world")
    browse = truth["browse_rate"].to_numpy(float)

    def sessions(rate: np.ndarray) -> np.ndarray:
        return 2.0 - np.exp(-rate) * (2.0 + rate)  # E[min(Poisson(rate), 2)]

    per_day = (5 * sessions(browse) + 2 * sessions(1.15 * browse)) / 7
    per_day = np.where(truth["devices"].to_numpy() > 0, per_day, 0.0)
    p_add = np.clip(truth["purchase_rate"].to_numpy(float) / 30 / (browse * world.P_VIEW * world.P_ORDER_GIVEN_ADD),
                    0.02, 0.9)
    lift = 1 + catalog.EXPERIMENTS[0]["planted_relative_lift"] * (truth["checkout_button_variation"] == "treatment")
    per_session = world.P_VIEW * p_add * world.P_ORDER_GIVEN_ADD * lift.to_numpy(float)
    f, r, s = world.P_PAYMENT_FAILURE, world.P_RETRY_AFTER_FAILURE, world.P_RETRY_SUCCEEDS
    payment_lost = f * ((1 - r) + r * (1 - s) * (0.5 + 0.5 * (1 - s)))
    refund = world.P_LATE_DELIVERY * world.P_REFUND_IF_LATE + (1 - world.P_LATE_DELIVERY) * world.P_REFUND
    counted = (1 - payment_lost) * (1 - (1 - refund) * world.P_CUSTOMER_CANCEL)
    return per_day * per_session * counted + truth["store_rate"].to_numpy(float) / 30


def ceiling_churn_probability(rows: pd.DataFrame, horizon_days: int, use_bad_experiences: bool = True) -> np.ndarray:
    """P(no counted order in the horizon) from the customer's latent state at the cutoff.

    Churned before the cutoff: 1. Alive: churn (daily hazard h) and orders (daily rate mu) compete, so
    P = h/(h+mu) * (1 - exp(-(h+mu)H)) + exp(-(h+mu)H). The simulator's hazard is base_hazard * (1 + 1.5 x bad
    experiences so far); the truth keeps only the final count and the time of the first, so the count known
    at the cutoff is taken as 0 before the first bad experience and the final count after it (bad experiences
    later in the horizon are not foreseen either).
    """
    from simulator import world

    cutoff = pd.to_datetime(rows["cutoff_date"])
    churned_at = pd.to_datetime(rows["churned_at"])
    first_bad = pd.to_datetime(rows["first_bad_experience_at"], utc=True).dt.tz_localize(None)
    known_bad = np.where(first_bad.notna() & (first_bad < cutoff), rows["bad_experiences"].to_numpy(float), 0.0)
    if not use_bad_experiences:
        known_bad = np.zeros(len(rows))
    h = rows["base_hazard"].to_numpy(float) * (1 + world.HAZARD_PER_BAD_EXPERIENCE * known_bad)
    mu = rows["order_rate"].to_numpy(float)
    total = h + mu
    stay = np.exp(-total * horizon_days)
    alive = np.where(total > 0, h / np.where(total > 0, total, 1.0), 0.0) * (1 - stay) + stay
    return np.where(churned_at.notna() & (churned_at < cutoff), 1.0, alive)


def read_truth(settings) -> pd.DataFrame:
    from orchestration.lib.pseudonymize import pseudonym

    truth = pd.read_csv(settings.truth_dir / "customers.csv", dtype={"customer_id": str})
    key = settings.pseudonym_key()
    truth["customer_key"] = [pseudonym(key, "customer_id", cid) for cid in truth["customer_id"]]
    truth["order_rate"] = daily_order_rate(truth)
    return truth


def judge(settings, truth: pd.DataFrame) -> dict:
    """AUCs and Ginis on the evaluation cutoff: registered models re-predicted, and the ceiling."""
    from sklearn.metrics import roc_auc_score

    from ml.config import MODEL_NAMES
    from ml.dataset import build
    from ml.metrics import normalized_gini
    from ml.models import predict
    from ml.tracking import load_booster
    from ml.train import baseline_predictions
    from orchestration.lib.models import read_training_tables

    features, labels = read_training_tables(settings)
    ds = build(features, labels)
    ev = ds.evaluate
    chosen = judged_versions(settings)
    churn_p = predict(load_booster(MODEL_NAMES["churn"], chosen["churn"][0]), ev.X)
    ltv_p = predict(load_booster(MODEL_NAMES["ltv"], chosen["ltv"][0]), ev.X)

    bgnbd_p = baseline_predictions("churn", ds)["bgnbd"]

    rows = ev.keys.merge(truth, on="customer_key", how="left", validate="many_to_one")
    matched = rows["customer_id"].notna().to_numpy()
    y = ev.churned[matched]
    rows = rows[matched]
    ceiling = ceiling_churn_probability(rows, ds.horizon_days)
    ceiling_no_bad = ceiling_churn_probability(rows, ds.horizon_days, use_bad_experiences=False)
    cutoff = pd.to_datetime(rows["cutoff_date"])
    churned_before = (pd.to_datetime(rows["churned_at"]) < cutoff).to_numpy()
    # Customers still alive at the cutoff are where ranking is hard: everyone already gone is a sure churner,
    # and separating them from the rest carries most of the AUC on all rows.
    alive = ~churned_before
    return {
        "eval_cutoff": str(ds.eval_cutoff)[:10],
        "horizon_days": ds.horizon_days,
        "eval_rows": len(ev),
        "eval_rows_without_truth": int((~matched).sum()),
        "eval_churn_rate": round(float(ev.churned.mean()), 4),
        "eval_churned_before_cutoff": round(float(churned_before.mean()), 4),
        "churn_model": f"{MODEL_NAMES['churn']} v{chosen['churn'][0]} ({chosen['churn'][1]})",
        "ltv_model": f"{MODEL_NAMES['ltv']} v{chosen['ltv'][0]} ({chosen['ltv'][1]})",
        "churn_auc_model": float(roc_auc_score(y, churn_p[matched])),
        "churn_auc_ceiling": float(roc_auc_score(y, ceiling)),
        "churn_auc_ceiling_without_bad_experiences": float(roc_auc_score(y, ceiling_no_bad)),
        "churn_auc_bgnbd_recomputed": float(roc_auc_score(ev.churned, bgnbd_p)),
        "eval_alive_rows": int(alive.sum()),
        "eval_alive_churn_rate": float(y[alive].mean()),
        "ceiling_alive_mean_probability": float(ceiling[alive].mean()),
        "churn_auc_model_alive": float(roc_auc_score(y[alive], churn_p[matched][alive])),
        "churn_auc_bgnbd_alive": float(roc_auc_score(y[alive], bgnbd_p[matched][alive])),
        "churn_auc_ceiling_alive": float(roc_auc_score(y[alive], ceiling[alive])),
        "churn_auc_model_gone_vs_alive": float(roc_auc_score(churned_before, churn_p[matched])),
        "ltv_gini_model": float(normalized_gini(ev.revenue, ltv_p)),
    }


def vm_peak_gb(field: str = "VmHWM") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def train_only(root: Path) -> int:
    """The child of `measure_training`: both kinds trained once, as the assets do, into a scratch store.

    Libraries are imported and the scratch store is created before the clock starts, so the times are those
    of reading the tables and of `ml.train.train` (fit, baselines, plots, MLflow logging and registration).
    `ml.models.fit` is wrapped to also time LightGBM's share of it.
    """
    import importlib

    settings = fresh_installation(root, BENCH_KEY)
    for module in ("lifetimes", "lightgbm", "matplotlib.pyplot", "mlflow.data", "mlflow.lightgbm", "mlflow.models"):
        importlib.import_module(module)
    from ml import models
    from ml.config import KINDS, MODEL_NAMES
    from ml.tracking import Store
    from ml.train import train
    from orchestration.lib.models import read_training_tables, training_config

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    scratch = root / SCRATCH_MLFLOW
    shutil.rmtree(scratch, ignore_errors=True)
    store = Store.local(scratch)
    client = store.client()
    for kind in KINDS:
        store.experiment_id(client, MODEL_NAMES[kind])
    report: dict = {"rss_after_imports_gb": vm_peak_gb()}

    t0 = time.perf_counter()
    features, labels = read_training_tables(settings)
    report["read_s"] = time.perf_counter() - t0
    report["rss_after_read_gb"] = vm_peak_gb()

    fit_seconds: list[float] = []
    unwrapped = models.fit

    def timed_fit(*args, **kwargs):
        start = time.perf_counter()
        try:
            return unwrapped(*args, **kwargs)
        finally:
            fit_seconds.append(time.perf_counter() - start)

    models.fit = timed_fit
    for kind in KINDS:
        fit_seconds.clear()
        t0 = time.perf_counter()
        result = train(kind, features, labels, store, training_config(settings))
        report[kind] = {"train_s": time.perf_counter() - t0, "fit_s": sum(fit_seconds),
                        "metric": result.primary, "best_iteration": result.fit["best_iteration"],
                        "peak_rss_gb": vm_peak_gb()}
        report.update(train_rows=result.dataset["train_rows"], eval_rows=result.dataset["eval_rows"],
                      n_features=len(result.dataset["features"]), train_cutoffs=result.dataset["train_cutoffs"],
                      feature_rows=len(features))
    report["peak_rss_gb"] = vm_peak_gb()
    (root / TRAINING_REPORT).write_text(json.dumps(report))
    return 0


def measure_training(root: Path) -> dict:
    """Run `train_only` in a child process and return its report.

    The peak RSS is the child's own high-water mark (VmHWM), read by the child. The rusage the parent gets
    for a child (wait4, RUSAGE_CHILDREN) is no use here: its maximum includes the address space the child
    started from before exec, i.e. this process's gigabytes of simulator and Dagster state.
    """
    log_path = root / "bench-training.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--train-only", str(root)]
    t0 = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(log_path.read_text()[-4000:])
        raise SystemExit(f"training child failed (exit {proc.returncode}), log in {log_path}")
    report = json.loads((root / TRAINING_REPORT).read_text())
    report["child_wall_s"] = wall
    return report


def run_size(customers: int, days: int, seed: int, root: Path) -> dict:
    import simulator
    from orchestration.cli import prepare

    settings = fresh_installation(root, BENCH_KEY)
    print(f"\n== {customers:,} customers x {days} days (seed {seed}) in {root}", flush=True)
    t0 = time.perf_counter()
    summary = simulator.generate(customers=customers, days=days, seed=seed, out=settings.landing_dir,
                                 truth=settings.truth_dir)
    simulate_s = time.perf_counter() - t0
    counts = summary["counts"]
    print(f"simulated in {simulate_s:.1f} s: {counts['event_lines']:,} event lines, {counts['orders']:,} orders, "
          f"{counts['customers_churned']:,} customers churned", flush=True)

    prepare(settings, quiet=True)
    log_path = root / "run.log"
    result, platform_s = run_platform(settings, log_path)
    if not result.success:
        for event in result.all_events:
            if event.is_failure:
                print(f"  {event.step_key}: {str(event.message)[:2000]}", file=sys.stderr)
        raise SystemExit(f"platform_job failed after {platform_s:.1f} s (dbt output in {log_path})")
    steps = step_seconds(result)
    meta = training_metadata(result)
    print(f"platform_job succeeded in {platform_s:.1f} s (training steps: churn {steps.get('churn_model', 0):.1f} s, "
          f"ltv {steps.get('ltv_model', 0):.1f} s)", flush=True)
    for name, m in meta.items():
        print(f"  {name}: {m.get('model')} -> {m.get('alias')}: {m.get('decision')}")

    t0 = time.perf_counter()
    judged = judge(settings, read_truth(settings))
    judge_s = time.perf_counter() - t0
    training = measure_training(root)
    churn_meta, ltv_meta = meta["churn_model"], meta["ltv_model"]
    figures = {
        "customers": customers,
        "days": days,
        "seed": seed,
        "events": counts["event_lines"],
        "orders": counts["orders"],
        "train_rows": training["train_rows"],
        "eval_rows": judged["eval_rows"],
        "n_features": training["n_features"],
        "eval_cutoff": judged["eval_cutoff"],
        "horizon_days": judged["horizon_days"],
        "eval_churn_rate": judged["eval_churn_rate"],
        "eval_churned_before_cutoff": judged["eval_churned_before_cutoff"],
        "eval_rows_without_truth": judged["eval_rows_without_truth"],
        "churn_model": judged["churn_model"],
        "ltv_model": judged["ltv_model"],
        "churn_auc_model": round(judged["churn_auc_model"], 4),
        "churn_auc_model_metadata": round(float(churn_meta["roc_auc"]), 4),
        "churn_auc_ceiling": round(judged["churn_auc_ceiling"], 4),
        "churn_auc_ceiling_without_bad_experiences": round(judged["churn_auc_ceiling_without_bad_experiences"], 4),
        "churn_auc_bgnbd": round(float(churn_meta["baseline_bgnbd_roc_auc"]), 4),
        "churn_auc_rfm": round(float(churn_meta["baseline_rfm_roc_auc"]), 4),
        "churn_auc_bgnbd_recomputed": round(judged["churn_auc_bgnbd_recomputed"], 4),
        "eval_alive_rows": judged["eval_alive_rows"],
        "eval_alive_churn_rate": round(judged["eval_alive_churn_rate"], 4),
        "ceiling_alive_mean_probability": round(judged["ceiling_alive_mean_probability"], 4),
        "churn_auc_model_alive": round(judged["churn_auc_model_alive"], 4),
        "churn_auc_bgnbd_alive": round(judged["churn_auc_bgnbd_alive"], 4),
        "churn_auc_ceiling_alive": round(judged["churn_auc_ceiling_alive"], 4),
        "churn_auc_model_gone_vs_alive": round(judged["churn_auc_model_gone_vs_alive"], 4),
        "ltv_gini_model": round(judged["ltv_gini_model"], 4),
        "ltv_gini_model_metadata": round(float(ltv_meta["normalized_gini"]), 4),
        "ltv_gini_bgnbd": round(float(ltv_meta["baseline_bgnbd_normalized_gini"]), 4),
        "ltv_gini_rfm": round(float(ltv_meta["baseline_rfm_normalized_gini"]), 4),
        "train_s_churn": round(training["churn"]["train_s"], 1),
        "train_s_ltv": round(training["ltv"]["train_s"], 1),
        "fit_s_churn": round(training["churn"]["fit_s"], 1),
        "fit_s_ltv": round(training["ltv"]["fit_s"], 1),
        "best_iteration_churn": training["churn"]["best_iteration"],
        "best_iteration_ltv": training["ltv"]["best_iteration"],
        "read_tables_s": round(training["read_s"], 1),
        "train_peak_rss_gb": round(training["peak_rss_gb"], 2),
        "train_rss_after_imports_gb": round(training["rss_after_imports_gb"], 2),
        "train_child_wall_s": round(training["child_wall_s"], 1),
        "scratch_churn_auc": round(training["churn"]["metric"], 4),
        "scratch_ltv_gini": round(training["ltv"]["metric"], 4),
        "simulate_s": round(simulate_s, 1),
        "platform_s": round(platform_s, 1),
        "platform_train_s_churn": round(steps.get("churn_model", float("nan")), 1),
        "platform_train_s_ltv": round(steps.get("ltv_model", float("nan")), 1),
        "judge_s": round(judge_s, 1),
    }
    print(f"judged on {judged['eval_rows']:,} rows of cutoff {judged['eval_cutoff']} "
          f"(churn rate {judged['eval_churn_rate']:.3f}, {judged['eval_churned_before_cutoff']:.1%} churned before "
          f"the cutoff, {judged['eval_rows_without_truth']} rows without truth); training child "
          f"{training['child_wall_s']:.1f} s", flush=True)
    return figures


TABLE = (
    ("event lines", "events", "{:,}"),
    ("orders", "orders", "{:,}"),
    ("training rows / evaluation rows", ("train_rows", "eval_rows"), "{:,} / {:,}"),
    ("features", "n_features", "{}"),
    ("evaluation cutoff", "eval_cutoff", "{}"),
    ("evaluation churn rate", "eval_churn_rate", "{:.3f}"),
    ("churn AUC: LightGBM (re-predicted)", "churn_auc_model", "{:.4f}"),
    ("churn AUC: LightGBM (run metadata)", "churn_auc_model_metadata", "{:.4f}"),
    ("churn AUC: BG/NBD (run metadata)", "churn_auc_bgnbd", "{:.4f}"),
    ("churn AUC: BG/NBD (recomputed)", "churn_auc_bgnbd_recomputed", "{:.4f}"),
    ("churn AUC: RFM (run metadata)", "churn_auc_rfm", "{:.4f}"),
    ("churn AUC: ceiling (latent state)", "churn_auc_ceiling", "{:.4f}"),
    ("churn AUC: ceiling without bad experiences", "churn_auc_ceiling_without_bad_experiences", "{:.4f}"),
    ("alive at the cutoff: rows / churn rate", ("eval_alive_rows", "eval_alive_churn_rate"), "{:,} / {:.3f}"),
    ("  mean ceiling probability", "ceiling_alive_mean_probability", "{:.3f}"),
    ("  churn AUC: LightGBM", "churn_auc_model_alive", "{:.4f}"),
    ("  churn AUC: BG/NBD", "churn_auc_bgnbd_alive", "{:.4f}"),
    ("  churn AUC: ceiling", "churn_auc_ceiling_alive", "{:.4f}"),
    ("LightGBM AUC, gone before cutoff vs alive", "churn_auc_model_gone_vs_alive", "{:.4f}"),
    ("LTV Gini: LightGBM (re-predicted)", "ltv_gini_model", "{:.4f}"),
    ("LTV Gini: LightGBM (run metadata)", "ltv_gini_model_metadata", "{:.4f}"),
    ("LTV Gini: BG/NBD (run metadata)", "ltv_gini_bgnbd", "{:.4f}"),
    ("LTV Gini: RFM (run metadata)", "ltv_gini_rfm", "{:.4f}"),
    ("models judged", ("churn_model", "ltv_model"), "{}, {}"),
    ("train churn / ltv, s (child)", ("train_s_churn", "train_s_ltv"), "{} / {}"),
    ("  of which LightGBM fit, s", ("fit_s_churn", "fit_s_ltv"), "{} / {}"),
    ("  boosting rounds", ("best_iteration_churn", "best_iteration_ltv"), "{} / {}"),
    ("read features+labels, s (child)", "read_tables_s", "{}"),
    ("training child peak RSS (VmHWM), GB", "train_peak_rss_gb", "{:.2f}"),
    ("  of which after imports, GB", "train_rss_after_imports_gb", "{:.2f}"),
    ("train churn / ltv, s (in platform_job)", ("platform_train_s_churn", "platform_train_s_ltv"), "{} / {}"),
    ("simulate, s", "simulate_s", "{}"),
    ("platform_job, s", "platform_s", "{}"),
)


def print_table(results: list[dict]) -> None:
    width = 44
    header = "".join(f"{r['customers']:>12,} x {r['days']}d" for r in results)
    print(f"\n{'':<{width}}{header}")
    for label, keys, fmt in TABLE:
        cells = []
        for r in results:
            values = [r[k] for k in keys] if isinstance(keys, tuple) else [r[keys]]
            cells.append(fmt.format(*values))
        print(f"{label:<{width}}" + "".join(f"{c:>{max(17, len(c) + 2)}}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="customer counts, comma-separated")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each installation in DIR/shop-<customers>x<days> (default: temporary, removed)")
    parser.add_argument("--train-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_only is not None:
        return train_only(args.train_only)

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    results = []
    for customers in sizes:
        if args.keep is not None:
            root = args.keep.expanduser().resolve() / f"shop-{customers}x{args.days}"
            if root.exists() and any(root.iterdir()):
                parser.error(f"{root} is not empty: each size needs a fresh installation")
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(tempfile.mkdtemp(prefix=f"cxloop-ml-{customers}-"))
        try:
            results.append(run_size(customers, args.days, args.seed, root))
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
            else:
                print(f"installation kept in {root}")

    print_table(results)
    print(f"\nwhole benchmark: {time.perf_counter() - started:.1f} s on {os.cpu_count()} cores")
    for r in results:
        assert all(k in r for k in SCHEMA_KEYS)
    print(json.dumps({"days": args.days, "seed": args.seed, "cores": os.cpu_count(), "sizes": results}))
    finite = all(math.isfinite(r[k]) for r in results for k in SCHEMA_KEYS if isinstance(r[k], float))
    return 0 if finite else 1


if __name__ == "__main__":
    raise SystemExit(main())
