"""Writing the landing directory: `<out>/<source>/<delivery date>/<file>`, exactly as the data contract says.

Files are arranged first and rendered second: every record gets its delivery day and its position before any
text exists, so the physical line of each record (what the truth file and the quarantine refer to) is known
without re-reading the output, and events are rendered one delivery day at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.events import Renderer
from simulator.faults import EventFaults
from simulator.formats import DAY_MS, dates
from simulator.tables import Table
from simulator.world import Period

REC_ORIGINAL, REC_DUPLICATE, REC_MALFORMED = range(3)
GZIP_EVERY = 7  # every 7th delivery day is gzipped, so ingest sees both encodings
GZIP_ALL_LEVEL = 1  # with every file gzipped (`gzip_all`): 7.5x smaller at about 130 MB/s, level 6 is 10x at 55 MB/s
SPLIT_EVERY = 4  # and every 4th is split into two files


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_table(out: Path, table: Table, period: Period, tag: str = "",
                every_day: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Write one CSV file per delivery day (a header-only file on days without rows, if `every_day`).

    Returns each row's file (relative to `out`) and 1-based physical line (the header is line 1; a quoted
    newline makes a record span two lines), and the files written. `tag` goes before the extension: a block
    of a larger shop writes `orders_<date>.b0003.csv` beside the other blocks' files.
    """
    n = len(table)
    order = np.lexsort((np.arange(n), table.key, table.day))
    bounds = np.searchsorted(table.day[order], np.arange(period.days + 1))
    # The helpdesk export uses CRLF, the others LF: RFC 4180 allows both and ingest must accept both.
    terminator = "\r\n" if table.source == "tickets" else "\n"
    columns = [np.asarray(table.values[c], dtype=object) for c in table.columns]
    # Physical lines per record: 1 plus the newlines inside its fields, counted only in columns that have any.
    extra_lines = np.zeros(n, dtype=np.int64)
    for col in (*columns, table.spill):
        if any("\n" in value for value in col.tolist()):
            extra_lines += np.fromiter((value.count("\n") for value in col.tolist()), dtype=np.int64, count=n)
    file = np.empty(n, dtype=object)
    line = np.zeros(n, dtype=np.int64)
    written = []
    for d, date in enumerate(dates(period.start_day + np.arange(period.days))):
        idx = order[bounds[d]:bounds[d + 1]]
        if not every_day and len(idx) == 0:
            continue
        rel = f"{table.source}/{date}/{table.source}_{date}{tag}.csv"
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator=terminator)
        writer.writerow(table.columns)
        rows = list(zip(*(col[idx].tolist() for col in columns)))
        spill = table.spill[idx]
        for j in np.nonzero(spill != "")[0]:
            rows[j] = (*rows[j], spill[j])
        writer.writerows(rows)
        file[idx] = rel
        height = 1 + extra_lines[idx]
        line[idx] = 2 + np.cumsum(height) - height
        _write(out / rel, buf.getvalue().encode("utf-8"))
        written.append(rel)
    return file, line, written


@dataclass
class EventLines:
    """Every line written to the events source, in no particular order; `file`/`line` say where it went."""

    kind: np.ndarray
    event: np.ndarray  # unique-event index, -1 for malformed lines
    received_ms: np.ndarray
    day: np.ndarray
    file: np.ndarray
    line: np.ndarray
    files: list[str]


