"""Large shops in blocks of customers: bounded memory, optional worker processes, one merged truth directory.

A block is a shop of its own over the same period, catalogue, experiments and incident days (all of them fixed
by the arguments, not drawn), with its own random streams, its own id space (`formats.IdSpace`) and its own
landing file names (`orders_<date>.b0003.csv`), so blocks never touch each other's files and can run in any
order or at the same time. Customers of different blocks do not interact in the model (no customer affects
another), so a shop of blocks is a shop. Each block writes its truth files into `<truth>/.blocks/b0003/`;
`merge_truth` then joins them into the shop's truth files one block at a time and removes the parts.
"""

from __future__ import annotations

import csv
import heapq
import multiprocessing
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simulator import truth
from simulator.formats import BLOCK_DIGITS

PARTS = ".blocks"
# A block numbers its customers in six digits (`IdSpace`), with room above them for orphan customer ids.
MAX_BLOCK_CUSTOMERS = 500_000


def block_sizes(customers: int, block_customers: int) -> list[int]:
    """Customers per block: as few blocks as fit, as even as possible (no tiny last block)."""
    count = -(-customers // block_customers)
    if count >= 10 ** BLOCK_DIGITS:
        raise ValueError(f"at most {10 ** BLOCK_DIGITS - 1} blocks; raise block_customers")
    if count > 1 and block_customers > MAX_BLOCK_CUSTOMERS:
        raise ValueError(f"block_customers must be at most {MAX_BLOCK_CUSTOMERS} when a shop has several blocks")
    return [customers // count + (i < customers % count) for i in range(count)]


def parts_root(truth_dir: Path) -> Path:
    return Path(truth_dir) / PARTS


def part_dir(truth_dir: Path, index: int) -> Path:
    return parts_root(truth_dir) / f"b{index:0{BLOCK_DIGITS}d}"


def run(fn: Callable, jobs: list, args: dict, workers: int) -> Iterator[dict]:
    """`fn(job, args)` for every job, in job order; in `workers` fresh processes when more than one.

    A worker process simulates one block and exits, so memory a block leaves behind is returned to the system.
    """
    if workers == 1:
        for job in jobs:
            yield fn(job, args)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                             max_tasks_per_child=1) as pool:
        yield from pool.map(fn, jobs, [args] * len(jobs))


def merge_truth(truth_dir: Path, jobs: list, summaries: list[dict], args: dict, block_customers: int) -> dict:
    """Join the blocks' truth files into the shop's; returns the merged summary (also written)."""
    parts = [Path(job.truth) for job in jobs]
    _concat_csv(truth_dir / "customers.csv", parts, "customers.csv")
    _sum_csv(truth_dir / "daily.csv", parts, "daily.csv")
    _experiments(truth_dir / "experiments.csv", parts, [e["experiment_id"] for e in summaries[0]["experiments"]])
    _merge_faults(truth_dir / "faults.csv", parts)
    if (parts[0] / "events.parquet").exists():
        _concat_csv(truth_dir / "identity.csv", parts, "identity.csv")
        _events(truth_dir / "events.parquet", parts, [s["counts"]["sessions"] for s in summaries])
    summary = merge_summaries(summaries, args, block_customers)
    truth.write_json(truth_dir / "summary.json", summary)
    shutil.rmtree(parts_root(truth_dir))
    return summary


def merge_summaries(summaries: list[dict], args: dict, block_customers: int) -> dict:
    """Counts and files summed over blocks; realised experiment results pooled; the rest is the same in all."""
    first = summaries[0]
    merged = dict(first)
    merged["args"] = args
    merged["blocks"] = {"count": len(summaries), "block_customers": block_customers,
                        "customers": [s["counts"]["customers"] for s in summaries]}
    merged["files"] = _sum([s["files"] for s in summaries])
    merged["counts"] = _sum([s["counts"] for s in summaries])
    experiments = []
    for i, spec in enumerate(first["experiments"]):
        realised = {}
        for variation in spec["realised"]:
            stats = _sum([s["experiments"][i]["realised"][variation] for s in summaries],
                         skip=("session_conversion",))
            exposed = stats["exposed_sessions"]
            stats["session_conversion"] = round(stats["converted_sessions"] / exposed, 4) if exposed else None
            realised[variation] = {k: stats[k] for k in spec["realised"][variation]}
        experiments.append(dict(spec, realised=realised))
    merged["experiments"] = experiments
    return merged


def _sum(dicts: list[dict], skip: tuple[str, ...] = ()) -> dict:
    out = {}
    for key, value in dicts[0].items():
        if key in skip:
            continue
        if isinstance(value, dict):
            out[key] = _sum([d[key] for d in dicts])
        else:
            out[key] = sum(d[key] for d in dicts)
    return out


def _concat_csv(path: Path, parts: list[Path], name: str) -> None:
    """Rows of every block, block after block, under one header (ids carry the block, so order is id order)."""
    with path.open("wb") as target:
        for i, part in enumerate(parts):
            with (part / name).open("rb") as source:
                header = source.readline()
                if i == 0:
                    target.write(header)
                shutil.copyfileobj(source, target)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _sum_csv(path: Path, parts: list[Path], name: str) -> None:
    """daily.csv: every column but the date is a count, so the shop's day is the sum of its blocks' days."""
    header, rows = _read_csv(parts[0] / name)
    total = np.array([[int(x) for x in r[1:]] for r in rows], dtype=np.int64)
    for part in parts[1:]:
        total += np.array([[int(x) for x in r[1:]] for r in _read_csv(part / name)[1]], dtype=np.int64)
    truth.write_csv(path, header, [[r[0], *t] for r, t in zip(rows, total.tolist())])


def _experiments(path: Path, parts: list[Path], experiment_ids: list[str]) -> None:
    """experiments.csv grouped by experiment, as a one-block shop writes it."""
    with path.open("wb") as target:
        for e, experiment in enumerate(experiment_ids):
            prefix = (experiment + ",").encode()
            for i, part in enumerate(parts):
                with (part / "experiments.csv").open("rb") as source:
                    header = source.readline()
                    if e == 0 and i == 0:
                        target.write(header)
                    target.writelines(row for row in source if row.startswith(prefix))


def _fault_key(row: list[str]) -> tuple:
    return row[0], row[1], int(row[2]) if row[2] != "" else -1, row[3], row[4]


def _merge_faults(path: Path, parts: list[Path]) -> None:
    """faults.csv in the one-block order (source, file, line, kind, key): a streaming merge of sorted parts."""
    handles = [(part / "faults.csv").open(newline="", encoding="utf-8") for part in parts]
    try:
        readers = [csv.reader(h) for h in handles]
        header = [next(r) for r in readers][0]
        with path.open("w", newline="", encoding="utf-8") as target:
            writer = csv.writer(target, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(heapq.merge(*readers, key=_fault_key))
    finally:
        for h in handles:
            h.close()


def _events(path: Path, parts: list[Path], sessions: list[int]) -> None:
    """events.parquet, block after block; `session_no` is numbered on across blocks so it stays shop-unique."""
    writer = None
    offset = 0
    try:
        for part, count in zip(parts, sessions):
            source = pq.ParquetFile(part / "events.parquet")
            for g in range(source.num_row_groups):
                table = source.read_row_group(g)
                column = table.schema.get_field_index("session_no")
                table = table.set_column(column, table.schema.field(column),
                                         pc.add(table.column(column), pa.scalar(offset, table.column(column).type)))
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema, compression="zstd")
                writer.write_table(table)
            offset += count
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no block had an event: the first block's empty file says so with the right schema
        shutil.copyfile(parts[0] / "events.parquet", path)
