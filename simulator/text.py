"""Support tickets, reviews and survey comments as customers write them: composed, noisy, in two languages.

Every text is put together from fragments, so its tone follows what the customer went through, but only
loosely, as real text does:

- **Reviews** are a title and one to three sentences built from aspect fragments (quality, fit, look, delivery,
  price, packaging, service). Each fragment's polarity is drawn given the star rating: a 5-star review is mostly
  praise, a 3-star one mixed, a 1-star one mostly complaint. Contrasting fragments are joined ("love the colour,
  but it shrank"), negations and hedges blur the words ("not bad at all", "wasn't great", "I guess"), some
  texts are a single word ("ok", "meh"), some are lowercase or carry a typo, and about 6% of reviews are
  written in the tone of the opposite rating (a wrong click on the stars, a sarcastic customer). A text model
  can learn sentiment from the stars, but not perfectly.
- **Tickets** mix the category's own vocabulary with words every customer uses ("order", "help"), borrow
  other categories' words (a late parcel that is also a refund request), and about 10% are vague enough that
  no model can tell their intent ("I have a question about my last order, please call me"). Tickets after a
  bad experience sound upset. The agent-set `category` is blank for about a third of tickets, more often for
  tickets still open or pending.
- **Survey comments** follow the NPS bucket with some noise and name the cause of a recent bad experience.

About 4% of customers write in Korean: all their texts come from Korean pools with the same structure. Some
texts carry the customer's own fictional e-mail or phone number, and about 1% of payment tickets a well-known
test card number, which the platform must mask.

All choices come from a stream of their own (`text` in `core`), drawn as a fixed block of uniforms per text,
so the text never changes how many draws any other part of the simulation makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TICKET_CATEGORIES = ("delivery", "refund", "payment", "product", "account")
KOREAN_SHARE = 0.04
AMBIGUOUS_TICKET_SHARE = 0.10
BLANK_CATEGORY_SHARE = {"settled": 0.30, "waiting": 0.65}  # resolved/closed tickets; open/pending ones
CARD_SHARE = 0.01  # of payment tickets, at least one per shop that has any
REVIEW_DISAGREE_SHARE = 0.06
REVIEW_SHORT_SHARE = 0.07
DICE = 40  # uniforms drawn per text: more than any composition uses (a review, the longest, about 30)

POS, NEU, NEG = 0, 1, 2
# P(positive, neutral, negative) of one review fragment given the rating its text is written for.
REVIEW_POLARITY = {
    5: (0.90, 0.08, 0.02),
    4: (0.76, 0.18, 0.06),
    3: (0.20, 0.60, 0.20),
    2: (0.07, 0.20, 0.73),
    1: (0.03, 0.07, 0.90),
}
SURVEY_POLARITY = {"promoter": (0.84, 0.13, 0.03), "passive": (0.30, 0.47, 0.23), "detractor": (0.05, 0.17, 0.78)}
SURVEY_BUCKET_NOISE = 0.12
WEARABLE = ("apparel", "footwear")

# Well-known test card numbers of the card networks: fictional, but shaped like real ones.
TEST_CARDS = ("4111111111111111", "4242424242424242", "5555555555554444", "5105105105105100", "378282246310005",
              "6011111111111117")


@dataclass(frozen=True)
class Voice:
    """The text pools of one language; every language has the same structure."""

    korean: bool
    ticket_subjects: dict[str, tuple[str, ...]]
    ticket_generic_subjects: tuple[str, ...]
    ticket_bad: dict[str, tuple[str, ...]]
    ticket_neutral: dict[str, tuple[str, ...]]
    ticket_ambiguous: tuple[str, ...]
    ticket_openers: tuple[str, ...]
    ticket_upset: tuple[str, ...]
    ticket_polite: tuple[str, ...]
    ticket_greetings: tuple[str, ...]
    ticket_contact: tuple[str, ...]
    ticket_card: tuple[str, ...]
    no_order: str  # what {order} says for a ticket without an order
    review_titles: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # positive, neutral, negative
    review_aspects: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]
    review_short: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    review_hedges: tuple[str, ...]
    review_closers: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    contrast: tuple[str, ...]
    survey_fragments: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    survey_closers: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    survey_causes: dict[str, tuple[str, ...]]
    survey_contact: str


ENGLISH = Voice(
    korean=False,
    ticket_subjects={
        "delivery": ("Where is my order {order_id}?", "Order {order_id} still not delivered", "Late delivery",
                     "Tracking has not updated for days", "Parcel missing", "Delivery date?",
                     "When will my order arrive", "Shipping status of {order_id}", "Change delivery address"),
        "refund": ("Refund request for {order_id}", "Return and refund", "{product} arrived damaged",
                   "Wrong item in order {order_id}", "Still waiting for my refund", "Exchange please",
                   "Returning {product}", "How do I send this back?", "Money back for {order_id}"),
        "payment": ("Payment failed", "Card declined at checkout", "Charged but order not confirmed",
                    "Problem paying for order {order_id}", "Charged twice", "Payment error", "Checkout not working",
                    "Invoice for {order_id}", "Gift card question"),
        "product": ("Question about {product}", "Sizing question", "Is {product} back in stock?",
                    "Care instructions for {product}", "{product} colours", "Faulty {product}",
                    "Product question", "Warranty for {product}", "{product} dimensions"),
        "account": ("Cannot log in", "Change my delivery address", "Unsubscribe from emails",
                    "Update my account details", "Password reset not working", "Delete my account",
                    "Account locked", "Order history missing", "Two accounts"),
    },
    ticket_generic_subjects=("Question about my order", "Order {order_id}", "Help please", "Re: my order",
                             "Urgent", "Problem with my order", "Need help", "Quick question", "Order issue",
                             "Please call me"),
    ticket_bad={
        "delivery": (
            "It has been {days} days since {order} was due and it still has not arrived.",
            "The tracking for {order} has not moved in days. I needed this for the weekend.",
            "Still waiting on {order}. Second time this has happened.",
            "The tracking says {order} was delivered but there is nothing here.",
            "I paid for express shipping and my order is {days} days late.",
            "The courier keeps saying my parcel is on its way but nothing shows up.",
            "It is {days} days past the delivery date for {order} and nobody tells me anything.",
        ),
        "refund": (
            "The {product} from {order} arrived damaged. I would like a full refund please.",
            "I received the wrong item in {order}. I want to return it and get my money back.",
            "The {product} broke after two uses. Please refund {order}.",
            "I sent the {product} back two weeks ago and still have not seen my refund.",
            "The refund for {order} never reached my card.",
            "My order arrived late and the {product} was scratched, I want my money back.",
            "The {product} is faulty and I want to return it, but your returns page gives an error.",
        ),
        "payment": (
            "My card was declined several times at checkout even though it works everywhere else.",
            "I tried to pay for {order} and the payment kept failing. Was I charged?",
            "Checkout failed twice and now I see a pending charge. Please sort this out.",
            "I was charged twice for {order}.",
            "The payment page just keeps loading and then shows an error.",
            "Money has left my account but the order does not show up anywhere.",
            "Your checkout rejected my card three times and my order is gone from the basket.",
        ),
        "product": (
            "The {product} is not what the photos showed. Quite disappointed.",
            "The {product} stopped working after a few days.",
            "The {product} I ordered has a strange smell and the colour is off.",
            "The size chart for the {product} is wrong, it is much smaller.",
            "The {product} in my order is missing a part.",
            "The {product} looks used, there are marks all over it.",
        ),
        "account": (
            "I keep getting locked out of my account and the reset link does not work.",
            "I never signed up for your emails and keep getting them.",
            "Someone changed the email on my account and I cannot log in.",
            "My account still shows my old address and my order went there.",
            "Every time I log in the site throws me out again.",
            "I asked you to delete my account weeks ago and nothing happened.",
        ),
    },
    ticket_neutral={
        "delivery": (
            "Could you tell me when {order} will ship?",
            "Can I change the delivery day for {order}?",
            "Is it possible to send my order to a different address?",
            "Do you deliver on Saturdays?",
            "The tracking link for {order} does not open, where can I check the status?",
            "Can I pick up my order in a store instead?",
        ),
        "refund": (
            "How do I return an item from {order}? It does not fit.",
            "Can I exchange the {product} for a different size?",
            "How long is your return window for {order}?",
            "I would like to send back the {product}, it is unused. How does that work?",
            "Do I need the original box to return the {product}?",
            "When will I see the refund for my return?",
        ),
        "payment": (
            "Do you accept gift cards together with a card payment?",
            "Can I pay for {order} by bank transfer?",
            "Is it safe to save my card on the site?",
            "Could you send me an invoice for {order}?",
            "Do you offer payment in instalments?",
            "Which cards do you accept?",
        ),
        "product": (
            "Does the {product} come in other colours?",
            "How should I wash the {product}?",
            "Will the {product} be restocked soon?",
            "What are the exact dimensions of the {product}?",
            "Is the {product} true to size?",
            "Does the {product} come with a warranty?",
        ),
        "account": (
            "Please update the e-mail address on my account.",
            "How do I stop the weekly newsletter?",
            "I moved recently, please update my address.",
            "How can I delete my account?",
            "I cannot find my order history in my account.",
            "Can you merge my two accounts?",
        ),
    },
    ticket_ambiguous=(
        "I have a question about my last order, please call me.",
        "Something is wrong with {order}. Can someone get back to me?",
        "Please contact me about my order.",
        "I need help with {order}.",
        "Not sure who to ask, but there is a problem with my order.",
        "Can you check what is going on with {order}?",
        "My order is not right. Please help.",
        "I am having trouble with your website and my order.",
        "Could someone look into my last purchase?",
        "Please get in touch about {order}.",
    ),
    ticket_openers=("I ordered from you last week.", "I placed an order on your website a few days ago.",
                    "I am a regular customer.", "I am writing about {order}.", "Quick question about my order.",
                    "I bought from you recently."),
    ticket_upset=("This is really frustrating.", "Not impressed.", "Very disappointed.",
                  "This is the second time this has happened.", "I have already emailed twice.",
                  "Please sort this out as soon as possible.", "I expected much better from you.",
                  "If this is not fixed I will not order again."),
    ticket_polite=("Thanks in advance.", "Many thanks.", "Thank you!", "Cheers.", "Kind regards.",
                   "Thanks for your help."),
    ticket_greetings=("Hi,", "Hello,", "Hi there,", "Good morning,", "Dear support,", "Hey,"),
    ticket_contact=("You can reach me at {email}.", "Please call me back on {phone}.",
                    "My number is {phone} if that is easier."),
    ticket_card=("My card {card} was charged twice.", "I paid with the card {card} and the money is gone.",
                 "The card number is {card}, please check what happened.",
                 "It says my card {card} was declined."),
    no_order="my last order",
    review_titles=(
        ("Love it!", "Excellent", "Perfect", "Best purchase this year", "Really nice", "Good value",
         "Happy with it", "Great buy", "Five stars from me", "Lovely"),
        ("It's okay", "Average", "Does the job", "Not bad", "Mixed feelings", "Fine I guess", "Decent",
         "As expected", "Could be better", "So-so"),
        ("Very disappointed", "Would not buy again", "Poor quality", "Not great", "Below expectations",
         "Meh", "Not what I hoped", "Avoid", "Waste of money", "Returned it"),
    ),
    review_aspects={
        "quality": (
            ("The quality is excellent", "Really well made", "Feels solid and well put together",
             "The {product} feels like it will last for years", "Not bad at all, actually really sturdy",
             "Can't fault the quality", "Stitching and materials are great"),
            ("Quality is about what you would expect", "The {product} is decent, nothing special",
             "Seems fine so far", "Not the best quality I have seen, not the worst either", "Does what it says",
             "Hard to judge the quality yet"),
            ("The {product} fell apart within a week", "Feels cheap and flimsy", "The quality wasn't great",
             "Started coming apart after two uses", "Not what I hoped for in terms of quality",
             "Broke the first time I used it", "Poorly made"),
        ),
        "fit": (
            ("Fits perfectly", "True to size", "The fit is spot on", "Comfortable from day one",
             "No complaints about the fit"),
            ("Runs slightly large, so maybe size down", "The fit is okay once you get used to it",
             "A bit snug but wearable", "Sizing is a little inconsistent"),
            ("Way too small even though I ordered my usual size", "It shrank after the first wash",
             "The fit is all wrong", "It rubs badly and I had to stop wearing it", "Sizing is way off"),
        ),
        "look": (
            ("Love the colour", "Looks even better than in the photos", "The design is beautiful",
             "Gets compliments every time", "Looks really stylish"),
            ("The colour is slightly different from the picture", "Looks fine", "Plain but does the job",
             "The colour is a bit darker than expected"),
            ("Looks nothing like the photos", "The colour faded almost immediately", "Looks cheap in person",
             "Not the colour I ordered", "Wasn't great to look at once it arrived"),
        ),
        "delivery": (
            ("Arrived quickly", "Delivery was fast", "Came a day earlier than expected",
             "Shipping was quick and easy"),
            ("Delivery took about a week", "Arrived on the expected day", "Shipping was okay",
             "Delivery was a bit slow but fine"),
            ("Arrived late", "Delivery took ages", "Took almost three weeks to arrive",
             "The tracking was useless and it came late", "Arrived a week after the promised date"),
        ),
        "price": (
            ("Great value for money", "Worth every penny", "Good price for what you get",
             "Cheaper than elsewhere and better"),
            ("A bit pricey but okay", "The price is fair I guess", "Not cheap, not expensive",
             "Would be better on sale"),
            ("Overpriced for what it is", "Not worth the money", "Way too expensive for this quality",
             "Definitely not worth the price"),
        ),
        "packaging": (
            ("Nicely packaged", "The packaging was lovely and plastic free", "Well wrapped and protected"),
            ("The packaging was basic", "Came in a plain box", "Too much packaging but everything was fine"),
            ("The box was crushed", "Arrived damaged because of poor packaging", "The packaging was ripped open"),
        ),
        "service": (
            ("Customer service was really helpful", "Support answered my question within minutes",
             "Friendly service"),
            ("Had to contact support once, they answered eventually", "Service was okay"),
            ("Customer service never replied", "Support was no help at all", "Returning it was a nightmare"),
        ),
    },
    review_short=(("love it", "great", "perfect!", "very happy", "good", "nice", "ok"),
                  ("ok", "fine", "it's ok", "meh", "average", "not bad", "good"),
                  ("meh", "rubbish", "terrible", "not good", "don't bother", "ok", "awful")),
    review_hedges=("To be honest", "Honestly", "Overall", "Tbh", "Well", "Hmm"),
    review_closers=(("Would buy again", "Highly recommend", "Will order another one", "Very happy",
                     "Can't complain"),
                    ("Might buy again", "It's fine for now", "We'll see how it holds up", "Not sure yet",
                     "Can't complain really"),
                    ("Would not recommend", "Returning it", "Won't be ordering again", "Very disappointed",
                     "Not great")),
    contrast=("but", "but", "though", "although"),
    survey_fragments=(
        ("Great products and quick delivery", "Love the quality", "Support was super helpful",
         "Easy checkout and fast shipping", "Always a smooth experience", "Prices are fair for the quality",
         "Returns were painless", "Good selection and nice packaging"),
        ("Good products but delivery could be faster", "Fine overall", "Prices are a bit high",
         "The website is okay, checkout is a bit slow", "Nothing special", "Delivery is hit and miss",
         "Decent, not amazing", "Would like more sizes in stock"),
        ("Delivery took far too long", "My payment kept failing at checkout",
         "Had to ask for a refund, quality was poor", "Support took ages to answer",
         "Too many problems with my last orders", "The website keeps logging me out",
         "Way too expensive for what you get", "Orders never arrive on time"),
    ),
    survey_closers=(("Will recommend to friends", "Keep it up!", "Will shop again"),
                    ("Could be better", "It's alright", "We'll see"),
                    ("Probably won't order again", "Very disappointed", "Not good enough")),
    survey_causes={
        "payment_failure": ("Payment failed twice before it went through", "Checkout rejected my card for no reason",
                            "Paying was a pain, the card kept getting declined"),
        "late_delivery": ("My order arrived a week late", "The parcel was late and nobody told me why",
                          "Waited forever for my delivery"),
        "refund": ("Item was damaged and I had to return it", "Had to send my order back and wait for the refund",
                   "The product broke and I needed a refund"),
    },
    survey_contact="Call me on {phone}.",
)

KOREAN = Voice(
    korean=True,
    ticket_subjects={
        "delivery": ("주문 {order_id} 배송 문의", "배송이 아직 안 왔어요", "배송 지연 문의", "배송 조회가 안 돼요",
                     "{order_id} 언제 도착하나요?", "택배가 안 와요", "배송지 변경 요청", "배송 상태 확인 부탁드립니다"),
        "refund": ("{order_id} 환불 요청", "반품 및 환불 문의", "{product} 파손 상품 수령", "주문 {order_id} 오배송",
                   "환불이 아직 안 됐어요", "교환 문의", "반품 접수 방법", "환불 처리 확인 부탁드립니다"),
        "payment": ("결제 실패", "카드 결제가 안 돼요", "결제됐는데 주문 확인이 안 돼요", "{order_id} 결제 문제",
                    "이중 결제 문의", "결제 오류", "결제 수단 문의", "영수증 요청"),
        "product": ("{product} 문의", "사이즈 문의", "{product} 재입고 언제 되나요?", "{product} 관리 방법",
                    "상품 정보 문의", "색상 문의", "제품 불량 문의", "{product} 보증 기간 문의"),
        "account": ("로그인이 안 돼요", "배송지 주소 변경", "이메일 수신 거부", "회원 정보 수정 요청",
                    "비밀번호 재설정 문의", "계정 삭제 요청", "계정이 잠겼어요", "주문 내역이 안 보여요"),
    },
    ticket_generic_subjects=("주문 문의", "문의드립니다", "도와주세요", "주문 관련 질문", "급합니다",
                             "확인 부탁드립니다", "주문 {order_id} 관련", "전화 부탁드려요"),
    ticket_bad={
        "delivery": (
            "{order} 건이 예정일보다 {days}일이나 지났는데 아직도 안 왔어요.",
            "배송 조회가 며칠째 그대로예요. 주말에 꼭 필요했던 건데 너무 답답하네요.",
            "{order} 건 아직도 기다리고 있어요. 이런 일이 벌써 두 번째예요.",
            "배송 완료라고 나오는데 물건을 받은 적이 없어요.",
            "빠른 배송 비용까지 냈는데 {days}일째 소식이 없어요.",
            "택배 기사님은 계속 배송 중이라고만 하고 물건은 안 와요.",
        ),
        "refund": (
            "{order} 건으로 받은 {product} 제품이 파손돼서 왔어요. 전액 환불해 주세요.",
            "주문한 것과 다른 상품이 왔어요. 반품하고 환불받고 싶어요.",
            "{product} 제품이 두 번 쓰고 고장 났어요. 환불 부탁드립니다.",
            "2주 전에 반품을 보냈는데 아직도 환불이 안 됐어요.",
            "환불해 주신다고 했는데 카드로 아직 안 들어왔어요.",
            "배송도 늦었는데 {product} 제품에 흠집까지 있어요. 환불해 주세요.",
        ),
        "payment": (
            "다른 곳에서는 잘 되는 카드인데 결제할 때마다 계속 거절돼요.",
            "{order} 건 결제가 계속 실패했어요. 돈이 빠져나간 건가요?",
            "결제가 두 번 실패했는데 승인 대기 금액이 보여요. 확인해 주세요.",
            "{order} 건이 두 번 결제됐어요.",
            "결제 페이지에서 계속 로딩만 되다가 오류가 나요.",
            "통장에서 돈은 빠져나갔는데 주문이 어디에도 안 보여요.",
        ),
        "product": (
            "{product} 제품이 사진과 너무 달라요. 많이 실망했어요.",
            "{product} 제품이 며칠 만에 작동을 안 해요.",
            "받은 {product} 제품에서 이상한 냄새가 나고 색도 달라요.",
            "사이즈표가 잘못된 것 같아요. 훨씬 작게 나왔어요.",
            "{product} 제품에 부품이 하나 빠져 있어요.",
        ),
        "account": (
            "계정이 계속 잠기고 비밀번호 재설정 링크도 안 돼요.",
            "수신 동의한 적이 없는데 이메일이 계속 와요.",
            "누가 제 계정 이메일을 바꿔서 로그인을 못 하고 있어요.",
            "계정에 예전 주소가 그대로 있어서 주문이 그쪽으로 갔어요.",
            "몇 주 전에 계정 삭제를 요청했는데 아직 그대로예요.",
        ),
    },
    ticket_neutral={
        "delivery": (
            "{order} 건은 언제 발송되나요?",
            "{order} 건 배송 날짜를 바꿀 수 있을까요?",
            "주문한 상품을 다른 주소로 받을 수 있나요?",
            "토요일에도 배송되나요?",
            "매장에서 직접 찾아갈 수도 있나요?",
        ),
        "refund": (
            "{order} 건에서 상품 하나를 반품하려면 어떻게 해야 하나요? 사이즈가 안 맞아요.",
            "{product} 제품을 다른 사이즈로 교환할 수 있을까요?",
            "반품 가능 기간이 어떻게 되나요?",
            "원래 상자가 없어도 반품이 가능한가요?",
            "반품한 상품 환불은 언제쯤 되나요?",
        ),
        "payment": (
            "기프트카드랑 카드 결제를 같이 쓸 수 있나요?",
            "계좌이체로도 결제할 수 있나요?",
            "{order} 건 영수증을 받을 수 있을까요?",
            "할부 결제도 되나요?",
            "어떤 카드로 결제할 수 있나요?",
        ),
        "product": (
            "{product} 제품 다른 색상도 있나요?",
            "{product} 제품은 어떻게 관리해야 하나요?",
            "{product} 제품 재입고 예정이 있나요?",
            "{product} 제품 정확한 크기를 알 수 있을까요?",
            "{product} 제품 보증 기간이 있나요?",
        ),
        "account": (
            "계정에 등록된 이메일 주소를 변경해 주세요.",
            "주간 뉴스레터 수신을 끊고 싶어요.",
            "이사를 해서 주소 변경 부탁드립니다.",
            "계정 삭제는 어떻게 하나요?",
            "계정에서 주문 내역이 안 보여요.",
        ),
    },
    ticket_ambiguous=(
        "지난 주문 관련해서 문의가 있어요. 전화 부탁드립니다.",
        "{order} 건에 문제가 있어요. 연락 주세요.",
        "주문 관련해서 확인 부탁드립니다.",
        "{order} 건 좀 확인해 주실 수 있나요?",
        "주문이 좀 이상해요. 도와주세요.",
        "어디에 문의해야 할지 몰라서 여기 남깁니다. 주문에 문제가 있어요.",
        "최근 구매 건 확인 부탁드려요.",
        "홈페이지랑 주문 때문에 문의드려요.",
        "{order} 건 때문에 연락드렸어요. 답변 부탁드립니다.",
    ),
    ticket_openers=("지난주에 주문했어요.", "며칠 전에 홈페이지에서 주문했어요.", "자주 이용하는 고객입니다.",
                    "{order} 건 관련해서 문의드려요.", "주문 관련해서 여쭤볼 게 있어요.", "얼마 전에 구매했어요."),
    ticket_upset=("정말 답답하네요.", "너무 실망스럽습니다.", "이번이 벌써 두 번째예요.", "메일을 두 번이나 보냈어요.",
                  "빨리 처리해 주세요.", "이런 일이 또 생기면 다시는 주문 안 할 거예요.", "기분이 많이 상했어요."),
    ticket_polite=("감사합니다.", "미리 감사드립니다.", "답변 기다리겠습니다.", "확인 부탁드립니다.",
                   "좋은 하루 보내세요."),
    ticket_greetings=("안녕하세요.", "안녕하세요,", "수고하십니다.", "문의드립니다.", "안녕하세요 고객센터님."),
    ticket_contact=("{email} 주소로 연락 주세요.", "연락처는 {phone}입니다. 전화 부탁드립니다.",
                    "전화가 더 편하시면 이 번호로 주세요: {phone}"),
    ticket_card=("카드번호 {card} 카드로 두 번 결제됐어요.", "카드번호는 {card}입니다. 확인 부탁드려요.",
                 "{card} 카드로 결제했는데 돈만 빠져나갔어요.", "{card} 카드가 거절됐다고 나와요."),
    no_order="지난번 주문",
    review_titles=(
        ("완전 만족해요", "강력 추천합니다", "최고예요", "재구매 의사 있어요", "너무 좋아요", "기대 이상이에요",
         "잘 샀어요", "마음에 쏙 들어요", "가성비 좋아요"),
        ("그냥 그래요", "무난해요", "보통이에요", "나쁘지 않아요", "쓸 만해요", "가격만큼 해요", "괜찮은 편이에요",
         "애매해요", "장단점이 있어요"),
        ("실망이에요", "별로예요", "다시는 안 사요", "비추천합니다", "품질이 아쉬워요", "돈 아까워요", "최악이에요",
         "기대 이하예요", "반품했어요"),
    ),
    review_aspects={
        "quality": (
            ("품질이 정말 좋아요", "마감이 깔끔하고 튼튼해요", "생각보다 훨씬 고급스러워요", "오래 쓸 수 있을 것 같아요",
             "이 가격에 이 품질이면 만족해요"),
            ("품질은 그냥 무난해요", "가격 생각하면 나쁘지 않아요", "아직 써 본 지 얼마 안 돼서 잘 모르겠어요",
             "기대했던 정도예요"),
            ("일주일 만에 망가졌어요", "너무 싸구려 같아요", "품질이 기대 이하예요", "두 번 쓰고 고장 났어요",
             "마감이 엉망이에요"),
        ),
        "fit": (
            ("사이즈가 딱 맞아요", "정사이즈로 주문하면 돼요", "착용감이 편해요"),
            ("조금 크게 나온 편이에요", "약간 끼지만 입을 만해요", "사이즈가 애매해요"),
            ("평소 사이즈로 샀는데 너무 작아요", "한 번 빨았더니 줄어들었어요", "사이즈가 전혀 안 맞아요"),
        ),
        "look": (
            ("색상이 너무 예뻐요", "사진보다 실물이 더 예뻐요", "디자인이 마음에 들어요"),
            ("색이 사진보다 조금 어두워요", "디자인은 평범해요", "생긴 건 그냥 무난해요"),
            ("사진이랑 완전 달라요", "색이 금방 바랬어요", "실물이 너무 싸 보여요"),
        ),
        "delivery": (
            ("배송이 정말 빨라요", "예정일보다 하루 일찍 왔어요", "주문하고 금방 받았어요"),
            ("배송은 일주일 정도 걸렸어요", "배송은 보통이에요", "배송이 조금 늦었지만 괜찮아요"),
            ("배송이 너무 늦었어요", "받기까지 3주 가까이 걸렸어요", "배송 조회가 계속 안 돼서 답답했어요"),
        ),
        "price": (
            ("가성비 최고예요", "이 가격이면 완전 이득이에요", "가격 대비 훌륭해요"),
            ("가격이 조금 있는 편이에요", "할인할 때 사면 괜찮아요", "가격은 적당해요"),
            ("가격에 비해 별로예요", "이 돈 주고 살 물건은 아니에요", "너무 비싸요"),
        ),
        "packaging": (
            ("포장이 꼼꼼하게 되어 있었어요", "포장이 깔끔했어요"),
            ("포장은 그냥 평범했어요", "포장이 좀 과한 편이에요"),
            ("상자가 찌그러져서 왔어요", "포장이 뜯어진 채로 왔어요"),
        ),
        "service": (
            ("고객센터 응대가 친절했어요", "문의에 바로 답해 주셨어요"),
            ("문의했더니 답변은 좀 늦었지만 해결됐어요", "고객센터는 그냥 보통이에요"),
            ("고객센터에서 답이 없어요", "반품 과정이 너무 번거로웠어요"),
        ),
    },
    review_short=(("좋아요", "만족해요", "최고", "굿굿", "좋네요"),
                  ("그냥 그래요", "보통", "쏘쏘", "무난해요", "좋아요"),
                  ("별로", "비추", "실망", "별로예요", "그냥 그래요")),
    review_hedges=("솔직히", "전체적으로", "음", "일단", "솔직히 말하면"),
    review_closers=(("다음에 또 살게요", "추천해요", "주변에도 추천했어요", "재구매할게요"),
                    ("좀 더 써 봐야 알 것 같아요", "그럭저럭 쓸 만해요", "나쁘진 않아요"),
                    ("추천하지 않아요", "반품하려고요", "다시는 주문 안 할 거예요", "실망했어요")),
    contrast=("하지만", "그런데", "근데", "다만"),
    survey_fragments=(
        ("상품도 좋고 배송도 빨라요", "품질이 마음에 들어요", "고객센터가 정말 친절했어요",
         "결제가 간편하고 배송이 빨라요", "항상 만족스러워요", "가격 대비 품질이 좋아요", "반품도 간편했어요",
         "포장도 예쁘고 상품도 다양해요"),
        ("상품은 괜찮은데 배송이 좀 더 빨랐으면 좋겠어요", "전반적으로 무난해요", "가격이 조금 비싼 편이에요",
         "사이트는 괜찮은데 결제가 좀 느려요", "특별한 건 없어요", "배송이 들쭉날쭉해요", "나쁘지 않아요",
         "사이즈가 좀 더 다양했으면 해요"),
        ("배송이 너무 오래 걸렸어요", "결제가 계속 실패했어요", "품질이 안 좋아서 환불받았어요",
         "고객센터 답변이 너무 늦어요", "최근 주문마다 문제가 있었어요", "사이트에서 자꾸 로그아웃돼요",
         "가격에 비해 품질이 별로예요", "제때 도착한 적이 없어요"),
    ),
    survey_closers=(("친구들한테도 추천할게요", "앞으로도 잘 부탁드려요", "또 이용할게요"),
                    ("조금만 더 개선되면 좋겠어요", "그럭저럭 괜찮아요", "좀 더 지켜볼게요"),
                    ("다시 주문할지 모르겠어요", "많이 실망했어요", "개선이 필요해요")),
    survey_causes={
        "payment_failure": ("결제가 두 번 실패하고 나서야 됐어요", "아무 이유 없이 카드 결제가 거절됐어요",
                            "카드가 계속 거절돼서 결제하기 너무 힘들었어요"),
        "late_delivery": ("주문한 게 일주일이나 늦게 왔어요", "배송이 늦었는데 아무 안내도 없었어요",
                          "배송을 너무 오래 기다렸어요"),
        "refund": ("상품이 파손돼서 반품해야 했어요", "주문한 걸 돌려보내고 환불을 한참 기다렸어요",
                   "제품이 고장 나서 환불받았어요"),
    },
    survey_contact="{phone} 번호로 연락 주세요.",
)

VOICES = (ENGLISH, KOREAN)
TICKET_CONTACT = ENGLISH.ticket_contact  # feedback draws an index into this tuple; both languages have as many
assert all(len(v.ticket_contact) == len(TICKET_CONTACT) for v in VOICES)
assert all(set(v.ticket_subjects) == set(TICKET_CATEGORIES) for v in VOICES)


class Dice:
    """A row of pre-drawn uniforms, read one after another: the per-text choices of one composition."""

    __slots__ = ("_u", "_i")

    def __init__(self, u: list[float]):
        self._u = u
        self._i = 0

    def random(self) -> float:
        value = self._u[self._i % len(self._u)]
        self._i += 1
        return value

    def chance(self, p: float) -> bool:
        return self.random() < p

    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.random() * len(options))]

    def weighted(self, probs: tuple[float, ...]) -> int:
        u = self.random()
        total = 0.0
        for i, p in enumerate(probs):
            total += p
            if u < total:
                return i
        return len(probs) - 1


def dice(rng: np.random.Generator, n: int) -> list[Dice]:
    """Uniforms for `n` texts in one vectorised call, so the draw count never depends on the content."""
    return [Dice(row) for row in rng.random((n, DICE)).tolist()]


def korean_writers(rng: np.random.Generator, n_customers: int) -> np.ndarray:
    """Which customers write in Korean (a fixed trait of the customer)."""
    return rng.random(n_customers) < KOREAN_SHARE


def blank_categories(rng: np.random.Generator, status: np.ndarray) -> np.ndarray:
    """Tickets whose agent never set a category: about a third, more often while open or pending."""
    waiting = np.isin(status, ("open", "pending"))
    share = np.where(waiting, BLANK_CATEGORY_SHARE["waiting"], BLANK_CATEGORY_SHARE["settled"])
    return rng.random(len(status)) < share


def card_tickets(rng: np.random.Generator, is_payment: np.ndarray) -> np.ndarray:
    """Payment tickets that quote a card number: about 1%, and at least one when there are payment tickets."""
    u = rng.random(len(is_payment))
    chosen = is_payment & (u < CARD_SHARE)
    if is_payment.any() and not chosen.any():
        chosen[np.nonzero(is_payment)[0][np.argmin(u[is_payment])]] = True
    return chosen


def card_number(d: Dice) -> str:
    """A test card number written as people write it: in groups with spaces or dashes, or in one run."""
    number = d.pick(TEST_CARDS)
    groups = (4, 6, 5) if len(number) == 15 else (4, 4, 4, 4)
    parts, start = [], 0
    for size in groups:
        parts.append(number[start:start + size])
        start += size
    style = d.weighted((0.5, 0.3, 0.2))
    return (" ", "-", "")[style].join(parts)


def _lower_first(clause: str) -> str:
    if clause.startswith(("I ", "I'")) or len(clause) < 2:
        return clause
    return clause[0].lower() + clause[1:]


def _typo(text: str, d: Dice) -> str:
    """Swap two neighbouring letters inside one word, as a quick typist does."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha() and w.isascii()]
    if not candidates:
        return text
    i = candidates[int(d.random() * len(candidates))]
    w = words[i]
    j = 1 + int(d.random() * (len(w) - 2))  # an inner letter and the one after it; the first stays
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _end(sentence: str, polarity: int, last: bool, d: Dice) -> str:
    """Sentence end: mostly a full stop, an exclamation for praise, sometimes none after the last sentence."""
    u = d.random()
    if sentence.endswith((".", "!", "?")):
        return ""
    if polarity == POS and u < 0.25:
        return "!"
    if last and u > 0.8:
        return ""
    return "."


