"""What is waiting in the landing directory, computed without touching the warehouse.

The landing sensor compares the files on disk with the ledger that ingest publishes as Parquet; a file is
pending until its path and size appear there. The run key is a digest of the pending files' identities, so a
sensor that restarts (or loses its cursor) asks for the same run again and Dagster drops the duplicate, while
ingest itself skips any file already in the ledger.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow.parquet as pq

from orchestration.lib.erasure import REQUESTS_SOURCE
from orchestration.lib.ingest import discover
from orchestration.lib.settings import SOURCES, Settings
from orchestration.lib.warehouse import ledger_path


@dataclass(frozen=True)
class Pending:
    source: str
    rel_path: str
    size: int


def loaded_identities(settings: Settings) -> set[tuple[str, int]]:
    path = ledger_path(settings)
    if not path.exists():
        return set()
    table = pq.read_table(path, columns=["_file", "size_bytes"])
    return set(zip(table.column("_file").to_pylist(), table.column("size_bytes").to_pylist()))


def pending_files(settings: Settings) -> list[Pending]:
    loaded = loaded_identities(settings)
    pending: list[Pending] = []
    # Erasure requests too: the ingest job processes them before it loads anything.
    for source in (*SOURCES, REQUESTS_SOURCE):
        files, _ = discover(settings.landing_dir, source)
        for f in files:
            size = f.size
            if (f.rel_path, size) not in loaded:
                pending.append(Pending(source, f.rel_path, size))
    return pending


def run_key(pending: list[Pending]) -> str:
    digest = hashlib.sha256()
    for p in sorted(pending, key=lambda p: p.rel_path):
        digest.update(f"{p.rel_path}\0{p.size}\n".encode())
    return f"landing-{digest.hexdigest()[:24]}"

