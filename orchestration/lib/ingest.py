"""Load landing files into the raw layer: once per file version, typed, pseudonymized, bad rows quarantined.

How a file travels:
1. `discover` lists `<landing>/<source>/<YYYY-MM-DD>/<file>`; a file is identified by its path and SHA-256. A
   path loaded before with other bytes is a re-delivery, loaded again as a new version (staging dedupes).
2. Python splits the file into records, keeping the line where each record starts and its raw text. Python's
   csv module does this for CSV (quoted newlines included), a byte split does it for JSONL. DuckDB's own CSV
   reader reports line numbers only for rejected rows, and every raw row must carry its line.
3. DuckDB does the rest in bulk: JSON parsing, type casts, rule checks, HMAC pseudonyms, PII masking.
4. One transaction writes the good rows, the quarantined rows and the ledger entry, so a crash leaves the
   file either loaded whole or not at all, and the next run picks it up.
The restricted PII store (a separate DuckDB file) gets the pseudonym map and the unmasked raw text of
quarantined rows first; writes there are idempotent, so a crash between the two stores loses nothing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.lib import contract
from orchestration.lib.failpoints import failpoint
from orchestration.lib.pseudonymize import install_sql_hmac
from orchestration.lib.settings import SOURCES, Settings
from orchestration.lib.warehouse import apply_duckdb_settings
from orchestration.lib.suppression import drop_suppressed, ensure_suppression_schema, mentions_suppressed

DATE_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SUFFIXES = {"events": (".jsonl", ".jsonl.gz")}
CSV_SUFFIXES = (".csv", ".csv.gz")
TS_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$"
QUARANTINE_TEXT_LIMIT = 4096
# The csv module's field limit is process-wide; raising it only lets other readers accept longer fields too.
csv.field_size_limit(max(csv.field_size_limit(), contract.MAX_CSV_FIELD_CHARS))
# Records staged and committed together; small files are batched because per-statement overhead dominates.
BATCH_ROWS = 1_000_000
TRUE_WORDS = "'true','1','yes','t','y'"
BOOLEAN_WORDS = TRUE_WORDS + ",'false','0','no','f','n'"
# JSON members whose values are personal data; masked in the quarantine copy of a broken line.
PII_JSON_RE = re.compile(
    r'"(email|phone|first_name|last_name|firstName|lastName|name|ip|address)"\s*:\s*"(?:[^"\\]|\\.)*"?'
)


@dataclass(frozen=True)
class LandedFile:
    source: str
    path: Path
    rel_path: str
    delivery_date: date

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class FileResult:
    source: str
    rel_path: str
    delivery_date: date
    status: str  # loaded | reloaded (a new version of a loaded path) | skipped | rejected
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    rows_suppressed: int = 0  # rows of erased people, dropped before load (orchestration/lib/suppression.py)

    @property
    def drift(self) -> dict[str, int]:
        """Row rules broken by most of the file's rows: a change of the source's format, not a few bad rows."""
        total = self.rows_loaded + self.rows_quarantined
        return {rule: n for rule, n in sorted(self.rules.items())
                if n >= contract.DRIFT_MIN_ROWS and n > contract.DRIFT_SHARE * total}


@dataclass
class SourceResult:
    source: str
    files: list[FileResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.status in ("loaded", "reloaded", "rejected")]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def rows_suppressed(self) -> int:
        return sum(f.rows_suppressed for f in self.files)

    def rules(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for rule, n in f.rules.items():
                out[rule] = out.get(rule, 0) + n
        return dict(sorted(out.items()))


def discover(landing_dir: Path, source: str) -> tuple[list[LandedFile], list[str]]:
    """Landed files of one source in delivery order, plus paths that break the layout (reported, not loaded)."""
    root = landing_dir / source
    files: list[LandedFile] = []
    ignored: list[str] = []
    if not root.is_dir():
        return files, ignored
    suffixes = SUFFIXES.get(source, CSV_SUFFIXES)
    for day_dir in sorted(root.iterdir()):
        rel_day = day_dir.relative_to(landing_dir).as_posix()
        if not day_dir.is_dir() or not DATE_DIR_RE.match(day_dir.name):
            ignored.append(rel_day)
            continue
        try:
            delivery = date.fromisoformat(day_dir.name)
        except ValueError:
            ignored.append(rel_day)
            continue
        for path in sorted(day_dir.iterdir()):
            rel = path.relative_to(landing_dir).as_posix()
            if path.name.startswith(".") or not path.is_file():
                continue
            if not path.name.endswith(suffixes):
                ignored.append(rel)
                continue
            files.append(LandedFile(source, path, rel, delivery))
    return files, ignored


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables if missing; every source's table exists even before its first file."""
    con.execute("create schema if not exists raw")
    for source in SOURCES:
        cols = ", ".join(f'"{n}" {t}' for n, t in contract.raw_columns(source))
        con.execute(f"create table if not exists raw.{source} ({cols})")
    con.execute(
        """
        create table if not exists raw.quarantine (
            source varchar, _file varchar, _line bigint, rule varchar, message varchar, raw_text varchar,
            _delivery_date date, _loaded_at timestamp, _load_id varchar)
        """
    )
    con.execute(
        """
        create table if not exists raw.loaded_files (
            source varchar, _file varchar, _delivery_date date, sha256 varchar, size_bytes bigint,
            rows_loaded bigint, rows_quarantined bigint, status varchar, _loaded_at timestamp,
            _load_id varchar)
        """
    )
    # Added after the first release: `alter` migrates existing warehouses (older rows stay null).
    # The header of each CSV file, so a later file that lacks a column its predecessors had is seen as drift.
    con.execute("alter table raw.loaded_files add column if not exists header_columns varchar[]")
    con.execute("alter table raw.loaded_files add column if not exists unknown_columns varchar[]")
    # Rows of erased people on the suppression list, dropped before load (docs/privacy.md).
    con.execute("alter table raw.loaded_files add column if not exists rows_suppressed bigint default 0")


