"""Carts, orders, payments and refunds: the money side of the simulated shop.

Orders are decided in the day loop (`world`); this module gives them contents and amounts, then, once the
event stream has fixed when each online order was placed, times every payment attempt and status change. The
orders export is a daily change feed: an order appears on the day it is placed and again on each later day its
status changes, with a later `updated_at`, so the platform has to keep the latest version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import catalog as cat
from simulator.formats import DAY_MS, HOUR_MS, MINUTE_MS
from simulator.world import MAX_ADDS, World

PRICES = cat.product_prices()
FREE_SHIPPING_FROM = np.array([5000, 4600, 4000])
SHIPPING_FEE = np.array([499, 459, 399])

STATUS_PLACED, STATUS_COMPLETED, STATUS_CANCELLED, STATUS_REFUNDED = range(4)
STATUSES = ("placed", "completed", "cancelled", "refunded")

EXP_PAYMENT_FAILURE, EXP_LATE_DELIVERY, EXP_REFUND = range(3)
EXPERIENCE_KINDS = ("payment_failure", "late_delivery", "refund")


@dataclass
class Carts:
    """Cart lines of every session that added something: session, product, quantity (duplicates merged)."""

    session: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    starts: np.ndarray  # first line of each cart session, for reduceat
    cart_sessions: np.ndarray
    subtotal: np.ndarray  # per cart session, cents in the session's currency


def carts(world: World) -> Carts:
    s = world.sessions
    n = len(s["device"])
    j = np.arange(MAX_ADDS)
    keep = j[None, :] < s["n_adds"][:, None]
    keep &= ~(s["removed"][:, None] & (j[None, :] == s["n_adds"][:, None] - 1))
    sess, slot = np.nonzero(keep)
    product = s["products"][sess, slot]
    qty = s["quantity"][sess, slot]
    key = sess.astype(np.int64) * len(cat.PRODUCT_IDS) + product
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    merged_qty = np.bincount(inverse, weights=qty, minlength=len(unique)).astype(np.int64)
    # Keep lines in the order the products were first added.
    order = np.argsort(sess[first] * MAX_ADDS + slot[first], kind="stable")
    m_sess = sess[first][order]
    m_prod = product[first][order]
    m_qty = merged_qty[order]
    currency = world.devices["currency"][s["device"][m_sess]]
    price = PRICES[currency, m_prod]
    cart_sessions, starts = np.unique(m_sess, return_index=True)
    subtotal = np.add.reduceat(price * m_qty, starts) if len(starts) else np.zeros(0, np.int64)
    lookup = np.full(n, -1, dtype=np.int64)
    lookup[cart_sessions] = np.arange(len(cart_sessions))
    world.extra["cart_of_session"] = lookup
    return Carts(m_sess, m_prod, m_qty, price, starts, cart_sessions, subtotal)


def build_orders(world: World, carts_: Carts, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Contents and amounts of every order, and the time of store orders (online ones come from events)."""
    o = dict(world.orders)
    cust = world.customers
    n = len(o["customer"])
    o["currency"] = cust["currency"][o["customer"]]
    online = ~o["is_store"]
    cart_idx = np.where(online, world.extra["cart_of_session"][np.maximum(o["session"], 0)], -1)
    assert (cart_idx[online] >= 0).all()

    n_store_items = rng.integers(1, 4, size=n)
    store_products = rng.choice(len(cat.PRODUCT_IDS), size=(n, 3), p=cat.PRODUCT_POPULARITY)
    items_order, items_product, items_qty = [], [], []
    cart_len = np.diff(np.append(carts_.starts, len(carts_.session)))
    for k in np.nonzero(online)[0]:
        c = cart_idx[k]
        a, b = carts_.starts[c], carts_.starts[c] + cart_len[c]
        items_order.append(np.full(b - a, k))
        items_product.append(carts_.product[a:b])
        items_qty.append(carts_.quantity[a:b])
    store_idx = np.nonzero(~online)[0]
    reps = n_store_items[store_idx]
    items_order.append(np.repeat(store_idx, reps))
    items_product.append(store_products[store_idx][np.arange(3)[None, :] < reps[:, None]])
    items_qty.append(np.ones(reps.sum(), dtype=np.int64))
    item_order = np.concatenate(items_order).astype(np.int64)
    item_product = np.concatenate(items_product).astype(np.int64)
    item_qty = np.concatenate(items_qty).astype(np.int64)
    sort = np.argsort(item_order, kind="stable")
    item_order, item_product, item_qty = item_order[sort], item_product[sort], item_qty[sort]
    item_price = PRICES[o["currency"][item_order], item_product]

    subtotal = np.bincount(item_order, weights=item_price * item_qty, minlength=n).astype(np.int64)
    discount = np.round(subtotal * o["discount_pct"] / 100).astype(np.int64)
    shipping = np.where(online & (subtotal < FREE_SHIPPING_FROM[o["currency"]]), SHIPPING_FEE[o["currency"]], 0)
    o.update(
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        revenue=subtotal - discount,
        total=subtotal - discount + shipping,
        items=np.bincount(item_order, weights=item_qty, minlength=n).astype(np.int64),
        pay_method=np.where(online, world.sessions["pay_method"][np.maximum(o["session"], 0)], -1),
        cart=cart_idx,
        item_start=np.searchsorted(item_order, np.arange(n)),
        item_count=np.bincount(item_order, minlength=n),
    )
    tz = cust["tz"][o["customer"]]
    local_minute = rng.integers(9 * 60, 20 * 60, size=n)
    o["store_ms"] = (world.period.start_day + o["day"]) * DAY_MS + ((local_minute - tz) % 1440) * MINUTE_MS \
        + rng.integers(0, MINUTE_MS, size=n)
    o["ordered_ms"] = np.where(online, -1, o["store_ms"])
    world.extra["order_items"] = {"order": item_order, "product": item_product, "quantity": item_qty,
                                  "unit_price": item_price}
    return o


