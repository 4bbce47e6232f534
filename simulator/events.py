"""Segment-spec events: sessions expanded into messages, kept compact, rendered to JSON lines on demand.

A session is a fixed sequence of slots (landing page, search, product views, adds, cart, checkout, order ...);
a boolean mask per session picks the slots it reached, so expanding a million sessions is a handful of numpy
operations. The expanded table holds only numbers (indexes into sessions, devices, products and orders);
`render` turns any subset into JSON text by concatenating pre-encoded fragments, which lets the landing writer
render one delivery day at a time and keeps memory flat as the event count grows.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from simulator import catalog as cat
from simulator.commerce import Carts
from simulator.formats import cat as join
from simulator.formats import IdSpace, iso, json_str, money, uuids, zfill
from simulator.world import CHANNEL_MOBILE, MAX_SESSION_MS, MAX_VIEWS, QUERIES, World

(S_IDENTIFY_START, S_LANDING, S_AA, S_AUTH_PAGE, S_IDENTIFY, S_SIGNED_UP, S_SEARCH) = range(7)
S_VIEW_PAGE = tuple(7 + 2 * k for k in range(MAX_VIEWS))
S_VIEW = tuple(8 + 2 * k for k in range(MAX_VIEWS))
S_ADD = (17, 18, 19)
S_REMOVE, S_CART_PAGE, S_CART, S_EXP_CB, S_CHECKOUT_PAGE, S_CHECKOUT, S_PAYINFO, S_ORDER, S_CONFIRM = range(20, 29)
N_SLOTS = 29
S_REFUND = 29  # server-side event, no session

T_TRACK, T_PAGE, T_IDENTIFY = range(3)
SLOT_TYPE = np.full(N_SLOTS + 1, T_TRACK)
SLOT_TYPE[[S_LANDING, S_AUTH_PAGE, *S_VIEW_PAGE, S_CART_PAGE, S_CHECKOUT_PAGE, S_CONFIRM]] = T_PAGE
SLOT_TYPE[[S_IDENTIFY_START, S_IDENTIFY]] = T_IDENTIFY
SLOT_EVENT = np.full(N_SLOTS + 1, "", dtype=object)
SLOT_EVENT[[S_AA, S_EXP_CB]] = "Experiment Viewed"
SLOT_EVENT[S_SIGNED_UP] = "Signed Up"
SLOT_EVENT[S_SEARCH] = "Products Searched"
SLOT_EVENT[list(S_VIEW)] = "Product Viewed"
SLOT_EVENT[list(S_ADD)] = "Product Added"
SLOT_EVENT[S_REMOVE] = "Product Removed"
SLOT_EVENT[S_CART] = "Cart Viewed"
SLOT_EVENT[S_CHECKOUT] = "Checkout Started"
SLOT_EVENT[S_PAYINFO] = "Payment Info Entered"
SLOT_EVENT[S_ORDER] = "Order Completed"
SLOT_EVENT[S_REFUND] = "Order Refunded"
# Events that follow the previous one without a user action (a page's own track call, an exposure).
SLOT_IMMEDIATE = np.zeros(N_SLOTS, dtype=bool)
SLOT_IMMEDIATE[[S_LANDING, S_AA, S_SIGNED_UP, *S_VIEW, S_CART, S_EXP_CB, S_CHECKOUT, S_CONFIRM]] = True

SHOP_SUFFIX = " | " + cat.SHOP_NAME
_EVENT_FRAG = np.array([f',"event":"{e}"' if e else "" for e in SLOT_EVENT], dtype=object)
_TYPE_FRAG = {T_TRACK: '","type":"track"', T_IDENTIFY: '","type":"identify"'}


def _product_cores() -> np.ndarray:
    """JSON members describing each product in each currency, shape (currencies, products)."""
    prices = cat.product_prices()
    out = np.empty(prices.shape, dtype=object)
    for c, code in enumerate(cat.CURRENCIES):
        price_text = money(prices[c])
        for p, pid in enumerate(cat.PRODUCT_IDS):
            name = json_str(np.array([cat.PRODUCT_NAMES[p]], dtype=object))[0]
            out[c, p] = (f'"product_id":"{pid}","sku":"{pid}","category":"{cat.PRODUCT_CATEGORIES[p]}",'
                         f'"name":{name},"brand":"{cat.SHOP_NAME}","price":{price_text[p]},"currency":"{code}"')
    return out


PRODUCT_CORES = _product_cores()
_EXPERIMENT_FRAGS = [
    np.array([
        f'{{"experiment_id":"{e["experiment_id"]}","experiment_name":"{e["experiment_name"]}",'
        f'"variation_id":"{vid}","variation_name":"{vname}"}}' for vid, vname in e["variations"]
    ], dtype=object)
    for e in cat.EXPERIMENTS
]


@dataclass
class Events:
    """Columns of the unique events, one row per messageId, in session order (server events last)."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["slot"])


