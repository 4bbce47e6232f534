"""`cxloop-simulate` / `python -m simulator`: write a simulated shop's landing and truth directories."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from simulator.core import (
    DEFAULT_BLOCK_CUSTOMERS,
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_START_DATE,
    SOURCES,
    default_truth_dir,
    generate,
)


def _sources(value: str) -> list[str]:
    chosen = [s.strip() for s in value.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SOURCES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SOURCES)}")
    return chosen


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected YYYY-MM-DD") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxloop-simulate",
        description="Simulate a shop and write its exports in cxloop's landing layout, plus a truth directory.",
    )
    parser.add_argument("--customers", type=_positive, default=DEFAULT_CUSTOMERS,
                        help="customers (default %(default)s)")
    parser.add_argument("--days", type=_positive, default=DEFAULT_DAYS, help="simulated days (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("data/landing"),
                        help="landing directory to write (default %(default)s)")
    parser.add_argument("--truth", type=Path, default=None,
                        help="truth directory (default: 'truth' beside --out)")
    parser.add_argument("--start-date", type=_date, default=DEFAULT_START_DATE,
                        help="first day, YYYY-MM-DD (default %(default)s)")
    parser.add_argument("--sources", type=_sources, default=None,
                        help=f"comma-separated sources to write (default all: {','.join(SOURCES)})")
    parser.add_argument("--no-faults", action="store_true", help="write clean data without planted faults")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the source folders and truth files this run writes if they exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("--block-customers", type=_positive, default=DEFAULT_BLOCK_CUSTOMERS,
                        help="simulate larger shops in blocks of this many customers; memory grows with it, "
                             "not with --customers (default %(default)s)")
    parser.add_argument("--workers", type=_positive, default=1,
                        help="processes simulating blocks at the same time; output is the same (default 1)")
    parser.add_argument("--gzip-events", action="store_true",
                        help="gzip every event file, not only every seventh day's (for shops too large for the "
                             "disk as plain JSONL)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    truth = args.truth or default_truth_dir(args.out)
    try:
        summary = generate(customers=args.customers, days=args.days, seed=args.seed, out=args.out, truth=truth,
                           start_date=args.start_date, sources=args.sources, faults=not args.no_faults,
                           progress=not args.quiet, overwrite=args.overwrite,
                           block_customers=args.block_customers, workers=args.workers,
                           gzip_events=args.gzip_events)
    except FileExistsError as exc:
        print(f"cxloop-simulate: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        counts = summary["counts"]
        headline = {k: counts[k] for k in ("customers", "sessions", "events_unique", "event_lines", "orders",
                                        "payments", "tickets", "reviews", "surveys")}
        print(json.dumps({"landing": str(args.out), "truth": str(truth), **headline}))
    return 0
