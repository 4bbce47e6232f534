"""docs/reliability.md lists exactly the promises the tests prove under faults."""

from tests import reliability_table


def test_the_document_table_is_generated_from_the_current_marks():
    text = reliability_table.DOC.read_text()
    expected = reliability_table.render(reliability_table.collect())
    assert reliability_table.generated_part(text) == expected, (
        "docs/reliability.md is out of date: run `python -m tests.reliability_table --write`")


def test_every_area_has_at_least_one_proved_case():
    areas = {case.area for case in reliability_table.collect()}
    assert areas == set(reliability_table.AREAS)
