"""The CSV sources as row tables: text values, delivery day and position, ready for the landing writer.

Each source system has its own habits, as real exports do: the CRM writes customers' local time, the order
system UTC as `+00:00`, payments UTC with milliseconds and `Z`, the helpdesk its own New York offset, and the
review export has a different column order and an extra column in orders. All of them stay inside the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import catalog as cat
from simulator import text
from simulator.commerce import STATUSES
from simulator.events import contact_email, contact_phone
from simulator.feedback import TICKET_CHANNELS, TOUCHPOINTS
from simulator.formats import DAY_MS, HOUR_MS, SECOND_MS, iso, money
from simulator.world import CHANNEL_MOBILE, World

CUSTOMER_COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name", "country", "city", "birth_year",
                    "signup_at", "acquisition_channel", "marketing_consent", "updated_at")
ORDER_COLUMNS = ("order_id", "customer_id", "ordered_at", "status", "currency", "total_amount", "discount_amount",
                 "items", "channel", "updated_at", "coupon_code")
PAYMENT_COLUMNS = ("payment_id", "order_id", "attempted_at", "method", "status", "failure_code", "amount")
TICKET_COLUMNS = ("ticket_id", "customer_id", "created_at", "channel", "category", "subject", "body", "status",
                  "resolved_at", "csat")
REVIEW_COLUMNS = ("review_id", "product_id", "customer_id", "rating", "title", "body", "created_at")
SURVEY_COLUMNS = ("response_id", "customer_id", "submitted_at", "touchpoint", "score", "comment")
KEY_COLUMN = {"customers": "customer_id", "orders": "order_id", "payments": "payment_id", "tickets": "ticket_id",
              "reviews": "review_id", "surveys": "response_id"}
HELPDESK_OFFSET = -300
FAULT_FIELDS = ("kind", "rule", "detail", "spill")

_OBJ = object


@dataclass
class Table:
    """Rows of one CSV source. `day` is the delivery day index, `key` orders rows inside a day's file."""

    source: str
    columns: tuple[str, ...]
    values: dict[str, np.ndarray]
    day: np.ndarray
    key: np.ndarray
    kind: np.ndarray = field(default=None)
    rule: np.ndarray = field(default=None)
    detail: np.ndarray = field(default=None)
    spill: np.ndarray = field(default=None)  # text of an unexpected extra field, written after the last column

    def __post_init__(self) -> None:
        n = len(self.day)
        for name in FAULT_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, np.full(n, "", dtype=_OBJ))

    def __len__(self) -> int:
        return len(self.day)

    @property
    def row_key(self) -> np.ndarray:
        return self.values[KEY_COLUMN[self.source]]

    def take(self, idx: np.ndarray) -> Table:
        return Table(self.source, self.columns, {k: v[idx].copy() for k, v in self.values.items()},
                     self.day[idx].copy(), self.key[idx].copy(),
                     *(getattr(self, name)[idx].copy() for name in FAULT_FIELDS))

    def extend(self, other: Table) -> None:
        self.values = {k: np.concatenate([v, other.values[k]]) for k, v in self.values.items()}
        for name in ("day", "key", *FAULT_FIELDS):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))


def _text(values) -> np.ndarray:
    out = np.empty(len(values), dtype=_OBJ)
    out[:] = list(values)
    return out


def _int_text(values: np.ndarray, missing: int = -1) -> np.ndarray:
    return np.where(values == missing, "", values.astype(str)).astype(_OBJ)


