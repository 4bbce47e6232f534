"""The serving snapshot: every mart as Parquet, published as a whole and swapped atomically.

Readers (the UI, sensors, reports, notebooks) open `<serving>/current/<mart>.parquet` and never the live
warehouse file. A snapshot is written into a new folder, then `current` is switched by an atomic rename of a
symlink, so a reader sees the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.lib.settings import Settings
from orchestration.lib.warehouse import publish_parquet, table_exists

KEEP_SNAPSHOTS = 3


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
    link = current_dir(settings)
    tmp_link = settings.serving_dir / f".current.{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(target.relative_to(settings.serving_dir), target_is_directory=True)
    os.replace(tmp_link, link)
    _prune(root, keep=target)
    return manifest


def _prune(root: Path, keep: Path) -> None:
    snapshots = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in snapshots[:-KEEP_SNAPSHOTS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)