def _sentences(v: Voice, clauses: list[tuple[int, str]], d: Dice) -> list[tuple[int, str]]:
    """Clauses into sentences: a clause of the other polarity often follows with 'but'."""
    out: list[tuple[int, str]] = []
    joined_last = False
    for polarity, clause in clauses:
        if out and not joined_last and polarity != out[-1][0] and d.chance(0.6):
            word = d.pick(v.contrast)
            prev = out[-1][1]
            if v.korean:
                out[-1] = (polarity, f"{prev}. {word} {clause}")
            else:
                out[-1] = (polarity, f"{prev}, {word} {_lower_first(clause)}")
            joined_last = True
            continue
        if (out and not joined_last and polarity == out[-1][0] and not v.korean and d.chance(0.25)
                and " and " not in out[-1][1] + clause):
            out[-1] = (polarity, f"{out[-1][1]} and {_lower_first(clause)}")
            joined_last = True
            continue
        out.append((polarity, clause))
        joined_last = False
    return out


def _render(sentences: list[tuple[int, str]], d: Dice) -> str:
    last = len(sentences) - 1
    return " ".join(s + _end(s, p, i == last, d) for i, (p, s) in enumerate(sentences))


def review_tone(rating: int, d: Dice) -> int:
    """The rating the text is written for: the real one, or now and then the opposite one."""
    if d.chance(REVIEW_DISAGREE_SHARE):
        return 6 - rating if rating != 3 else (1 if d.chance(0.5) else 5)
    return rating


