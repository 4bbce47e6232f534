"""Erasure on the demo shop: what one request and a batch of 25 cost, what happens to the database files, and
what the suppression list adds to ingest.

    .venv/bin/python benchmarks/erasure.py                                 # the demo shop of `make run`
    .venv/bin/python benchmarks/erasure.py --customers 300 --days 60 --batch 5

Builds a fresh installation in a temporary folder and runs `platform_job` once. Then lands request files (by
customer id, for customers drawn at random with the seed) and runs `erasure_job` twice: for one person, then
for a batch in one run. Step times are the Dagster step durations of `privacy/erasure_requests` (no process
start or definitions loading); the rewrite of both files is the step's `reclaim_seconds`. Last, every landing
file is loaded into a fresh warehouse beside a copy of the PII store, alternately with the suppression list
emptied and as the erasures left it, to time the filter ingest applies. The last line is a JSON object of the
headline figures; the temporary folder is deleted once they are printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import (  # noqa: E402
    failures,
    fresh_installation,
    shop_arguments,
    simulated_run,
    step_seconds,
)

ERASURE_STEP = "privacy__erasure_requests"


def size_mb(path: Path) -> float:
    """A DuckDB file with its write-ahead log, in MB."""
    wal = Path(f"{path}.wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists()) / 1e6


def file_sizes(settings) -> dict[str, float]:
    return {"warehouse_mb": round(size_mb(settings.warehouse), 2), "pii_mb": round(size_mb(settings.pii_db), 2)}


def proc_status_gb(field: str) -> float | None:
    """A memory line of /proc/self/status (`VmRSS`, `VmHWM`: peak since the last `reset_hwm`) in GB, or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024 / 1024
    return None


def reset_hwm() -> bool:
    """Reset the peak-RSS mark of this process (Linux 4.0+), so a later phase is measured on its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def pick_customers(settings, n: int, seed: int) -> list[str]:
    """`n` distinct customer ids of the shop, drawn with `seed` from the restricted store's pseudonym map."""
    import duckdb

    con = duckdb.connect(str(settings.pii_db), read_only=True)
    try:
        ids = [r[0] for r in con.execute(
            "select value from identities where kind = 'customer_id' order by value").fetchall()]
    finally:
        con.close()
    if len(ids) < n:
        raise SystemExit(f"the shop has {len(ids)} customers; {n} are needed")
    return random.Random(seed).sample(ids, n)


def erase(settings, customer_ids: list[str], label: str, log_path: Path) -> dict:
    """Land one request file per customer and run `erasure_job`; the step's figures and the files after it."""
    from orchestration.cli import execute
    from orchestration.lib.erasure import write_request

    for i, customer_id in enumerate(customer_ids):
        write_request(settings, customer_id=customer_id, request_id=f"bench-{label}-{i:03d}", via="landing")
    started = time.perf_counter()
    with log_path.open("a") as log, contextlib.redirect_stdout(log):
        result = execute("erasure_job", settings, tags={"cxloop/trigger": "benchmark"})
    job_s = time.perf_counter() - started
    if not result.success:
        raise SystemExit("erasure_job failed:\n  " + "\n  ".join(failures(result)[:3]))
    metadata = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == "privacy/erasure_requests":
            metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    if metadata.get("requests_processed") != len(customer_ids):
        raise SystemExit(f"erasure_job processed {metadata.get('requests_processed')} of {len(customer_ids)} requests")
    step_s = step_seconds(result)[ERASURE_STEP]
    reclaim_s = float(metadata["reclaim_seconds"])
    return {
        "requests": len(customer_ids), "step_s": round(step_s, 2), "reclaim_s": round(reclaim_s, 2),
        "other_s": round(step_s - reclaim_s, 2), "job_s": round(job_s, 1),
        "rows_removed": int(metadata["rows_removed"]), "rows_removed_by_layer": metadata["rows_removed_by_layer"],
        "bytes_before_after_reclaim": metadata["bytes_before_after_reclaim"], **file_sizes(settings),
    }


def reload(settings, folder: Path, keep_list: bool) -> dict:
    """Load every landing file into a fresh warehouse beside a copy of the PII store; seconds per source.

    The copy keeps the key and the pseudonym map; with `keep_list` false its suppression list is emptied, so
    ingest skips the filter (`suppression_active`).
    """
    import duckdb

    from orchestration.lib.ingest import Ingestor
    from orchestration.lib.settings import SOURCES

    folder.mkdir(parents=True)
    pii = folder / settings.pii_db.name
    for suffix in ("", ".wal"):
        if Path(f"{settings.pii_db}{suffix}").exists():
            shutil.copy2(f"{settings.pii_db}{suffix}", f"{pii}{suffix}")
    con = duckdb.connect(str(pii))
    try:
        if not keep_list:
            con.execute("delete from suppression")
        on_list = con.execute("select count(*) from suppression").fetchone()[0]
    finally:
        con.close()
    target = dataclasses.replace(settings, warehouse=folder / settings.warehouse.name, pii_db=pii)
    ingestor = Ingestor(target)
    seconds, rows, suppressed = {}, 0, 0
    for source in SOURCES:
        started = time.perf_counter()
        result = ingestor.load_source(source)
        seconds[source] = time.perf_counter() - started
        rows += result.rows_loaded + result.rows_quarantined
        suppressed += result.rows_suppressed
    shutil.rmtree(folder)
    return {"on_list": on_list, "seconds": seconds, "total_s": sum(seconds.values()), "rows": rows,
            "suppressed": suppressed}


