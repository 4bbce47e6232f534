"""Reference data of the simulated shop: places, names, products, campaigns, devices and experiments.

Everything here is fixed (it does not depend on the seed), so two runs with different seeds describe the same
shop with different customers. Contact details use reserved ranges only (`example.com`, the 555-01xx and
07700 900xxx drama numbers, the TEST-NET IP blocks), so nothing generated can reach a real person.
"""

from __future__ import annotations

import numpy as np

SHOP_NAME = "Juniper & Co"
SHOP_URL = "https://shop.example.com"

CURRENCIES = ("USD", "EUR", "GBP")
# Prices are set in USD and converted with these rates, then rounded to the shop's .99/.49 price points.
PRICE_RATES = (1.0, 0.92, 0.79)

# (country, share of customers, currency index, [(city, UTC offset in minutes)]). Offsets are the cities'
# standard time: the shop's systems record fixed offsets, which keeps every local timestamp unambiguous.
COUNTRIES = (
    ("US", 0.55, 0, (("New York", -300), ("Boston", -300), ("Miami", -300), ("Chicago", -360),
                     ("Austin", -360), ("Denver", -420), ("Seattle", -480), ("San Francisco", -480),
                     ("Los Angeles", -480))),
    ("GB", 0.15, 2, (("London", 0), ("Manchester", 0), ("Bristol", 0), ("Leeds", 0), ("Edinburgh", 0))),
    ("IE", 0.03, 1, (("Dublin", 0), ("Cork", 0), ("Galway", 0))),
    ("DE", 0.10, 1, (("Berlin", 60), ("Munich", 60), ("Hamburg", 60), ("Cologne", 60))),
    ("FR", 0.07, 1, (("Paris", 60), ("Lyon", 60), ("Marseille", 60))),
    ("ES", 0.05, 1, (("Madrid", 60), ("Barcelona", 60), ("Valencia", 60))),
    ("NL", 0.05, 1, (("Amsterdam", 60), ("Rotterdam", 60), ("Utrecht", 60))),
)
COUNTRY_CODES = tuple(c[0] for c in COUNTRIES)
COUNTRY_SHARES = np.array([c[1] for c in COUNTRIES]) / sum(c[1] for c in COUNTRIES)
COUNTRY_CURRENCY = np.array([c[2] for c in COUNTRIES])
CITY_NAMES = tuple(city for c in COUNTRIES for city, _ in c[3])
CITY_OFFSETS = np.array([off for c in COUNTRIES for _, off in c[3]], dtype=np.int64)
CITY_COUNTRY = np.array([i for i, c in enumerate(COUNTRIES) for _ in c[3]])

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Daniel", "Karen",
    "Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Noah", "Mia", "Jack", "Emily", "Liam", "Sophie",
    "Lukas", "Hannah", "Felix", "Lena", "Hugo", "Chloé", "Louis", "Léa", "Pablo", "Lucía", "Adrián", "Martina",
    "Daan", "Emma", "Sem", "Julia", "Seán", "Aoife", "José", "Zoë", "Renée", "Mateo", "Nora", "Aaron",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
    "Evans", "Walker", "Wright", "Robinson", "Hughes", "Müller", "Schmidt", "Schneider", "Fischer", "Weber",
    "Dubois", "Lefèvre", "Moreau", "Laurent", "García", "Fernández", "López", "de Vries", "Jansen", "Bakker",
    "O'Brien", "Murphy", "Kelly", "Walsh", "Nguyen", "Patel", "Kim", "Cohen", "Rossi", "Novak",
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "email", "referral", "store")
PRE_EXISTING_ACQUISITION_SHARES = np.array([0.34, 0.22, 0.16, 0.10, 0.08, 0.10])

