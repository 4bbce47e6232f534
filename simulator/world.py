"""The simulated shop's behaviour: who signs up, browses, buys, has bad experiences and churns.

The model is a day loop vectorised across customers. Each day a customer who is still active may churn (a
hazard that rises with every bad experience so far), browse in up to two sessions on one of their devices,
and buy online or in a store. Each order draws its fate up front (payment failures, late delivery, refund),
and those fates become bad experiences on the day they happen, which feeds the next days' churn hazard.
Visitors who never sign up and the anonymous visits of future customers are generated outside the loop.

Nothing here formats text: the loop produces arrays that `events`, `commerce` and `feedback` turn into
landed records, so the behavioural model stays readable and fast at millions of sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import catalog as cat
from simulator.formats import DAY_MS, HOUR_MS, MINUTE_MS, IdSpace, uuids

PRE_EXISTING_SHARE = 0.35
STORE_SIGNUP_SHARE = 0.10
SECOND_DEVICE_SHARE = 0.25
ANONYMOUS_VISITORS_PER_CUSTOMER = 0.6
LOGIN_PER_ANONYMOUS_DAY = 0.5
MAX_SESSIONS_PER_DAY = 2

# Funnel step probabilities. Only a logged-in session can check out, so checkout-button exposure (at the cart)
# is decided before the outcome it is meant to change.
P_VIEW = 0.8
P_CART_GIVEN_ADD = 0.8
P_CHECKOUT_GIVEN_CART = 0.7
P_PAYINFO_GIVEN_CHECKOUT = 0.85
P_ORDER_GIVEN_PAYINFO = 0.9
P_ORDER_GIVEN_ADD = P_CART_GIVEN_ADD * P_CHECKOUT_GIVEN_CART * P_PAYINFO_GIVEN_CHECKOUT * P_ORDER_GIVEN_PAYINFO
P_ADD_ANONYMOUS = 0.12

P_PAYMENT_FAILURE = 0.07
P_RETRY_AFTER_FAILURE = 0.7
P_RETRY_SUCCEEDS = 0.8
P_LATE_DELIVERY = 0.08
P_REFUND = 0.04
P_REFUND_IF_LATE = 0.16
P_CUSTOMER_CANCEL = 0.015
P_STORE_REFUND = 0.02

# Churn: daily hazard = base_hazard * (1 + HAZARD_PER_BAD_EXPERIENCE * bad experiences so far).
HAZARD_PER_BAD_EXPERIENCE = 1.5

TRAFFIC_DROP_FACTOR = 0.4
PAYMENT_SPIKE_FACTOR = 4.0

# Relative activity by local hour of day; sessions start in 2-hour UTC slots weighted by it.
LOCAL_HOUR_WEIGHTS = np.array([0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 0.8, 0.9, 1.0, 1.1,
                               1.4, 1.3, 1.0, 1.0, 1.0, 1.1, 1.3, 1.6, 1.8, 1.7, 1.3, 0.6])
SLOTS = 12
SLOT_MS = 2 * HOUR_MS
# A session starts in the first 25 minutes of its slot and lasts at most 55 minutes, so two sessions of one
# device are always more than 30 minutes apart: the gap that defines a new session.
SLOT_START_WINDOW_MS = 25 * MINUTE_MS
MAX_SESSION_MS = 55 * MINUTE_MS

KIND_REGULAR, KIND_SIGNUP, KIND_PRESIGNUP, KIND_ANONYMOUS = range(4)
CHANNEL_WEB, CHANNEL_MOBILE = 0, 1
MAX_VIEWS = 5
MAX_ADDS = 3

_TZ_VALUES = np.unique(cat.CITY_OFFSETS)
QUERIES = tuple(q for c in cat.CATEGORIES for q in cat.SEARCH_QUERIES[c])
_QUERY_START = np.cumsum([0] + [len(cat.SEARCH_QUERIES[c]) for c in cat.CATEGORIES])[:-1]
_QUERY_COUNT = np.array([len(cat.SEARCH_QUERIES[c]) for c in cat.CATEGORIES])
_PRODUCT_CATEGORY = np.array([cat.CATEGORIES.index(c) for c in cat.PRODUCT_CATEGORIES])


@dataclass(frozen=True)
class Period:
    """The simulated days: `[start_ms, end_ms)`, with the two incident days (or -1 when too short)."""

    start_day: int
    days: int
    traffic_drop_day: int
    payment_spike_day: int

    @property
    def start_ms(self) -> int:
        return self.start_day * DAY_MS

    @property
    def end_ms(self) -> int:
        return (self.start_day + self.days) * DAY_MS

    @classmethod
    def build(cls, start_day: int, days: int) -> Period:
        if days < 3:
            return cls(start_day, days, -1, -1)
        drop = max(1, int(round(days * 0.55)))
        spike = max(2, int(round(days * 0.8)))
        if spike == drop:
            spike = min(days - 1, drop + 1)
        return cls(start_day, days, drop, spike)


@dataclass
class World:
    """Arrays describing everything that happened; indexes are positions, ids are formatted later."""

    period: Period
    customers: dict[str, np.ndarray]
    devices: dict[str, np.ndarray]
    sessions: dict[str, np.ndarray]
    orders: dict[str, np.ndarray]
    churn_day: np.ndarray
    extra: dict[str, object] = field(default_factory=dict)
    ids: IdSpace = field(default_factory=IdSpace)


def _slot_log_weights() -> np.ndarray:
    """log weight of each UTC slot for each distinct time-zone offset, shape (offsets, SLOTS)."""
    out = np.empty((len(_TZ_VALUES), SLOTS))
    for i, tz in enumerate(_TZ_VALUES):
        shift = int(np.floor(tz / 60))
        for s in range(SLOTS):
            out[i, s] = LOCAL_HOUR_WEIGHTS[(2 * s + shift) % 24] + LOCAL_HOUR_WEIGHTS[(2 * s + 1 + shift) % 24]
    return np.log(out)


_SLOT_LOG_WEIGHTS = _slot_log_weights()


def _tz_index(tz: np.ndarray) -> np.ndarray:
    return np.searchsorted(_TZ_VALUES, tz)


def _draw_slots(rng: np.random.Generator, tz: np.ndarray, k: int, last_day: np.ndarray) -> np.ndarray:
    """`k` distinct UTC slots per row by local-hour preference (Gumbel top-k), sorted by time.

    On the period's last day the final slot is excluded so every session ends, and is received, in the period.
    """
    keys = _SLOT_LOG_WEIGHTS[_tz_index(tz)] + rng.gumbel(size=(len(tz), SLOTS))
    keys[last_day, SLOTS - 1] = -np.inf
    top = np.argsort(-keys, axis=1, kind="stable")[:, :k]
    return np.sort(top, axis=1)


def _slot_start(rng: np.random.Generator, day: np.ndarray, slot: np.ndarray, period: Period) -> np.ndarray:
    offset = rng.integers(0, SLOT_START_WINDOW_MS, size=len(day))
    return (period.start_day + day) * DAY_MS + slot * SLOT_MS + offset


def _customers(rng: np.random.Generator, n: int, period: Period) -> dict[str, np.ndarray]:
    country = rng.choice(len(cat.COUNTRIES), size=n, p=cat.COUNTRY_SHARES)
    counts = np.bincount(cat.CITY_COUNTRY, minlength=len(cat.COUNTRIES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    city = starts[country] + (rng.random(n) * counts[country]).astype(np.int64)
    tz = cat.CITY_OFFSETS[city]
    pre = rng.random(n) < PRE_EXISTING_SHARE
    acquisition = np.where(
        pre,
        rng.choice(len(cat.ACQUISITION_CHANNELS), size=n, p=cat.PRE_EXISTING_ACQUISITION_SHARES),
        np.where(rng.random(n) < STORE_SIGNUP_SHARE, cat.ACQUISITION_CHANNELS.index("store"), -1),
    )
    is_store = acquisition == cat.ACQUISITION_CHANNELS.index("store")
    # Signups accelerate a little over the period, as a growing shop's do.
    day = np.minimum((period.days * rng.random(n) ** 0.85).astype(np.int64), period.days - 1)
    last_day = day == period.days - 1
    slot = _draw_slots(rng, tz, 1, last_day)[:, 0]
    web_ms = _slot_start(rng, day, slot, period)
    local_minute = rng.integers(9 * 60, 20 * 60, size=n)
    store_ms = (period.start_day + day) * DAY_MS + ((local_minute - tz) % 1440) * MINUTE_MS \
        + rng.integers(0, MINUTE_MS, size=n)
    pre_ms = period.start_ms - rng.integers(HOUR_MS, 540 * DAY_MS, size=n)
    signup_ms = np.where(pre, pre_ms, np.where(is_store, store_ms, web_ms))

    browse_rate = np.clip(rng.lognormal(np.log(0.11), 0.6, size=n), 0.01, 1.0)
    purchase_rate = np.clip(rng.lognormal(np.log(0.7), 0.75, size=n), 0.05, 6.0)
    p_add = np.clip(purchase_rate / 30 / (browse_rate * P_VIEW * P_ORDER_GIVEN_ADD), 0.02, 0.9)
    store_rate = np.where(is_store, rng.lognormal(np.log(0.6), 0.5, size=n),
                          np.where(rng.random(n) < 0.08, 0.15, 0.0))
    table = {
        "country": country,
        "city": city,
        "tz": tz,
        "currency": cat.COUNTRY_CURRENCY[country],
        "first_name": rng.integers(0, len(cat.FIRST_NAMES), size=n),
        "last_name": rng.integers(0, len(cat.LAST_NAMES), size=n),
        "email_domain": rng.integers(0, len(cat.EMAIL_DOMAINS), size=n),
        "phone_number": rng.integers(0, 1000, size=n),
        "has_phone": rng.random(n) < 0.8,
        "birth_year": np.where(rng.random(n) < 0.06, -1, rng.integers(1950, 2007, size=n)),
        "marketing_consent": rng.random(n) < 0.55,
        "pre_existing": pre,
        "acquisition": acquisition,
        "is_store": is_store,
        "signup_ms": signup_ms,
        "browse_rate": browse_rate,
        "purchase_rate": purchase_rate,
        "p_add": p_add,
        "store_rate": store_rate,
        "base_hazard": rng.lognormal(np.log(0.0022), 0.5, size=n),
        "satisfaction": rng.normal(0.0, 1.0, size=n),
        "checkout_button": rng.integers(0, 2, size=n),
    }
    # Customer ids grow with signup time, as a CRM's sequence does.
    order = np.argsort(signup_ms, kind="stable")
    table = {k: v[order] for k, v in table.items()}
    table["signup_day"] = np.floor_divide(table["signup_ms"] - period.start_ms, DAY_MS)
    return table


def _devices(rng: np.random.Generator, cust: dict[str, np.ndarray], period: Period) -> dict[str, np.ndarray]:
    n = len(cust["tz"])
    has_primary = ~cust["is_store"] | (rng.random(n) < 0.5)
    has_second = has_primary & (rng.random(n) < SECOND_DEVICE_SHARE)
    primary_type = rng.choice(3, size=n, p=[0.38, 0.55, 0.07])
    second_type = np.where(primary_type == 1, np.where(rng.random(n) < 0.8, 0, 2), 1)
    signup_day = cust["signup_day"]
    store_late_start = np.maximum(signup_day, 0) + rng.integers(0, 30, size=n)
    primary_activation = np.where(cust["is_store"] & ~cust["pre_existing"], store_late_start,
                                  np.maximum(signup_day, 0))
    second_activation = np.maximum(signup_day, 0) + 1 + rng.integers(0, max(period.days // 2, 1), size=n)

    n_anon = int(round(ANONYMOUS_VISITORS_PER_CUSTOMER * n))
    anon_country = rng.choice(len(cat.COUNTRIES), size=n_anon, p=cat.COUNTRY_SHARES)
    counts = np.bincount(cat.CITY_COUNTRY, minlength=len(cat.COUNTRIES))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    anon_city = starts[anon_country] + (rng.random(n_anon) * counts[anon_country]).astype(np.int64)

    idx = np.arange(n)
    p_owner, s_owner = idx[has_primary], idx[has_second]
    owner = np.concatenate([p_owner, s_owner, np.full(n_anon, -1)])
    dtype = np.concatenate([primary_type[has_primary], second_type[has_second],
                            rng.choice(3, size=n_anon, p=[0.45, 0.5, 0.05])])
    tz = np.concatenate([cust["tz"][p_owner], cust["tz"][s_owner], cat.CITY_OFFSETS[anon_city]])
    currency = np.concatenate([cust["currency"][p_owner], cust["currency"][s_owner],
                               cat.COUNTRY_CURRENCY[anon_country]])
    activation = np.concatenate([primary_activation[has_primary], second_activation[has_second],
                                 np.zeros(n_anon, dtype=np.int64)])
    role = np.concatenate([np.zeros(len(p_owner), np.int8), np.ones(len(s_owner), np.int8),
                           np.full(n_anon, 2, np.int8)])
    total = len(owner)
    channel = np.where((dtype == 1) & (rng.random(total) < 0.65), CHANNEL_MOBILE, CHANNEL_WEB)
    ua_pick = rng.integers(0, 1 << 30, size=total)
    blocks = np.array(["192.0.2.", "198.51.100.", "203.0.113."], dtype=object)
    ip = blocks[rng.integers(0, 3, size=total)] + rng.integers(1, 255, size=total).astype(str).astype(object)
    devices = {
        "owner": owner,
        "type": dtype,
        "channel": channel,
        "tz": tz,
        "currency": currency,
        "activation": activation,
        "role": role,
        "anonymous_id": uuids(rng, total),
        "device_id": uuids(rng, total),
        "ip": ip,
        "ua_pick": ua_pick,
        "aa_homepage": rng.integers(0, 2, size=total),
        # Customers who existed before the period are already logged in on their main device.
        "logged_in": (role == 0) & cust["pre_existing"][np.maximum(owner, 0)],
    }
    prim = np.full(n, -1)
    prim[p_owner] = np.arange(len(p_owner))
    sec = np.full(n, -1)
    sec[s_owner] = len(p_owner) + np.arange(len(s_owner))
    cust["primary_device"] = prim
    cust["second_device"] = sec
    return devices


def _funnel(rng: np.random.Generator, s: dict[str, np.ndarray], cust: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Walk a batch of sessions down the shop's funnel; returns the batch with every step's outcome."""
    n = len(s["device"])
    can_buy = s["logged_at_start"] | s["login"] | s["signup"]
    customer = s["customer"]
    known = customer >= 0
    campaign = np.where(rng.random(n) < 0.3, rng.integers(0, len(cat.CAMPAIGNS), size=n), -1)
    landing_pick = rng.random(n)
    landing = np.where(campaign >= 0,
                       np.where(landing_pick < 0.6, cat.PAGE_SALE, cat.PAGE_CATEGORY),
                       np.where(landing_pick < 0.65, cat.PAGE_HOME, cat.PAGE_CATEGORY))
    products = rng.choice(len(cat.PRODUCT_IDS), size=(n, MAX_VIEWS), p=cat.PRODUCT_POPULARITY)
    first_category = _PRODUCT_CATEGORY[products[:, 0]]
    query = _QUERY_START[first_category] + (rng.random(n) * _QUERY_COUNT[first_category]).astype(np.int64)
    n_views = np.where(rng.random(n) < P_VIEW, np.minimum(rng.geometric(0.45, size=n), MAX_VIEWS), 0)
    p_add = np.where(can_buy & known, cust["p_add"][np.maximum(customer, 0)], P_ADD_ANONYMOUS)
    added = (n_views > 0) & (rng.random(n) < p_add)
    n_adds = np.where(added, 1 + rng.binomial(np.maximum(np.minimum(n_views, MAX_ADDS) - 1, 0), 0.3), 0)
    removed = (n_adds >= 2) & (rng.random(n) < 0.2)
    cart = (n_adds > 0) & (rng.random(n) < P_CART_GIVEN_ADD)
    exposed = cart & can_buy
    variation = np.where(exposed, cust["checkout_button"][np.maximum(customer, 0)], -1)
    lift = 1.0 + cat.EXPERIMENTS[0]["planted_relative_lift"] * (variation == 1)
    checkout = exposed & (rng.random(n) < P_CHECKOUT_GIVEN_CART * lift)
    payinfo = checkout & (rng.random(n) < P_PAYINFO_GIVEN_CHECKOUT)
    ordered = payinfo & (rng.random(n) < P_ORDER_GIVEN_PAYINFO)
    out = dict(s)
    out.update(
        campaign=campaign,
        referrer=rng.integers(0, len(cat.REFERRERS), size=n),
        landing=landing,
        landing_category=first_category,
        aa=landing == cat.PAGE_HOME,
        search=rng.random(n) < 0.35,
        query=query,
        n_views=n_views,
        products=products,
        n_adds=n_adds,
        quantity=1 + (rng.random((n, MAX_ADDS)) < 0.12),
        removed=removed,
        cart=cart,
        checkout_button=variation,
        checkout=checkout,
        payinfo=payinfo,
        ordered=ordered,
        pay_method=rng.choice(len(cat.PAYMENT_METHODS), size=n, p=cat.PAYMENT_METHOD_SHARES),
        signup_method=rng.integers(0, len(cat.SIGNUP_METHODS), size=n),
    )
    return out


