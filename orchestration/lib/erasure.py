"""Erasure of a person on request (GDPR art. 17): everything cxloop holds about them, and nothing comes back.

A request names a person by customer id or by email. It arrives as a row of
`<landing>/erasure_requests/<YYYY-MM-DD>/<file>.csv` (header `request_id,customer_id,email,requested_at`),
written by the organisation's privacy desk or by `cxloop erase`. Processing one request:

1. Resolve the person to pseudonyms: their `customer_key`(s) (by email: customers rows and identify events with
   that email hash), email and phone hashes, the anonymous ids of their devices (devices also seen with another
   customer stay: their anonymous events cannot be told apart), and their order ids. The plaintext identifiers
   needed to find them in record text are read from the restricted store before it is cleaned.
2. Put those pseudonyms on the suppression list (`pii.suppression`, orchestration/lib/suppression.py) first,
   so ingest drops the person from any later or re-delivered file even if this run stops half-way.
3. Delete, in one warehouse transaction, every row that identifies them from every base table of every schema,
   found from information_schema by column (`PERSON_COLUMNS`), never from a list of tables; quarantine copies
   (tables with `raw_text`) lose the records whose text names them. Then clean the restricted store: their
   pseudonym map entries, names and IPs no remaining row uses, and the unmasked text of their bad records.
4. Once per run: rewrite the warehouse and the restricted store into fresh files (a DELETE leaves the old
   bytes in DuckDB's free blocks), publish a new serving snapshot from the cleaned warehouse and delete the
   older ones, then append one line per request to the audit log and record the request files in the ledger.

A request is processed once: its id is looked up in the audit log, which is written last, so a run that stops
before it processes the request again (deleting whatever the first pass left) and logs it then. The audit log
`<restricted>/erasure_audit.jsonl` holds pseudonyms and counts only, never the email or the customer id.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.lib.ingest import (
    QUARANTINE_TEXT_LIMIT, TS_RE, LandedFile, _csv_records, _read_bytes, _split_lines, discover,
    ensure_pii_schema, ensure_raw_schema, file_sha256)
from orchestration.lib.pseudonymize import EMAIL_RE, PHONE_RE, normalize, pseudonym
from orchestration.lib.serving import current_dir, drop_other_snapshots, publish_snapshot
from orchestration.lib.settings import Settings
from orchestration.lib.warehouse import apply_duckdb_settings, connect, publish_ledger

REQUESTS_SOURCE = "erasure_requests"
REQUEST_COLUMNS = ("request_id", "customer_id", "email", "requested_at")
# Optional column: `cli` for requests written by `cxloop erase`, else `landing`.
VIA_COLUMN = "requested_via"
AUDIT_LOG = "erasure_audit.jsonl"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
QUARANTINE_COLUMNS = "source, _file, _line, rule, message, raw_text, _delivery_date, _loaded_at, _load_id"
QUARANTINE_VALUES = ", ".join("?" * 9)

# Columns that identify a person, in any table of any schema, and which of the person's identifiers they hold.
# `person_key`/`visitor_id` (stitched events) and `unit_key` (experiment exposures) hold a customer key or,
# for a device never identified, an anonymous id.
PERSON_COLUMNS = {
    "customer_key": "customer_keys",
    "anonymous_id": "anonymous_ids",
    "person_key": "person_ids",
    "visitor_id": "person_ids",
    "unit_key": "person_ids",
    "email_hash": "email_hashes",
    "phone_hash": "phone_hashes",
    "order_id": "order_ids",
}
# Pseudonym map entries shared by many people: removed only once no remaining raw row carries them.
SHARED_KINDS = {"first_name": "first_name_hash", "last_name": "last_name_hash", "ip": "ip_hash"}
# An identifier is found in free text only as a whole word: not preceded or followed by these characters.
WORD = r"\pL\pN_%+@-"


@dataclass(frozen=True)
class Request:
    """One erasure request. `value` (the customer id or email) is held in memory only, never written."""

    request_id: str
    kind: str  # customer_id | email
    value: str
    requested_at: datetime
    requested_via: str  # cli | landing
    file: str
    line: int


@dataclass
class Person:
    """A person's identifiers in the warehouse's terms, found from a request."""

    customer_keys: set[str] = field(default_factory=set)
    email_hashes: set[str] = field(default_factory=set)
    phone_hashes: set[str] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    # Plaintext, to find their records in quarantined text: ids, emails, phone digits, (first, last) names.
    words: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    names: set[tuple[str, str]] = field(default_factory=set)

    def ids(self, name: str) -> list[str]:
        if name == "person_ids":
            return sorted(self.customer_keys | self.anonymous_ids)
        return sorted(getattr(self, name))

    def suppression(self, key: bytes) -> list[tuple[str, str]]:
        """The (kind, pseudonym) pairs that keep this person out of later loads."""
        rows = [("customer_id", k) for k in self.customer_keys]
        rows += [("email", h) for h in self.email_hashes] + [("phone", h) for h in self.phone_hashes]
        rows += [("anonymous_id", pseudonym(key, "anonymous_id", a)) for a in self.anonymous_ids]
        rows += [("order_id", pseudonym(key, "order_id", o)) for o in self.order_ids]
        return sorted({(kind, h) for kind, h in rows if h})


@dataclass
class Erasure:
    """What one request removed: counts per table, pseudonyms only."""

    request: Request
    customer_keys: list[str]
    warehouse: dict[str, int] = field(default_factory=dict)
    restricted: dict[str, int] = field(default_factory=dict)
    suppression_added: dict[str, int] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        return sum(self.warehouse.values()) + sum(self.restricted.values())


@dataclass
class ErasureRun:
    """What one pass over the pending requests did."""

    erasures: list[Erasure] = field(default_factory=list)
    already_processed: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rows_quarantined: int = 0
    reclaimed: dict[str, tuple[int, int]] = field(default_factory=dict)  # file -> bytes before, after
    reclaim_seconds: float = 0.0  # the rewrite of both files, the part of a run that grows with the database
    snapshot_id: str | None = None
    snapshots_dropped: list[str] = field(default_factory=list)
    audit_log: Path | None = None

    def removed_by_layer(self) -> dict[str, int]:
        """Rows removed per warehouse schema, plus `restricted` for the PII store."""
        out: dict[str, int] = {}
        for e in self.erasures:
            for table, n in e.warehouse.items():
                layer = table.split(".", 1)[0]
                out[layer] = out.get(layer, 0) + n
            out["restricted"] = out.get("restricted", 0) + sum(e.restricted.values())
        return dict(sorted(out.items()))


def audit_log_path(settings: Settings) -> Path:
    return settings.pii_db.parent / AUDIT_LOG


def read_audit_log(settings: Settings) -> list[dict]:
    path = audit_log_path(settings)
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash while appending; its request is processed again
    return entries


def write_request(settings: Settings, *, customer_id: str | None = None, email: str | None = None,
                  request_id: str | None = None, via: str = "cli") -> tuple[str, Path]:
    """Write a one-request file into the landing requests folder (mode 0600); returns (request id, path)."""
    if (customer_id is None) == (email is None):
        raise ValueError("give exactly one of customer_id and email")
    if email is not None and not EMAIL_RE.fullmatch(email.strip()):
        raise ValueError("the email is not an email address")
    request_id = request_id or str(uuid.uuid4())
    if not REQUEST_ID_RE.fullmatch(request_id):
        raise ValueError("a request id is letters, digits, '.', '_' and '-' (it names the request file)")
    now = datetime.now(timezone.utc)
    folder = settings.landing_dir / REQUESTS_SOURCE / now.date().isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{via}-{request_id}.csv"
    row = [request_id, customer_id or "", email or "", now.isoformat(timespec="seconds"), via]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*REQUEST_COLUMNS, VIA_COLUMN])
        writer.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())
    return request_id, path


def _parse_timestamp(text: str) -> datetime | None:
    if not re.match(TS_RE, text):
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else None


@dataclass
class _BadRow:
    line: int
    rule: str
    message: str
    masked: str | None
    raw: str


def parse_requests(landed: LandedFile, data: bytes) -> tuple[list[Request], list[_BadRow]]:
    """The valid requests of one file, and the rows that break its contract (with the rule they broke)."""
    source = REQUESTS_SOURCE
    records = _csv_records(_split_lines(data))
    first = next(records, None)
    if first is None:
        return [], [_BadRow(1, f"{source}.header", "file is empty: no header row", None, "")]
    header = [h.strip().lstrip("\ufeff") for h in first[1]]
    missing = [c for c in REQUEST_COLUMNS if c not in header]
    if missing:
        head = data[:QUARANTINE_TEXT_LIMIT].decode("utf-8", errors="replace")
        return [], [_BadRow(1, f"{source}.header", f"header lacks required columns: {', '.join(missing)}",
                            None, head)]
    index = {name: i for i, name in enumerate(header)}
    requests: list[Request] = []
    bad: list[_BadRow] = []
    for line, fields, raw, ok, *_ in records:
        raw = raw.rstrip("\r\n")
        if not ok:
            bad.append(_BadRow(line, f"{source}.encoding", "record is not valid UTF-8", None, raw))
            continue
        if len(fields) != len(header):
            bad.append(_BadRow(line, f"{source}.columns",
                               f"record has a different number of fields than the header ({len(header)})",
                               None, raw))
            continue
        get = lambda c: fields[index[c]].strip() if c in index else ""  # noqa: E731
        request_id, customer_id, email, requested_at = (get(c) for c in REQUEST_COLUMNS)
        via = get(VIA_COLUMN) or "landing"
        masked = ",".join([request_id, "***" if customer_id else "", "***" if email else "", requested_at])

        def reject(rule: str, message: str) -> None:
            bad.append(_BadRow(line, f"{source}.{rule}", message, masked, raw))

        when = _parse_timestamp(requested_at) if requested_at else None
        if not request_id:
            reject("request_id.required", "request_id is empty")
        elif bool(customer_id) == bool(email):
            reject("identifier.one_of", "exactly one of customer_id and email must be given")
        elif email and not EMAIL_RE.fullmatch(email):
            reject("email.format", "email is not an email address")
        elif when is None:
            reject("requested_at.timestamp_with_offset", "requested_at is not an ISO-8601 timestamp with an offset")
        else:
            kind, value = ("customer_id", customer_id) if customer_id else ("email", email)
            requests.append(Request(request_id, kind, value, when, "cli" if via == "cli" else "landing",
                                    landed.rel_path, line))
    return requests, bad


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    settings.ensure_dirs()
    con = duckdb.connect(str(settings.warehouse))
    apply_duckdb_settings(con, settings)
    con.execute("set timezone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    con.execute(f"attach '{_sql_path(settings.pii_db)}' as pii")
    ensure_raw_schema(con)
    ensure_pii_schema(con)
    return con


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _column(con, sql: str, params: list) -> set[str]:
    return {r[0] for r in con.execute(sql, params).fetchall() if r[0] is not None}


def resolve(con: duckdb.DuckDBPyConnection, key: bytes, request: Request) -> Person:
    """The person a request names, from the warehouse, the restricted store and any earlier pass."""
    person = Person()
    if request.kind == "customer_id":
        person.customer_keys.add(pseudonym(key, "customer_id", request.value))
    else:
        email_hash = pseudonym(key, "email", request.value)
        person.email_hashes.add(email_hash)
        person.customer_keys |= _column(
            con, "select customer_key from raw.customers where email_hash = ? union "
                 "select customer_key from raw.events where email_hash = ?", [email_hash, email_hash])
    # An earlier pass of this request that stopped after writing the suppression list.
    for kind, h in con.execute("select kind, hash from pii.suppression where request_id = ?",
                               [request.request_id]).fetchall():
        {"customer_id": person.customer_keys, "email": person.email_hashes,
         "phone": person.phone_hashes}.get(kind, set()).add(h)
    keys = sorted(person.customer_keys)
    for column, target in (("email_hash", person.email_hashes), ("phone_hash", person.phone_hashes)):
        target |= _column(con, f"select {column} from raw.customers where list_contains(?, customer_key) union "
                               f"select {column} from raw.events where list_contains(?, customer_key)", [keys, keys])
    emails, phones = sorted(person.email_hashes), sorted(person.phone_hashes)
    person.anonymous_ids = _column(
        con,
        """
        select anonymous_id from raw.events
        where anonymous_id is not null
            and (list_contains(?, customer_key) or list_contains(?, email_hash) or list_contains(?, phone_hash))
        except
        select anonymous_id from raw.events
        where anonymous_id is not null and customer_key is not null and not list_contains(?, customer_key)
        """,
        [keys, emails, phones, keys])
    person.order_ids = _column(con, "select order_id from raw.orders where list_contains(?, customer_key)", [keys])

    values = con.execute(
        """
        select kind, value from pii.identities
        where (kind = 'customer_id' and list_contains(?, hash)) or (kind = 'email' and list_contains(?, hash))
            or (kind = 'phone' and list_contains(?, hash))
        """, [keys, emails, phones]).fetchall()
    person.words = {v for kind, v in values if kind != "phone"} | {normalize(request.kind, request.value)}
    person.words |= set(keys) | person.anonymous_ids | person.order_ids
    person.phones = {v for kind, v in values if kind == "phone"}
    person.names = {
        (first, last) for first, last in con.execute(
            """
            select f.value, l.value
            from (select first_name_hash, last_name_hash from raw.customers where list_contains(?, customer_key)
                  union select first_name_hash, last_name_hash from raw.events where list_contains(?, customer_key)) n
            inner join pii.identities f on f.kind = 'first_name' and f.hash = n.first_name_hash
            inner join pii.identities l on l.kind = 'last_name' and l.hash = n.last_name_hash
            """, [keys, keys]).fetchall()
    }
    return person


def _text_match(con: duckdb.DuckDBPyConnection, person: Person, column: str) -> tuple[str, list]:
    """A predicate true when the text in `column` names the person, and its parameters.

    Ids, keys and emails count as whole words (case-insensitive); phone numbers by their digits; names only as
    first and last name together, since a first name alone names many people.
    """
    words = sorted(w for w in person.words if w)
    pattern = None
    if words:
        escaped = con.execute("select string_agg(regexp_escape(w), '|') from (select unnest(?::varchar[]) w)",
                              [words]).fetchone()[0]
        pattern = f"(?i)(^|[^{WORD}])({escaped})([^{WORD}]|$)"
    clauses, params = [], []
    if pattern:
        clauses.append(f"regexp_matches({column}, ?)")
        params.append(pattern)
    if person.phones:
        clauses.append(f"list_has_any(list_transform(regexp_extract_all({column}, ?), "
                       "lambda x: regexp_replace(x, '[^0-9]', '', 'g')), ?::varchar[])")
        params += [PHONE_RE.pattern, sorted(person.phones)]
    for first, last in sorted(person.names):
        (first_re, last_re), = con.execute("select regexp_escape(?), regexp_escape(?)", [first, last]).fetchall()
        clauses.append(f"(regexp_matches({column}, ?) and regexp_matches({column}, ?))")
        params += [f"(?i)(^|[^{WORD}]){first_re}([^{WORD}]|$)", f"(?i)(^|[^{WORD}]){last_re}([^{WORD}]|$)"]
    if not clauses:
        return "false", []
    return f"coalesce({' or '.join(clauses)}, false)", params


def _base_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str]]]:
    """Every base table of the warehouse (all schemas) with its columns."""
    return con.execute(
        """
        select c.table_schema, c.table_name, list(c.column_name order by c.ordinal_position)
        from information_schema.columns c
        inner join information_schema.tables t
            on t.table_catalog = c.table_catalog and t.table_schema = c.table_schema
                and t.table_name = c.table_name
        where t.table_type = 'BASE TABLE' and c.table_catalog = current_database()
        group by all
        order by 1, 2
        """
    ).fetchall()


def _quarantine_keys(con: duckdb.DuckDBPyConnection, person: Person) -> list[str]:
    """(source, file, line) of the person's quarantined records, found in their unmasked text."""
    predicate, params = _text_match(con, person, "raw_text")
    return sorted(_column(con, f"select source || chr(0) || _file || chr(0) || _line from pii.quarantine_raw "
                               f"where {predicate}", params))


