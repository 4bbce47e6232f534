"""Support tickets, product reviews and NPS surveys whose tone follows each customer's experience.

Bad experiences (a failed payment, a late delivery, a refund) raise the chance of a ticket and pull ratings,
CSAT and NPS down; customers without them mostly write neutral questions and good scores. The relationship is
the known truth that the platform's analyses should recover.
"""

from __future__ import annotations

import numpy as np

from simulator import catalog as cat
from simulator import text
from simulator.commerce import EXP_LATE_DELIVERY, EXP_PAYMENT_FAILURE, EXP_REFUND
from simulator.formats import DAY_MS, HOUR_MS, MINUTE_MS
from simulator.world import World

CATEGORY = {name: i for i, name in enumerate(text.TICKET_CATEGORIES)}
TICKET_CHANNELS = ("email", "chat", "phone")
CSAT_BAD = np.array([0.30, 0.28, 0.22, 0.14, 0.06])
CSAT_NEUTRAL = np.array([0.03, 0.05, 0.14, 0.35, 0.43])
RATING_BAD = np.array([0.35, 0.30, 0.20, 0.10, 0.05])
RATING_GOOD = np.array([0.03, 0.05, 0.12, 0.35, 0.45])
TOUCHPOINTS = ("post_purchase", "support", "relationship")
_SHIFT = 41  # customer index above the millisecond timestamp in one sortable int64 key


def _sample(rng: np.random.Generator, dists: np.ndarray) -> np.ndarray:
    """One draw (1-based) per row of a matrix of probability rows."""
    u = rng.random(len(dists))
    return 1 + (u[:, None] > np.cumsum(dists, axis=1)).sum(axis=1).clip(max=dists.shape[1] - 1)


class Experience:
    """Counts of a customer's bad experiences before a time, from the sorted experience table."""

    def __init__(self, exp: dict[str, np.ndarray]):
        self.keys = (exp["customer"].astype(np.int64) << _SHIFT) + exp["ms"]
        self.kind = exp["kind"]

    def count(self, customer: np.ndarray, before_ms: np.ndarray, since_ms: np.ndarray | None = None) -> np.ndarray:
        base = customer.astype(np.int64) << _SHIFT
        low = base if since_ms is None else base + since_ms
        return np.searchsorted(self.keys, base + before_ms) - np.searchsorted(self.keys, low)

    def latest_kind(self, customer: np.ndarray, before_ms: np.ndarray) -> np.ndarray:
        """Kind of the customer's last experience before the time, or -1."""
        if len(self.kind) == 0:
            return np.full(len(customer), -1)
        base = customer.astype(np.int64) << _SHIFT
        pos = np.searchsorted(self.keys, base + before_ms) - 1
        valid = (pos >= 0) & (pos >= np.searchsorted(self.keys, base))
        return np.where(valid, self.kind[np.maximum(pos, 0)], -1)