def _batch(day, device, customer, start_ms, kind, logged_at_start, login, signup, identify_start) -> dict:
    n = len(device)
    return {
        "day": np.broadcast_to(np.asarray(day, dtype=np.int64), (n,)).copy(),
        "device": np.asarray(device, dtype=np.int64),
        "customer": np.asarray(customer, dtype=np.int64),
        "start_ms": np.asarray(start_ms, dtype=np.int64),
        "kind": np.full(n, kind, dtype=np.int8),
        "logged_at_start": np.asarray(logged_at_start, dtype=bool),
        "login": np.asarray(login, dtype=bool),
        "signup": np.asarray(signup, dtype=bool),
        "identify_start": np.asarray(identify_start, dtype=bool),
    }


def _concat(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    use = [b for b in batches if len(next(iter(b.values())))] or batches[:1]
    return {k: np.concatenate([b[k] for b in use]) for k in use[0]}


def _order_plan(rng: np.random.Generator, day: int, customer: np.ndarray, session: np.ndarray,
                is_store: bool, period: Period) -> dict[str, np.ndarray]:
    """Decide each new order's fate on the day it is placed: payments, delivery, refund, cancellation."""
    n = len(customer)
    fail_p = P_PAYMENT_FAILURE * (PAYMENT_SPIKE_FACTOR if day == period.payment_spike_day else 1.0)
    if is_store:
        fails = np.zeros((n, 3), dtype=bool)
        attempts = np.ones(n, dtype=np.int64)
    else:
        first_fails = rng.random(n) < fail_p
        retry1 = first_fails & (rng.random(n) < P_RETRY_AFTER_FAILURE)
        second_fails = retry1 & (rng.random(n) >= P_RETRY_SUCCEEDS)
        retry2 = second_fails & (rng.random(n) < 0.5)
        third_fails = retry2 & (rng.random(n) >= P_RETRY_SUCCEEDS)
        fails = np.stack([first_fails, second_fails, third_fails], axis=1)
        attempts = 1 + retry1.astype(np.int64) + retry2.astype(np.int64)
    last_failed = fails[np.arange(n), attempts - 1]
    late = ~last_failed & ~np.bool_(is_store) & (rng.random(n) < P_LATE_DELIVERY)
    delivery_days = np.where(late, rng.integers(7, 15, size=n), rng.integers(2, 6, size=n))
    p_refund = P_STORE_REFUND if is_store else np.where(late, P_REFUND_IF_LATE, P_REFUND)
    refund = ~last_failed & (rng.random(n) < p_refund)
    refund_days = np.where(is_store, rng.integers(1, 15, size=n), delivery_days + rng.integers(1, 11, size=n))
    customer_cancel = ~last_failed & ~refund & ~np.bool_(is_store) & (rng.random(n) < P_CUSTOMER_CANCEL)
    discount_pct = np.where(rng.random(n) < 0.2, rng.choice(cat.COUPON_PCTS, size=n), 0)
    return {
        "customer": customer.astype(np.int64),
        "session": session.astype(np.int64),
        "day": np.full(n, day, dtype=np.int64),
        "is_store": np.full(n, is_store),
        "attempts": attempts,
        "fails": fails,
        "cancelled_payment": last_failed,
        "failure_code": rng.choice(len(cat.FAILURE_CODES), size=(n, 3), p=cat.FAILURE_CODE_SHARES),
        "late": late,
        "delivery_days": np.where(is_store, 0, delivery_days),
        "refund": refund,
        "refund_days": refund_days,
        "customer_cancel": customer_cancel & ~refund,
        "discount_pct": discount_pct,
        "store_method": rng.integers(0, len(cat.STORE_PAYMENT_METHODS), size=n),
    }


def simulate(rng: np.random.Generator, n_customers: int, period: Period, progress=None,
             ids: IdSpace | None = None) -> World:
    """Run the shop for `period.days` days; `progress` (a tqdm bar or None) advances once per day.

    `ids` numbers this block's customers, orders and feedback within a shop simulated in blocks.
    """
    D = period.days
    cust = _customers(rng, n_customers, period)
    devices = _devices(rng, cust, period)
    n = n_customers
    dev_logged = devices["logged_in"].copy()
    dev_identified = np.zeros(len(dev_logged), dtype=bool)
    prim, sec = cust["primary_device"], cust["second_device"]
    prim_act = np.where(prim >= 0, devices["activation"][np.maximum(prim, 0)], 1 << 40)
    sec_act = np.where(sec >= 0, devices["activation"][np.maximum(sec, 0)], 1 << 40)
    signup_day = cust["signup_day"]
    web_signup = ~cust["pre_existing"] & ~cust["is_store"]

    bad = np.zeros(n, dtype=np.int64)
    pending = np.zeros((D + 64, n), dtype=np.int16)
    churn_day = np.full(n, -1, dtype=np.int64)
    batches: list[dict[str, np.ndarray]] = []
    plans: list[dict[str, np.ndarray]] = []
    offset = 0

    for d in range(D):
        bad += pending[d]
        eligible = (signup_day < d) & (churn_day < 0)
        hazard = cust["base_hazard"] * (1.0 + HAZARD_PER_BAD_EXPERIENCE * bad)
        churn = eligible & (rng.random(n) < -np.expm1(-hazard))
        churn_day[churn] = d
        active = eligible & ~churn

        weekday = (period.start_day + d + 3) % 7  # 0 = Monday
        traffic = (1.15 if weekday >= 5 else 1.0) * (TRAFFIC_DROP_FACTOR if d == period.traffic_drop_day else 1.0)
        use_sec = (sec >= 0) & (sec_act <= d) & (rng.random(n) < 0.35)
        device = np.where(use_sec, sec, np.where((prim >= 0) & (prim_act <= d), prim, -1))
        count = np.minimum(rng.poisson(cust["browse_rate"] * traffic), MAX_SESSIONS_PER_DAY)
        count[~active | (device < 0)] = 0
        store_count = rng.poisson(cust["store_rate"] / 30.0)
        store_count[~active] = 0

        who = np.nonzero(count > 0)[0]
        m = len(who)
        dv = device[who]
        slots = _draw_slots(rng, cust["tz"][who], MAX_SESSIONS_PER_DAY, np.full(m, d == D - 1))
        logged = dev_logged[dv]
        roll = ~logged & (rng.random(m) < LOGIN_PER_ANONYMOUS_DAY)
        reidentify = rng.random((m, 2)) < 0.25
        first = _batch(d, dv, who, _slot_start(rng, np.full(m, d), slots[:, 0], period), KIND_REGULAR,
                       logged, roll, np.zeros(m, bool), logged & (reidentify[:, 0] | ~dev_identified[dv]))
        two = count[who] == 2
        second = _batch(d, dv[two], who[two], _slot_start(rng, np.full(two.sum(), d), slots[two, 1], period),
                        KIND_REGULAR, (logged | roll)[two], np.zeros(two.sum(), bool), np.zeros(two.sum(), bool),
                        (logged | roll)[two] & reidentify[two, 1])
        signing = np.nonzero(web_signup & (signup_day == d))[0]
        sdev = prim[signing]
        signups = _batch(d, sdev, signing, cust["signup_ms"][signing], KIND_SIGNUP, np.zeros(len(signing), bool),
                         np.zeros(len(signing), bool), np.ones(len(signing), bool), np.zeros(len(signing), bool))
        today = _funnel(rng, _concat([first, second, signups]), cust)
        dev_logged[dv[roll]] = True
        dev_logged[sdev] = True
        dev_identified[today["device"][today["identify_start"] | today["login"] | today["signup"]]] = True

        ordered = np.nonzero(today["ordered"])[0]
        online = _order_plan(rng, d, today["customer"][ordered], offset + ordered, False, period)
        store_who = np.repeat(np.arange(n), store_count)
        store = _order_plan(rng, d, store_who, np.full(len(store_who), -1), True, period)
        for plan in (online, store):
            c = plan["customer"]
            failed_any = plan["fails"].any(axis=1)
            np.add.at(pending[d + 1], c[failed_any], 1)
            np.add.at(pending, (d + plan["delivery_days"][plan["late"]] + 1, c[plan["late"]]), 1)
            refund_at = np.minimum(d + plan["refund_days"][plan["refund"]] + 1, D + 63)
            np.add.at(pending, (refund_at, c[plan["refund"]]), 1)
            plans.append(plan)
        batches.append(today)
        offset += len(today["device"])
        if progress is not None:
            progress.update(1)

    loop_sessions = _concat(batches)
    extra_sessions = _offline_sessions(rng, cust, devices, period)
    sessions = _concat([loop_sessions, extra_sessions])
    orders = _concat(plans)
    return World(period=period, customers=cust, devices=devices, sessions=sessions, orders=orders,
                 churn_day=churn_day, ids=ids or IdSpace())


def _offline_sessions(rng: np.random.Generator, cust: dict[str, np.ndarray], devices: dict[str, np.ndarray],
                      period: Period) -> dict[str, np.ndarray]:
    """Sessions outside the customer loop: visitors who never sign up, and future customers before signup.

    Each device gets at most one such session per day, so sessions stay apart. Both kinds are thinned on the
    traffic-drop day like the loop's sessions are.
    """
    D = period.days
    anon = np.nonzero(devices["role"] == 2)[0]
    per_visitor = np.minimum(1 + rng.poisson(1.0, size=len(anon)), 6)
    a_dev = np.repeat(anon, per_visitor)
    a_day = rng.integers(0, D, size=len(a_dev))

    future = np.nonzero(~cust["pre_existing"] & ~cust["is_store"] & (cust["signup_day"] >= 1))[0]
    per_future = np.minimum(rng.poisson(1.2, size=len(future)), 3)
    f_cust = np.repeat(future, per_future)
    f_dev = cust["primary_device"][f_cust]
    f_day = cust["signup_day"][f_cust] - 1 - rng.integers(0, 14, size=len(f_cust))
    keep = f_day >= 0
    f_cust, f_dev, f_day = f_cust[keep], f_dev[keep], f_day[keep]

    dev = np.concatenate([a_dev, f_dev])
    day = np.concatenate([a_day, f_day])
    kind = np.concatenate([np.full(len(a_dev), KIND_ANONYMOUS), np.full(len(f_dev), KIND_PRESIGNUP)])
    customer = np.concatenate([np.full(len(a_dev), -1), f_cust])
    _, first = np.unique(dev * (D + 1) + day, return_index=True)
    keep = np.zeros(len(dev), dtype=bool)
    keep[first] = True
    keep &= ~((day == period.traffic_drop_day) & (rng.random(len(dev)) < 1 - TRAFFIC_DROP_FACTOR))
    dev, day, kind, customer = dev[keep], day[keep], kind[keep], customer[keep]
    slot = _draw_slots(rng, devices["tz"][dev], 1, day == D - 1)[:, 0]
    start = _slot_start(rng, day, slot, period)
    sessions = []
    for k in (KIND_ANONYMOUS, KIND_PRESIGNUP):
        sel = kind == k
        cnt = int(sel.sum())
        sessions.append(_batch(day[sel], dev[sel], customer[sel], start[sel], k, np.zeros(cnt, bool),
                               np.zeros(cnt, bool), np.zeros(cnt, bool), np.zeros(cnt, bool)))
    return _funnel(rng, _concat(sessions), cust)