def review(v: Voice, tone: int, product: str, wearable: bool, title_pick: int, body_pick: int,
           d: Dice) -> tuple[str, str]:
    """(title, body) of a review written in the tone of a `tone`-star rating."""
    probs = REVIEW_POLARITY[tone]
    titles = v.review_titles[d.weighted(probs)]
    title = titles[title_pick % len(titles)]
    if d.chance(REVIEW_SHORT_SHARE):
        body = d.pick(v.review_short[d.weighted(probs)])
    else:
        aspects = [a for a in v.review_aspects if wearable or a != "fit"]
        count = 1 + d.weighted((0.35, 0.40, 0.25))
        first = body_pick % len(aspects)
        chosen = [aspects[first]]
        rest = aspects[:first] + aspects[first + 1:]
        for _ in range(count - 1):
            chosen.append(rest.pop(int(d.random() * len(rest))))
        clauses = []
        for aspect in chosen:
            polarity = d.weighted(probs)
            clauses.append((polarity, d.pick(v.review_aspects[aspect][polarity]).format(product=product)))
        if d.chance(0.15):
            hedge = d.pick(v.review_hedges)
            polarity, clause = clauses[0]
            clauses[0] = (polarity, f"{hedge} {clause}" if v.korean else f"{hedge}, {_lower_first(clause)}")
        sentences = _sentences(v, clauses, d)
        if len(sentences) < 3 and d.chance(0.3):
            polarity = d.weighted(probs)
            sentences.append((polarity, d.pick(v.review_closers[polarity])))
        body = _render(sentences, d)
        if v.korean and d.chance(0.12):
            body += " ㅎㅎ" if probs[POS] > probs[NEG] else " ㅠㅠ"
    if not v.korean:
        if d.chance(0.10):
            title, body = title.lower(), body.lower()
        if d.chance(0.06):
            body = _typo(body, d)
    return title, body


