"""Which columns' values may appear in validation results.

Validation results end up in Dagster's event log and UI, where anyone with access to the orchestrator can read
them, so they must not carry customer data. The warehouse holds pseudonyms rather than identities, but a
pseudonym is still personal data (it links a person's rows) and free text may hold what masking missed.

The rule is by column name and errs towards hiding: pseudonyms and hashes, the identifiers a person could be
singled out by (device, IP, user agent), free text, URLs (query strings carry e-mails and tokens) and the JSON
blobs of events. Anything named like an e-mail or phone field is hidden whatever its suffix.
"""

from __future__ import annotations

from collections.abc import Iterable

SENSITIVE_COLUMNS = frozenset({
    "customer_key", "customer_id", "user_id", "anonymous_id", "device_id",
    "first_name", "last_name", "ip", "user_agent",
    "subject", "body", "title", "comment", "raw_text", "message",
    "page_url", "page_path", "page_referrer", "page_title", "landing_page", "referrer",
    "properties", "traits",
})
SENSITIVE_SUFFIXES = ("_hash",)
SENSITIVE_WORDS = ("email", "phone")


def is_sensitive(column: str, extra: Iterable[str] = ()) -> bool:
    """True when values of `column` must never be shown in a validation result."""
    name = column.lower()
    return (name in SENSITIVE_COLUMNS or name in {e.lower() for e in extra} or name.endswith(SENSITIVE_SUFFIXES)
            or any(word in name for word in SENSITIVE_WORDS))