def expand(world: World, carts: Carts, rng: np.random.Generator) -> Events:
    s = world.sessions
    n = len(s["device"])
    mask = np.zeros((n, N_SLOTS), dtype=bool)
    mask[:, S_IDENTIFY_START] = s["identify_start"]
    mask[:, S_LANDING] = True
    mask[:, S_AA] = s["aa"]
    mask[:, S_AUTH_PAGE] = s["login"] | s["signup"]
    mask[:, S_IDENTIFY] = s["login"] | s["signup"]
    mask[:, S_SIGNED_UP] = s["signup"]
    mask[:, S_SEARCH] = s["search"]
    for k in range(MAX_VIEWS):
        mask[:, S_VIEW_PAGE[k]] = mask[:, S_VIEW[k]] = s["n_views"] > k
    for j, slot in enumerate(S_ADD):
        mask[:, slot] = s["n_adds"] > j
    mask[:, S_REMOVE] = s["removed"]
    mask[:, S_CART_PAGE] = mask[:, S_CART] = s["cart"]
    mask[:, S_EXP_CB] = s["checkout_button"] >= 0
    mask[:, S_CHECKOUT_PAGE] = mask[:, S_CHECKOUT] = s["checkout"]
    mask[:, S_PAYINFO] = s["payinfo"]
    mask[:, S_ORDER] = mask[:, S_CONFIRM] = s["ordered"]
    sess, slot = np.nonzero(mask)
    m = len(sess)

    immediate = SLOT_IMMEDIATE[slot]
    gap = np.where(immediate, rng.integers(30, 1500, size=m),
                   np.clip(rng.lognormal(np.log(20_000), 0.9, size=m), 1_500, 240_000)).astype(np.int64)
    first = np.ones(m, dtype=bool)
    first[1:] = sess[1:] != sess[:-1]
    gap[first] = 0
    cum = np.cumsum(gap)
    seg = np.cumsum(first) - 1
    offset = cum - cum[first][seg]
    last = np.ones(m, dtype=bool)
    last[:-1] = first[1:]
    total = offset[last]
    scale = np.minimum(1.0, MAX_SESSION_MS / np.maximum(total, 1))
    offset = (offset * scale[seg]).astype(np.int64)
    true_ts = s["start_ms"][sess] + offset

    is_page = SLOT_TYPE[slot] == T_PAGE
    page_kind = np.full(m, -1, dtype=np.int64)
    page_kind[slot == S_LANDING] = s["landing"][sess[slot == S_LANDING]]
    auth = slot == S_AUTH_PAGE
    page_kind[auth] = np.where(s["signup"][sess[auth]], cat.PAGE_AUTH_SIGNUP, cat.PAGE_AUTH_LOGIN)
    page_kind[np.isin(slot, S_VIEW_PAGE)] = cat.PAGE_PRODUCT
    page_kind[slot == S_CART_PAGE] = cat.PAGE_CART
    page_kind[slot == S_CHECKOUT_PAGE] = cat.PAGE_CHECKOUT
    page_kind[slot == S_CONFIRM] = cat.PAGE_CONFIRMATION

    product = np.full(m, -1, dtype=np.int64)
    quantity = np.zeros(m, dtype=np.int64)
    view_k = np.full(N_SLOTS, -1)
    for k in range(MAX_VIEWS):
        view_k[S_VIEW_PAGE[k]] = view_k[S_VIEW[k]] = k
    for j, add_slot in enumerate(S_ADD):
        view_k[add_slot] = j
    has_k = view_k[slot] >= 0
    product[has_k] = s["products"][sess[has_k], view_k[slot[has_k]]]
    add_j = np.isin(slot, S_ADD)
    quantity[add_j] = s["quantity"][sess[add_j], view_k[slot[add_j]]]
    rem = slot == S_REMOVE
    last_add = s["n_adds"][sess[rem]] - 1
    product[rem] = s["products"][sess[rem], last_add]
    quantity[rem] = s["quantity"][sess[rem], last_add]

    positions = np.arange(m)
    cur_page = np.maximum.accumulate(np.where(is_page, positions, -1))
    cur_page[slot == S_IDENTIFY_START] = positions[slot == S_IDENTIFY_START] + 1
    pages = np.nonzero(is_page)[0]
    prev_page = np.full(m, -1, dtype=np.int64)
    same = sess[pages[1:]] == sess[pages[:-1]]
    prev_page[pages[1:][same]] = pages[:-1][same]

    device = s["device"][sess]
    login_or_signup = s["login"][sess] | s["signup"][sess]
    order_of_session = np.full(n, -1, dtype=np.int64)
    online = np.nonzero(~world.orders["is_store"])[0]
    order_of_session[world.orders["session"][online]] = online
    cols = {
        "message_id": uuids(rng, m),
        "session": sess.astype(np.int64),
        "slot": slot.astype(np.int64),
        "device": device.astype(np.int64),
        "customer": s["customer"][sess].astype(np.int64),
        "has_user": s["logged_at_start"][sess] | (login_or_signup & (slot >= S_IDENTIFY)),
        "true_ts": true_ts,
        "product": product,
        "quantity": quantity,
        "page_kind": page_kind,
        "cur_page": cur_page,
        "prev_page": prev_page,
        "order": np.where(slot == S_ORDER, order_of_session[sess], -1),
    }
    n_carts = len(carts.cart_sessions)
    world.extra["cart_ids"] = uuids(rng, n_carts)
    world.extra["checkout_ids"] = uuids(rng, n_carts)
    return Events(cols)


