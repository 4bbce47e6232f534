import duckdb
import pytest

from orchestration.lib.pseudonymize import install_sql_hmac, mask_text, normalize, pseudonym

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


def test_mask_text_in_python_and_sql_agree():
    text = "Call me on +1 555 123 4567 or mail jo.doe@mail.example.org, order 12345."
    masked = mask_text(text)
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
    assert mask_text(text) == masked
    con = duckdb.connect()
    install_sql_hmac(con, KEY)
    assert con.execute("select cx_mask_text(?)", [text]).fetchone()[0] == masked