def main() -> int:
    parser = shop_arguments(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=25, help="people erased together in the second run")
    parser.add_argument("--repeats", type=int, default=2,
                        help="reloads with and without the list, in alternating order; the fastest of each is kept")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cxloop-erasure-"))
    settings = fresh_installation(root, "benchmark-key")
    _, result, run_s = simulated_run(settings, args, root / "run.log")
    before = file_sizes(settings)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    chosen = pick_customers(settings, 1 + args.batch, args.seed)
    rss_at_reset = proc_status_gb("VmRSS") if reset_hwm() else None
    single = erase(settings, chosen[:1], "one", root / "erasure.log")
    batch = erase(settings, chosen[1:], "batch", root / "erasure.log")
    erasure_hwm = proc_status_gb("VmHWM") if rss_at_reset is not None else None

    runs = {False: [], True: []}
    for i in range(args.repeats):
        for keep_list in ((False, True) if i % 2 == 0 else (True, False)):  # alternate which goes first
            runs[keep_list].append(reload(settings, root / "reload" / f"{i}-{keep_list}", keep_list))
    empty, listed = (min(runs[k], key=lambda r: r["total_s"]) for k in (False, True))

    import resource

    own_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    dbt_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024

    print(f"shop: {args.customers} customers, {args.days} days, seed {args.seed}; platform_job {run_s:.0f} s")
    print(f"files before erasure: warehouse {before['warehouse_mb']:.1f} MB, PII store {before['pii_mb']:.2f} MB")
    for name, r in (("1 person", single), (f"{args.batch} people in one run", batch)):
        rewrite = ", ".join(f"{f} {b / 1e6:.2f} -> {a / 1e6:.2f} MB"
                            for f, (b, a) in r["bytes_before_after_reclaim"].items())
        print(f"erasure of {name}: step {r['step_s']:.2f} s (file rewrite {r['reclaim_s']:.2f} s; resolve, suppress, "
              f"delete, republish, audit {r['other_s']:.2f} s; erasure_job {r['job_s']:.1f} s in process), "
              f"{r['rows_removed']:,} rows removed")
        print("  rows removed per layer: " + ", ".join(f"{k} {v:,}" for k, v in r["rows_removed_by_layer"].items()))
        print(f"  rewrite: {rewrite}")
        print(f"  files after the job: warehouse {r['warehouse_mb']:.2f} MB, PII store {r['pii_mb']:.2f} MB")
    ratio = listed["total_s"] / empty["total_s"]
    events_ratio = listed["seconds"]["events"] / empty["seconds"]["events"]
    print(f"reload of every landing file into a fresh warehouse, {empty['rows']:,} records, best of {args.repeats}: "
          f"suppression list empty vs {listed['on_list']} pseudonyms of {1 + args.batch} erased people")
    for source in empty["seconds"]:
        print(f"  {source:<10} {empty['seconds'][source]:6.2f} s  {listed['seconds'][source]:6.2f} s")
    print(f"  {'total':<10} {empty['total_s']:6.2f} s  {listed['total_s']:6.2f} s  ratio {ratio:.2f} "
          f"(events {events_ratio:.2f}); {listed['suppressed']:,} records suppressed")
    print("  every reload, s: " + "; ".join(
        f"{'with list' if k else 'empty'} " + ", ".join(f"{r['total_s']:.2f}" for r in runs[k]) for k in (False, True)))
    print(f"peak RSS: this process {own_gb:.2f} GB, largest child (dbt) {dbt_gb:.2f} GB"
          + (f"; during the two erasures {erasure_hwm:.2f} GB (from {rss_at_reset:.2f} GB before them)"
             if erasure_hwm is not None else ""))
    print(json.dumps({
        "customers": args.customers, "days": args.days, "seed": args.seed, "platform_job_s": round(run_s, 1),
        "warehouse_mb_before": before["warehouse_mb"], "pii_mb_before": before["pii_mb"],
        "erase_1_step_s": single["step_s"], "erase_1_reclaim_s": single["reclaim_s"],
        "erase_1_rows_removed": single["rows_removed"],
        f"erase_{args.batch}_step_s": batch["step_s"], f"erase_{args.batch}_reclaim_s": batch["reclaim_s"],
        f"erase_{args.batch}_rows_removed": batch["rows_removed"],
        "warehouse_mb_after": batch["warehouse_mb"], "pii_mb_after": batch["pii_mb"],
        "reload_empty_list_s": round(empty["total_s"], 2), "reload_with_list_s": round(listed["total_s"], 2),
        "reload_ratio": round(ratio, 3), "reload_events_ratio": round(events_ratio, 3),
        "records_suppressed": listed["suppressed"],
        "peak_rss_gb": round(own_gb, 2), "peak_rss_children_gb": round(dbt_gb, 2),
        "erasure_peak_rss_gb": round(erasure_hwm, 2) if erasure_hwm is not None else None,
    }))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