def assign_ids(orders: dict[str, np.ndarray]) -> None:
    """Order numbers follow the time orders were placed, as the shop's order sequence would."""
    order = np.lexsort((np.arange(len(orders["ordered_ms"])), orders["ordered_ms"]))
    number = np.empty(len(order), dtype=np.int64)
    number[order] = np.arange(1, len(order) + 1)
    orders["number"] = number


def lifecycle(world: World, o: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, dict]:
    """Time payments and status changes; returns payments, order status changes, experiences and refunds.

    Everything that would happen after the period ends is cut: the landing data is a snapshot at its end.
    """
    n = len(o["customer"])
    end = world.period.end_ms
    start_day = world.period.start_day
    t0 = o["ordered_ms"]
    gaps = np.stack([rng.integers(3_000, 20_000, size=n), rng.integers(MINUTE_MS, 15 * MINUTE_MS, size=n),
                     rng.integers(MINUTE_MS, 15 * MINUTE_MS, size=n)], axis=1)
    attempt_ms = t0[:, None] + np.cumsum(gaps, axis=1)
    k = np.arange(3)[None, :]
    made = k < o["attempts"][:, None]
    p_order, p_k = np.nonzero(made)
    payments = {
        "order": p_order,
        "ms": attempt_ms[p_order, p_k],
        "failed": o["fails"][p_order, p_k],
        "failure_code": o["failure_code"][p_order, p_k],
        "method": o["pay_method"][p_order],
        "store_method": o["store_method"][p_order],
        "is_store": o["is_store"][p_order],
    }
    keep = payments["ms"] < end
    payments = {key: v[keep] for key, v in payments.items()}
    sort = np.lexsort((payments["order"], payments["ms"]))
    payments = {key: v[sort] for key, v in payments.items()}
    payments["number"] = np.arange(1, len(sort) + 1)

    last_attempt = attempt_ms[np.arange(n), o["attempts"] - 1]
    online = ~o["is_store"]
    cancelled_pay = o["cancelled_payment"]
    cancel_cust = o["customer_cancel"]
    shipped = online & ~cancelled_pay & ~cancel_cust
    delivered_ms = (start_day + o["day"] + o["delivery_days"]) * DAY_MS + rng.integers(10 * HOUR_MS, 20 * HOUR_MS,
                                                                                         size=n)
    refund_ms = (start_day + o["day"] + o["refund_days"]) * DAY_MS + rng.integers(8 * HOUR_MS, 20 * HOUR_MS, size=n)
    completed_ms = np.where(o["is_store"], t0, last_attempt + rng.integers(2 * HOUR_MS, 30 * HOUR_MS, size=n))
    cancelled_ms = np.where(cancelled_pay, last_attempt + rng.integers(5 * MINUTE_MS, 60 * MINUTE_MS, size=n),
                            t0 + rng.integers(HOUR_MS, 10 * HOUR_MS, size=n))
    idx = np.arange(n)
    parts = [
        (idx[online], t0[online], STATUS_PLACED),
        (idx[shipped | o["is_store"]], completed_ms[shipped | o["is_store"]], STATUS_COMPLETED),
        (idx[cancelled_pay | cancel_cust], cancelled_ms[cancelled_pay | cancel_cust], STATUS_CANCELLED),
        (idx[o["refund"]], refund_ms[o["refund"]], STATUS_REFUNDED),
    ]
    ch_order = np.concatenate([p[0] for p in parts])
    ch_ms = np.concatenate([p[1] for p in parts])
    ch_status = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    keep = ch_ms < end
    ch_order, ch_ms, ch_status = ch_order[keep], ch_ms[keep], ch_status[keep]
    sort = np.lexsort((ch_ms, ch_order))
    ch_order, ch_ms, ch_status = ch_order[sort], ch_ms[sort], ch_status[sort]
    ch_day = ch_ms // DAY_MS - start_day
    # The daily export holds an order's latest state of that day only.
    last_of_day = np.ones(len(ch_order), dtype=bool)
    last_of_day[:-1] = (ch_order[1:] != ch_order[:-1]) | (ch_day[1:] != ch_day[:-1])
    final = np.ones(len(ch_order), dtype=bool)
    final[:-1] = ch_order[1:] != ch_order[:-1]
    final_status = np.full(n, -1)
    final_status[ch_order[final]] = ch_status[final]
    o["final_status"] = final_status
    o["delivered_ms"] = np.where(shipped, delivered_ms, -1)
    o["refund_ms"] = np.where(o["refund"] & (refund_ms < end), refund_ms, -1)
    o["completed_ms"] = np.where(shipped | o["is_store"], completed_ms, -1)
    changes = {"order": ch_order[last_of_day], "ms": ch_ms[last_of_day], "status": ch_status[last_of_day]}

    failed_orders = np.nonzero(o["fails"].any(axis=1))[0]
    first_fail = attempt_ms[failed_orders, np.argmax(o["fails"][failed_orders], axis=1)]
    late = np.nonzero(o["late"] & shipped)[0]
    refunded = np.nonzero(o["refund"])[0]
    exp = {
        "order": np.concatenate([failed_orders, late, refunded]),
        "ms": np.concatenate([first_fail, delivered_ms[late], refund_ms[refunded]]),
        "kind": np.concatenate([np.full(len(failed_orders), EXP_PAYMENT_FAILURE),
                                np.full(len(late), EXP_LATE_DELIVERY), np.full(len(refunded), EXP_REFUND)]),
    }
    keep = exp["ms"] < end
    exp = {key: v[keep] for key, v in exp.items()}
    exp["customer"] = o["customer"][exp["order"]]
    sort = np.lexsort((exp["kind"], exp["ms"], exp["customer"]))
    exp = {key: v[sort] for key, v in exp.items()}
    return {"payments": payments, "changes": changes, "experiences": exp}