def _erase_warehouse(con: duckdb.DuckDBPyConnection, person: Person, quarantined: list[str]) -> dict[str, int]:
    """Delete the person's rows from every warehouse base table, in one transaction; rows removed per table."""
    removed: dict[str, int] = {}
    statements = []
    for schema, table, columns in _base_tables(con):
        clauses, params = [], []
        for column in columns:
            ids = person.ids(PERSON_COLUMNS[column]) if column in PERSON_COLUMNS else []
            if ids:
                clauses.append(f'list_contains(?::varchar[], "{column}"::varchar)')
                params.append(ids)
        if "raw_text" in columns:
            predicate, text_params = _text_match(con, person, "raw_text")
            clauses.append(predicate)
            params += text_params
            if {"source", "_file", "_line"} <= set(columns) and quarantined:
                clauses.append("list_contains(?::varchar[], source || chr(0) || _file || chr(0) || _line)")
                params.append(quarantined)
        if clauses:
            statements.append((f"{schema}.{table}",
                               f'delete from "{schema}"."{table}" where {" or ".join(clauses)}', params))
    con.begin()
    try:
        for name, sql, params in statements:
            n = con.execute(sql, params).fetchone()[0]
            if n:
                removed[name] = n
        con.commit()
    except Exception:
        con.rollback()
        raise
    return removed


