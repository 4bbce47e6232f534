"""Keyed pseudonyms (HMAC-SHA256) for customer identifiers and PII, computed at ingest.

The same function exists twice: in Python (`pseudonym`) for single values, tests and erasure requests, and
as a DuckDB macro (`cx_hmac`) so millions of values are hashed inside the engine without a round trip through
Python. The key is bound as a session variable, never written into SQL text, dbt vars or logs.
`tests/unit/test_pseudonymize.py` proves the two agree, and that the free-text mask `cx_mask_text` does what
`ml.text.mask_pii` does with the same patterns.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import duckdb

from ml.text import CARD_RE, EMAIL_RE, PHONE_RE

HEX_CHARS = 32  # 128 bits: collision-free at any realistic customer count, short enough to read.
_BLOCK = 64


def normalize(kind: str, value: str | None) -> str | None:
    """Canonical form before hashing, so `A@B.com ` and `a@b.com` get one pseudonym."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        return digits or None
    if kind in ("email", "first_name", "last_name"):
        return value.lower()
    return value


def pseudonym(key: bytes, kind: str, value: str | None) -> str | None:
    """HMAC-SHA256 of `kind:value` (normalized), hex, truncated to HEX_CHARS."""
    value = normalize(kind, value)
    if value is None:
        return None
    message = f"{kind}:{value}".encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:HEX_CHARS]


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def install_sql_hmac(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """Define `cx_hmac(kind, value)` and `cx_norm(kind, value)` on this connection.

    `cx_hmac` takes an already normalized value; `cx_pseudonym(kind, value)` normalizes then hashes, matching
    `pseudonym()` in Python.
    """
    ipad, opad = _pads(key)
    con.execute("set variable cx_ipad = ?::blob", [ipad])
    con.execute("set variable cx_opad = ?::blob", [opad])
    con.execute(
        """
        create or replace temp macro cx_norm(kind, v) as
            case
                when v is null or trim(v) = '' then null
                when kind = 'phone' then nullif(regexp_replace(v, '[^0-9]', '', 'g'), '')
                when kind in ('email', 'first_name', 'last_name') then lower(trim(v))
                else trim(v)
            end
        """
    )
    con.execute(
        f"""
        create or replace temp macro cx_hmac(kind, v) as
            case when v is null then null else left(
                sha256(getvariable('cx_opad')
                       || unhex(sha256(getvariable('cx_ipad') || encode(kind || ':' || v)))),
                {HEX_CHARS})
            end
        """
    )
    con.execute("create or replace temp macro cx_pseudonym(kind, v) as cx_hmac(kind, cx_norm(kind, v))")
    con.execute(
        f"""
        create or replace temp macro cx_mask_text(t) as
            regexp_replace(regexp_replace(regexp_replace(t, '{CARD_RE.pattern}', '[card]', 'g'),
                                          '{EMAIL_RE.pattern}', '[email]', 'g'),
                           '{PHONE_RE.pattern}', '[phone]', 'g')
        """
    )
