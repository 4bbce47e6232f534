"""The suppression list: pseudonyms of erased people, kept out of every later load.

An erasure (orchestration/lib/erasure.py) adds the person's pseudonyms to `pii.suppression` in the restricted
store: their `customer_key`, email and phone hashes, and the keyed hashes of their anonymous ids and order ids.
Ingest computes the same pseudonyms for every staged record in SQL and drops the records that match, before
anything of them reaches the PII map, the quarantine or the raw tables. A record that broke the contract may
have lost its columns (broken quoting, bad JSON), so its raw text is searched too: every token is hashed as a
customer id, anonymous id and order id, and every email and phone number in it as such.

The list holds pseudonyms only, never the values, so it reveals nothing without the key; it lives in the
restricted store because a full rebuild deletes the warehouse and must still keep erased people out.
"""

from __future__ import annotations

import duckdb

from orchestration.lib import contract
from orchestration.lib.pseudonymize import EMAIL_RE, PHONE_RE

# Kinds of pseudonyms on the list. `customer_id`, `email` and `phone` are the ingest namespaces; anonymous ids
# and order ids are stored in clear in the warehouse, so the list holds their keyed hashes in their own.
KINDS = ("customer_id", "email", "phone", "anonymous_id", "order_id")
# What separates identifiers in a record's raw text (CSV delimiters, JSON punctuation, spaces).
TOKEN_SPLIT_RE = r"[^A-Za-z0-9_.%+@-]+"


def ensure_suppression_schema(con: duckdb.DuckDBPyConnection, alias: str = "pii") -> None:
    con.execute(
        f"""
        create table if not exists {alias}.suppression (
            kind varchar, hash varchar, request_id varchar, added_at timestamp)
        """
    )


def suppression_active(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether anyone is on the list; when not, ingest skips the whole filter."""
    return con.execute("select count(*) > 0 from pii.suppression").fetchone()[0]


def _text_keys_sql(text: str, row: str) -> str:
    """(row id, kind, value) of every identifier-like piece of a raw text expression."""
    email = EMAIL_RE.pattern.replace("'", "''")
    phone = PHONE_RE.pattern.replace("'", "''")
    return f"""
        select {row}, k.kind, t.token as value
        from (select {row}, unnest(regexp_split_to_array({text}, '{TOKEN_SPLIT_RE}')) as token
              from _texts) t,
             (select unnest(['customer_id', 'anonymous_id', 'order_id']) as kind) k
        where t.token <> ''
        union all
        select {row}, 'email', unnest(regexp_extract_all({text}, '{email}')) from _texts
        union all
        select {row}, 'phone', unnest(regexp_extract_all({text}, '{phone}')) from _texts
    """


def _record_keys_sql(source: str) -> str:
    """(_file, _line, kind, value) of the identifiers in the columns of each staged record."""
    if source == "events":
        columns = [
            ("customer_id", "userId"),
            ("anonymous_id", "anonymousId"),
            ("email", "json_extract_string(traits, '$.email')"),
            ("phone", "json_extract_string(traits, '$.phone')"),
            ("order_id", "json_extract_string(properties, '$.order_id')"),
        ]
    else:
        columns = []
        for column in contract.CSV_SOURCES[source].columns:
            if column.customer:
                columns.append(("customer_id", f'"{column.name}"'))
            elif column.pii and column.name in ("email", "phone"):
                columns.append((column.name, f'"{column.name}"'))
            elif column.name == "order_id":
                columns.append(("order_id", '"order_id"'))
    if not columns:
        return "select null::varchar as _file, null::bigint as _line, null::varchar as kind, " \
               "null::varchar as value where false"
    return " union all ".join(
        f"select _file, _line, '{kind}' as kind, {expr} as value from _checked where {expr} is not null"
        for kind, expr in columns
    )


# Identifiers repeat across records (a device sends hundreds of events), so each distinct value is hashed once
# and the matches are joined back to the records by value.
_MATCH_SQL = """
    create or replace temp table _suppressed as
    with keys as ({keys}),
    hits as (
        select d.kind, d.value
        from (select distinct kind, value from keys) d
        inner join pii.suppression s on s.kind = d.kind and s.hash = cx_pseudonym(d.kind, d.value)
    )
    select distinct {columns} from keys inner join hits on hits.kind = keys.kind and hits.value = keys.value
"""


def drop_suppressed(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
    """Delete the staged records (temp table `_checked`) of people on the list; rows dropped per file.

    One semi-join of the records' pseudonyms, computed in SQL, against the list. Valid records are matched by
    their columns; records that broke a rule also by the identifiers found in their raw text.
    """
    if not suppression_active(con):
        return {}
    con.execute("create or replace temp table _texts as "
                "select _file, _line, _raw from _checked where len(_violations) > 0 and _raw is not null")
    try:
        keys = f"{_record_keys_sql(source)} union all {_text_keys_sql('_raw', '_file, _line')}"
        con.execute(_MATCH_SQL.format(keys=keys, columns="keys._file, keys._line"))
        counts = dict(con.execute("select _file, count(*) from _suppressed group by 1").fetchall())
        if counts:
            con.execute(
                """
                delete from _checked
                where exists (select 1 from _suppressed s where s._file = _checked._file and s._line = _checked._line)
                """
            )
        return counts
    finally:
        con.execute("drop table if exists _texts")
        con.execute("drop table if exists _suppressed")


def mentions_suppressed(con: duckdb.DuckDBPyConnection, text: str | None) -> bool:
    """Whether a piece of raw text (a rejected file's head) names someone on the list."""
    if not text or not suppression_active(con):
        return False
    con.execute("create or replace temp table _texts as select 0 as _row, ?::varchar as _raw", [text])
    try:
        con.execute(_MATCH_SQL.format(keys=_text_keys_sql("_raw", "_row"), columns="keys._row"))
        return con.execute("select count(*) > 0 from _suppressed").fetchone()[0]
    finally:
        con.execute("drop table if exists _texts")
        con.execute("drop table if exists _suppressed")
