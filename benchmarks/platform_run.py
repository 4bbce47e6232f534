"""Time one platform run on a simulated shop: per Dagster step and in total, with peak memory.

    .venv/bin/python benchmarks/platform_run.py --customers 2000 --days 120

Builds a fresh installation in a temporary folder (nothing under data/ is touched), generates the shop, runs
`platform_job` in process as `make run` does, and prints one line per stage plus a JSON line of headline
figures. Peak RSS covers this process and its children (dbt runs as a subprocess).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import fresh_installation, peak_rss_gb, shop_arguments  # noqa: E402


def stage_of(step_key: str) -> str:
    if step_key.startswith("raw__") and step_key.endswith("_expectations"):
        return "checks (raw)"
    if step_key.startswith("raw__") or step_key == "ingest_ledger":
        return "ingest"
    if step_key.endswith("_expectations"):
        return "checks (marts)"
    if step_key == "cxloop_dbt_models":
        return "dbt build (models + tests)"
    return step_key


def main() -> int:
    parser = shop_arguments(__doc__.splitlines()[0], days=120)
    parser.add_argument("--keep", action="store_true", help="keep the temporary installation")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cxloop-bench-"))
    settings = fresh_installation(root, "benchmark-key")
    import simulator
    from orchestration.cli import execute, prepare

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    summary = simulator.generate(customers=args.customers, days=args.days, seed=args.seed,
                                 out=settings.landing_dir, truth=settings.truth_dir)
    timings["simulate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    prepare(settings, quiet=True)
    timings["prepare (dbt parse)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with open(root / "run.log", "w") as log, contextlib.redirect_stdout(log):
        result = execute("platform_job", settings)
    run_s = time.perf_counter() - t0
    if not result.success:
        print("platform_job failed", file=sys.stderr)
        return 1

    per_stage: dict[str, float] = defaultdict(float)
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            per_stage[stage_of(event.step_key)] += event.event_specific_data.duration_ms / 1000
    steps_total = sum(per_stage.values())
    timings.update(per_stage)
    timings["run overhead (definitions, Dagster)"] = run_s - steps_total

    events = summary["counts"]["event_lines"]
    print(f"shop: {args.customers} customers, {args.days} days, {events:,} event lines, "
          f"{summary['counts']['orders']:,} orders")
    for stage, seconds in timings.items():
        print(f"  {stage:<40} {seconds:8.1f} s")
    total = sum(timings.values())
    ingest_s = per_stage.get("ingest", 0.0)
    print(f"  {'total':<40} {total:8.1f} s")
    print(f"  ingest throughput: {events / ingest_s:,.0f} event lines/s" if ingest_s else "")
    print(f"  peak RSS: {peak_rss_gb():.2f} GB")
    print(json.dumps({
        "customers": args.customers, "days": args.days, "event_lines": events,
        "total_s": round(total, 1), "platform_job_s": round(run_s, 1), "ingest_s": round(ingest_s, 1),
        "dbt_build_s": round(per_stage.get("dbt build (models + tests)", 0.0), 1),
        "checks_s": round(per_stage.get("checks (raw)", 0.0) + per_stage.get("checks (marts)", 0.0), 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"installation kept in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
