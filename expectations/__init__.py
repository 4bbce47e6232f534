"""Great Expectations suites for cxloop's tables, as code, and a runner that validates pandas frames.

Plain Python with no Dagster import: orchestration reads a table into a DataFrame, calls `validate`, and turns
the `Outcome` into an asset check result; a notebook can do the same. Importing this package does not import
Great Expectations (seconds to load); the runner does on its first validation.

    from expectations import suite_for, validate
    outcome = validate(con.sql("select * from raw.orders").df(), suite_for("raw", "orders"))
    outcome.success, outcome.severity, outcome.to_metadata()

A table larger than memory goes through `validate_batches(read, suite)`, where `read(columns)` yields frames;
orchestration's `warehouse_reader` streams a DuckDB query that way.
"""

from __future__ import annotations

from collections.abc import Callable

from expectations import marts, measure, models, raw, voc
from expectations.runner import Outcome, RuleError, RuleFailure, validate, validate_batches
from expectations.suite import Rule, Suite

SUITES: dict[str, Callable[[], Suite]] = {**raw.SUITES, **marts.SUITES, **models.SUITES, **measure.SUITES, **voc.SUITES}


def suite_for(layer: str, name: str) -> Suite:
    """The suite for `<layer>.<name>` (`suite_for("marts", "orders")`), built fresh."""
    key = f"{layer}.{name}"
    try:
        return SUITES[key]()
    except KeyError:
        raise KeyError(f"no suite {key!r}; known: {', '.join(sorted(SUITES))}") from None


__all__ = ["SUITES", "Outcome", "Rule", "RuleError", "RuleFailure", "Suite", "suite_for", "validate",
           "validate_batches"]