CATEGORIES = ("apparel", "footwear", "home", "kitchen", "beauty", "outdoors")
_PRODUCT_WORDS = {
    "apparel": (("Merino", "Linen", "Organic Cotton", "Fleece", "Denim"),
                ("Crew Sweater", "Shirt", "Tee", "Jacket", "Hoodie", "Chinos"), 25, 140),
    "footwear": (("Trail", "Everyday", "Leather", "Canvas"),
                 ("Runner", "Sneaker", "Boot", "Loafer", "Sandal"), 45, 180),
    "home": (("Wool", "Linen", "Ceramic", "Oak"),
             ("Throw", "Cushion Cover", "Vase", "Side Table", "Lamp"), 20, 260),
    "kitchen": (("Cast Iron", "Enamel", "Bamboo", "Copper"),
                ("Skillet", "Dutch Oven", "Cutting Board", "Kettle", "Knife Set"), 18, 220),
    "beauty": (("Daily", "Gentle", "Botanical"),
               ("Face Cream", "Cleanser", "Serum", "Lip Balm", "Hand Wash"), 8, 65),
    "outdoors": (("Packable", "Insulated", "Waterproof", "Ultralight"),
                 ("Daypack", "Water Bottle", "Rain Shell", "Tent", "Headlamp"), 15, 320),
}
SEARCH_QUERIES = {
    "apparel": ("merino sweater", "linen shirt", "hoodie", "jacket sale", "organic tee"),
    "footwear": ("trail runners", "leather boots", "white sneakers", "sandals"),
    "home": ("throw blanket", "ceramic vase", "cushion covers", "oak side table"),
    "kitchen": ("cast iron skillet", "dutch oven", "knife set", "kettle"),
    "beauty": ("face cream", "gentle cleanser", "lip balm", "gift set"),
    "outdoors": ("daypack", "rain jacket", "tent 2 person", "headlamp"),
}


def _build_products() -> tuple[list[str], list[str], list[str], np.ndarray, np.ndarray]:
    """A fixed catalogue: ids, names, categories, USD prices in cents and popularity weights.

    A private generator with a constant seed keeps the catalogue identical for every simulation seed.
    """
    rng = np.random.default_rng(20260101)
    ids, names, cats, prices = [], [], [], []
    number = 10001
    for cat, (adjectives, nouns, low, high) in _PRODUCT_WORDS.items():
        for adjective in adjectives:
            for noun in nouns:
                ids.append(f"SKU-{number}")
                names.append(f"{adjective} {noun}")
                cats.append(cat)
                dollars = int(np.exp(rng.uniform(np.log(low), np.log(high))))
                prices.append(dollars * 100 + 99)
                number += 1
    prices_usd = np.array(prices, dtype=np.int64)
    popularity = rng.zipf(1.6, size=len(ids)).clip(max=40).astype(float)
    return ids, names, cats, prices_usd, popularity / popularity.sum()


PRODUCT_IDS, PRODUCT_NAMES, PRODUCT_CATEGORIES, PRODUCT_PRICES_USD, PRODUCT_POPULARITY = _build_products()


def product_prices() -> np.ndarray:
    """Unit prices in cents, shape (currencies, products), rounded to a .99 price point per currency."""
    out = np.empty((len(CURRENCIES), len(PRODUCT_IDS)), dtype=np.int64)
    for i, rate in enumerate(PRICE_RATES):
        whole = np.maximum(np.round(PRODUCT_PRICES_USD / 100 * rate), 1).astype(np.int64)
        out[i] = whole * 100 - 1
    return out


# (utm_source, utm_medium, utm_campaign, acquisition channel a signup from it is credited to)
CAMPAIGNS = (
    ("google", "cpc", "spring_sale", "paid_search"),
    ("bing", "cpc", "brand_terms", "paid_search"),
    ("facebook", "paid_social", "new_arrivals", "social"),
    ("instagram", "social", "creator_picks", "social"),
    ("newsletter", "email", "weekly_digest", "email"),
    ("partner_blog", "referral", "gift_guide", "referral"),
)
# Where a visitor arriving from each campaign comes from; e-mail clients send no referrer.
CAMPAIGN_REFERRERS = ("https://www.google.com/", "https://www.bing.com/", "https://www.facebook.com/",
                      "https://l.instagram.com/", "", "https://blog.example.org/gift-guide")
