"""Load landing files into the raw layer: once per file, typed, pseudonymized, with bad rows quarantined.

How a file travels:
1. `discover` lists `<landing>/<source>/<YYYY-MM-DD>/<file>`; a file is identified by its path and SHA-256.
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
import pyarrow as pa

from orchestration.lib import contract
from orchestration.lib.pseudonymize import install_sql_hmac
from orchestration.lib.settings import SOURCES, Settings

DATE_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SUFFIXES = {"events": (".jsonl", ".jsonl.gz")}
CSV_SUFFIXES = (".csv", ".csv.gz")
TS_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$"
QUARANTINE_TEXT_LIMIT = 4096
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
    status: str  # loaded | skipped | changed | rejected
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rules: dict[str, int] = field(default_factory=dict)


@dataclass
class SourceResult:
    source: str
    files: list[FileResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.status in ("loaded", "rejected")]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

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


def _csv_records(text_lines: list[tuple[str, bool]]) -> Iterator[tuple[int, list[str], str, bool]]:
    """Yield (start line, fields, raw text, utf-8 ok) per CSV record, header included (line 1)."""
    position = 0

    def feed() -> Iterator[str]:
        nonlocal position
        while position < len(text_lines):
            position += 1
            yield text_lines[position - 1][0]

    reader = csv.reader(feed(), strict=False)
    start = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            consumed = text_lines[start:position]
            yield start + 1, [], "".join(t for t, _ in consumed), all(ok for _, ok in consumed)
            start = position
            continue
        consumed = text_lines[start:position]
        raw = "".join(t for t, _ in consumed)
        if fields or raw.strip():
            yield start + 1, fields, raw, all(ok for _, ok in consumed)
        start = position


def _split_lines(data: bytes) -> list[tuple[str, bool]]:
    return [_decode(line) for line in data.splitlines(keepends=True)]


# DuckDB's JSON reader accepts trailing commas, NaN and Infinity, which RFC 8259 does not. Lines that might
# use them (a cheap byte search) are parsed strictly in Python; the rest are left to DuckDB.
LENIENT_JSON_RE = re.compile(rb",\s*[}\]]|NaN|Infinity")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return False
    return True


class Ingestor:
    """Loads new landing files of each source into the warehouse; safe to run again at any time."""

    def __init__(self, settings: Settings, load_id: str | None = None):
        self.settings = settings
        self.load_id = load_id or uuid.uuid4().hex
        self.loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)

    def connect(self) -> duckdb.DuckDBPyConnection:
        self.settings.ensure_dirs()
        con = duckdb.connect(str(self.settings.warehouse))
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
                "select _file, sha256 from raw.loaded_files where source = ?", [source]
            ).fetchall()
        }
        known_paths = {path for path, _ in known}
        batch: list[tuple[LandedFile, str, pa.Table]] = []
        batch_rows = 0
        for landed in files:
            sha = file_sha256(landed.path)
            if (landed.rel_path, sha) in known:
                result.files.append(FileResult(source, landed.rel_path, landed.delivery_date, "skipped"))
                continue
            if landed.rel_path in known_paths:
                result.files.append(self._record_changed(con, landed, sha))
                known.add((landed.rel_path, sha))
                continue
            data = _read_bytes(landed.path)
            parsed = self._parse_events(landed, data) if source == "events" else self._parse_csv(landed, data)
            if isinstance(parsed, tuple):
                result.files.append(self._record_rejected(con, landed, sha, data, *parsed))
                continue
            batch.append((landed, sha, parsed))
            batch_rows += parsed.num_rows
            if batch_rows >= BATCH_ROWS:
                result.files.extend(self._load_batch(con, source, batch))
                batch, batch_rows = [], 0
        if batch:
            result.files.extend(self._load_batch(con, source, batch))
        return result

    def _record_changed(self, con: duckdb.DuckDBPyConnection, landed: LandedFile, sha: str) -> FileResult:
        """A landed file changed its bytes: keep the first load, record the violation once per new digest."""
        message = "file changed after it was loaded; the first version stays loaded (files are immutable)"
        con.begin()
        con.execute(
            "insert into raw.quarantine values (?, ?, 0, 'file.immutable', ?, null, ?, ?, ?)",
            [landed.source, landed.rel_path, message, landed.delivery_date, self.loaded_at, self.load_id],
        )
        self._ledger(con, landed, sha, 0, 1, "changed")
        con.commit()
        return FileResult(landed.source, landed.rel_path, landed.delivery_date, "changed", 0, 1,
                          {"file.immutable": 1})

    def _record_rejected(self, con, landed: LandedFile, sha: str, data: bytes, rule: str, message: str
                         ) -> FileResult:
        """A file that cannot be read as its source (no header, missing columns): one quarantine row."""
        head = data[:QUARANTINE_TEXT_LIMIT].decode("utf-8", errors="replace")
        con.execute("delete from pii.quarantine_raw where source = ? and _file = ?",
                    [landed.source, landed.rel_path])
        con.execute("insert into pii.quarantine_raw values (?, ?, 1, ?, ?, ?)",
                    [landed.source, landed.rel_path, rule, head, self.loaded_at])
        con.begin()
        con.execute(
            "insert into raw.quarantine values (?, ?, 1, ?, ?, null, ?, ?, ?)",
            [landed.source, landed.rel_path, rule, message, landed.delivery_date, self.loaded_at, self.load_id],
        )
        self._ledger(con, landed, sha, 0, 1, "rejected")
        con.commit()
        return FileResult(landed.source, landed.rel_path, landed.delivery_date, "rejected", 0, 1, {rule: 1})

    def _ledger(self, con, landed: LandedFile, sha: str, loaded: int, quarantined: int, status: str) -> None:
        con.execute(
            "insert into raw.loaded_files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [landed.source, landed.rel_path, landed.delivery_date, sha, landed.size, loaded, quarantined,
             status, self.loaded_at, self.load_id],
        )

    def _load_batch(self, con: duckdb.DuckDBPyConnection, source: str,
                    batch: list[tuple[LandedFile, str, pa.Table]]) -> list[FileResult]:
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
                    self._ledger(con, landed, sha, loaded, quarantined, "loaded")
                    results.append(FileResult(source, landed.rel_path, landed.delivery_date, "loaded", loaded,
                                              quarantined, rules.get(landed.rel_path, {})))
                con.commit()
            except Exception:
                con.rollback()
                raise
        finally:
            for temp in ("_checked", "_records", "_pii"):
                con.execute(f"drop table if exists {temp}")
        return results

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

    def _write_pii_quarantine(self, con, source: str, files: list[str]) -> None:
        con.execute("delete from pii.quarantine_raw where source = ? and list_contains(?, _file)",
                    [source, files])
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
        missing = [c for c in spec.header_required if c not in header]
        if missing:
            return f"{spec.name}.header", f"header lacks required columns: {', '.join(missing)}"
        index = {name: i for i, name in enumerate(header)}
        values: dict[str, list] = {c.name: [] for c in spec.columns}
        line_no: list[int] = []
        raws: list[str] = []
        enc_ok: list[bool] = []
        width_ok: list[bool] = []
        width = len(header)
        for start, fields, raw, ok in records:
            line_no.append(start)
            raws.append(raw.rstrip("\r\n"))
            enc_ok.append(ok)
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
            **{k: pa.array(v, pa.string()) for k, v in values.items()},
        })

    def _stage_csv_sql(self, con: duckdb.DuckDBPyConnection, source: str) -> str:
        """Check every rule of the source in one pass; returns the select that yields typed raw rows."""
        spec = contract.CSV_SOURCES[source]
        checks: list[str] = [
            f"case when not _enc_ok then '{spec.name}.encoding' end",
            f"case when _enc_ok and not _width_ok then '{spec.name}.columns' end",
        ]
        messages: list[str] = [
            "case when not _enc_ok then 'record is not valid UTF-8' end",
            "case when _enc_ok and not _width_ok then "
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
        line_no: list[int] = []
        texts: list[str] = []
        enc_ok: list[bool] = []
        too_long: list[bool] = []
        lenient: list[bool] = []
        for i, raw in enumerate(data.splitlines(), start=1):
            if not raw.strip():
                continue
            line_no.append(i)
            too_long.append(len(raw) > contract.MAX_EVENT_LINE_BYTES)
            text, ok = _decode(raw)
            texts.append(text)
            enc_ok.append(ok)
            lenient.append(ok and LENIENT_JSON_RE.search(raw) is not None and not _strict_json(text))
        n = len(line_no)
        return pa.table({
            "_file": pa.array([landed.rel_path] * n, pa.string()),
            "_delivery_date": pa.array([landed.delivery_date] * n, pa.date32()),
            "_line": pa.array(line_no, pa.int64()),
            "_raw": pa.array(texts, pa.large_string()),
            "_enc_ok": pa.array(enc_ok, pa.bool_()),
            "_too_long": pa.array(too_long, pa.bool_()),
            "_not_strict": pa.array(lenient, pa.bool_()),
        })

    def _stage_events_sql(self, con: duckdb.DuckDBPyConnection) -> str:
        con.execute(
            """
            create or replace temp table _parsed as
            select *,
                   case when _too_long or not _enc_ok or _not_strict then false
                        when json_valid(_raw) then json_type(_raw) = 'OBJECT'
                        else false end as _json_ok
            from _records
            """
        )
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
        violations = ", ".join(f"case when {cond} then '{rule}' end" for cond, rule, _ in checks)
        messages = ", ".join(f"case when {cond} then '{msg}' end" for cond, _, msg in checks)
        pii_json = PII_JSON_RE.pattern.replace("'", "''")
        con.execute(
            f"""
            create or replace temp table _checked as
            select _file, _delivery_date, _line, unnest(m),
                   list_filter([{violations}], lambda x: x is not null) as _violations,
                   list_filter([{messages}], lambda x: x is not null) as _messages,
                   case when len(list_filter([{violations}], lambda x: x is not null)) > 0 then
                       left(cx_mask_text(regexp_replace(_raw, '{pii_json}', '"\\1":"***"', 'g')),
                            {QUARANTINE_TEXT_LIMIT})
                   end as _raw_masked,
                   case when len(list_filter([{violations}], lambda x: x is not null)) > 0 then _raw end as _raw
            from (select _file, _delivery_date, _line, _raw, _json_ok, _enc_ok, _too_long,
                         case when _json_ok then json_transform(_raw, '{EVENT_JSON_SPEC}') end as m
                  from _parsed)
            """
        )
        con.execute("drop table _parsed")
        con.execute(
            """
            create or replace temp table _pii as
            select kind, cx_pseudonym(kind, value) as hash, cx_norm(kind, value) as value, _file from (
                select 'customer_id' as kind, userId as value, _file from _checked where len(_violations) = 0
                union all select 'ip', context.ip, _file from _checked where len(_violations) = 0
                union all select k, json_extract_string(traits, '$.' || k), _file
                from _checked, unnest(['email', 'phone', 'first_name', 'last_name']) t(k)
                where len(_violations) = 0 and type = 'identify'
            ) where value is not null and trim(value) <> ''
            """
        )
        prop = lambda k: f"json_extract_string(properties, '$.{k}')"  # noqa: E731
        trait = lambda k: f"cx_pseudonym('{k}', json_extract_string(traits, '$.{k}'))"  # noqa: E731
        utc = lambda c: f"timezone('UTC', try_cast(trim({c}) as timestamptz))"  # noqa: E731
        pii_null = ", ".join(f'"{k}": null' for k in TRAITS_PII)
        select_sql = f"""
            select messageId as message_id, type, event, anonymousId as anonymous_id,
                   cx_pseudonym('customer_id', userId) as customer_key,
                   {utc('"timestamp"')} as device_ts, {utc('sentAt')} as sent_at,
                   {utc('receivedAt')} as received_at,
                   context.channel as channel, context.page.url as page_url, context.page.path as page_path,
                   context.page.referrer as page_referrer, context.page.title as page_title,
                   context.campaign.source as campaign_source, context.campaign.medium as campaign_medium,
                   context.campaign.name as campaign_name, context.device.id as device_id,
                   context.device.type as device_type, cx_pseudonym('ip', context.ip) as ip_hash,
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
                   _file, _line, _delivery_date, _violations
            from _checked
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
