"""Scale: a full build, the next day's incremental run and the engine floor, at 1M and 10M events.

    .venv/bin/python benchmarks/scale.py                    # make bench: --events 1M,10M
    .venv/bin/python benchmarks/scale.py --events 300k      # a quick check
    .venv/bin/python benchmarks/scale.py --events 100M      # DuckDB held to 16GB, spilling past it

For each size, in a fresh temporary installation: simulate a shop of 365 days with as many customers as give the
events asked for (EVENTS_PER_CUSTOMER_YEAR), hold back the last delivery day, run `platform_job` in process as
`make run` does (the full build), run `floor.sql` on the same landing files in a fresh DuckDB file (the engine
floor), put the day back and run `daily_job` (the incremental run). Each size runs in a child process of its own,
so one size's memory and loaded modules never reach the next.

Per stage: wall time (Dagster step stats), peak RSS of the process tree while the stage ran (sampled every
0.2 s) and rows per second. Prints a table per size and, last, one JSON line: the largest size's figures and a
`sizes` list.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Events per customer over one year of the simulated shop (1M events: about 6,000 customers).
EVENTS_PER_CUSTOMER_YEAR = 167
DAYS = 365
DEFAULT_SIZES = "1M,10M"
# From this size on DuckDB is given an explicit limit, so it spills to disk rather than take the machine's memory.
SPILL_FROM_EVENTS = 50_000_000
SPILL_MEMORY_LIMIT = "16GB"
# From this size on every event file is gzipped: a year of 100M events is about 72 GB as plain JSONL.
GZIP_FROM_EVENTS = 50_000_000
# By hand (--root, --phase), the full build may run as three runs of `platform_job`'s assets, one after another.
FULL_PARTS = ("ingest", "transform", "rest")
PHASES = ("simulate", "full", *(f"full:{p}" for p in FULL_PARTS), "floor", "incremental", "load")
SAMPLE_SECONDS = 0.2
STAGES = ("ingest", "dbt build", "checks", "features", "training", "scoring", "report", "other", "overhead")
GB = 1024 ** 3
FLOOR = Path(__file__).with_name("floor.py")


def parse_events(text: str) -> int:
    """`300k`, `1M`, `2.5M`, `100M` or a plain number of events."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not an event count: {text!r}")
    return int(float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()])


def customers_for(events: int, days: int = DAYS) -> int:
    """Customers whose shop yields about `events` events over `days` days."""
    return max(1, round(events / EVENTS_PER_CUSTOMER_YEAR * 365 / days))


def label(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"


def stage_of(step_key: str) -> str:
    """The stage a Dagster step belongs to (`features` is carved out of the dbt step afterwards)."""
    if step_key.endswith(("_meets_expectations", "_meet_expectations")):
        return "checks"
    if step_key.startswith("raw__") or step_key == "ingest_ledger":
        return "ingest"
    if step_key == "cxloop_dbt_models":
        return "dbt build"
    if step_key in ("churn_model", "ltv_model"):
        return "training"
    if step_key == "customer_scores":
        return "scoring"
    if step_key == "report":
        return "report"
    return "other"


class RssSampler(threading.Thread):
    """RSS of this process and all its descendants (dbt runs as a child), every SAMPLE_SECONDS."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self._done = threading.Event()
        self.samples: list[tuple[float, int]] = []

    def tree_rss(self) -> int:
        me = self._psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except self._psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append((time.time(), self.tree_rss()))
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak_gb(self, start: float, end: float) -> float:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0) / GB


def _iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def dbt_nodes(settings, run_id: str) -> list[dict]:
    """Every node of the run's first dbt step (`cxloop_dbt_models`): id, its dbt group (a test takes its model's),
    seconds and the window it ran in, from the invocation's `run_results.json` and `manifest.json`."""
    folders = sorted(settings.dbt_runs_dir.glob(f"cxloop_dbt_models-{run_id[:8]}-*"))
    if not folders or not (folders[-1] / "run_results.json").exists():
        return []
    results = json.loads((folders[-1] / "run_results.json").read_text())["results"]
    manifest = json.loads((folders[-1] / "manifest.json").read_text())["nodes"]

    def group(uid: str) -> str | None:
        node = manifest.get(uid, {})
        if node.get("resource_type") == "test" and node.get("attached_node"):
            return group(node["attached_node"])
        return (node.get("config", {}).get("meta") or {}).get("cxloop", {}).get("group")

    nodes = []
    for result in results:
        timing = [t for t in result.get("timing", []) if t.get("started_at") and t.get("completed_at")]
        if not timing:
            continue
        nodes.append({"id": result["unique_id"], "group": group(result["unique_id"]),
                      "s": result.get("execution_time") or 0.0,
                      "start": min(_iso(t["started_at"]) for t in timing),
                      "end": max(_iso(t["completed_at"]) for t in timing)})
    return nodes


