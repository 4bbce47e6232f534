"""Vectorised formatting of timestamps, ids, money and JSON fragments.

Times are int64 milliseconds since the Unix epoch (UTC) everywhere in the simulator; only these helpers turn
them into text, so every landed timestamp carries an explicit offset and means the intended UTC instant.
Formatting works on whole numpy arrays because the event stream is large: a per-event Python loop would
dominate the run time at millions of events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import repeat

import numpy as np

DAY_MS = 86_400_000
SECOND_MS = 1_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def offset_suffix(minutes: int, utc: str = "Z") -> str:
    """`+01:00` style suffix for a fixed offset; `utc` is how the writing system spells offset zero."""
    if minutes == 0:
        return utc
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(int(minutes)), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def iso(ms: np.ndarray, offset_minutes: np.ndarray | int = 0, *, unit: str = "s", utc: str = "Z") -> np.ndarray:
    """ISO-8601 strings of the instants `ms`, rendered in local time at `offset_minutes` with that offset.

    Returns an object array of `str`. `unit` is `s` or `ms` (fractional seconds).
    """
    ms = np.asarray(ms, dtype=np.int64)
    offsets = np.broadcast_to(np.asarray(offset_minutes, dtype=np.int64), ms.shape)
    local = ms + offsets * MINUTE_MS
    text = np.datetime_as_string(local.astype("datetime64[ms]"), unit=unit).astype(object)
    unique, inverse = np.unique(offsets, return_inverse=True)
    suffixes = np.array([offset_suffix(int(o), utc) for o in unique], dtype=object)
    return text + suffixes[inverse.reshape(ms.shape)]


def naive(ms: np.ndarray, *, sep: str = "T") -> np.ndarray:
    """UTC wall-clock time with no offset: what a misconfigured export writes (and the contract rejects)."""
    text = np.datetime_as_string(np.asarray(ms, dtype=np.int64).astype("datetime64[ms]"), unit="s")
    return np.char.replace(text, "T", sep).astype(object)


def dates(day_numbers: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DD` for days since the epoch."""
    return np.datetime_as_string(np.asarray(day_numbers, dtype=np.int64).astype("datetime64[D]")).astype(object)


def zfill(numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal text of non-negative integers (safe on empty arrays, unlike `np.char.zfill`)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.zeros(numbers.shape, dtype=object)
    return np.char.zfill(numbers.astype(str), width).astype(object)


def money(cents: np.ndarray) -> np.ndarray:
    """Decimal text with two decimals (`1234` -> `12.34`); negative values keep their sign."""
    cents = np.asarray(cents, dtype=np.int64)
    sign = np.where(cents < 0, "-", "").astype(object)
    absolute = np.abs(cents)
    whole = (absolute // 100).astype(str).astype(object)
    frac = zfill(absolute % 100, 2)
    return sign + whole + "." + frac


def seq_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Sequential business ids such as `O0000042`."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return prefix + zfill(numbers, width)


BLOCK_DIGITS = 4


@dataclass(frozen=True)
class IdSpace:
    """Where one block of customers numbers its sequential ids (customers, orders, payments, tickets, ...).

    A shop simulated in one block numbers them as before (`C000123`, `O0000042`). A shop simulated in several
    blocks puts the block number in front of each block's own number, so every block can be generated alone,
    in any order or in parallel, and ids still never collide: block 3's order 42 is `O00030000042` (the
    block's four digits, then the usual seven). Every id of such a shop has the same width.
    """

    block: int = 0
    blocked: bool = False

    def numbers(self, local: np.ndarray, width: int) -> np.ndarray:
        """Shop-wide numbers of a block's own numbers `local` (1, 2, ...) formatted `width` digits wide."""
        local = np.asarray(local, dtype=np.int64)
        if not self.blocked:
            return local
        if local.size and int(local.max()) >= 10 ** width:
            raise ValueError(f"a block numbers more than {10 ** width - 1} ids of one kind; "
                             "use fewer customers per block")
        return local + self.block * 10 ** width

    def seq(self, prefix: str, local: np.ndarray, width: int) -> np.ndarray:
        """`seq_ids` in this block's space."""
        return seq_ids(prefix, self.numbers(local, width), width + BLOCK_DIGITS if self.blocked else width)


def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random version-4 UUID strings drawn from `rng`, so they repeat exactly for a given seed."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = hexdigits[raw >> 4]
    hexed[:, 1::2] = hexdigits[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, 0:8] = hexed[:, 0:8]
    out[:, 9:13] = hexed[:, 8:12]
    out[:, 14:18] = hexed[:, 12:16]
    out[:, 19:23] = hexed[:, 16:20]
    out[:, 24:36] = hexed[:, 20:32]
    return out.view("S36").ravel().astype("U36").astype(object)


def json_str(values: np.ndarray) -> np.ndarray:
    """JSON string literals (quoted and escaped) of an array of strings, encoding each distinct value once."""
    values = np.asarray(values, dtype=object)
    if values.size == 0:
        return values.copy()
    unique, inverse = np.unique(values, return_inverse=True)
    encoded = np.array([json.dumps(v, ensure_ascii=False) for v in unique], dtype=object)
    return encoded[inverse.reshape(values.shape)]


def cat(*parts) -> np.ndarray:
    """Concatenate strings and equally long string arrays element-wise into an object array.

    One `str.join` per element over all parts: repeated `+` on object arrays copies the growing prefix once per
    part, which is several times slower for the long JSON lines built here.
    """
    n = next((len(p) for p in parts if not isinstance(p, str)), None)
    if n is None:
        return "".join(parts)
    columns = [repeat(p, n) if isinstance(p, str) else np.asarray(p, dtype=object).tolist() for p in parts]
    out = np.empty(n, dtype=object)
    out[:] = list(map("".join, zip(*columns)))
    return out


def quote(values: np.ndarray) -> np.ndarray:
    """JSON string literals of values known to need no escaping (ids, paths, catalogue names)."""
    return cat('"', values, '"')
