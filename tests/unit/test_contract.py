import csv
import re

from orchestration.lib import contract
from orchestration.lib.settings import PROJECT_ROOT, SOURCES


def test_currencies_match_the_dbt_seed():
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "currency_rates.csv") as fh:
        seeded = {row["currency"] for row in csv.DictReader(fh)}
    assert seeded == set(contract.CURRENCIES)


def test_every_source_has_raw_columns_with_lineage():
    for source in SOURCES:
        names = [n for n, _ in contract.raw_columns(source)]
        assert names[-5:] == ["_file", "_line", "_delivery_date", "_loaded_at", "_load_id"]
        assert len(names) == len(set(names))


def test_pii_never_reaches_raw_columns_in_clear():
    for spec in contract.CSV_SOURCES.values():
        out = {c.out_name for c in spec.columns}
        for pii in ("email", "phone", "first_name", "last_name", "customer_id"):
            assert pii not in out
    event_cols = {n for n, _ in contract.EVENT_COLUMNS}
    assert not event_cols & {"email", "phone", "ip", "user_id", "first_name", "last_name"}


def test_data_contract_doc_lists_every_rule_family():
    doc = (PROJECT_ROOT / "docs" / "data-contract.md").read_text()
    for fragment in ("timestamp_with_offset", "non_negative", "accepted_values", "events.json", "not_future",
                     "<source>.quoting", "<source>.header.drift", "events.revenue.number", "`reloaded`",
                     "orders.customer_id.known"):
        assert fragment in doc


def test_every_csv_timestamp_is_checked_against_the_delivery_date():
    for spec in contract.CSV_SOURCES.values():
        for column in spec.columns:
            assert column.not_future == (column.kind == "timestamp"), f"{spec.name}.{column.name}"
    assert contract.EVENT_NOT_FUTURE == ("receivedAt",)  # device clocks are corrected downstream, not checked


def test_data_contract_doc_lists_every_optional_column():
    doc = (PROJECT_ROOT / "docs" / "data-contract.md").read_text()
    optional = doc[doc.index("except these optional ones"):doc.index("Changes of the header")]
    for spec in contract.CSV_SOURCES.values():
        listed = optional[optional.index(spec.name):].split(";")[0]
        assert set(re.findall(r"`(\w+)`", listed)) == set(spec.header_optional), spec.name