def profile(settings, result, started: float, ended: float, sampler: RssSampler, rows: dict[str, int]) -> dict:
    """Seconds, peak RSS and rows per second of each stage of one run, plus its slowest steps and dbt nodes.

    `features` is the time of the dbt models of the `ml` group (and their tests) inside the first dbt step,
    taken out of `dbt build`; `overhead` is the run's wall time outside every step (loading the definitions,
    Dagster between steps)."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        stats = [s for s in instance.get_run_step_stats(result.run_id) if s.start_time and s.end_time]
    windows = [(s.step_key, stage_of(s.step_key), s.start_time, s.end_time) for s in stats]
    nodes = dbt_nodes(settings, result.run_id)
    features = [n for n in nodes if n["group"] == "ml"]

    seconds: dict[str, float] = defaultdict(float)
    for _, stage, start, end in windows:
        seconds[stage] += end - start
    features_s = sum(n["s"] for n in features)
    seconds["features"] += features_s
    seconds["dbt build"] -= features_s
    seconds["overhead"] = max(0.0, (ended - started) - sum(end - start for *_, start, end in windows))

    peaks: dict[str, float] = defaultdict(float)
    for t, rss in sampler.samples:
        if not started <= t <= ended:
            continue
        stage = next((stage for _, stage, start, end in windows if start <= t <= end), "overhead")
        if stage == "dbt build" and any(n["start"] <= t <= n["end"] for n in features):
            stage = "features"
        peaks[stage] = max(peaks[stage], rss / GB)

    stages = {}
    for stage in STAGES:
        n_rows = rows["ingest"] if stage == "ingest" else rows["events"]
        s = seconds.get(stage, 0.0)
        stages[stage] = {"s": round(s, 2), "peak_rss_gb": round(peaks.get(stage, 0.0), 2),
                         "rows_per_s": round(n_rows / s) if s > 0.05 and stage != "overhead" else None}
    steps = sorted(((key, end - start) for key, _, start, end in windows), key=lambda kv: -kv[1])
    dbt_step = sum(end - start for key, _, start, end in windows if key == "cxloop_dbt_models")
    return {
        "wall_s": round(ended - started, 2),
        "data_layer_s": round(seconds["ingest"] + dbt_step, 2),
        "dbt_step_s": round(dbt_step, 2),
        "dbt_nodes_s": round(sum(n["s"] for n in nodes), 2),
        "peak_rss_gb": round(sampler.peak_gb(started, ended), 2),
        "stages": stages,
        "slowest_steps": [[k, round(v, 2)] for k, v in steps[:8]],
        "slowest_dbt_nodes": [[n["id"], round(n["s"], 2)]
                              for n in sorted(nodes, key=lambda n: -n["s"])[:10]],
        "rows": rows,
    }


def rows_loaded(result) -> int:
    """Raw rows the run's ingest loaded, from the raw assets' `rows_loaded` metadata."""
    total = 0
    for event in result.get_asset_materialization_events():
        value = event.materialization.metadata.get("rows_loaded")
        if event.asset_key.path[0] == "raw" and value is not None:
            total += int(getattr(value, "value", value))
    return total


def count_lines(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                total += sum(1 for _ in fh)
    return total


def hold_back(landing: Path, day: str, aside: Path) -> int:
    """Move every `<landing>/<source>/<day>/` folder under `aside`: event lines held back."""
    lines = 0
    for source_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        folder = source_dir / day
        if folder.is_dir():
            if source_dir.name == "events":
                lines = count_lines(folder)
            (aside / source_dir.name).mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(aside / source_dir.name / day))
    return lines


def put_back(landing: Path, day: str, aside: Path) -> None:
    for source_dir in sorted(p for p in aside.iterdir() if p.is_dir()):
        shutil.move(str(source_dir / day), str(landing / source_dir.name / day))


def run_job(job: str, settings, log_path: Path, asset_selection=None, checks: bool = True):
    """A job in process as `make run` runs it: (result, start, end) in wall-clock seconds. `checks=False` runs
    the selected assets without their checks."""
    import contextlib
    import logging

    from orchestration.cli import execute

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    started = time.time()
    with log_path.open("w") as log, contextlib.redirect_stdout(log):
        result = execute(job, settings, tags={"cxloop/trigger": "benchmark"}, asset_selection=asset_selection,
                         asset_check_selection=None if checks else ())
    ended = time.time()
    if not result.success:
        failed = [f"{e.step_key}: {e.message}" for e in result.all_events if e.is_failure]
        raise SystemExit(f"{job} failed:\n  " + "\n  ".join(failed[:3]))
    return result, started, ended


def part_selection(part: str) -> list:
    """The asset keys of one part of `platform_job` (FULL_PARTS; run them in that order): `ingest` is the raw and
    privacy groups, `transform` the first dbt step (models, features, dbt tests) with the other assets it reads
    (the text scores), `rest` the others."""
    import dagster as dg

    from orchestration.cli import load_definitions

    graph = load_definitions().resolve_asset_graph()
    every = dg.AssetSelection.all().resolve(graph)
    ingest = dg.AssetSelection.groups("raw", "privacy").resolve(graph)
    models = {key for key in every if graph.get(key).assets_def.node_def.name == "cxloop_dbt_models"}
    transform = dg.AssetSelection.assets(*models).upstream().resolve(graph) - ingest
    parts = {"ingest": ingest, "transform": transform, "rest": every - ingest - transform}
    return sorted(parts[part])


def merge_profiles(parts: list[dict]) -> dict:
    """One full build's figures from the profiles of its parts, run one after another."""
    if len(parts) == 1:
        return parts[0]
    rows = {"ingest": sum(p["rows"]["ingest"] for p in parts), "events": parts[0]["rows"]["events"]}
    stages = {}
    for stage in STAGES:
        s = sum(p["stages"][stage]["s"] for p in parts)
        n_rows = rows["ingest"] if stage == "ingest" else rows["events"]
        stages[stage] = {"s": round(s, 2), "peak_rss_gb": max(p["stages"][stage]["peak_rss_gb"] for p in parts),
                         "rows_per_s": round(n_rows / s) if s > 0.05 and stage != "overhead" else None}
    total = {key: round(sum(p[key] for p in parts), 2) for key in ("wall_s", "data_layer_s", "dbt_step_s",
                                                                    "dbt_nodes_s")}
    return {**total, "peak_rss_gb": max(p["peak_rss_gb"] for p in parts), "stages": stages,
            "slowest_steps": sorted((s for p in parts for s in p["slowest_steps"]), key=lambda kv: -kv[1])[:8],
            "slowest_dbt_nodes": sorted((n for p in parts for n in p["slowest_dbt_nodes"]),
                                        key=lambda kv: -kv[1])[:10],
            "rows": rows, "runs": len(parts)}


