"""Masking personal data in free text and telling its language."""

from __future__ import annotations

import pytest

from ml.text import CARD_RE, detect_language, mask_pii


@pytest.mark.parametrize("text, masked", [
    ("mail me at jo.doe@mail.example.org please", "mail me at [email] please"),
    ("Call me on +1 555 123 4567.", "Call me on [phone]."),
    ("or 07700 900123", "or [phone]"),
    ("card 4111 1111 1111 1111 was charged", "card [card] was charged"),
    ("card 4111-1111-1111-1111 was charged", "card [card] was charged"),
    ("card 4111111111111111.", "card [card]."),
    ("amex 3782 822463 10005 and 5500 0000 0000 0004", "amex [card] and [card]"),
    ("주문 결제 카드 4111111111111111 입니다", "주문 결제 카드 [card] 입니다"),
    ("all three: a@b.io, +44 7700 900123, 4111 1111 1111 1111",
     "all three: [email], [phone], [card]"),
])
def test_emails_phones_and_cards_are_masked(text, masked):
    assert mask_pii(text) == masked


@pytest.mark.parametrize("text", [
    "please refund order O-000123 today",
    "order O0001055 and 1234567",
    "Delivered on 2024-01-15, due 15.01.2024, logged 2024-01-15T10:30:00Z",
    "ticket T000042 about order O0002816",
    "I paid 1,299.00 for 3 items",
])
def test_order_ids_dates_and_amounts_are_left_alone(text):
    assert mask_pii(text) == text


def test_card_numbers_need_a_card_network_prefix_and_whole_words():
    assert CARD_RE.search("20240115103000") is None  # a compact timestamp
    assert CARD_RE.search("x4111111111111111") is None  # inside an id
    assert CARD_RE.search("4111111111111111") is not None
    assert CARD_RE.search("411111111111") is None  # 12 digits


def test_masking_is_idempotent_and_keeps_none():
    text = "Reach me at a.b@example.com or +1-555-0111; card 4111 1111 1111 1111, order O-000123."
    once = mask_pii(text)
    assert mask_pii(once) == once
    assert mask_pii(None) is None
    assert mask_pii("") == ""


@pytest.mark.parametrize("text, language", [
    ("My order has not arrived and the tracking is not updating.", "en"),
    ("배송이 너무 늦어요. 환불해 주세요.", "ko"),
    ("배송 조회가 안 돼요, tracking number O-000123 does not update", "ko"),
    ("Die Lieferung ist nicht angekommen, bitte helfen Sie mir.", "de"),
    ("La livraison est en retard et je ne suis pas content.", "fr"),
    ("El pedido no ha llegado y estoy muy molesto.", "es"),
    ("注文した商品がまだ届きません。", "ja"),
    ("我的订单还没有到", "zh"),
    ("Заказ не пришёл", "ru"),
    ("Excellent", "und"),
    ("12345 !!!", "und"),
    ("", "und"),
    (None, "und"),
])
def test_language_is_told_from_script_and_function_words(text, language):
    assert detect_language(text) == language