def _suppress(con: duckdb.DuckDBPyConnection, key: bytes, person: Person, request: Request,
              now: datetime) -> dict[str, int]:
    """Add the person's pseudonyms to the suppression list (those not on it yet); added per kind."""
    rows = person.suppression(key)
    added: dict[str, int] = {}
    if not rows:
        return added
    con.begin()
    try:
        for kind, h in rows:
            n = con.execute(
                """
                insert into pii.suppression
                select ?, ?, ?, ?::timestamp
                where not exists (select 1 from pii.suppression where kind = ? and hash = ?)
                """, [kind, h, request.request_id, now, kind, h]).fetchone()[0]
            if n:
                added[kind] = added.get(kind, 0) + n
        con.commit()
    except Exception:
        con.rollback()
        raise
    return added


def _erase_restricted(con: duckdb.DuckDBPyConnection, person: Person, quarantined: list[str]) -> dict[str, int]:
    """Clean the restricted store: the person's pseudonym map entries and the text of their bad records."""
    removed: dict[str, int] = {}
    con.begin()
    try:
        n = con.execute(
            """
            delete from pii.identities
            where (kind = 'customer_id' and list_contains(?, hash)) or (kind = 'email' and list_contains(?, hash))
                or (kind = 'phone' and list_contains(?, hash))
            """, [person.ids("customer_keys"), person.ids("email_hashes"), person.ids("phone_hashes")],
        ).fetchone()[0]
        # Names and IPs are shared by many people: an entry goes once no remaining raw row carries it (their
        # rows are gone by now, so this removes theirs and keeps everyone else's).
        for kind, column in SHARED_KINDS.items():
            tables = ["raw.events"] + (["raw.customers"] if kind != "ip" else [])
            used = " union ".join(f"select {column} from {t} where {column} is not null" for t in tables)
            n += con.execute(f"delete from pii.identities where kind = ? and hash not in ({used})",
                             [kind]).fetchone()[0]
        if n:
            removed["identities"] = n
        if quarantined:
            q = con.execute("delete from pii.quarantine_raw "
                            "where list_contains(?, source || chr(0) || _file || chr(0) || _line)",
                            [quarantined]).fetchone()[0]
            if q:
                removed["quarantine_raw"] = q
        con.commit()
    except Exception:
        con.rollback()
        raise
    return removed


