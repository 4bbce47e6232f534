"""Event ingest alone: one `Ingestor.load_source("events")` over a simulated year, with each statement timed.

    .venv/bin/python benchmarks/ingest_events.py                   # about 1M events (5,988 customers, 365 days)
    .venv/bin/python benchmarks/ingest_events.py --customers 600   # about 100k events
    .venv/bin/python benchmarks/ingest_events.py --source orders --customers 6000 --block-customers 100
        # a CSV source delivered as many small files (one per block of customers and day: 17,536 here)

Simulates one source (`--source`, events by default) into a temporary folder, loads it into a fresh warehouse
and prints the wall time, rows per second, peak RSS of this process, the time spent cutting event files into
lines in Python (`_parse_events`) and the ten costliest warehouse statements (summed over the batches). The last
line is a JSON object of the headline figures; the temporary folder is deleted once they are printed.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import fresh_installation, peak_rss_gb  # noqa: E402


class TimedConnection:
    """A DuckDB connection that adds up the wall time of each statement, keyed by its first words."""

    def __init__(self, con, seconds: collections.Counter, calls: collections.Counter):
        self._con, self._seconds, self._calls = con, seconds, calls

    def execute(self, sql, *args, **kwargs):
        key = " ".join(str(sql).split())[:72]
        start = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        self._seconds[key] += time.perf_counter() - start
        self._calls[key] += 1
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5988)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", default="events", help="the source to simulate and load (default events)")
    parser.add_argument("--block-customers", type=int, default=None,
                        help="simulator blocks: each block writes its own file per source and day")
    args = parser.parse_args()

    import simulator

    root = Path(tempfile.mkdtemp(prefix="cxloop-ingest-events-"))
    try:
        started = time.perf_counter()
        blocks = {"block_customers": args.block_customers} if args.block_customers else {}
        simulator.generate(customers=args.customers, days=args.days, seed=args.seed, out=root / "landing",
                           truth=root / "truth", sources=[args.source], **blocks)
        simulated = time.perf_counter() - started
        settings = fresh_installation(root / "cx", "bench-key", {"CXLOOP_LANDING_DIR": str(root / "landing")})

        from orchestration.lib import ingest

        seconds: collections.Counter = collections.Counter()
        calls: collections.Counter = collections.Counter()
        connect = ingest.Ingestor.connect
        ingest.Ingestor.connect = lambda self: TimedConnection(connect(self), seconds, calls)
        parse_events = ingest.Ingestor._parse_events
        parse_seconds = 0.0

        def timed_parse(self, landed, data):
            nonlocal parse_seconds
            start = time.perf_counter()
            try:
                return parse_events(self, landed, data)
            finally:
                parse_seconds += time.perf_counter() - start

        ingest.Ingestor._parse_events = timed_parse
        started = time.perf_counter()
        result = ingest.Ingestor(settings).load_source(args.source)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)

    lines = result.rows_loaded + result.rows_quarantined
    print(f"{args.source}: {len(result.files)} files, {lines:,} lines ({result.rows_loaded:,} loaded, "
          f"{result.rows_quarantined:,} quarantined); simulated in {simulated:.1f} s")
    print(f"load: {wall:.1f} s, {lines / wall:,.0f} lines/s, peak RSS {peak_rss_gb():.2f} GB; "
          f"Python line split {parse_seconds:.1f} s")
    for key, spent in seconds.most_common(10):
        print(f"  {spent:7.2f} s  x{calls[key]:<4d} {key}")
    print(json.dumps({"files": len(result.files), "lines": lines, "load_s": round(wall, 2),
                      "lines_per_s": round(lines / wall), "parse_s": round(parse_seconds, 2),
                      "peak_rss_gb": round(peak_rss_gb(), 2)}))


if __name__ == "__main__":
    main()