def add_refunds(events: Events, orders: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Append the server-side `Order Refunded` event of every refund that happened in the period."""
    refunded = np.nonzero(orders["refund_ms"] >= 0)[0]
    k = len(refunded)
    new = {
        "message_id": uuids(rng, k),
        "session": np.full(k, -1, dtype=np.int64),
        "slot": np.full(k, S_REFUND, dtype=np.int64),
        "device": np.full(k, -1, dtype=np.int64),
        "customer": orders["customer"][refunded],
        "has_user": np.ones(k, dtype=bool),
        "true_ts": orders["refund_ms"][refunded],
        "product": np.full(k, -1, dtype=np.int64),
        "quantity": np.zeros(k, dtype=np.int64),
        "page_kind": np.full(k, -1, dtype=np.int64),
        "cur_page": np.full(k, -1, dtype=np.int64),
        "prev_page": np.full(k, -1, dtype=np.int64),
        "order": refunded,
    }
    events.cols = {key: np.concatenate([v, new[key]]) for key, v in events.cols.items()}


class Renderer:
    """Turns event rows into JSON lines; built once per run from the world's pre-encoded fragments."""

    def __init__(self, world: World, events: Events, carts: Carts, orders: dict[str, np.ndarray]):
        self.world = world
        self.events = events
        self.orders = orders
        dev = world.devices
        cust = world.customers
        self.customer_ids = world.ids.seq("C", np.arange(1, len(cust["tz"]) + 1), 6)
        self.order_ids = world.ids.seq("O", orders["number"], 7)
        self.device_frag = self._device_fragments(dev)
        self.traits = self._traits(cust)
        self.cart_products = self._cart_products(carts)
        self.carts = carts
        campaigns = [f',"campaign":{{"source":"{c[0]}","medium":"{c[1]}","name":"{c[2]}"}}' for c in cat.CAMPAIGNS]
        self.campaign_frag = np.array(campaigns + [""], dtype=object)  # index -1 -> no campaign
        self.utm = np.array([f"?utm_source={c[0]}&utm_medium={c[1]}&utm_campaign={c[2]}" for c in cat.CAMPAIGNS]
                            + [""], dtype=object)
        self.external_ref = np.array(cat.REFERRERS, dtype=object)
        self.campaign_ref = np.array(cat.CAMPAIGN_REFERRERS, dtype=object)
        self.page_name = np.array([p[0] for p in cat.PAGES], dtype=object)
        self.page_path = np.array([p[1] for p in cat.PAGES], dtype=object)
        self.sku_path = np.array([pid.lower() for pid in cat.PRODUCT_IDS], dtype=object)
        self.product_title = np.array([name + SHOP_SUFFIX for name in cat.PRODUCT_NAMES], dtype=object)
        self.category_title = np.array([c.capitalize() + SHOP_SUFFIX for c in cat.CATEGORIES], dtype=object)
        self.categories = np.array(cat.CATEGORIES, dtype=object)

    @staticmethod
    def _device_fragments(dev: dict[str, np.ndarray]) -> np.ndarray:
        types = np.array(cat.DEVICE_TYPES, dtype=object)[dev["type"]]
        channel = np.where(dev["channel"] == CHANNEL_MOBILE, "mobile", "web")
        ua = np.empty(len(types), dtype=object)
        for key, agents in cat.USER_AGENTS.items():
            sel = (types == key[0]) & (channel == key[1])
            ua[sel] = np.array(agents, dtype=object)[dev["ua_pick"][sel] % len(agents)]
        library = np.where(channel == "mobile", cat.LIBRARIES["mobile"], cat.LIBRARIES["web"]).astype(object)
        return join(',"device":{"id":"', dev["device_id"], '","type":"', types, '"},"ip":"', dev["ip"],
                    '","userAgent":', json_str(ua), ',"library":', library, "}")

    def _traits(self, cust: dict[str, np.ndarray]) -> np.ndarray:
        first = np.array(cat.FIRST_NAMES, dtype=object)[cust["first_name"]]
        last = np.array(cat.LAST_NAMES, dtype=object)[cust["last_name"]]
        email = contact_email(cust, self.world.ids)
        phone = contact_phone(cust)
        phone_frag = np.where(cust["has_phone"], join(',"phone":"', phone, '"'), "").astype(object)
        return join('{"email":"', email, '","first_name":', json_str(first), ',"last_name":', json_str(last),
                    phone_frag, "}")

    def _cart_products(self, carts: Carts) -> np.ndarray:
        if len(carts.session) == 0:
            return np.zeros(0, dtype=object)
        currency = self.world.devices["currency"][self.world.sessions["device"][carts.session]]
        items = join(",{", PRODUCT_CORES[currency, carts.product], ',"quantity":',
                     carts.quantity.astype(str).astype(object), "}")
        lists = np.add.reduceat(items, carts.starts)
        return join("[", np.array([x[1:] for x in lists], dtype=object), "]")

    def _page_parts(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """path, url and title of page events `p`."""
        c = self.events.cols
        s = self.world.sessions
        kind = c["page_kind"][p]
        sess = c["session"][p]
        path = self.page_path[kind].copy()
        title = join(self.page_name[kind], SHOP_SUFFIX)
        prod = kind == cat.PAGE_PRODUCT
        path[prod] = join(path[prod], self.sku_path[c["product"][p[prod]]])
        title[prod] = self.product_title[c["product"][p[prod]]]
        category = kind == cat.PAGE_CATEGORY
        cat_idx = s["landing_category"][sess[category]]
        path[category] = join(path[category], self.categories[cat_idx])
        title[category] = self.category_title[cat_idx]
        landing = c["slot"][p] == S_LANDING
        query = np.where(landing, self.utm[s["campaign"][sess]], "")
        url = join(cat.SHOP_URL, path, query)
        return path, url, title

    def _page_json(self, idx: np.ndarray) -> np.ndarray:
        c = self.events.cols
        s = self.world.sessions
        cur = c["cur_page"][idx]
        path, url, title = self._page_parts(cur)
        prev = c["prev_page"][cur]
        referrer = np.empty(len(idx), dtype=object)
        has_prev = prev >= 0
        referrer[has_prev] = self._page_parts(prev[has_prev])[1]
        sess = c["session"][cur[~has_prev]]
        campaign = s["campaign"][sess]
        referrer[~has_prev] = np.where(campaign >= 0, self.campaign_ref[campaign],
                                       self.external_ref[s["referrer"][sess]])
        return join('{"path":"', path, '","referrer":"', referrer, '","title":"', title, '","url":"', url, '"}')

    def render(self, idx: np.ndarray, ts_ms: np.ndarray, sent_ms: np.ndarray, received_ms: np.ndarray) -> np.ndarray:
        """JSON lines (without newline) of events `idx`, with the given device and server times."""
        c = self.events.cols
        s = self.world.sessions
        dev = self.world.devices
        idx = np.asarray(idx, dtype=np.int64)
        k = len(idx)
        if k == 0:
            return np.zeros(0, dtype=object)
        slot = c["slot"][idx]
        device = c["device"][idx]
        server = device < 0
        d = np.maximum(device, 0)
        mobile = ~server & (dev["channel"][d] == CHANNEL_MOBILE)
        web = ~server & ~mobile
        sess = np.maximum(c["session"][idx], 0)
        stype = SLOT_TYPE[slot]

        type_frag = np.empty(k, dtype=object)
        type_frag[stype == T_TRACK] = _TYPE_FRAG[T_TRACK]
        type_frag[stype == T_IDENTIFY] = _TYPE_FRAG[T_IDENTIFY]
        type_frag[(stype == T_PAGE) & web] = '","type":"page"'
        type_frag[(stype == T_PAGE) & mobile] = '","type":"screen"'
        name_frag = np.full(k, "", dtype=object)
        is_page = stype == T_PAGE
        name_frag[is_page] = join(',"name":"', self.page_name[c["page_kind"][idx[is_page]]], '"')
        anon = np.where(server, "", join(',"anonymousId":"', dev["anonymous_id"][d], '"')).astype(object)
        customer = np.maximum(c["customer"][idx], 0)
        user = np.where(c["has_user"][idx], join(',"userId":"', self.customer_ids[customer], '"'), "").astype(object)
        head = join('{"messageId":"', c["message_id"][idx], type_frag, _EVENT_FRAG[slot], name_frag, anon, user)

        # The mobile app writes device-local time with its offset; browsers and servers write UTC.
        offsets = dev["tz"][d][mobile]
        times = join(',"timestamp":"', _device_time(ts_ms, mobile, offsets), '","sentAt":"',
                     _device_time(sent_ms, mobile, offsets), '","receivedAt":"', iso(received_ms, 0, unit="ms"), '"')

        page_json = np.full(k, "", dtype=object)
        page_json[web] = self._page_json(idx[web])
        campaign = np.where(server, -1, s["campaign"][sess])
        context = np.full(k, '{"channel":"server","library":' + cat.LIBRARIES["server"] + "}", dtype=object)
        context[web] = join('{"channel":"web","page":', page_json[web], self.campaign_frag[campaign[web]],
                            self.device_frag[device[web]])
        context[mobile] = join('{"channel":"mobile","app":{"name":"Juniper","version":"4.2.0"}',
                               self.campaign_frag[campaign[mobile]], self.device_frag[device[mobile]])

        payload = self._payloads(idx, slot, sess, customer, d, web, mobile, page_json)
        key = np.where(stype == T_IDENTIFY, ',"traits":', ',"properties":').astype(object)
        return join(head, times, ',"context":', context, key, payload, "}")

    def _payloads(self, idx, slot, sess, customer, d, web, mobile, page_json) -> np.ndarray:
        c = self.events.cols
        s = self.world.sessions
        o = self.orders
        k = len(idx)
        out = np.empty(k, dtype=object)
        stype = SLOT_TYPE[slot]
        out[(stype == T_PAGE) & web] = page_json[(stype == T_PAGE) & web]
        screen = (stype == T_PAGE) & mobile
        out[screen] = join('{"name":"', self.page_name[c["page_kind"][idx[screen]]], '"}')
        ident = stype == T_IDENTIFY
        out[ident] = self.traits[customer[ident]]
        sel = slot == S_AA
        out[sel] = _EXPERIMENT_FRAGS[1][self.world.devices["aa_homepage"][d[sel]]]
        sel = slot == S_EXP_CB
        out[sel] = _EXPERIMENT_FRAGS[0][s["checkout_button"][sess[sel]]]
        sel = slot == S_SIGNED_UP
        out[sel] = join('{"method":"', np.array(cat.SIGNUP_METHODS, dtype=object)[s["signup_method"][sess[sel]]],
                        '"}')
        sel = slot == S_SEARCH
        out[sel] = join('{"query":"', np.array(QUERIES, dtype=object)[s["query"][sess[sel]]], '"}')

        currency = self.world.devices["currency"][d]
        product = c["product"][idx]
        sel = np.isin(slot, S_VIEW)
        out[sel] = join("{", PRODUCT_CORES[currency[sel], product[sel]], "}")
        cart = self.world.extra["cart_of_session"][sess]
        sel = np.isin(slot, (*S_ADD, S_REMOVE))
        out[sel] = join('{"cart_id":"', self.world.extra["cart_ids"][cart[sel]], '",',
                        PRODUCT_CORES[currency[sel], product[sel]], ',"quantity":',
                        c["quantity"][idx[sel]].astype(str).astype(object), "}")
        codes = np.array(cat.CURRENCIES, dtype=object)
        sel = slot == S_CART
        out[sel] = join('{"cart_id":"', self.world.extra["cart_ids"][cart[sel]], '","products":',
                        self.cart_products[cart[sel]], "}")
        sel = slot == S_CHECKOUT
        out[sel] = join('{"checkout_id":"', self.world.extra["checkout_ids"][cart[sel]], '","value":',
                        money(self.carts.subtotal[cart[sel]]), ',"currency":"', codes[currency[sel]],
                        '","products":', self.cart_products[cart[sel]], "}")
        sel = slot == S_PAYINFO
        out[sel] = join('{"checkout_id":"', self.world.extra["checkout_ids"][cart[sel]], '","payment_method":"',
                        np.array(cat.PAYMENT_METHODS, dtype=object)[s["pay_method"][sess[sel]]], '"}')
        sel = slot == S_ORDER
        order = c["order"][idx[sel]]
        coupon = np.array(["", *(f',"coupon":"{v}"' for v in cat.COUPON_CODES)], dtype=object)
        out[sel] = join('{"checkout_id":"', self.world.extra["checkout_ids"][cart[sel]], '","order_id":"',
                        self.order_ids[order], '","total":', money(o["total"][order]), ',"revenue":',
                        money(o["revenue"][order]), ',"shipping":', money(o["shipping"][order]), ',"discount":',
                        money(o["discount"][order]), coupon[_coupon_index(o["discount_pct"][order])],
                        ',"currency":"', codes[o["currency"][order]], '","products":',
                        self.cart_products[o["cart"][order]], "}")
        sel = slot == S_REFUND
        order = c["order"][idx[sel]]
        out[sel] = join('{"order_id":"', self.order_ids[order], '","total":', money(o["total"][order]),
                        ',"currency":"', codes[o["currency"][order]], '"}')
        return out


def _coupon_index(pct: np.ndarray) -> np.ndarray:
    """0 for no coupon, else 1 + position in cat.COUPON_PCTS."""
    out = np.zeros(len(pct), dtype=np.int64)
    for i, value in enumerate(cat.COUPON_PCTS):
        out[pct == value] = i + 1
    return out


def contact_email(cust: dict[str, np.ndarray], ids: IdSpace = IdSpace()) -> np.ndarray:
    """Fictional e-mail addresses, unique per customer (the customer's number is part of the local part)."""
    first = np.array([_ascii_slug(x) for x in cat.FIRST_NAMES], dtype=object)[cust["first_name"]]
    last = np.array([_ascii_slug(x) for x in cat.LAST_NAMES], dtype=object)[cust["last_name"]]
    number = ids.numbers(np.arange(1, len(first) + 1), 6).astype(str).astype(object)
    domain = np.array(cat.EMAIL_DOMAINS, dtype=object)[cust["email_domain"]]
    return join(first, ".", last, number, "@", domain)


def contact_phone(cust: dict[str, np.ndarray]) -> np.ndarray:
    """Fictional numbers from ranges reserved for drama: 555-01xx (North America), 07700 900xxx (UK)."""
    number = cust["phone_number"]
    uk = np.array(cat.COUNTRY_CODES, dtype=object)[cust["country"]] == "GB"
    na = join("+1-555-01", zfill(number % 100, 2))
    gb = join("+44 7700 900", zfill(number, 3))
    return np.where(uk, gb, na).astype(object)


def _device_time(ms: np.ndarray, mobile: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty(len(ms), dtype=object)
    out[mobile] = iso(ms[mobile], offsets, unit="ms", utc="+00:00")
    out[~mobile] = iso(ms[~mobile], 0, unit="ms")
    return out


def _ascii_slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())
