import duckdb
import pytest

from ml.text import mask_pii
from orchestration.lib.pseudonymize import install_sql_hmac, normalize, pseudonym

KEY = b"test-key-not-secret"


@pytest.mark.parametrize(
    "kind,value",
    [
        ("email", "Ann.Lee@Example.com "),
        ("phone", "+1 (555) 123-4567"),
        ("first_name", "  Zoë"),
        ("customer_id", "C000123"),
        ("ip", "10.1.2.3"),
        ("email", ""),
        ("email", None),
    ],
)
def test_sql_and_python_pseudonyms_agree(kind, value):
    con = duckdb.connect()
    install_sql_hmac(con, KEY)
    sql_value = con.execute("select cx_pseudonym(?, ?)", [kind, value]).fetchone()[0]
    assert sql_value == pseudonym(KEY, kind, value)


def test_pseudonym_is_keyed_and_namespaced():
    a = pseudonym(KEY, "email", "a@b.com")
    assert a == pseudonym(KEY, "email", "A@B.com")  # normalized
    assert a != pseudonym(b"other-key", "email", "a@b.com")
    assert a != pseudonym(KEY, "customer_id", "a@b.com")
    assert len(a) == 32 and int(a, 16) >= 0


def test_long_keys_are_hashed_first_like_hmac():
    import hashlib
    import hmac

    long_key = b"k" * 100
    expected = hmac.new(long_key, b"email:x@y.io", hashlib.sha256).hexdigest()[:32]
    con = duckdb.connect()
    install_sql_hmac(con, long_key)
    assert con.execute("select cx_pseudonym('email', 'x@y.io')").fetchone()[0] == expected


def test_phone_normalization_keeps_digits_only():
    assert normalize("phone", "+44 20 7946-0958") == "442079460958"
    assert normalize("phone", "n/a") is None


def test_mask_pii_in_python_and_sql_agree():
    text = "Call me on +1 555 123 4567 or mail jo.doe@mail.example.org, order 12345."
    masked = mask_pii(text)
    assert "jo.doe" not in masked and "555" not in masked
    assert "[email]" in masked and "[phone]" in masked and "12345" in masked
    con = duckdb.connect()
    install_sql_hmac(con, KEY)
    assert con.execute("select cx_mask_text(?)", [text]).fetchone()[0] == masked


@pytest.mark.parametrize("text, masked", [
    ("Call me on +1-555-0111.", "Call me on [phone]."),
    ("My number is +44 7700 900123 if that is easier.", "My number is [phone] if that is easier."),
    ("or 07700 900123", "or [phone]"),
    ("please refund order O0001055 and 1234567", "please refund order O0001055 and 1234567"),
])
def test_phone_numbers_with_a_country_code_are_masked_and_order_numbers_are_not(text, masked):
    assert mask_pii(text) == masked
    con = duckdb.connect()
    install_sql_hmac(con, KEY)
    assert con.execute("select cx_mask_text(?)", [text]).fetchone()[0] == masked


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1111 was charged",
    "card 4111-1111-1111-1111, amex 3782 822463 10005, plain 5500000000000004.",
    "x4111111111111111y and 4111111111111111",
    "주문4111111111111111번 결제",
    "all three: a@b.io, +44 7700 900123, 4111 1111 1111 1111",
    "please refund order O-000123, delivered 2024-01-15 (compact 20240115103000)",
    None,
])
def test_card_numbers_are_masked_first_alike_in_python_and_sql(text):
    con = duckdb.connect()
    install_sql_hmac(con, KEY)
    assert con.execute("select cx_mask_text(?)", [text]).fetchone()[0] == mask_pii(text)


def test_the_sql_mask_is_built_from_the_shared_patterns():
    from ml import text as shared
    from orchestration.lib import pseudonymize

    assert pseudonymize.EMAIL_RE is shared.EMAIL_RE and pseudonymize.PHONE_RE is shared.PHONE_RE
    assert pseudonymize.CARD_RE is shared.CARD_RE
    assert shared.mask_pii("card 4111 1111 1111 1111") == "card [card]"


def test_text_masks_agree_on_random_digit_runs():
    import random

    rng = random.Random(7)
    alphabet = "0123456789" * 3 + "   --..()+@abxZ_주é"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 60))) for _ in range(500)]
    con = duckdb.connect()
    install_sql_hmac(con, KEY)
    sql = con.execute("select list_transform(?::varchar[], lambda t: cx_mask_text(t))", [texts]).fetchone()[0]
    assert sql == [mask_pii(t) for t in texts]