# Referrers of sessions that carry no campaign; an empty string is a direct visit.
REFERRERS = ("https://www.google.com/", "", "https://duckduckgo.com/", "https://www.reddit.com/", "")
REFERRER_ACQUISITION = ("organic", "organic", "organic", "referral", "organic")

DEVICE_TYPES = ("desktop", "mobile", "tablet")
USER_AGENTS = {
    ("desktop", "web"): (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ),
    ("mobile", "web"): (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
    ),
    ("tablet", "web"): (
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
    ),
    ("mobile", "mobile"): (
        "Juniper/4.2.0 (iPhone; iOS 18.1; Scale/3.00)",
        "Juniper/4.2.0 (Linux; Android 14; SM-S921B)",
    ),
}
LIBRARIES = {
    "web": '{"name":"analytics.js","version":"2.11.1"}',
    "mobile": '{"name":"analytics-ios","version":"4.1.8"}',
    "server": '{"name":"analytics-python","version":"2.3.3"}',
}

# Page kinds: (name shown in the page/screen call, path; product pages add the SKU).
PAGE_HOME, PAGE_CATEGORY, PAGE_SALE, PAGE_AUTH_SIGNUP, PAGE_AUTH_LOGIN, PAGE_PRODUCT, PAGE_CART, \
    PAGE_CHECKOUT, PAGE_CONFIRMATION = range(9)
PAGES = (
    ("Home", "/"),
    ("Category", "/c/"),
    ("Sale", "/sale"),
    ("Sign Up", "/account/signup"),
    ("Log In", "/account/login"),
    ("Product", "/p/"),
    ("Cart", "/cart"),
    ("Checkout", "/checkout"),
    ("Order Confirmation", "/checkout/confirmation"),
)

PAYMENT_METHODS = ("card", "paypal", "apple_pay", "gift_card")
PAYMENT_METHOD_SHARES = np.array([0.68, 0.17, 0.11, 0.04])
STORE_PAYMENT_METHODS = ("card_present", "cash")
FAILURE_CODES = ("card_declined", "insufficient_funds", "expired_card", "processing_error")
FAILURE_CODE_SHARES = np.array([0.45, 0.3, 0.15, 0.1])
SIGNUP_METHODS = ("email", "google", "apple")
COUPON_PCTS = (10, 15, 20)
COUPON_CODES = ("SAVE10", "SPRING15", "VIP20")

EXPERIMENTS = (
    {
        "experiment_id": "checkout_button",
        "experiment_name": "Checkout button colour",
        "unit": "customer_id",
        "exposure": "Cart Viewed by a logged-in customer",
        "variations": (("control", "Grey button"), ("treatment", "Green button")),
        "planted_relative_lift": 0.15,
        "metric": "share of exposed sessions that reach Order Completed",
    },
    {
        "experiment_id": "aa_homepage",
        "experiment_name": "Homepage A/A check",
        "unit": "anonymous_id",
        "exposure": "session landing on the home page",
        "variations": (("a", "Homepage A"), ("b", "Homepage A (copy)")),
        "planted_relative_lift": 0.0,
        "metric": "share of exposed sessions that reach Order Completed",
    },
)


def _assert_json_safe() -> None:
    """Catalogue text is written into JSON without escaping (it is hot in the event renderer), so forbid
    the characters that would need it."""
    texts = [SHOP_NAME, SHOP_URL, *PRODUCT_NAMES, *CATEGORIES, *(p for page in PAGES for p in page),
             *(q for qs in SEARCH_QUERIES.values() for q in qs), *(x for c in CAMPAIGNS for x in c),
             *REFERRERS, *CAMPAIGN_REFERRERS]
    bad = [t for t in texts if any(ch in t for ch in '"\\') or any(ord(ch) < 32 for ch in t)]
    assert not bad, f"catalogue text needs JSON escaping: {bad}"


_assert_json_safe()