def _day(world: World, ms: np.ndarray) -> np.ndarray:
    return np.clip(ms // DAY_MS - world.period.start_day, 0, world.period.days - 1)


def customer_ids(world: World) -> np.ndarray:
    return world.ids.seq("C", np.arange(1, len(world.customers["tz"]) + 1), 6)


def customers(world: World, rng: np.random.Generator) -> tuple[Table, dict[str, np.ndarray]]:
    """CRM rows: one at signup (day 0 holds the initial load of earlier customers) and one per later change.

    Returns the table and the version history (customer, previous version), which fault planting uses to
    re-deliver a stale version.
    """
    cust = world.customers
    period = world.period
    n = len(cust["tz"])
    initial_ms = np.where(cust["pre_existing"],
                          cust["signup_ms"] + (rng.random(n) * (period.start_ms - cust["signup_ms"])).astype(np.int64),
                          cust["signup_ms"] + rng.integers(SECOND_MS, 30 * SECOND_MS, size=n))
    changes = (rng.random(n) < 0.2).astype(np.int64) + (rng.random(n) < 0.05)
    ch_customer = np.repeat(np.arange(n), changes)
    ch_from = np.maximum(cust["signup_ms"][ch_customer], period.start_ms) + HOUR_MS
    ch_ms = ch_from + (rng.random(len(ch_customer)) * np.maximum(period.end_ms - ch_from, 0)).astype(np.int64)
    ch_kind = rng.choice(3, size=len(ch_customer), p=[0.55, 0.35, 0.10])  # city, consent, phone
    keep = ch_ms < period.end_ms
    ch_customer, ch_ms, ch_kind = ch_customer[keep], ch_ms[keep], ch_kind[keep]
    new_city_pick = rng.random(len(ch_customer))
    new_phone = rng.integers(0, 1000, size=len(ch_customer))

    v_customer = np.concatenate([np.arange(n), ch_customer])
    v_ms = np.concatenate([initial_ms, ch_ms])
    order = np.lexsort((v_ms, v_customer))
    v_customer, v_ms = v_customer[order], v_ms[order]
    v_kind = np.concatenate([np.full(n, -1), ch_kind])[order]
    v_city_pick = np.concatenate([np.zeros(n), new_city_pick])[order]
    v_phone = np.concatenate([np.zeros(n, np.int64), new_phone])[order]
    m = len(v_customer)
    city = np.empty(m, dtype=np.int64)
    consent = np.empty(m, dtype=bool)
    phone = np.empty(m, dtype=np.int64)
    has_phone = np.empty(m, dtype=bool)
    prev = np.full(m, -1, dtype=np.int64)
    counts = np.bincount(cat.CITY_COUNTRY, minlength=len(cat.COUNTRIES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # Versions are few (about a quarter of customers change), so a loop over them is cheap and clear.
    for i in range(m):
        c = v_customer[i]
        if v_kind[i] < 0:
            city[i], consent[i] = cust["city"][c], cust["marketing_consent"][c]
            phone[i], has_phone[i] = cust["phone_number"][c], cust["has_phone"][c]
            continue
        prev[i] = i - 1
        city[i], consent[i], phone[i], has_phone[i] = city[i - 1], consent[i - 1], phone[i - 1], has_phone[i - 1]
        if v_kind[i] == 0:
            country = cust["country"][c]
            options = counts[country]
            step = 1 + int(v_city_pick[i] * (options - 1)) if options > 1 else 0
            city[i] = starts[country] + (city[i] - starts[country] + step) % options
        elif v_kind[i] == 1:
            consent[i] = not consent[i]
        else:
            phone[i], has_phone[i] = v_phone[i], True

    tz = cust["tz"][v_customer]
    emails = contact_email(cust, world.ids)[v_customer]
    versioned = dict(cust, phone_number=phone, has_phone=has_phone, country=cust["country"][v_customer])
    phones = np.where(has_phone, contact_phone(versioned), "").astype(_OBJ)
    style = rng.random(m)
    consent_text = np.where(style < 0.88, np.where(consent, "true", "false"),
                            np.where(style < 0.94, np.where(consent, "yes", "no"),
                                     np.where(consent, "1", "0"))).astype(_OBJ)
    acquisition = np.array(cat.ACQUISITION_CHANNELS, dtype=_OBJ)[cust["acquisition"][v_customer]]
    values = {
        "customer_id": customer_ids(world)[v_customer],
        "email": emails,
        "phone": phones,
        "first_name": np.array(cat.FIRST_NAMES, dtype=_OBJ)[cust["first_name"][v_customer]],
        "last_name": np.array(cat.LAST_NAMES, dtype=_OBJ)[cust["last_name"][v_customer]],
        "country": np.array(cat.COUNTRY_CODES, dtype=_OBJ)[cust["country"][v_customer]],
        "city": np.array(cat.CITY_NAMES, dtype=_OBJ)[city],
        "birth_year": _int_text(cust["birth_year"][v_customer]),
        "signup_at": iso(cust["signup_ms"][v_customer], tz, utc="+00:00"),
        "acquisition_channel": acquisition,
        "marketing_consent": consent_text,
        "updated_at": iso(v_ms, tz, utc="+00:00"),
    }
    day = np.where(v_ms < period.start_ms, 0, _day(world, v_ms))
    history = {"customer": v_customer, "ms": v_ms, "prev": prev, "city": city, "consent": consent}
    return Table("customers", CUSTOMER_COLUMNS, values, day, v_ms), history


def orders(world: World, o: dict, changes: dict, order_ids: np.ndarray) -> Table:
    cust_ids = customer_ids(world)
    k = changes["order"]
    online = ~o["is_store"][k]
    session_channel = world.devices["channel"][world.sessions["device"][np.maximum(o["session"][k], 0)]]
    channel = np.where(~online, "store", np.where(session_channel == CHANNEL_MOBILE, "mobile", "web")).astype(_OBJ)
    coupon = np.array(["", *cat.COUPON_CODES], dtype=_OBJ)
    pct_index = np.searchsorted(np.array(cat.COUPON_PCTS), o["discount_pct"][k]) + 1
    pct_index[o["discount_pct"][k] == 0] = 0
    values = {
        "order_id": order_ids[k],
        "customer_id": cust_ids[o["customer"][k]],
        "ordered_at": iso(o["ordered_ms"][k], 0, utc="+00:00"),
        "status": np.array(STATUSES, dtype=_OBJ)[changes["status"]],
        "currency": np.array(cat.CURRENCIES, dtype=_OBJ)[o["currency"][k]],
        "total_amount": money(o["total"][k]),
        "discount_amount": money(o["discount"][k]),
        "items": o["items"][k].astype(str).astype(_OBJ),
        "channel": channel,
        "updated_at": iso(changes["ms"], 0, utc="+00:00"),
        "coupon_code": coupon[pct_index],
    }
    return Table("orders", ORDER_COLUMNS, values, _day(world, changes["ms"]), changes["ms"])


def payments(world: World, o: dict, pay: dict, order_ids: np.ndarray) -> Table:
    method = np.where(pay["is_store"], np.array(cat.STORE_PAYMENT_METHODS, dtype=_OBJ)[pay["store_method"]],
                      np.array(cat.PAYMENT_METHODS, dtype=_OBJ)[np.maximum(pay["method"], 0)]).astype(_OBJ)
    values = {
        "payment_id": world.ids.seq("P", pay["number"], 7),
        "order_id": order_ids[pay["order"]],
        "attempted_at": iso(pay["ms"], 0, unit="ms"),
        "method": method,
        "status": np.where(pay["failed"], "failed", "succeeded").astype(_OBJ),
        "failure_code": np.where(pay["failed"], np.array(cat.FAILURE_CODES, dtype=_OBJ)[pay["failure_code"]],
                                 "").astype(_OBJ),
        "amount": money(o["total"][pay["order"]]),
    }
    return Table("payments", PAYMENT_COLUMNS, values, _day(world, pay["ms"]), pay["ms"])


def tickets(world: World, tix: dict, order_ids: np.ndarray, rng: np.random.Generator,
            korean: np.ndarray) -> Table:
    """Helpdesk rows; `rng` is the text stream and `korean` marks the customers who write in Korean."""
    cust = world.customers
    n = len(tix["ms"])
    emails = contact_email(cust, world.ids)
    phones = contact_phone(cust)
    categories = text.TICKET_CATEGORIES
    blank = text.blank_categories(rng, tix["status"])
    ambiguous = rng.random(n) < text.AMBIGUOUS_TICKET_SHARE
    card = text.card_tickets(rng, tix["category"] == categories.index("payment"))
    dice = text.dice(rng, n)
    subjects, bodies = [], []
    for i in range(n):
        d = dice[i]
        c = tix["customer"][i]
        voice = text.KOREAN if korean[c] else text.ENGLISH
        has_order = tix["order"][i] >= 0
        order_id = order_ids[tix["order"][i]] if has_order else ""
        fill = {"order_id": order_id,
                "order": (("주문번호 " if voice.korean else "order ") + order_id) if has_order else voice.no_order,
                "product": cat.PRODUCT_NAMES[tix["product"][i]], "days": int(tix["late_days"][i]),
                "email": emails[c], "phone": phones[c]}
        subject, body = text.ticket(voice, categories[tix["category"][i]], bool(tix["bad"][i]), bool(ambiguous[i]),
                                    fill, bool(tix["newline"][i]), int(tix["contact"][i]),
                                    text.card_number(d) if card[i] else "", int(tix["subject_pick"][i]),
                                    int(tix["body_pick"][i]), int(tix["greeting_pick"][i]), d)
        subjects.append(subject)
        bodies.append(body)
    values = {
        "ticket_id": world.ids.seq("T", tix["number"], 6),
        "customer_id": customer_ids(world)[tix["customer"]],
        "created_at": iso(tix["ms"], HELPDESK_OFFSET),
        "channel": np.array(TICKET_CHANNELS, dtype=_OBJ)[tix["channel"]],
        "category": np.where(blank, "", np.array(categories, dtype=_OBJ)[tix["category"]]).astype(_OBJ),
        "subject": _text(subjects),
        "body": _text(bodies),
        "status": tix["status"],
        "resolved_at": np.where(tix["resolved"], iso(np.maximum(tix["resolved_ms"], 0), HELPDESK_OFFSET), "")
        .astype(_OBJ),
        "csat": _int_text(tix["csat"]),
    }
    # A ticket is exported once, on the day it reaches its last state in the period (resolution or creation).
    last_ms = np.where(tix["resolved"], tix["resolved_ms"], tix["ms"])
    return Table("tickets", TICKET_COLUMNS, values, _day(world, last_ms), last_ms)


def reviews(world: World, rev: dict, rng: np.random.Generator, korean: np.ndarray) -> Table:
    """Review rows; `rng` is the text stream and `korean` marks the customers who write in Korean."""
    k = len(rev["ms"])
    dice = text.dice(rng, k)
    titles, bodies = [], []
    for i in range(k):
        d = dice[i]
        product = rev["product"][i]
        voice = text.KOREAN if korean[rev["customer"][i]] else text.ENGLISH
        tone = text.review_tone(int(rev["rating"][i]), d)
        title, body = text.review(voice, tone, cat.PRODUCT_NAMES[product],
                                  cat.PRODUCT_CATEGORIES[product] in text.WEARABLE, int(rev["title_pick"][i]),
                                  int(rev["body_pick"][i]), d)
        titles.append(title)
        bodies.append(body)
    values = {
        "review_id": world.ids.seq("R", rev["number"], 6),
        "product_id": np.array(cat.PRODUCT_IDS, dtype=_OBJ)[rev["product"]],
        "customer_id": customer_ids(world)[rev["customer"]],
        "rating": rev["rating"].astype(str).astype(_OBJ),
        "title": _text(titles),
        "body": _text(bodies),
        "created_at": iso(rev["ms"], 0),
    }
    return Table("reviews", REVIEW_COLUMNS, values, _day(world, rev["ms"]), rev["ms"])


def surveys(world: World, srv: dict, rng: np.random.Generator, korean: np.ndarray) -> Table:
    """Survey rows; `rng` is the text stream and `korean` marks the customers who write in Korean."""
    cust = world.customers
    k = len(srv["ms"])
    phones = contact_phone(cust)
    dice = text.dice(rng, k)
    comments = []
    causes = {0: "payment_failure", 1: "late_delivery", 2: "refund"}
    for i in range(k):
        if not srv["has_comment"][i]:
            comments.append("")
            continue
        c = srv["customer"][i]
        score = int(srv["score"][i])
        cause = None
        if text.survey_bucket(score) == "detractor" and srv["cause"][i] >= 0 and srv["use_cause"][i]:
            cause = causes[int(srv["cause"][i])]
        comments.append(text.survey(text.KOREAN if korean[c] else text.ENGLISH, score, cause,
                                    int(srv["comment_pick"][i]), phones[c] if srv["contact"][i] else None, dice[i]))
    tz = cust["tz"][srv["customer"]]
    values = {
        "response_id": world.ids.seq("S", srv["number"], 6),
        "customer_id": customer_ids(world)[srv["customer"]],
        "submitted_at": iso(srv["ms"], tz),
        "touchpoint": np.array(TOUCHPOINTS, dtype=_OBJ)[srv["touchpoint"]],
        "score": srv["score"].astype(str).astype(_OBJ),
        "comment": _text(comments),
    }
    return Table("surveys", SURVEY_COLUMNS, values, _day(world, srv["ms"]), srv["ms"])
