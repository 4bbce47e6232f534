"""Planted data faults: the defects real pipelines see, each recorded so tests know what ingest must do.

Faults draw from their own random stream, so a run without faults describes exactly the same shop; only the
defects differ. Every planted record is extra (a fresh id, a repeated line, a later copy): quarantining it
loses nothing true, so the truth counts hold whether or not the platform catches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.formats import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, IdSpace, iso, naive, seq_ids, uuids
from simulator.tables import KEY_COLUMN, Table

SKEWED_DEVICE_SHARE = 0.05
LATE_SESSION_SHARE = 0.01
DUPLICATE_SHARE = 0.015
MALFORMED_SHARE = 0.0005
MIN_MALFORMED = 3
BAD_ROW_SHARE = 0.001
STALE_UPDATE_SHARE = 0.03

KIND_DUPLICATE = "duplicate_event"
KIND_MALFORMED = "malformed_json"
KIND_LATE = "late_event"
KIND_SKEWED = "skewed_device"
KIND_BAD_ROW = "bad_row"
KIND_ORPHAN = "orphan_order"
KIND_STALE = "stale_update"


@dataclass
class EventFaults:
    """Per unique event: delivery delay in days; plus the extra lines (duplicates and malformed)."""

    late_days: np.ndarray
    dup_event: np.ndarray
    dup_shift_ms: np.ndarray
    dup_day: np.ndarray
    bad_day: np.ndarray
    bad_key: np.ndarray
    bad_text: np.ndarray  # static text, or "" for a truncated copy of bad_source
    bad_source: np.ndarray
    bad_cut: np.ndarray


def device_skew(rng: np.random.Generator, used_devices: np.ndarray, n_devices: int, enabled: bool) -> np.ndarray:
    """Clock offset (ms) of each device: most are right, about 5% run minutes to hours off, one or two days off."""
    skew = np.zeros(n_devices, dtype=np.int64)
    if not enabled or len(used_devices) == 0:
        return skew
    k = min(len(used_devices), max(2, int(round(SKEWED_DEVICE_SHARE * len(used_devices)))))
    chosen = np.sort(rng.choice(used_devices, size=k, replace=False))
    magnitude = np.exp(rng.uniform(np.log(MINUTE_MS), np.log(6 * HOUR_MS), size=k))
    days_off = min(k, 1 + (k >= 10))
    magnitude[:days_off] = rng.integers(1, 4, size=days_off) * DAY_MS + rng.integers(0, 12 * HOUR_MS, size=days_off)
    sign = np.where(rng.random(k) < 0.5, -1, 1)
    skew[chosen] = (sign * magnitude).astype(np.int64)
    return skew


def event_faults(rng: np.random.Generator, session: np.ndarray, day: np.ndarray, days: int,
                 enabled: bool) -> EventFaults:
    """Late sessions, retried duplicates and malformed lines for events delivered on `day`."""
    n = len(day)
    empty = np.zeros(0, dtype=np.int64)
    if not enabled or n == 0:
        return EventFaults(np.zeros(n, np.int64), empty, empty, empty, empty, empty, np.zeros(0, object), empty,
                           np.zeros(0))
    # A whole collector batch (here: a session's events) is held back and delivered 2-7 days later.
    n_sessions = int(session.max()) + 1 if (session >= 0).any() else 0
    late_pick = rng.random(n_sessions) < LATE_SESSION_SHARE
    delay = rng.integers(2, 8, size=n_sessions)
    last_day = np.full(n_sessions, -1)
    has = session >= 0
    np.maximum.at(last_day, session[has], day[has])
    ok = late_pick & (last_day + delay <= days - 1)
    late_days = np.where(has & ok[np.maximum(session, 0)], delay[np.maximum(session, 0)], 0)

    candidates = np.nonzero(late_days == 0)[0]
    dup = candidates[rng.random(len(candidates)) < DUPLICATE_SHARE]
    shift = np.where(rng.random(len(dup)) < 0.5, 0, rng.integers(SECOND_MS, 8 * SECOND_MS, size=len(dup)))
    later = rng.random(len(dup)) < 0.4
    dup_day = day[dup] + np.where(later, rng.integers(1, 4, size=len(dup)), 0)
    dup_day = np.where(dup_day <= days - 1, dup_day, day[dup])

    n_bad = max(MIN_MALFORMED, int(round(MALFORMED_SHARE * (n + len(dup)))))
    bad_day = rng.integers(0, days, size=n_bad)
    bad_key = rng.integers(0, DAY_MS, size=n_bad)
    style = rng.random(n_bad)
    ids = uuids(rng, n_bad)
    static = np.array([
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        '["track","Product Viewed"]',
    ], dtype=object)
    bad_text = np.where(style < 0.6, "", np.where(style < 0.75, static[0], np.where(style < 0.9, static[1], "")))
    bad_text = bad_text.astype(object)
    trailing = style >= 0.9
    bad_text[trailing] = ['{"messageId":"' + i + '","type":"track","event":"Order Completed",'
                          '"properties":{"total":12.5,}}' for i in ids[trailing]]
    bad_source = rng.integers(0, n, size=n_bad)
    bad_cut = rng.uniform(0.2, 0.9, size=n_bad)
    return EventFaults(late_days, dup, shift, dup_day, bad_day, bad_key, bad_text, bad_source, bad_cut)


def _next_numbers(ids: np.ndarray, count: int) -> np.ndarray:
    top = max((int(x[1:]) for x in ids if x), default=0)
    return np.arange(top + 1, top + 1 + count)


def _fresh_ids(ids: np.ndarray, count: int, prefix: str, width: int) -> np.ndarray:
    """`count` ids after the highest of `ids`, as wide as they are (wider in a shop simulated in blocks)."""
    width = max(width, len(ids[0]) - 1) if len(ids) else width
    return seq_ids(prefix, _next_numbers(ids, count), width)


def _naive_variants(rng: np.random.Generator, ms: np.ndarray) -> np.ndarray:
    return np.where(rng.random(len(ms)) < 0.5, naive(ms), naive(ms, sep=" ")).astype(object)


def _mutations(source: str, rows: Table, rng: np.random.Generator) -> list[tuple[str, object, str]]:
    """(column, new value(s) or None for an extra field, rule) for each kind of bad row of a source."""
    k = rows.key
    if source == "customers":
        return [("birth_year", "abc", "customers.birth_year.integer"),
                ("birth_year", "1820", "customers.birth_year.range"),
                ("updated_at", _naive_variants(rng, k), "customers.updated_at.timestamp_with_offset"),
                ("signup_at", np.array([f"{x[8:10]}/{x[5:7]}/{x[0:4]}" for x in rows.values["signup_at"]],
                                       dtype=object), "customers.signup_at.timestamp_with_offset")]
    if source == "orders":
        return [("total_amount", "12,5O", "orders.total_amount.number"),
                ("total_amount", "-" + rows.values["total_amount"], "orders.total_amount.non_negative"),
                ("ordered_at", _naive_variants(rng, k), "orders.ordered_at.timestamp_with_offset"),
                ("status", "shipped", "orders.status.accepted_values"),
                ("items", "two", "orders.items.integer"),
                ("", None, "orders.columns")]
    if source == "payments":
        return [("amount", "-" + rows.values["amount"], "payments.amount.non_negative"),
                ("amount", rows.values["amount"] + " USD", "payments.amount.number"),
                ("status", "pending", "payments.status.accepted_values"),
                ("attempted_at", _naive_variants(rng, k), "payments.attempted_at.timestamp_with_offset")]
    if source == "tickets":
        return [("csat", "7", "tickets.csat.range"),
                ("csat", "five", "tickets.csat.integer"),
                ("channel", "fax", "tickets.channel.accepted_values"),
                ("created_at", _naive_variants(rng, k), "tickets.created_at.timestamp_with_offset")]
    if source == "reviews":
        return [("rating", "7", "reviews.rating.range"),
                ("rating", "4.5", "reviews.rating.integer"),
                ("customer_id", "", "reviews.customer_id.required"),
                ("created_at", "2026-13-45T10:00:00Z", "reviews.created_at.timestamp_with_offset")]
    if source == "surveys":
        return [("score", "11", "surveys.score.range"),
                ("score", "ten", "surveys.score.integer"),
                ("submitted_at", _naive_variants(rng, k), "surveys.submitted_at.timestamp_with_offset")]
    raise ValueError(source)


def bad_rows(table: Table, start_day: int, rng: np.random.Generator) -> Table | None:
    """Copies of random valid rows under fresh ids, each breaking exactly one contract rule."""
    n = len(table)
    if n == 0:
        return None
    template = table.take(np.arange(n))
    kinds = _mutations(table.source, template, rng)
    count = max(len(kinds), int(round(BAD_ROW_SHARE * n)))
    pick = rng.integers(0, n, size=count)
    rows = table.take(pick)
    key_col = KEY_COLUMN[table.source]
    prefix = table.values[key_col][0][0]
    width = len(table.values[key_col][0]) - 1
    rows.values[key_col] = seq_ids(prefix, _next_numbers(table.values[key_col], count), width)
    for i in range(count):
        column, value, rule = kinds[i % len(kinds)]
        if value is None:
            rows.spill[i] = "unexpected"
        else:
            rows.values[column][i] = value if isinstance(value, str) else value[pick[i]]
        rows.rule[i] = rule
        rows.kind[i] = KIND_BAD_ROW
    rows.key = _day_start(start_day, rows) + rng.integers(0, DAY_MS, size=count)
    return rows


def _day_start(start_day: int, rows: Table) -> np.ndarray:
    """Sort key at the start of each row's delivery day, so a random offset lands inside that day's file."""
    return (start_day + rows.day) * DAY_MS


def orphan_orders(orders: Table, payments: Table, n_customers: int, extra_customer_ids: int,
                  rng: np.random.Generator, ids: IdSpace = IdSpace()) -> tuple[Table, Table] | None:
    """Store orders for loyalty cards the CRM never exported: valid rows whose customer is unknown."""
    store = np.nonzero((orders.values["channel"] == "store") & (orders.values["status"] == "completed")
                       & (orders.kind == ""))[0]
    if len(store) == 0:
        return None
    count = 3 + len(orders) // 5000
    pick = store[rng.integers(0, len(store), size=count)]
    rows = orders.take(pick)
    rows.values["order_id"] = _fresh_ids(orders.values["order_id"], count, "O", 7)
    # Numbers past this block's customers (and its bad rows' fresh ids): no customer of any block has them.
    first_unknown = n_customers + extra_customer_ids + 101
    rows.values["customer_id"] = ids.seq("C", first_unknown + 37 * np.arange(count), 6)
    rows.kind[:] = KIND_ORPHAN
    rows.rule[:] = "orders.customer_id.known"
    rows.detail[:] = "build-time rule: the customer is not in customers"
    pay_ms = rows.key + rng.integers(2 * SECOND_MS, 40 * SECOND_MS, size=count)
    pay_values = {
        "payment_id": _fresh_ids(payments.values["payment_id"], count, "P", 7),
        "order_id": rows.values["order_id"].copy(),
        "attempted_at": iso(pay_ms, 0, unit="ms"),
        "method": np.full(count, "card_present", dtype=object),
        "status": np.full(count, "succeeded", dtype=object),
        "failure_code": np.full(count, "", dtype=object),
        "amount": rows.values["total_amount"].copy(),
    }
    pays = Table("payments", payments.columns, pay_values, rows.day.copy(), pay_ms)
    return rows, pays


def stale_updates(customers: Table, history: dict[str, np.ndarray], start_day: int, days: int,
                  rng: np.random.Generator) -> Table | None:
    """Older customer versions re-delivered after the newer one: only `updated_at`, not arrival, decides."""
    changed = np.nonzero(history["prev"] >= 0)[0]
    if len(changed) == 0:
        return None
    pick = changed[rng.random(len(changed)) < STALE_UPDATE_SHARE]
    if len(pick) == 0:
        pick = changed[:1]
    replay_day = customers.day[pick] + rng.integers(1, 4, size=len(pick))
    ok = replay_day <= days - 1
    pick, replay_day = pick[ok], replay_day[ok]
    if len(pick) == 0:
        return None
    rows = customers.take(history["prev"][pick])
    rows.day = replay_day
    rows.key = _day_start(start_day, rows) + rng.integers(0, DAY_MS, size=len(pick))
    rows.kind[:] = KIND_STALE
    rows.detail[:] = "older version re-delivered; superseded by updated_at " + customers.values["updated_at"][pick]
    return rows