def ticket(v: Voice, category: str, bad: bool, ambiguous: bool, fill: dict, newline: bool, contact: int,
           card: str, subject_pick: int, body_pick: int, greeting_pick: int, d: Dice) -> tuple[str, str]:
    """(subject, body) of a ticket; `fill` has order_id (or ""), order, product, days, email, phone."""
    has_order = fill["order_id"] != ""
    if ambiguous or d.chance(0.2):
        subjects = v.ticket_generic_subjects
    else:
        subjects = v.ticket_subjects[category]
    if not has_order:
        subjects = tuple(s for s in subjects if "{order_id}" not in s) or subjects
    subject = subjects[subject_pick % len(subjects)].format(**fill)

    if ambiguous:
        parts = [v.ticket_ambiguous[body_pick % len(v.ticket_ambiguous)]]
    else:
        pool = (v.ticket_bad if bad else v.ticket_neutral)[category]
        core = body_pick % len(pool)
        parts = [pool[core]]
        if d.chance(0.15):
            parts.append(pool[(core + 1 + int(d.random() * (len(pool) - 1))) % len(pool)])
    if d.chance(0.3):
        opener = d.pick(v.ticket_openers)
        if "{order}" not in opener or "{order}" not in parts[0]:
            parts.insert(0, opener)
    if bad and d.chance(0.85):
        parts.append(d.pick(v.ticket_upset))
    elif not bad and d.chance(0.6):
        parts.append(d.pick(v.ticket_polite))
    body = " ".join(parts).format(**fill)
    if not v.korean and d.chance(0.04):
        body = _typo(body, d)
    if card:
        body += " " + d.pick(v.ticket_card).format(card=card)
    if newline or d.chance(0.85):
        greeting = v.ticket_greetings[greeting_pick % len(v.ticket_greetings)]
        body = greeting + ("\n" if newline else " ") + body
    if contact >= 0:
        body += " " + v.ticket_contact[contact].format(**fill)
    return subject, body


