"""The truth directory: what really happened, for tests and for checking the platform's answers.

The landing data is what a shop's systems would export; these files are what only the simulator knows (the
true person behind each device, the true event time behind a skewed clock, which lines are planted faults,
each customer's latent behaviour). Their columns are described in `simulator/README.md`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TRUTH_FILES = ("summary.json", "events.parquet", "identity.csv", "faults.csv", "customers.csv", "experiments.csv",
               "daily.csv")
FAULT_COLUMNS = ("source", "file", "line", "kind", "key", "expected_rule", "detail")


def write_csv(path: Path, columns: list[str], rows: dict[str, np.ndarray] | list[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    if isinstance(rows, dict):
        rows = zip(*(np.asarray(rows[c], dtype=object).tolist() for c in columns))
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def strings(values: np.ndarray) -> pa.Array:
    # From a list: Arrow converts a list of str an order of magnitude faster than an object ndarray.
    return pa.array(np.asarray(values, dtype=object).tolist(), type=pa.string())


def labels(codes: np.ndarray, dictionary, null: np.ndarray | None = None) -> pa.Array:
    """A string column from integer codes into a small dictionary, decoded by Arrow (no per-row Python)."""
    indices = pa.array(np.asarray(codes, dtype=np.int32), mask=null)
    values = strings(dictionary)
    return pa.DictionaryArray.from_arrays(indices, values).dictionary_decode()


def timestamps(ms: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ms, dtype=np.int64), type=pa.timestamp("ms", tz="UTC"))


def write_events(path: Path, columns: dict[str, pa.Array]) -> None:
    pq.write_table(pa.table(columns), path, compression="zstd")