def tickets(world: World, o: dict, exp: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    period = world.period
    cust = world.customers
    n_cust = len(cust["tz"])
    end = period.end_ms
    parts = []

    pf = np.nonzero((exp["kind"] == EXP_PAYMENT_FAILURE) & (rng.random(len(exp["kind"])) < 0.35))[0]
    parts.append((exp["order"][pf], exp["ms"][pf] + rng.integers(5 * MINUTE_MS, 6 * HOUR_MS, size=len(pf)),
                  CATEGORY["payment"]))
    late = np.nonzero((exp["kind"] == EXP_LATE_DELIVERY) & (rng.random(len(exp["kind"])) < 0.5))[0]
    late_order = exp["order"][late]
    parts.append((late_order, o["ordered_ms"][late_order] + 5 * DAY_MS
                  + rng.integers(0, 36 * HOUR_MS, size=len(late)), CATEGORY["delivery"]))
    rf = np.nonzero((exp["kind"] == EXP_REFUND) & (rng.random(len(exp["kind"])) < 0.7))[0]
    rf_order = exp["order"][rf]
    floor = np.where(o["delivered_ms"][rf_order] >= 0, o["delivered_ms"][rf_order], o["ordered_ms"][rf_order])
    parts.append((rf_order, np.maximum(exp["ms"][rf] - rng.integers(2 * HOUR_MS, 3 * DAY_MS, size=len(rf)),
                                       floor + HOUR_MS), CATEGORY["refund"]))
    t_order = np.concatenate([p[0] for p in parts])
    t_ms = np.concatenate([p[1] for p in parts])
    t_cat = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    t_customer = o["customer"][t_order]
    t_bad = np.ones(len(t_order), dtype=bool)

    n_bg = rng.poisson(0.0008 * n_cust * period.days)
    bg_customer = rng.integers(0, n_cust, size=n_bg)
    bg_ms = period.start_ms + rng.integers(0, period.days * DAY_MS, size=n_bg)
    churn_ms = np.where(world.churn_day >= 0, period.start_ms + world.churn_day * DAY_MS, end)
    ok = (cust["signup_ms"][bg_customer] < bg_ms) & (bg_ms < churn_ms[bg_customer])
    bg_customer, bg_ms = bg_customer[ok], bg_ms[ok]
    bg_cat = rng.choice([CATEGORY["product"], CATEGORY["account"], CATEGORY["delivery"], CATEGORY["refund"]],
                        size=len(bg_ms), p=[0.45, 0.35, 0.1, 0.1])
    bg_order = np.full(len(bg_ms), -1)

    customer = np.concatenate([t_customer, bg_customer])
    ms = np.concatenate([t_ms, bg_ms])
    category = np.concatenate([t_cat, bg_cat])
    order = np.concatenate([t_order, bg_order])
    bad = np.concatenate([t_bad, np.zeros(len(bg_ms), dtype=bool)])
    keep = ms < end
    customer, ms, category, order, bad = customer[keep], ms[keep], category[keep], order[keep], bad[keep]
    sort = np.lexsort((customer, ms))
    customer, ms, category, order, bad = customer[sort], ms[sort], category[sort], order[sort], bad[sort]
    n = len(ms)

    resolve = rng.random(n) < 0.85
    resolved_ms = ms + np.clip(rng.lognormal(np.log(10 * HOUR_MS), 1.0, size=n), 15 * MINUTE_MS, 6 * DAY_MS
                               ).astype(np.int64)
    resolved = resolve & (resolved_ms < end)
    status = np.where(resolved, np.where(rng.random(n) < 0.3, "closed", "resolved"),
                      np.where(rng.random(n) < 0.6, "open", "pending")).astype(object)
    history = Experience(exp)
    repeat_bad = history.count(customer, ms) >= 2
    csat = _sample(rng, np.where((bad | repeat_bad)[:, None], CSAT_BAD, CSAT_NEUTRAL))
    rated = resolved & (rng.random(n) < 0.55)
    return {
        "customer": customer,
        "ms": ms,
        "category": category,
        "order": order,
        "bad": bad,
        "channel": rng.choice(len(TICKET_CHANNELS), size=n, p=[0.5, 0.35, 0.15]),
        "status": status,
        "resolved": resolved,
        "resolved_ms": np.where(resolved, resolved_ms, -1),
        "csat": np.where(rated, csat, -1),
        "number": np.arange(1, n + 1),
        "product": rng.choice(len(cat.PRODUCT_IDS), size=n, p=cat.PRODUCT_POPULARITY),
        "newline": rng.random(n) < 0.15,
        "contact": np.where(rng.random(n) < 0.05, rng.integers(0, len(text.TICKET_CONTACT), size=n), -1),
        "subject_pick": rng.integers(0, 1 << 30, size=n),
        "body_pick": rng.integers(0, 1 << 30, size=n),
        "greeting_pick": rng.integers(0, 1 << 30, size=n),
        "late_days": rng.integers(2, 8, size=n),
    }


def reviews(world: World, o: dict, exp: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    end = world.period.end_ms
    n = len(o["customer"])
    received = np.where(o["is_store"], o["ordered_ms"], o["delivered_ms"])
    troubled = o["late"] | o["refund"]
    write = (received >= 0) & (rng.random(n) < np.where(troubled, 0.28, 0.10))
    ms = received + rng.integers(DAY_MS, 14 * DAY_MS, size=n)
    idx = np.nonzero(write & (ms < end))[0]
    ms = ms[idx]
    sort = np.lexsort((idx, ms))
    idx, ms = idx[sort], ms[sort]
    k = len(idx)
    customer = o["customer"][idx]
    grumpy = world.customers["satisfaction"][customer] < -1.0
    rating = _sample(rng, np.where(troubled[idx][:, None], RATING_BAD, RATING_GOOD))
    rating = np.where(grumpy & (rng.random(k) < 0.5), np.maximum(rating - 1, 1), rating)
    items = world.extra["order_items"]
    item = o["item_start"][idx] + (rng.random(k) * o["item_count"][idx]).astype(np.int64)
    return {
        "order": idx,
        "customer": customer,
        "ms": ms,
        "rating": rating,
        "product": items["product"][item],
        "number": np.arange(1, k + 1),
        "title_pick": rng.integers(0, 1 << 30, size=k),
        "body_pick": rng.integers(0, 1 << 30, size=k),
    }


def surveys(world: World, o: dict, exp: dict, tix: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    period = world.period
    cust = world.customers
    end = period.end_ms
    received = np.where(o["is_store"], o["ordered_ms"], o["delivered_ms"])
    post = np.nonzero((received >= 0) & (rng.random(len(received)) < 0.15))[0]
    post_ms = received[post] + rng.integers(DAY_MS, 3 * DAY_MS, size=len(post))
    sup = np.nonzero(tix["resolved"] & (rng.random(len(tix["ms"])) < 0.3))[0]
    sup_ms = tix["resolved_ms"][sup] + rng.integers(HOUR_MS, 24 * HOUR_MS, size=len(sup))
    n_cust = len(cust["tz"])
    rel = np.nonzero(rng.random(n_cust) < 0.12)[0]
    rel_from = np.maximum(cust["signup_ms"][rel], period.start_ms) + 7 * DAY_MS
    rel_ms = rel_from + (rng.random(len(rel)) * np.maximum(end - rel_from, 0)).astype(np.int64)
    churn_ms = np.where(world.churn_day >= 0, period.start_ms + world.churn_day * DAY_MS, end)
    rel_ok = rel_ms < churn_ms[rel]
    rel, rel_ms = rel[rel_ok], rel_ms[rel_ok]

    customer = np.concatenate([o["customer"][post], tix["customer"][sup], rel])
    ms = np.concatenate([post_ms, sup_ms, rel_ms])
    touch = np.concatenate([np.zeros(len(post), np.int64), np.ones(len(sup), np.int64), np.full(len(rel), 2)])
    support_bad = np.concatenate([np.zeros(len(post), bool), tix["bad"][sup], np.zeros(len(rel), bool)])
    keep = ms < end
    customer, ms, touch, support_bad = customer[keep], ms[keep], touch[keep], support_bad[keep]
    sort = np.lexsort((customer, ms))
    customer, ms, touch, support_bad = customer[sort], ms[sort], touch[sort], support_bad[sort]
    k = len(ms)
    history = Experience(exp)
    recent = history.count(customer, ms, ms - 45 * DAY_MS)
    mean = 8.3 + 0.8 * cust["satisfaction"][customer] - 2.4 * np.minimum(recent, 3) - 1.5 * support_bad
    score = np.clip(np.round(mean + rng.normal(0, 1.2, size=k)), 0, 10).astype(np.int64)
    return {
        "customer": customer,
        "ms": ms,
        "touchpoint": touch,
        "score": score,
        "recent_bad": recent,
        "cause": np.where(recent > 0, history.latest_kind(customer, ms), -1),
        "number": np.arange(1, k + 1),
        "has_comment": rng.random(k) < 0.45,
        "use_cause": rng.random(k) < 0.6,
        "contact": rng.random(k) < 0.02,
        "comment_pick": rng.integers(0, 1 << 30, size=k),
    }
