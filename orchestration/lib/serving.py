"""The serving snapshot: every mart as Parquet, published as a whole and swapped atomically.

Write, audit, publish: a build writes the warehouse, its blocking checks audit it, and only then is a snapshot
published here. Readers (the report, sensors, BI tools, notebooks) open `<serving>/current/<mart>.parquet`, or
`<serving>/current/serving.duckdb` (a small DuckDB file of views over that snapshot's Parquet files), and never
the live warehouse file, so they read while a build holds it. A snapshot is written into a new folder, then
`current` is switched by an atomic rename of a symlink: a reader sees the old snapshot or the new one, never
a mix.

`<serving>/status.json` says whether the last build published: after a build whose checks failed it names the
run, the failed checks and the last good snapshot readers stay on, until a build publishes again.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.lib.failpoints import failpoint
from orchestration.lib.settings import Settings
from orchestration.lib.warehouse import publish_parquet, table_exists

KEEP_SNAPSHOTS = 3
VIEWS_DB = "serving.duckdb"


def current_dir(settings: Settings) -> Path:
    return settings.serving_dir / "current"


def publish_snapshot(con: duckdb.DuckDBPyConnection, settings: Settings, marts: list[str], snapshot_id: str
                     ) -> dict:
    root = settings.serving_dir / "snapshots"
    target = root / snapshot_id
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    counts: dict[str, int] = {}
    for mart in marts:
        if not table_exists(con, "marts", mart):
            continue
        publish_parquet(con, f"select * from marts.{mart}", target / f"{mart}.parquet")
        counts[mart] = con.execute(f"select count(*) from marts.{mart}").fetchone()[0]
    manifest = {
        "snapshot_id": snapshot_id,
        "published_at": datetime.now(timezone.utc).isoformat(),
        "row_counts": counts,
    }
    (target / "_snapshot.json").write_text(json.dumps(manifest, indent=2))
    _write_views(target, list(counts))
    failpoint("serving.before_swap")
    link = current_dir(settings)
    tmp_link = settings.serving_dir / f".current.{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(target.relative_to(settings.serving_dir), target_is_directory=True)
    os.replace(tmp_link, link)
    _write_status(settings, {"state": "published", "snapshot_id": snapshot_id,
                             "published_at": manifest["published_at"]})
    _prune(root, keep=target)
    return manifest


def _write_views(folder: Path, marts: list[str]) -> None:
    """`serving.duckdb` in the snapshot folder: one view per mart over that snapshot's Parquet file.

    The views name absolute paths inside the snapshot folder (DuckDB resolves relative paths against the
    reader's working directory), so a reader holding the file keeps a consistent snapshot after a swap.
    """
    path = folder / VIEWS_DB
    con = duckdb.connect(str(path))
    try:
        for mart in marts:
            parquet = str((folder / f"{mart}.parquet").resolve()).replace("'", "''")
            con.execute(f"create or replace view {mart} as select * from read_parquet('{parquet}')")
    finally:
        con.close()


def connect_snapshot() -> duckdb.DuckDBPyConnection:
    """A read-only connection to the current snapshot's views (`select * from customers`).

    Opens a DuckDB file no build ever writes, so it works while a build runs. Close it when done: the snapshot
    folder it points into is deleted a few publishes later.
    """
    from orchestration.lib.settings import get_settings

    folder = current_dir(get_settings()).resolve()
    return duckdb.connect(str(folder / VIEWS_DB), read_only=True)


def status_path(settings: Settings) -> Path:
    return settings.serving_dir / "status.json"


def read_status(settings: Settings) -> dict | None:
    path = status_path(settings)
    return json.loads(path.read_text()) if path.exists() else None


def _write_status(settings: Settings, status: dict) -> None:
    path = status_path(settings)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=2))
    os.replace(tmp, path)


def current_manifest(settings: Settings) -> dict | None:
    path = current_dir(settings) / "_snapshot.json"
    return json.loads(path.read_text()) if path.exists() else None


def record_not_published(settings: Settings, run_id: str, reasons: list[str]) -> dict:
    """A build ended without publishing: readers stay on the last good snapshot, and the status says why.

    `stale_since` keeps the first such build of a streak, so a second failure does not hide how long readers
    have been on old data.
    """
    previous = read_status(settings) or {}
    last_good = current_manifest(settings) or {}
    now = datetime.now(timezone.utc).isoformat()
    status = {
        "state": "stale",
        "snapshot_id": last_good.get("snapshot_id"),
        "published_at": last_good.get("published_at"),
        "failed_run_id": run_id,
        "failed_at": now,
        "stale_since": previous.get("stale_since") if previous.get("state") == "stale" else now,
        "reasons": reasons,
    }
    _write_status(settings, status)
    return status


def stale_message(status: dict) -> str:
    """One sentence for people: what was not published, why, and what readers see instead."""
    reasons = status.get("reasons") or ["the build failed"]
    shown = "; ".join(reasons[:5]) + (f"; +{len(reasons) - 5} more" if len(reasons) > 5 else "")
    last = (f"the last good snapshot {status['snapshot_id']} (published {status['published_at']})"
            if status.get("snapshot_id") else "no snapshot (none was ever published)")
    return (f"Serving snapshot not updated by run {status['failed_run_id']}: {shown}. "
            f"Readers stay on {last}.")


def _prune(root: Path, keep: Path) -> None:
    snapshots = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in snapshots[:-KEEP_SNAPSHOTS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)



def drop_other_snapshots(settings: Settings) -> list[str]:
    """Delete every snapshot but the current one (after an erasure, older snapshots still hold the person)."""
    root = settings.serving_dir / "snapshots"
    link = current_dir(settings)
    keep = link.resolve() if link.exists() else None
    dropped = []
    for old in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        if old.resolve() != keep:
            shutil.rmtree(old, ignore_errors=True)
            dropped.append(old.name)
    return dropped