def ensure_pii_schema(con: duckdb.DuckDBPyConnection, alias: str = "pii") -> None:
    con.execute(
        f"""
        create table if not exists {alias}.identities (
            kind varchar, hash varchar, value varchar, first_file varchar, first_loaded_at timestamp)
        """
    )
    con.execute(
        f"""
        create table if not exists {alias}.quarantine_raw (
            source varchar, _file varchar, _line bigint, rule varchar, raw_text varchar, _loaded_at timestamp)
        """
    )
    ensure_suppression_schema(con, alias)


def _csv_records(text_lines: list[tuple[str, bool]]
                 ) -> Iterator[tuple[int, list[str], str, bool, str | None]]:
    """Yield (start line, fields, raw text, utf-8 ok, quoting error) per CSV record, header included.

    Python's csv module reads a quote that is never closed as a field that runs on to the next quote character,
    or to the end of the file, swallowing every record in between; in its lenient mode it can even return a
    record of the right width that holds the next record's text. So records are read in strict mode (a
    character after a closing quote, or the end of the file inside quotes, is an error), and a record is broken
    quoting when the csv module rejects it or when it spans several lines with another field count than the
    header's, which a well-quoted record never does. A broken record is reported as its first line alone, with
    the error, and reading resumes on the next line: the records it swallowed are read again on their own, so a
    stray quote costs one line.
    """
    position = 0

    def feed() -> Iterator[str]:
        nonlocal position
        while position < len(text_lines):
            position += 1
            yield text_lines[position - 1][0]

    width: int | None = None
    reader = csv.reader(feed(), strict=True)
    while True:
        start = position
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            error: str | None = f"{exc} (lines {start + 1}-{position})"
        else:
            error = None
            if width is not None and position - start > 1 and len(fields) != width:
                error = (f"a quoted field runs over lines {start + 1}-{position} and the record has "
                         f"{len(fields)} fields, not {width}: unbalanced quote")
        if error is not None:
            text, ok = text_lines[start]
            yield start + 1, [], text, ok, f"{error}; reading resumed on line {start + 2}"
            position = start + 1
            reader = csv.reader(feed(), strict=True)
            continue
        consumed = text_lines[start:position]
        raw = "".join(t for t, _ in consumed)
        if fields or raw.strip():
            if width is None:
                width = len(fields)
            yield start + 1, fields, raw, all(ok for _, ok in consumed), None


def _split_lines(data: bytes) -> list[tuple[str, bool]]:
    return [_decode(line) for line in data.splitlines(keepends=True)]


def _utc_sql(column: str) -> str:
    """SQL for a timestamp text with an offset as a UTC `timestamp` (null when it does not parse)."""
    return f"timezone('UTC', try_cast(trim({column}) as timestamptz))"


def _future_limit_sql() -> str:
    """SQL for the first instant a record of the row's delivery folder may not carry (contract.py)."""
    return f"(_delivery_date + interval {contract.FUTURE_TOLERANCE_DAYS} day)"


# DuckDB's JSON reader accepts trailing commas, NaN and Infinity, which RFC 8259 does not. Lines that might
# use them (this pattern, searched in DuckDB) are parsed strictly in Python; the rest are left to DuckDB. The
# whitespace class is spelled out: RE2's `\s` lacks the vertical tab that JSON parsers skip.
LENIENT_JSON_SQL = r",[ \t\n\r\f\v]*[}\]]|NaN|Infinity"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_WHITESPACE = b" \t\n\r\x0b\x0c"
_WHITESPACE_BYTES = np.frombuffer(_WHITESPACE, dtype=np.uint8)


def _split_utf8_lines(data: bytes) -> tuple[np.ndarray, pa.LargeStringArray, np.ndarray] | None:
    """Line numbers, text and too-long flags of the non-blank lines of a UTF-8 file with `\n` line ends.

    Most files are such files, and they need no Python loop over their lines: the lines are cut with numpy and
    handed to Arrow as slices of the file's own bytes. Any other file (invalid UTF-8 somewhere, `\r` line ends)
    returns None and goes line by line, which gives the same records (blank lines skipped, lines numbered as
    `bytes.splitlines` numbers them).
    """
    if b"\r" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buffer == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    # A line that starts with a visible byte is not blank (every JSON object does); the few non-empty ones that
    # start with whitespace are judged one by one.
    nonempty = stops > starts
    keep = nonempty.copy()
    keep[nonempty] = ~np.isin(buffer[starts[nonempty]], _WHITESPACE_BYTES)
    for line in np.flatnonzero(nonempty & ~keep):
        keep[line] = bool(data[starts[line]:stops[line]].strip(_WHITESPACE))
    # Each line with its `\n` is one contiguous slice of the file; the `\n` is cut afterwards.
    offsets = np.concatenate((starts, [len(data)])).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))
    raw = pc.utf8_rtrim(lines.filter(pa.array(keep)), characters="\n")
    return np.flatnonzero(keep) + 1, raw, (stops - starts)[keep] > contract.MAX_EVENT_LINE_BYTES