def compare_with_floor(settings, floor_db: Path) -> dict:
    """Totals of the platform's `kpi_daily` and the floor's, so the floor is seen to do the same work."""
    import duckdb

    query = "select sum(sessions), sum(orders), sum(revenue_usd)::double, count(*) from {}"
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        platform = con.execute(query.format("marts.kpi_daily")).fetchone()
        customers = con.execute("select count(*) from marts.customers where r_score is not null").fetchone()[0]
    with duckdb.connect(str(floor_db), read_only=True) as con:
        floor = con.execute(query.format("floor_kpi_daily")).fetchone()
        floor_customers = con.execute("select count(*) from floor_rfm").fetchone()[0]
    names = ("sessions", "orders", "revenue_usd", "days")
    out = {name: [p, f] for name, p, f in zip(names, platform, floor)}
    out["rfm_customers"] = [customers, floor_customers]
    return out


class Size:
    """One size's installation under `root` and the figures gathered so far (`out`), phase by phase."""

    def __init__(self, root: Path, out: dict) -> None:
        from benchmarks.installation import fresh_installation

        self.root, self.out = root, out
        limit = out["duckdb_memory_limit"]
        self.settings = fresh_installation(root, "benchmark-key", {"CXLOOP_DUCKDB_MEMORY_LIMIT": limit} if limit
                                           else {})
        self.sampler = RssSampler()
        self.tag = f"[{label(out['events_requested'])}]"
        self._prepared = False

    def simulate(self) -> None:
        out, settings = self.out, self.settings
        print(f"{self.tag} simulating {out['customers']:,} customers over {DAYS} days", flush=True)
        t0 = time.time()
        # A child process, so the simulator's memory is not counted as the platform's.
        gzip = ["--gzip-events"] if out["events_requested"] >= GZIP_FROM_EVENTS else []
        subprocess.run([sys.executable, "-m", "simulator", "--customers", str(out["customers"]), "--days",
                        str(DAYS), "--seed", str(out["seed"]), "--out", str(settings.landing_dir), "--truth",
                        str(settings.truth_dir), "--block-customers", "10000", "--workers", "2", "--quiet", *gzip],
                       check=True)
        t1 = time.time()
        summary = json.loads((settings.truth_dir / "summary.json").read_text())
        out["simulate"] = {"s": round(t1 - t0, 2), "peak_rss_gb": round(self.sampler.peak_gb(t0, t1), 2),
                           "gzip_events": bool(gzip)}
        out["events"] = summary["counts"]["event_lines"]
        out["orders"] = summary["counts"]["orders"]
        last_day = summary["period"]["end_date"]
        held_lines = hold_back(settings.landing_dir, last_day, self.root / "held_back")
        out["held_back"] = {"day": last_day, "event_lines": held_lines}
        print(f"{self.tag} {out['events']:,} event lines ({held_lines:,} of them on {last_day}, held back), "
              f"{out['orders']:,} orders; simulated in {t1 - t0:.1f} s", flush=True)

    def prepare(self) -> None:
        """`dbt parse`, once per process, before the first phase that runs a job."""
        from orchestration.cli import prepare

        if self._prepared:
            return
        t0 = time.time()
        prepare(self.settings, quiet=True)
        self.out.setdefault("prepare_s", round(time.time() - t0, 2))
        self._prepared = True

    def full(self, part: str | None = None) -> None:
        """The full build: `platform_job` in one run, or one of its FULL_PARTS."""
        out = self.out
        name = f"full build ({part})" if part else "full build"
        print(f"{self.tag} {name} (platform_job)", flush=True)
        selection = part_selection(part) if part else None
        result, started, ended = run_job("platform_job", self.settings,
                                         self.root / f"full_build{'_' + part if part else ''}.log", selection)
        rows = {"ingest": rows_loaded(result), "events": out["events"] - out["held_back"]["event_lines"]}
        out.setdefault("full_parts", {})[part or "all"] = profile(self.settings, result, started, ended,
                                                                  self.sampler, rows)
        done = out["full_parts"]
        if "all" in done or all(p in done for p in FULL_PARTS):
            out["full"] = merge_profiles([done["all"]] if "all" in done else [done[p] for p in FULL_PARTS])

    def load(self) -> None:
        """The `ingest` part without its checks, not measured: it fills the raw tables for a sitting that measures
        only the later parts, when the ingest part's figures come from another sitting."""
        print(f"{self.tag} load (platform_job's ingest part without checks, not measured)", flush=True)
        result, started, ended = run_job("platform_job", self.settings, self.root / "load.log",
                                         part_selection("ingest"), checks=False)
        self.out["load"] = {"s": round(ended - started, 2), "rows": rows_loaded(result)}

    def floor(self) -> None:
        print(f"{self.tag} engine floor (floor.sql)", flush=True)
        floor_db = self.root / "floor.duckdb"
        floor_db.unlink(missing_ok=True)
        t0 = time.time()
        proc = subprocess.run([sys.executable, str(FLOOR), "--landing", str(self.settings.landing_dir),
                               "--database", str(floor_db), "--quiet"], check=True, capture_output=True,
                              text=True, env={**os.environ, **self.settings.environ()})
        t1 = time.time()
        self.out["floor"] = {**json.loads(proc.stdout.strip().splitlines()[-1]),
                             "peak_rss_gb": round(self.sampler.peak_gb(t0, t1), 2)}
        self.out["floor_check"] = compare_with_floor(self.settings, floor_db)

    def incremental(self) -> None:
        out = self.out
        day = out["held_back"]["day"]
        put_back(self.settings.landing_dir, day, self.root / "held_back")
        print(f"{self.tag} incremental ({day}, daily_job)", flush=True)
        result, started, ended = run_job("daily_job", self.settings, self.root / "incremental.log")
        out["incremental"] = profile(self.settings, result, started, ended, self.sampler,
                                     {"ingest": rows_loaded(result), "events": out["events"]})

    def run(self, phases: list[str]) -> None:
        self.sampler.start()
        try:
            for phase in phases:
                if phase.startswith("full") or phase in ("incremental", "load"):
                    self.prepare()
                if phase.startswith("full"):
                    self.full(phase.partition(":")[2] or None)
                else:
                    getattr(self, phase)()
        finally:
            self.sampler.stop()

    def headline(self) -> None:
        out = self.out
        full, incremental, floor = out["full"], out["incremental"], out["floor"]
        out["headline"] = {
            "events": out["events"],
            "full_build_s": full["wall_s"],
            "data_layer_s": full["data_layer_s"],
            "floor_s": floor["floor_s"],
            "floor_ratio": round(full["data_layer_s"] / floor["floor_s"], 2),
            "incremental_s": incremental["wall_s"],
            "incremental_share": round(incremental["wall_s"] / full["wall_s"], 3),
            "peak_rss_gb": max(full["peak_rss_gb"], incremental["peak_rss_gb"], floor["peak_rss_gb"]),
        }