def event_records(n_events: int, received_ms: np.ndarray, delivery_day: np.ndarray, faults: EventFaults,
                  period: Period) -> dict[str, np.ndarray]:
    """The lines to write: originals (late ones moved), duplicates and malformed lines, with their sort keys.

    Inside a delivery day, on-time lines come in `receivedAt` order and lines that arrive in a later batch
    (late events, duplicates re-sent on a later day) follow them.
    """
    day = delivery_day + faults.late_days
    d = faults.dup_event
    same = faults.dup_day == day[d]
    k = len(faults.bad_day)
    return {
        "kind": np.concatenate([np.full(n_events, REC_ORIGINAL), np.full(len(d), REC_DUPLICATE),
                                np.full(k, REC_MALFORMED)]),
        "event": np.concatenate([np.arange(n_events), d, np.full(k, -1)]),
        "malformed": np.concatenate([np.full(n_events + len(d), -1), np.arange(k)]),
        "received_ms": np.concatenate([received_ms, received_ms[d] + faults.dup_shift_ms, np.full(k, -1)]),
        "day": np.concatenate([day, faults.dup_day, faults.bad_day]),
        "section": np.concatenate([(faults.late_days > 0).astype(np.int64),
                                   np.where(same, (faults.late_days[d] > 0).astype(np.int64), 1),
                                   np.zeros(k, dtype=np.int64)]),
        "key": np.concatenate([received_ms, received_ms[d] + faults.dup_shift_ms,
                               (period.start_day + faults.bad_day) * DAY_MS + faults.bad_key]),
    }


def write_events(out: Path, renderer: Renderer, times: dict[str, np.ndarray], rec: dict[str, np.ndarray],
                 faults: EventFaults, period: Period, progress=None, tag: str = "",
                 gzip_all: bool = False) -> EventLines:
    total = len(rec["kind"])
    order = np.lexsort((np.arange(total), rec["key"], rec["section"], rec["day"]))
    bounds = np.searchsorted(rec["day"][order], np.arange(period.days + 1))
    file = np.empty(total, dtype=object)
    line = np.zeros(total, dtype=np.int64)
    written = []
    for d, date in enumerate(dates(period.start_day + np.arange(period.days))):
        idx = order[bounds[d]:bounds[d + 1]]
        if progress is not None:
            progress.update(1)
        if len(idx) == 0:
            continue
        text = np.empty(len(idx), dtype=object)
        is_event = rec["kind"][idx] != REC_MALFORMED
        ev = rec["event"][idx[is_event]]
        text[is_event] = renderer.render(ev, times["ts"][ev], times["sent"][ev], rec["received_ms"][idx[is_event]])
        bad = rec["malformed"][idx[~is_event]]
        text[~is_event] = _malformed_text(renderer, times, faults, bad)
        parts = 2 if d % SPLIT_EVERY == SPLIT_EVERY - 2 and len(idx) >= 2 else 1
        cut = [0, len(idx) // 2, len(idx)] if parts == 2 else [0, len(idx)]
        suffix = ".jsonl.gz" if gzip_all or d % GZIP_EVERY == GZIP_EVERY - 1 else ".jsonl"
        for p in range(parts):
            rel = f"events/{date}/events_{date}_{p:02d}{tag}{suffix}"
            chunk = idx[cut[p]:cut[p + 1]]
            file[chunk] = rel
            line[chunk] = np.arange(1, len(chunk) + 1)
            data = ("\n".join(text[cut[p]:cut[p + 1]]) + "\n").encode("utf-8")
            if suffix.endswith(".gz"):
                data = gzip.compress(data, compresslevel=GZIP_ALL_LEVEL if gzip_all else 6, mtime=0)
            _write(out / rel, data)
            written.append(rel)
    return EventLines(rec["kind"], rec["event"], rec["received_ms"], rec["day"], file, line, written)


def _malformed_text(renderer: Renderer, times: dict[str, np.ndarray], faults: EventFaults,
                    bad: np.ndarray) -> np.ndarray:
    """Static garbage, or a real event's line cut short (a collector that died mid-write)."""
    out = faults.bad_text[bad].copy()
    truncated = out == ""
    if truncated.any():
        src = faults.bad_source[bad[truncated]]
        full = renderer.render(src, times["ts"][src], times["sent"][src], times["received"][src])
        cuts = faults.bad_cut[bad[truncated]]
        out[truncated] = [s[: max(1, int(len(s) * c))] for s, c in zip(full, cuts)]
    return out