def _strict_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return False
    return True


def _remember_header(first_seen: dict[str, date], day: date, columns) -> None:
    """Note a loaded file's header columns in `first_seen` (column -> earliest delivery date it arrived on)."""
    for column in columns:
        if column not in first_seen or day < first_seen[column]:
            first_seen[column] = day


class Ingestor:
    """Loads new landing files of each source into the warehouse; safe to run again at any time."""

    def __init__(self, settings: Settings, load_id: str | None = None):
        self.settings = settings
        self.load_id = load_id or uuid.uuid4().hex
        self.loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        # Header columns of each CSV file read in this run, for the ledger and the drift check.
        self.headers: dict[str, list[str]] = {}
        self._suppressed: dict[str, int] = {}  # rows of erased people dropped per file in the staged batch

    def connect(self) -> duckdb.DuckDBPyConnection:
        self.settings.ensure_dirs()
        con = duckdb.connect(str(self.settings.warehouse))
        apply_duckdb_settings(con, self.settings)
        con.execute("set timezone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        con.execute(f"attach '{self.settings.pii_db}' as pii")
        ensure_raw_schema(con)
        ensure_pii_schema(con)
        install_sql_hmac(con, self.settings.pseudonym_key())
        return con

    def load_source(self, source: str) -> SourceResult:
        con = self.connect()
        try:
            return self._load_source(con, source)
        finally:
            con.close()

    def _load_source(self, con: duckdb.DuckDBPyConnection, source: str) -> SourceResult:
        files, ignored = discover(self.settings.landing_dir, source)
        result = SourceResult(source, ignored=ignored)
        known = {
            (row[0], row[1])
            for row in con.execute(
                # `changed`: a version an older release recorded without loading it; it loads now.
                "select _file, sha256 from raw.loaded_files where source = ? and status <> 'changed'", [source]
            ).fetchall()
        }
        known_paths = {path for path, _ in known}
        # A path loaded before with other bytes is a re-delivery: it is loaded again as a new version, so rows
        # the source added reach the warehouse; the rows both versions share are duplicates staging removes.
        reloads: set[str] = set()
        first_seen = self._header_history(con, source)
        batch: list[tuple[LandedFile, str, pa.Table]] = []
        batch_rows = 0
        for landed in files:
            sha = file_sha256(landed.path)
            if (landed.rel_path, sha) in known:
                result.files.append(FileResult(source, landed.rel_path, landed.delivery_date, "skipped"))
                continue
            if landed.rel_path in known_paths:
                reloads.add(landed.rel_path)
            data = _read_bytes(landed.path)
            parsed = self._parse_events(landed, data) if source == "events" else self._parse_csv(landed, data)
            if not isinstance(parsed, tuple) and source != "events":
                parsed = self._header_drift(landed, first_seen) or parsed
            if isinstance(parsed, tuple):
                result.files.append(self._record_rejected(con, landed, sha, data, *parsed))
                continue
            if source != "events":
                _remember_header(first_seen, landed.delivery_date, self.headers[landed.rel_path])
            batch.append((landed, sha, parsed))
            batch_rows += parsed.num_rows
            if batch_rows >= BATCH_ROWS:
                result.files.extend(self._load_batch(con, source, batch, reloads))
                batch, batch_rows = [], 0
        if batch:
            result.files.extend(self._load_batch(con, source, batch, reloads))
        return result

    @staticmethod
    def _header_history(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, date]:
        """The earliest delivery date on which each header column of a CSV source arrived, over the files
        loaded before (one entry a column, so judging a file costs the same after 20,000 files as after one)."""
        first_seen: dict[str, date] = {}
        if source == "events":
            return first_seen
        for day, columns in con.execute(
                "select _delivery_date, header_columns from raw.loaded_files "
                "where source = ? and status in ('loaded', 'reloaded') and header_columns is not null",
                [source]).fetchall():
            _remember_header(first_seen, day, columns)
        return first_seen

    def _header_drift(self, landed: LandedFile, first_seen: dict[str, date]) -> tuple[str, str] | None:
        """Rule and message when the file lacks an optional column that files delivered up to its date had.

        The first files of a source may lack optional columns (they load as nulls). Once a column has arrived,
        a file without it is schema drift, most often a renamed column, and loading it would turn the column
        into nulls without a word; the file is rejected instead. Only earlier delivery dates count, so a late
        file in an old folder is judged as a rebuild from landing would judge it.
        """
        header = self.headers[landed.rel_path]
        spec = contract.CSV_SOURCES[landed.source]
        missing = [c for c in spec.header_optional
                   if c not in header and c in first_seen and first_seen[c] <= landed.delivery_date]
        if not missing:
            return None
        names = ", ".join(f"`{c}`" for c in missing)
        message = f"{names} present in earlier deliveries {'is' if len(missing) == 1 else 'are'} missing"
        unknown = spec.unknown_columns(header)
        if unknown:
            message += f"; unknown columns: {', '.join(f'`{c}`' for c in unknown[:20])} (renamed?)"
        return f"{landed.source}.header.drift", message

    def _record_rejected(self, con, landed: LandedFile, sha: str, data: bytes, rule: str, message: str
                         ) -> FileResult:
        """A file that cannot be read as its source (no header, missing columns): one quarantine row."""
        head = data[:QUARANTINE_TEXT_LIMIT].decode("utf-8", errors="replace")
        if mentions_suppressed(con, head):
            head = "[withheld: the text names an erased person]"
        self._forget_uncommitted_pii_quarantine(con, landed.source, [landed.rel_path])
        con.execute("insert into pii.quarantine_raw values (?, ?, 1, ?, ?, ?)",
                    [landed.source, landed.rel_path, rule, head, self.loaded_at])
        con.begin()
        con.execute(
            "insert into raw.quarantine values (?, ?, 1, ?, ?, null, ?, ?, ?)",
            [landed.source, landed.rel_path, rule, message, landed.delivery_date, self.loaded_at, self.load_id],
        )
        self._ledger(con, landed, sha, 0, 1, "rejected")
        con.commit()
        return FileResult(landed.source, landed.rel_path, landed.delivery_date, "rejected", 0, 1, {rule: 1},
                          self._unknown_columns(landed))

    def _unknown_columns(self, landed: LandedFile) -> list[str]:
        header = self.headers.get(landed.rel_path)
        return [] if header is None else contract.CSV_SOURCES[landed.source].unknown_columns(header)

    def _ledger(self, con, landed: LandedFile, sha: str, loaded: int, quarantined: int, status: str) -> None:
        header = self.headers.get(landed.rel_path)
        con.execute(
            """
            insert into raw.loaded_files (source, _file, _delivery_date, sha256, size_bytes, rows_loaded,
                rows_quarantined, status, _loaded_at, _load_id, header_columns, unknown_columns)
            values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [landed.source, landed.rel_path, landed.delivery_date, sha, landed.size, loaded, quarantined,
             status, self.loaded_at, self.load_id, header,
             None if header is None else self._unknown_columns(landed)],
        )

    def _load_batch(self, con: duckdb.DuckDBPyConnection, source: str,
                    batch: list[tuple[LandedFile, str, pa.Table]], reloads: set[str]) -> list[FileResult]:
        """Stage several parsed files at once and commit them in one transaction.

        Per-statement overhead dominates for small files, so files are staged together; the transaction
        still covers every file of the batch whole (rows, quarantine and ledger), so a crash leaves each
        file either loaded or not.
        """
        table = pa.concat_tables([t for _, _, t in batch], promote_options="permissive")
        con.register("_records_arrow", table)
        con.execute("create or replace temp table _records as select * from _records_arrow")
        con.unregister("_records_arrow")
        del table
        select_sql = self._stage_events_sql(con) if source == "events" else self._stage_csv_sql(con, source)
        try:
            # The PII map and the unmasked text of bad rows go to the restricted store before the warehouse
            # commit; both writes are idempotent, so a crash in between loses nothing.
            self._write_pii(con)
            self._write_pii_quarantine(con, source, [landed.rel_path for landed, _, _ in batch])
            counts = {
                (f, ok): n for f, ok, n in con.execute(
                    "select _file, len(_violations) = 0, count(*) from _checked group by all").fetchall()
            }
            rules: dict[str, dict[str, int]] = {}
            for f, rule, n in con.execute(
                "select _file, _violations[1], count(*) from _checked where len(_violations) > 0 group by all"
            ).fetchall():
                rules.setdefault(f, {})[rule] = n
            con.begin()
            try:
                cols = ", ".join(f'"{n}"' for n, _ in contract.raw_columns(source)[:-5])
                con.execute(
                    f"""
                    insert into raw.{source}
                    select {cols}, _file, _line, _delivery_date, ?::timestamp, ?::varchar
                    from ({select_sql}) where len(_violations) = 0 order by _file, _line
                    """,
                    [self.loaded_at, self.load_id],
                )
                con.execute(
                    """
                    insert into raw.quarantine
                    select ?, _file, _line, _violations[1], array_to_string(_messages, '; '), _raw_masked,
                           _delivery_date, ?::timestamp, ?::varchar
                    from _checked where len(_violations) > 0 order by _file, _line
                    """,
                    [source, self.loaded_at, self.load_id],
                )
                results = []
                for landed, sha, _ in batch:
                    loaded = counts.get((landed.rel_path, True), 0)
                    quarantined = counts.get((landed.rel_path, False), 0)
                    status = "reloaded" if landed.rel_path in reloads else "loaded"
                    self._ledger(con, landed, sha, loaded, quarantined, status)
                    results.append(FileResult(source, landed.rel_path, landed.delivery_date, status, loaded,
                                              quarantined, rules.get(landed.rel_path, {}),
                                              self._unknown_columns(landed)))
                self._record_suppressed(con, results)
                failpoint("ingest.before_commit")
                con.commit()
            except Exception:
                con.rollback()
                raise
        finally:
            for temp in ("_checked", "_records", "_pii"):
                con.execute(f"drop table if exists {temp}")
        return results

    def _record_suppressed(self, con: duckdb.DuckDBPyConnection, results: list[FileResult]) -> None:
        """Count per file the rows of erased people that staging dropped (in the ledger and the result)."""
        for result in results:
            result.rows_suppressed = self._suppressed.get(result.rel_path, 0)
            if result.rows_suppressed:
                con.execute("update raw.loaded_files set rows_suppressed = ? "
                            "where source = ? and _file = ? and _load_id = ? and _loaded_at = ?",
                            [result.rows_suppressed, result.source, result.rel_path, self.load_id,
                             self.loaded_at])

    def _write_pii(self, con: duckdb.DuckDBPyConnection) -> None:
        """Add new (kind, pseudonym, value) pairs to the restricted store."""
        con.execute(
            """
            insert into pii.identities
            select kind, hash, any_value(value), min(_file), ?::timestamp from _pii p
            where not exists (select 1 from pii.identities i where i.kind = p.kind and i.hash = p.hash)
            group by kind, hash
            """,
            [self.loaded_at],
        )

    @staticmethod
    def _forget_uncommitted_pii_quarantine(con, source: str, files: list[str]) -> None:
        """Drop restricted-store rows of these files left by loads that never committed (a crash in between).

        Rows of committed loads stay: a re-delivered file keeps the unmasked text of every loaded version.
        """
        con.execute(
            """
            delete from pii.quarantine_raw q
            where q.source = ? and list_contains(?, q._file) and not exists (
                select 1 from raw.loaded_files f
                where f.source = q.source and f._file = q._file and f._loaded_at = q._loaded_at)
            """,
            [source, files],
        )

    def _write_pii_quarantine(self, con, source: str, files: list[str]) -> None:
        self._forget_uncommitted_pii_quarantine(con, source, files)
        con.execute(
            """
            insert into pii.quarantine_raw
            select ?, _file, _line, _violations[1], _raw, ?::timestamp
            from _checked where len(_violations) > 0
            """,
            [source, self.loaded_at],
        )

    def _parse_csv(self, landed: LandedFile, data: bytes) -> pa.Table | tuple[str, str]:
        """Records of a CSV file as strings, with start line, raw text and field-count and encoding flags."""
        spec = contract.CSV_SOURCES[landed.source]
        records = _csv_records(_split_lines(data))
        first = next(records, None)
        if first is None:
            return f"{spec.name}.header", "file is empty: no header row"
        header = [h.strip().lstrip("\ufeff") for h in first[1]]
        # A first row naming no contract column is data, not a header (a file without one): its values may be
        # personal data, so they are kept out of the ledger and the message.
        is_header = bool(set(header) & {c.name for c in spec.columns})
        if is_header:
            self.headers[landed.rel_path] = header
        missing = [c for c in spec.header_required if c not in header]
        if missing:
            message = f"header lacks required columns: {', '.join(missing)}"
            unknown = spec.unknown_columns(header)
            if first[4] is not None:
                message += f" (the header does not parse: {first[4]})"
            elif unknown and is_header:
                message += f"; unknown columns: {', '.join(f'`{c}`' for c in unknown[:20])} (renamed?)"
            return f"{spec.name}.header", message
        index = {name: i for i, name in enumerate(header)}
        values: dict[str, list] = {c.name: [] for c in spec.columns}
        line_no: list[int] = []
        raws: list[str] = []
        enc_ok: list[bool] = []
        width_ok: list[bool] = []
        quoting: list[str | None] = []
        width = len(header)
        for start, fields, raw, ok, error in records:
            line_no.append(start)
            raws.append(raw.rstrip("\r\n"))
            enc_ok.append(ok)
            quoting.append(error)
            aligned = len(fields) == width
            width_ok.append(aligned)
            for column in spec.columns:
                i = index.get(column.name)
                value = fields[i] if aligned and i is not None else None
                values[column.name].append(value if value else None)
        n = len(line_no)
        return pa.table({
            "_file": pa.array([landed.rel_path] * n, pa.string()),
            "_delivery_date": pa.array([landed.delivery_date] * n, pa.date32()),
            "_line": pa.array(line_no, pa.int64()),
            "_raw": pa.array(raws, pa.large_string()),
            "_enc_ok": pa.array(enc_ok, pa.bool_()),
            "_width_ok": pa.array(width_ok, pa.bool_()),
            "_width": pa.array([width] * n, pa.int32()),
            "_quoting": pa.array(quoting, pa.string()),
            **{k: pa.array(v, pa.string()) for k, v in values.items()},
        })

    def _stage_csv_sql(self, con: duckdb.DuckDBPyConnection, source: str) -> str:
        """Check every rule of the source in one pass; returns the select that yields typed raw rows."""
        spec = contract.CSV_SOURCES[source]
        checks: list[str] = [
            f"case when not _enc_ok then '{spec.name}.encoding' end",
            f"case when _enc_ok and _quoting is not null then '{spec.name}.quoting' end",
            f"case when _enc_ok and _quoting is null and not _width_ok then '{spec.name}.columns' end",
        ]
        messages: list[str] = [
            "case when not _enc_ok then 'record is not valid UTF-8' end",
            "case when _enc_ok and _quoting is not null then 'record does not parse as CSV: ' || _quoting end",
            "case when _enc_ok and _quoting is null and not _width_ok then "
            "'record has a different number of fields than the header (' || _width || ')' end",
        ]
        outputs: list[str] = []
        ok = "_width_ok and _enc_ok"
        for column in spec.columns:
            q = f'"{column.name}"'
            prefix = f"{spec.name}.{column.name}"

            def rule(condition: str, name: str, message: str) -> None:
                checks.append(f"case when {ok} and {condition} then '{prefix}.{name}' end")
                messages.append(f"case when {ok} and {condition} then '{message}' end")

            if column.required:
                rule(f"{q} is null", "required", f"{column.name} is empty")
            if column.kind == "timestamp":
                rule(f"{q} is not null and not (regexp_matches(trim({q}), '{TS_RE}') "
                     f"and try_cast(trim({q}) as timestamptz) is not null)",
                     "timestamp_with_offset", f"{column.name} is not an ISO-8601 timestamp with an offset")
                if column.not_future:
                    rule(f"{_utc_sql(q)} >= {_future_limit_sql()}", "not_future",
                         f"{column.name} is later than the day after the delivery date")
                outputs.append(f"timezone('UTC', try_cast(trim({q}) as timestamptz)) as \"{column.out_name}\"")
            elif column.kind == "decimal":
                rule(f"{q} is not null and try_cast(trim({q}) as decimal(18,2)) is null", "number",
                     f"{column.name} is not a number")
                if column.non_negative:
                    rule(f"try_cast(trim({q}) as decimal(18,2)) < 0", "non_negative", f"{column.name} is negative")
                outputs.append(f"try_cast(trim({q}) as decimal(18,2)) as \"{column.out_name}\"")
            elif column.kind == "integer":
                # Not try_cast alone: DuckDB rounds '4.5' to 5 when casting to integer.
                rule(f"{q} is not null and (not regexp_full_match(trim({q}), '[+-]?[0-9]+') "
                     f"or try_cast(trim({q}) as integer) is null)", "integer", f"{column.name} is not an integer")
                if column.value_range:
                    lo, hi = column.value_range
                    rule(f"try_cast(trim({q}) as integer) not between {lo} and {hi}", "range",
                         f"{column.name} is outside {lo}..{hi}")
                outputs.append(f"try_cast(trim({q}) as integer) as \"{column.out_name}\"")
            elif column.kind == "boolean":
                rule(f"{q} is not null and lower(trim({q})) not in ({BOOLEAN_WORDS})", "boolean",
                     f"{column.name} is not a boolean")
                outputs.append(f"lower(trim({q})) in ({TRUE_WORDS}) as \"{column.out_name}\"")
            elif column.customer:
                outputs.append(f"cx_pseudonym('customer_id', {q}) as customer_key")
            elif column.pii:
                outputs.append(f"cx_pseudonym('{column.name}', {q}) as \"{column.out_name}\"")
            elif column.mask:
                outputs.append(f"cx_mask_text({q}) as \"{column.name}\"")
            else:
                outputs.append(f"trim({q}) as \"{column.name}\"")
            if column.accepted:
                allowed = ", ".join(f"'{v}'" for v in column.accepted)
                rule(f"{q} is not null and trim({q}) not in ({allowed})", "accepted_values",
                     f"{column.name} is not an accepted value")

        con.execute(
            f"""
            create or replace temp table _checked as
            select *, left({self._masked_csv_expr(spec)}, {QUARANTINE_TEXT_LIMIT}) as _raw_masked
            from (
                select * exclude (_raw),
                       list_filter([{', '.join(checks)}], lambda x: x is not null) as _violations,
                       list_filter([{', '.join(messages)}], lambda x: x is not null) as _messages,
                       _raw
                from _records)
            """
        )
        self._suppressed = drop_suppressed(con, source)
        pii_selects = [
            f"select '{kind}' as kind, cx_pseudonym('{kind}', \"{c.name}\") as hash, "
            f"cx_norm('{kind}', \"{c.name}\") as value, _file "
            f"from _checked where len(_violations) = 0 and \"{c.name}\" is not null"
            for c in spec.columns if c.pii or c.customer
            for kind in ["customer_id" if c.customer else c.name]
        ]
        pii_selects.append("select null::varchar as kind, null::varchar as hash, null::varchar as value, "
                           "null::varchar as _file where false")
        con.execute(f"create or replace temp table _pii as {' union all '.join(pii_selects)}")
        return f"select {', '.join(outputs)}, _file, _line, _delivery_date, _violations from _checked"

    @staticmethod
    def _masked_csv_expr(spec: contract.CsvSource) -> str:
        """The record's text for the warehouse quarantine, with PII fields replaced.

        A record whose fields line up is rebuilt in contract column order with PII fields as `***` (extra
        columns left out); one that does not line up (broken quoting, wrong field count) cannot be masked by
        position, so only emails and phones are masked by pattern and, for sources holding names, the text
        is withheld from the warehouse (it stays in the restricted store).
        """
        parts = []
        for column in spec.columns:
            if column.pii or column.customer:
                parts.append("'***'")
            elif column.mask:
                parts.append(f"coalesce(cx_mask_text(\"{column.name}\"), '')")
            else:
                parts.append(f"coalesce(\"{column.name}\", '')")
        rebuilt = " || ',' || ".join(parts)
        has_names = any(c.pii for c in spec.columns)
        broken = "'[withheld: see the restricted store]'" if has_names else "cx_mask_text(_raw)"
        return f"case when _width_ok and _enc_ok then {rebuilt} else {broken} end"

    def _parse_events(self, landed: LandedFile, data: bytes) -> pa.Table:
        """One record per non-empty line, with its line number and encoding and size flags."""
        split = _split_utf8_lines(data)
        if split is not None:
            line_no, raw, too_long = split
            enc_ok = np.ones(len(raw), dtype=bool)
        else:
            line_no, texts, enc_ok, too_long = [], [], [], []
            for i, raw_line in enumerate(data.splitlines(), start=1):
                if not raw_line.strip():
                    continue
                line_no.append(i)
                too_long.append(len(raw_line) > contract.MAX_EVENT_LINE_BYTES)
                text, ok = _decode(raw_line)
                texts.append(text)
                enc_ok.append(ok)
            raw = pa.array(texts, pa.large_string())
        n = len(raw)
        return pa.table({
            "_file": pa.array([landed.rel_path] * n, pa.string()),
            "_delivery_date": pa.array([landed.delivery_date] * n, pa.date32()),
            "_line": pa.array(line_no, pa.int64()),
            "_raw": raw,
            "_enc_ok": pa.array(enc_ok, pa.bool_()),
            "_too_long": pa.array(too_long, pa.bool_()),
        })

    @staticmethod
    def _mark_lenient_json(con: duckdb.DuckDBPyConnection) -> None:
        """`_lenient`: the staged lines that only a lenient JSON parser accepts (`LENIENT_JSON_SQL` finds
        the candidates, a strict parse decides)."""
        candidates = con.execute(
            "select _file, _line, _raw from _records where _enc_ok and not _too_long and regexp_matches(_raw, ?)",
            [LENIENT_JSON_SQL],
        ).fetchall()
        lenient = [(file, line) for file, line, raw in candidates if not _strict_json(raw)]
        con.register("_lenient_arrow", pa.table({"_file": pa.array([f for f, _ in lenient], pa.string()),
                                                 "_line": pa.array([l for _, l in lenient], pa.int64())}))
        con.execute("create or replace temp table _lenient as select * from _lenient_arrow")
        con.unregister("_lenient_arrow")

    def _stage_events_sql(self, con: duckdb.DuckDBPyConnection) -> str:
        self._mark_lenient_json(con)
        con.execute(
            """
            create or replace temp table _parsed as
            select r.*,
                   case when r._too_long or not r._enc_ok or l._line is not null then false
                        when json_valid(r._raw) then json_type(r._raw) = 'OBJECT'
                        else false end as _json_ok
            from _records r left join _lenient l on l._file = r._file and l._line = r._line
            """
        )
        con.execute("drop table _lenient")
        ts_ok = lambda c: (  # noqa: E731
            f"(regexp_matches(trim({c}), '{TS_RE}') and try_cast(trim({c}) as timestamptz) is not null)"
        )
        types = ", ".join(f"'{t}'" for t in contract.EVENT_TYPES)
        checks = [
            ("_too_long", "events.size", "line is longer than 1 MiB"),
            ("not _too_long and not _enc_ok", "events.encoding", "line is not valid UTF-8"),
            ("not _too_long and _enc_ok and not _json_ok", "events.json", "line is not a JSON object"),
            ("_json_ok and m.messageId is null", "events.messageId.required", "messageId is empty"),
            (f"_json_ok and (m.type is null or m.type not in ({types}))", "events.type.accepted_values",
             "type is not track, page, identify or screen"),
            ("_json_ok and m.type = 'track' and m.event is null", "events.event.required",
             "track call without an event name"),
            ("_json_ok and m.anonymousId is null and m.userId is null", "events.anonymousId.required",
             "neither anonymousId nor userId"),
            (f"_json_ok and (m.receivedAt is null or not {ts_ok('m.receivedAt')})",
             "events.receivedAt.timestamp_with_offset",
             "receivedAt is not an ISO-8601 timestamp with an offset"),
            (f"_json_ok and m.timestamp is not null and not {ts_ok('m.timestamp')}",
             "events.timestamp.timestamp_with_offset", "timestamp is not an ISO-8601 timestamp with an offset"),
            (f"_json_ok and m.sentAt is not null and not {ts_ok('m.sentAt')}",
             "events.sentAt.timestamp_with_offset", "sentAt is not an ISO-8601 timestamp with an offset"),
            ("_json_ok and try_cast(json_extract_string(m.properties, '$.revenue') as decimal(18,2)) < 0",
             "events.revenue.non_negative", "revenue is negative"),
        ]
        for key in contract.EVENT_NOT_FUTURE:
            checks.append((f"_json_ok and {ts_ok(f'm.{key}')} and {_utc_sql(f'm.{key}')} >= {_future_limit_sql()}",
                           f"events.{key}.not_future", f"{key} is later than the day after the delivery date"))
        for key in contract.EVENT_NUMBERS:
            # Present but not a number (text, boolean, object, or beyond DECIMAL(18,2)) would load as null.
            value = f"json_extract_string(m.properties, '$.{key}')"
            checks.append((f"_json_ok and {value} is not null and try_cast({value} as decimal(18,2)) is null",
                           f"events.{key}.number", f"properties.{key} is not a number"))
        violations = ", ".join(f"case when {cond} then '{rule}' end" for cond, rule, _ in checks)
        # Each rule's message from its name, so the conditions run once per line rather than once per list.
        message_of = " ".join(f"when '{rule}' then '{msg}'" for _, rule, msg in checks)
        pii_json = PII_JSON_RE.pattern.replace("'", "''")
        con.execute(
            f"""
            create or replace temp table _checked as
            select * exclude (_raw),
                   list_transform(_violations, lambda x: case x {message_of} end) as _messages,
                   case when len(_violations) > 0 then
                       left(cx_mask_text(regexp_replace(_raw, '{pii_json}', '"\\1":"***"', 'g')),
                            {QUARANTINE_TEXT_LIMIT})
                   end as _raw_masked,
                   case when len(_violations) > 0 then _raw end as _raw
            from (
                select _file, _delivery_date, _line, unnest(m),
                       list_filter([{violations}], lambda x: x is not null) as _violations, _raw
                from (select _file, _delivery_date, _line, _raw, _json_ok, _enc_ok, _too_long,
                             case when _json_ok then json_transform(_raw, '{EVENT_JSON_SPEC}') end as m
                      from _parsed))
            """
        )
        con.execute("drop table _parsed")
        self._suppressed = drop_suppressed(con, "events")
        con.execute(
            """
            create or replace temp table _pii as
            select kind, cx_pseudonym(kind, value) as hash, cx_norm(kind, value) as value, _file,
                   value as delivered
            from (
                -- Each distinct value once: most events repeat a user id and an IP seen in the batch before.
                select kind, value, min(_file) as _file from (
                    select 'customer_id' as kind, userId as value, _file from _checked where len(_violations) = 0
                    union all select 'ip', context.ip, _file from _checked where len(_violations) = 0
                    union all select k, json_extract_string(traits, '$.' || k), _file
                    from _checked, unnest(['email', 'phone', 'first_name', 'last_name']) t(k)
                    where len(_violations) = 0 and type = 'identify'
                ) where value is not null and trim(value) <> ''
                group by kind, value
            )
            """
        )
        prop = lambda k: f"json_extract_string(properties, '$.{k}')"  # noqa: E731
        trait = lambda k: f"cx_pseudonym('{k}', json_extract_string(traits, '$.{k}'))"  # noqa: E731
        utc = lambda c: f"timezone('UTC', try_cast(trim({c}) as timestamptz))"  # noqa: E731
        pii_null = ", ".join(f'"{k}": null' for k in TRAITS_PII)
        select_sql = f"""
            select messageId as message_id, type, event, anonymousId as anonymous_id,
                   customer.hash as customer_key,
                   {utc('"timestamp"')} as device_ts, {utc('sentAt')} as sent_at,
                   {utc('receivedAt')} as received_at,
                   context.channel as channel, context.page.url as page_url, context.page.path as page_path,
                   context.page.referrer as page_referrer, context.page.title as page_title,
                   context.campaign.source as campaign_source, context.campaign.medium as campaign_medium,
                   context.campaign.name as campaign_name, context.device.id as device_id,
                   context.device.type as device_type, ip.hash as ip_hash,
                   context.userAgent as user_agent,
                   {prop('order_id')} as order_id,
                   try_cast({prop('revenue')} as decimal(18,2)) as revenue,
                   try_cast({prop('total')} as decimal(18,2)) as total,
                   {prop('currency')} as currency,
                   coalesce({prop('product_id')}, {prop('sku')}) as product_id,
                   {prop('experiment_id')} as experiment_id,
                   {prop('variation_id')} as variation_id,
                   properties::varchar as properties,
                   json_merge_patch(traits, '{{{pii_null}}}')::varchar as traits,
                   {trait('email')} as email_hash, {trait('phone')} as phone_hash,
                   {trait('first_name')} as first_name_hash, {trait('last_name')} as last_name_hash,
                   _checked._file, _line, _delivery_date, _violations
            from _checked
            -- The pseudonyms of user ids and IPs, hashed once per distinct value in `_pii`.
            left join _pii customer on customer.kind = 'customer_id' and customer.delivered = userId
            left join _pii ip on ip.kind = 'ip' and ip.delivered = context.ip
        """
        return select_sql


TRAITS_PII = ("email", "phone", "first_name", "last_name", "firstName", "lastName", "name", "address")
EVENT_JSON_SPEC = " ".join("""{"messageId":"VARCHAR","type":"VARCHAR","event":"VARCHAR","anonymousId":"VARCHAR",
    "userId":"VARCHAR","timestamp":"VARCHAR","sentAt":"VARCHAR","receivedAt":"VARCHAR",
    "context":{"channel":"VARCHAR","ip":"VARCHAR","userAgent":"VARCHAR",
               "page":{"url":"VARCHAR","path":"VARCHAR","referrer":"VARCHAR","title":"VARCHAR"},
               "campaign":{"source":"VARCHAR","medium":"VARCHAR","name":"VARCHAR"},
               "device":{"id":"VARCHAR","type":"VARCHAR"}},
    "properties":"JSON","traits":"JSON"}""".split())
