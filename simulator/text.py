"""Short English texts for tickets, reviews and survey comments, chosen by what the customer went through.

Texts come from templates so their tone is a known function of the simulated experience: a text model trained
on them should find that complaints follow late deliveries, refunds and failed payments. Placeholders are
filled with order ids, product names and, in a few texts, the customer's own (fictional) e-mail or phone,
which the platform must mask.
"""

from __future__ import annotations

import numpy as np

TICKET_CATEGORIES = ("delivery", "refund", "payment", "product", "account")

TICKET_SUBJECTS = {
    "delivery": ("Where is my order {order_id}?", "Order {order_id} still not delivered",
                 "Late delivery", "Tracking has not updated for days"),
    "refund": ("Refund request for {order_id}", "Return and refund", "{product} arrived damaged",
               "Wrong item in order {order_id}"),
    "payment": ("Payment failed", "Card declined at checkout", "Charged but order not confirmed",
                "Problem paying for order {order_id}"),
    "product": ("Question about {product}", "Sizing question", "Is {product} back in stock?",
                "Care instructions for {product}"),
    "account": ("Cannot log in", "Change my delivery address", "Unsubscribe from emails",
                "Update my account details"),
}

TICKET_BODIES_BAD = {
    "delivery": (
        "My order {order_id} was due {days} days ago and it still has not arrived. This is really frustrating.",
        "Hi, the tracking for {order_id} has not moved in days. I needed this for the weekend. Please help.",
        "Still waiting on {order_id}. Second time this has happened, not impressed.",
    ),
    "refund": (
        "The {product} from order {order_id} arrived damaged. I would like a full refund please.",
        "I received the wrong item in {order_id}. I want to return it and get my money back.",
        "The {product} broke after two uses. Very disappointed, please refund order {order_id}.",
    ),
    "payment": (
        "My card was declined several times at checkout even though it works everywhere else.",
        "I tried to pay for {order_id} and the payment kept failing. Was I charged?",
        "Checkout failed twice and now I see a pending charge. Please sort this out.",
    ),
    "product": ("The {product} is not what the photos showed. Quite disappointed.",),
    "account": ("I keep getting locked out of my account and the reset link does not work.",),
}

TICKET_BODIES_NEUTRAL = {
    "delivery": ("Could you tell me when order {order_id} will ship?",
                 "Can I change the delivery day for {order_id}?"),
    "refund": ("How do I return an item from order {order_id}? It does not fit.",),
    "payment": ("Do you accept gift cards together with a card payment?",),
    "product": ("Does the {product} come in other colours?", "How should I wash the {product}?",
                "Will the {product} be restocked soon?"),
    "account": ("Please update the e-mail address on my account.", "How do I stop the weekly newsletter?",
                "I moved recently, please update my address."),
}

TICKET_GREETINGS = ("Hi,", "Hello,", "Hi there,", "Good morning,")
TICKET_CONTACT = ("You can reach me at {email}.", "Please call me back on {phone}.",
                  "My number is {phone} if that is easier.")

REVIEW_TITLES = {
    1: ("Very disappointed", "Would not buy again", "Poor quality"),
    2: ("Not great", "Below expectations", "Meh"),
    3: ("It's okay", "Average", "Does the job"),
    4: ("Really nice", "Good value", "Happy with it"),
    5: ("Love it!", "Excellent", "Perfect", "Best purchase this year"),
}
REVIEW_BODIES = {
    1: ("The {product} fell apart within a week.", "Arrived late and the {product} was damaged.",
        "Nothing like the description. Returned it."),
    2: ("The {product} is smaller than expected and delivery took ages.",
        "Quality is so-so for the price."),
    3: ("The {product} is fine, nothing special.", "Decent, but shipping could be faster."),
    4: ("Good quality {product}, fits well.", "Nice {product}, arrived on time."),
    5: ("Absolutely love the {product}. Great quality and fast delivery.",
        "The {product} exceeded my expectations. Will order again!", "Great {product}, highly recommend."),
}

SURVEY_COMMENTS = {
    "detractor": ("Delivery took far too long.", "My payment kept failing at checkout.",
                  "Had to ask for a refund, quality was poor.", "Support took ages to answer.",
                  "Too many problems with my last orders."),
    "passive": ("Good products but delivery could be faster.", "Fine overall.",
                "Prices are a bit high.", "Website is okay, checkout is a bit slow."),
    "promoter": ("Great products and quick delivery!", "Love the quality, will recommend to friends.",
                 "Support was super helpful.", "Easy checkout and fast shipping."),
}
SURVEY_CAUSE_COMMENTS = {
    "payment_failure": "Payment failed twice before it went through.",
    "late_delivery": "My order arrived a week late.",
    "refund": "Item was damaged and I had to return it.",
}


def pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> list[str]:
    """`n` choices from `options`, drawn with one vectorised call so the draw count never depends on content."""
    idx = rng.integers(0, len(options), size=n)
    return [options[i] for i in idx]
