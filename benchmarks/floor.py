"""The engine floor of the data layer: `floor.sql` on a fresh DuckDB file, straight from the landing files.

    .venv/bin/python benchmarks/floor.py --landing data/landing --database /tmp/floor.duckdb

The script does the core of what ingest and the dbt build do (dedup, clock-skew correction, identity stitching,
sessions, daily KPIs, RFM) with the platform's DuckDB settings (threads, memory limit, spill folder) and nothing
else, so the platform's data layer time divided by this one is what the platform costs above the engine.
Prints one line per statement and, last, a JSON line with the total seconds and the size of the results.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from orchestration.lib.settings import PROJECT_ROOT, get_settings  # noqa: E402
from orchestration.lib.warehouse import apply_duckdb_settings  # noqa: E402

FLOOR_SQL = Path(__file__).with_name("floor.sql")
CURRENCY_RATES = PROJECT_ROOT / "dbt_project" / "seeds" / "currency_rates.csv"
CREATE_RE = re.compile(r"create table (\w+)", re.IGNORECASE)


def statements(sql: str) -> list[str]:
    """The script's statements, comments dropped; statements end with `;` at the end of a line."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


def run_floor(landing: Path, database: Path, quiet: bool = False) -> dict:
    """Run `floor.sql` against `landing` in a new database file at `database`: seconds and rows per table."""
    if database.exists():
        raise SystemExit(f"{database} exists; the floor runs on a fresh database file")
    settings = get_settings()
    con = duckdb.connect(str(database))
    try:
        apply_duckdb_settings(con, settings)
        con.execute("set enable_progress_bar = false")
        con.execute("set variable landing = ?", [str(landing.resolve())])
        con.execute("set variable currency_rates = ?", [str(CURRENCY_RATES)])
        threads, memory_limit = con.execute(
            "select current_setting('threads'), current_setting('memory_limit')").fetchone()
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        for statement in statements(FLOOR_SQL.read_text()):
            t0 = time.perf_counter()
            con.execute(statement)
            created = CREATE_RE.match(statement)
            if created:
                seconds[created.group(1)] = time.perf_counter() - t0
                if not quiet:
                    print(f"  {created.group(1):<24} {seconds[created.group(1)]:7.2f} s", flush=True)
        con.execute("checkpoint")
        total = time.perf_counter() - started
        rows = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in seconds}
    finally:
        con.close()
    return {"floor_s": round(total, 2), "threads": int(threads), "memory_limit": memory_limit,
            "seconds": {k: round(v, 2) for k, v in seconds.items()}, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--database", type=Path, required=True, help="a DuckDB file that does not exist yet")
    parser.add_argument("--quiet", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    result = run_floor(args.landing, args.database, quiet=args.quiet)
    if not args.quiet:
        print(f"  {'total (with checkpoint)':<24} {result['floor_s']:7.2f} s "
              f"({result['threads']} threads, memory limit {result['memory_limit']})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