def erase(con: duckdb.DuckDBPyConnection, key: bytes, request: Request) -> Erasure:
    """Suppress, then delete one person everywhere in the warehouse and the restricted store.

    Space is not reclaimed here (see `reclaim`): a run reclaims once for all its requests.
    """
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    person = resolve(con, key, request)
    quarantined = _quarantine_keys(con, person)
    erasure = Erasure(request, sorted(person.customer_keys))
    erasure.suppression_added = _suppress(con, key, person, request, now)
    erasure.warehouse = _erase_warehouse(con, person, quarantined)
    erasure.restricted = _erase_restricted(con, person, quarantined)
    return erasure


def _file_size(path: Path) -> int:
    wal = Path(f"{path}.wal")
    return (path.stat().st_size if path.exists() else 0) + (wal.stat().st_size if wal.exists() else 0)


def reclaim(path: Path) -> tuple[int, int]:
    """Rewrite a DuckDB file into a fresh one so deleted rows leave no bytes behind; (bytes before, after).

    DuckDB's DELETE marks rows deleted and later reuses the blocks, but the old values stay in the file until
    overwritten (tests/integration/test_erasure.py shows them there). `COPY FROM DATABASE` into a new file
    writes only live rows (schemas, tables, views, macros, sequences), and `os.replace` swaps it in
    atomically. The new file keeps the old one's name (dbt's views name the database by the file's stem) and
    its permissions. Nothing else may hold the file: callers run in the warehouse pool, and a connection left
    open in this process makes the `attach` fail (DuckDB refuses a second handle on a file), before anything
    is replaced.
    """
    if not path.exists():
        return 0, 0
    duckdb.connect(str(path)).close()  # replays and checkpoints any write-ahead log into the old file
    before = _file_size(path)
    scratch = path.parent / f".reclaim-{uuid.uuid4().hex[:12]}"
    scratch.mkdir(mode=0o700)
    try:
        fresh = scratch / path.name
        con = duckdb.connect(str(fresh))
        try:
            con.execute(f"attach '{_sql_path(path)}' as cx_reclaim_source (read_only)")
            con.execute(f'copy from database cx_reclaim_source to "{path.stem}"')
            con.execute("detach cx_reclaim_source")
            con.execute("checkpoint")
        finally:
            con.close()
        os.chmod(fresh, stat.S_IMODE(path.stat().st_mode))
        with fresh.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(fresh, path)
        _fsync_dir(path.parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return before, _file_size(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_audit(settings: Settings, entries: Iterable[dict]) -> Path:
    """Append lines to the audit log (created 0600), flushed to disk before returning."""
    path = audit_log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        for entry in entries:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def _audit_entry(erasure: Erasure, processed_at: datetime, run: ErasureRun) -> dict:
    r = erasure.request
    return {
        "request_id": r.request_id,
        "requested_via": r.requested_via,
        "file": r.file,
        "line": r.line,
        "identifier": r.kind,
        "requested_at": r.requested_at.isoformat(),
        "processed_at": processed_at.isoformat(),
        "customer_keys": erasure.customer_keys,
        "rows_removed": {"warehouse": dict(sorted(erasure.warehouse.items())),
                         "restricted": dict(sorted(erasure.restricted.items()))},
        "rows_removed_total": erasure.rows_removed,
        "suppression_added": dict(sorted(erasure.suppression_added.items())),
        "space_reclaimed": sorted(run.reclaimed),
        "serving_snapshot": run.snapshot_id,
        "serving_snapshots_dropped": len(run.snapshots_dropped),
    }


def _pending_files(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[LandedFile, str, str]]:
    """Request files not processed yet, by path and SHA-256, with their ledger status: `loaded`, or `reloaded`
    for a new version of a processed path (its requests not in the audit log yet are processed)."""
    files, _ = discover(settings.landing_dir, REQUESTS_SOURCE)
    known = {(f, s) for f, s in con.execute(
        "select _file, sha256 from raw.loaded_files where source = ?", [REQUESTS_SOURCE]).fetchall()}
    known_paths = {f for f, _ in known}
    pending = []
    for landed in files:
        sha = file_sha256(landed.path)
        if (landed.rel_path, sha) not in known:
            pending.append((landed, sha, "reloaded" if landed.rel_path in known_paths else "loaded"))
    return pending


def _record_files(con: duckdb.DuckDBPyConnection, parsed: list, loaded_at: datetime, load_id: str) -> int:
    """Ledger entries and quarantine rows for the request files of this run (masked text in the warehouse,
    unmasked in the restricted store); returns rows quarantined."""
    for landed, _sha, _status, _requests, bad in parsed:
        con.execute("delete from pii.quarantine_raw where source = ? and _file = ?",
                    [REQUESTS_SOURCE, landed.rel_path])
        for row in bad:
            con.execute("insert into pii.quarantine_raw values (?, ?, ?, ?, ?, ?)",
                        [REQUESTS_SOURCE, landed.rel_path, row.line, row.rule, row.raw, loaded_at])
    quarantined = 0
    con.begin()
    try:
        for landed, sha, status, requests, bad in parsed:
            if bad and bad[0].rule.endswith(".header"):
                status = "rejected"
            for row in bad:
                con.execute(f"insert into raw.quarantine ({QUARANTINE_COLUMNS}) values ({QUARANTINE_VALUES})",
                            [REQUESTS_SOURCE, landed.rel_path, row.line, row.rule, row.message, row.masked,
                             landed.delivery_date, loaded_at, load_id])
            _ledger(con, landed, sha, len(requests), len(bad), status, loaded_at, load_id)
            quarantined += len(bad)
        con.commit()
    except Exception:
        con.rollback()
        raise
    return quarantined


def _ledger(con, landed: LandedFile, sha: str, loaded: int, quarantined: int, status: str,
            loaded_at: datetime, load_id: str) -> None:
    con.execute(
        """
        insert into raw.loaded_files (source, _file, _delivery_date, sha256, size_bytes, rows_loaded,
                                      rows_quarantined, status, _loaded_at, _load_id)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [REQUESTS_SOURCE, landed.rel_path, landed.delivery_date, sha, landed.size, loaded, quarantined, status,
         loaded_at, load_id])


def process_requests(settings: Settings, marts: list[str], load_id: str | None = None) -> ErasureRun:
    """Process every pending erasure request of the landing directory (see the module docstring).

    `marts` are the tables the serving snapshot publishes (the serving asset's list), republished from the
    cleaned warehouse when a snapshot exists.
    """
    load_id = load_id or uuid.uuid4().hex
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    run = ErasureRun()
    key = settings.pseudonym_key()
    con = _connect(settings)
    try:
        pending = _pending_files(con, settings)
        if not pending:
            return run
        parsed = []
        for landed, sha, status in pending:
            requests, bad = parse_requests(landed, _read_bytes(landed.path))
            parsed.append((landed, sha, status, requests, bad))
        done = {e.get("request_id") for e in read_audit_log(settings)}
        for _, _, _, requests, _ in parsed:
            for request in requests:
                if request.request_id in done:
                    run.already_processed.append(request.request_id)
                    continue
                done.add(request.request_id)
                run.erasures.append(erase(con, key, request))
    finally:
        con.close()

    if run.erasures:
        started = time.perf_counter()
        for path in (settings.warehouse, settings.pii_db):
            run.reclaimed[path.name] = reclaim(path)
        run.reclaim_seconds = time.perf_counter() - started
        if current_dir(settings).exists():
            snapshot_id = f"erasure-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            with connect(settings, read_only=True) as ro:
                run.snapshot_id = publish_snapshot(ro, settings, marts, snapshot_id)["snapshot_id"]
            run.snapshots_dropped = drop_other_snapshots(settings)
        processed_at = datetime.now(timezone.utc)
        run.audit_log = _append_audit(settings, [_audit_entry(e, processed_at, run) for e in run.erasures])

    con = _connect(settings)
    try:
        run.rows_quarantined = _record_files(con, parsed, loaded_at, load_id)
        publish_ledger(con, settings)
    finally:
        con.close()
    run.files = [landed.rel_path for landed, *_ in parsed]
    return run