def new_size(events: int, seed: int, memory_limit: str | None, root: Path) -> dict:
    limit = memory_limit or (SPILL_MEMORY_LIMIT if events >= SPILL_FROM_EVENTS else None)
    return {"events_requested": events, "customers": customers_for(events), "days": DAYS, "seed": seed,
            "duckdb_memory_limit": limit, "root": str(root)}


def run_size(events: int, seed: int, keep: bool, memory_limit: str | None) -> dict:
    """One size end to end in this process; returns its figures."""
    root = Path(tempfile.mkdtemp(prefix=f"cxloop-scale-{label(events)}-"))
    size = Size(root, new_size(events, seed, memory_limit, root))
    try:
        size.run(["simulate", "full", "floor", "incremental"])
    finally:
        if keep:
            print(f"{size.tag} installation kept in {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    size.headline()
    return size.out


def run_phase(root: Path, phase: str, events: int | None, seed: int, memory_limit: str | None) -> int:
    """One phase of one size in the installation `root`, its figures kept in `root/scale.json` (by hand, for a
    size that outlasts one sitting: nothing else may run on the machine during a phase)."""
    state = root / "scale.json"
    if phase == "simulate":
        if events is None:
            raise SystemExit("--phase simulate needs --events (one size)")
        root.mkdir(parents=True, exist_ok=True)
        out = new_size(events, seed, memory_limit, root)
    elif not state.exists():
        raise SystemExit(f"{state} does not exist: run --phase simulate first")
    else:
        out = json.loads(state.read_text())
    size = Size(root, out)
    size.run([phase])
    missing = [p for p in ("full", "floor", "incremental") if p not in out]
    if not missing:
        size.headline()
    state.write_text(json.dumps(out))
    if missing:
        print(f"{size.tag} {phase} done; still to run: {', '.join(missing)}")
        return 0
    print_size(out)
    print()
    print(json.dumps({**out["headline"], "sizes": [out["headline"]]}))
    return 0


def node_name(unique_id: str) -> str:
    """A dbt node's name: a test's id ends in a hash after its name."""
    parts = unique_id.split(".")
    return parts[-2] if parts[0] == "test" and len(parts) > 3 else parts[-1]


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_size(out: dict) -> None:
    full, inc, floor, head = out["full"], out["incremental"], out["floor"], out["headline"]
    print()
    print(f"== {label(out['events_requested'])}: {out['events']:,} event lines, {out['customers']:,} customers, "
          f"{out['days']} days, {out['orders']:,} orders; DuckDB memory limit "
          f"{out['duckdb_memory_limit'] or 'default'} ({floor['memory_limit']}, {floor['threads']} threads)")
    print(f"   simulate {out['simulate']['s']:.1f} s (peak {out['simulate']['peak_rss_gb']:.2f} GB), "
          f"prepare (dbt parse) {out['prepare_s']:.1f} s; neither is part of the runs below")
    incremental = f"incremental: {out['held_back']['day']} (daily_job)"
    print(f"   {'':<10} | {'full build (platform_job)':^32} | {incremental:^32}")
    print(f"   {'stage':<10} | {'s':>8} {'peak GB':>8} {'rows/s':>14} | {'s':>8} {'peak GB':>8} {'rows/s':>14}")
    for stage in STAGES:
        a, b = full["stages"][stage], inc["stages"][stage]
        print(f"   {stage:<10} | {a['s']:8.1f} {a['peak_rss_gb']:8.2f} {_cell(a['rows_per_s'], ',d'):>14} "
              f"| {b['s']:8.1f} {b['peak_rss_gb']:8.2f} {_cell(b['rows_per_s'], ',d'):>14}")
    print(f"   {'total':<10} | {full['wall_s']:8.1f} {full['peak_rss_gb']:8.2f} {'':>14} "
          f"| {inc['wall_s']:8.1f} {inc['peak_rss_gb']:8.2f}")
    print(f"   rows/s: ingest = raw rows loaded ({full['rows']['ingest']:,} / {inc['rows']['ingest']:,}), "
          f"other stages = event lines in the landing files ({full['rows']['events']:,} / {inc['rows']['events']:,})")
    print(f"   data layer (ingest steps + the whole first dbt step, its tests included): {full['data_layer_s']:.1f} s "
          f"(dbt step {full['dbt_step_s']:.1f} s, of which dbt nodes {full['dbt_nodes_s']:.1f} s)")
    print(f"   engine floor (floor.sql): {floor['floor_s']:.1f} s, peak {floor['peak_rss_gb']:.2f} GB "
          f"-> floor_ratio {head['floor_ratio']:.2f}")
    check = out["floor_check"]
    print("   platform vs floor: " + ", ".join(f"{k} {_cell(p, ',.0f')} / {_cell(f, ',.0f')}"
                                               for k, (p, f) in check.items()))
    print(f"   incremental_share {head['incremental_share']:.3f}; peak RSS {head['peak_rss_gb']:.2f} GB")
    print("   slowest steps (full): " + ", ".join(f"{k} {v:.1f}" for k, v in full["slowest_steps"]))
    print("   slowest dbt nodes (full): " + ", ".join(f"{node_name(k)} {v:.1f}"
                                                       for k, v in full["slowest_dbt_nodes"][:8]))
    print("   floor statements: " + ", ".join(f"{k.removeprefix('floor_')} {v:.1f}"
                                              for k, v in floor["seconds"].items() if v >= 0.05))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default=DEFAULT_SIZES,
                        help="comma-separated sizes in events, e.g. 300k,1M,10M,100M (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--memory-limit", default=None,
                        help=f"DuckDB memory limit for every size (default: unset below "
                             f"{label(SPILL_FROM_EVENTS)} events, {SPILL_MEMORY_LIMIT} from there)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary installations")
    parser.add_argument("--root", type=Path,
                        help="by hand, for a size too long for one sitting: keep one size's installation and "
                             "figures in this folder and run only --phase")
    parser.add_argument("--phase", choices=PHASES,
                        help="with --root: simulate (needs one --events), full (or its parts in order: "
                             f"{', '.join('full:' + p for p in FULL_PARTS)}), floor, incremental; load fills the "
                             "raw tables without checks and measures nothing, in place of full:ingest")
    parser.add_argument("--one-size", type=parse_events, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.root or args.phase:
        if not (args.root and args.phase):
            parser.error("--root and --phase go together")
        return run_phase(args.root, args.phase, parse_events(args.events) if "," not in args.events else None,
                         args.seed, args.memory_limit)
    if args.one_size:
        out = run_size(args.one_size, args.seed, args.keep, args.memory_limit)
        args.result.write_text(json.dumps(out))
        return 0

    sizes = sorted({parse_events(s) for s in args.events.split(",") if s.strip()})
    results = []
    with tempfile.TemporaryDirectory(prefix="cxloop-scale-results-") as tmp:
        for events in sizes:
            result_path = Path(tmp) / f"{events}.json"
            cmd = [sys.executable, __file__, "--one-size", str(events), "--seed", str(args.seed),
                   "--result", str(result_path)]
            cmd += ["--keep"] if args.keep else []
            cmd += ["--memory-limit", args.memory_limit] if args.memory_limit else []
            if subprocess.run(cmd).returncode != 0:
                print(f"size {label(events)} failed", file=sys.stderr)
                return 1
            results.append(json.loads(result_path.read_text()))
            print_size(results[-1])
    print()
    print(json.dumps({**results[-1]["headline"], "sizes": [r["headline"] for r in results]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