def survey_bucket(score: int) -> str:
    return "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"


def survey(v: Voice, score: int, cause: str | None, comment_pick: int, phone: str | None, d: Dice) -> str:
    """An NPS comment in the tone of the score's bucket (now and then a neighbouring one's).

    `cause` names the customer's recent bad experience when the comment should mention it.
    """
    bucket = survey_bucket(score)
    if d.chance(SURVEY_BUCKET_NOISE):
        bucket = "passive" if bucket != "passive" else ("promoter" if d.chance(0.5) else "detractor")
    probs = SURVEY_POLARITY[bucket]
    clauses = []
    if cause is not None:
        clauses.append((NEG, v.survey_causes[cause][comment_pick % len(v.survey_causes[cause])]))
    else:
        polarity = d.weighted(probs)
        pool = v.survey_fragments[polarity]
        clauses.append((polarity, pool[comment_pick % len(pool)]))
    if d.chance(0.35):
        polarity = d.weighted(probs)
        fragment = d.pick(v.survey_fragments[polarity])
        if fragment != clauses[0][1]:
            clauses.append((polarity, fragment))
    sentences = _sentences(v, clauses, d)
    if d.chance(0.25):
        polarity = d.weighted(probs)
        sentences.append((polarity, d.pick(v.survey_closers[polarity])))
    comment = _render(sentences, d)
    if not v.korean and d.chance(0.06):
        comment = comment.lower()
    if phone is not None:
        comment += " " + v.survey_contact.format(phone=phone)
    return comment
