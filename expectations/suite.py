"""What a suite is: named rules over one table, described as plain data.

Suites are data rather than Great Expectations objects so that describing, listing and testing them never
imports GX (a ~7-15 s import); the runner turns each `Rule` into a GX expectation only when it validates.

Rule names follow the contract's quarantine naming, `<table>.<column>.<check>` (`orders.status.accepted_values`,
`orders.total_amount.non_negative`), so a failing raw rule points at the ingest rule that should have caught it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Severity = Literal["error", "warn"]
SEVERITIES: tuple[Severity, ...] = ("error", "warn")

# Column kinds as GX `type_list`s. A kind lists every dtype the warehouse may hand over for it: DuckDB's
# `.df()` gives `int32` for an INTEGER column without nulls but `Int32` with them, DECIMAL and HUGEINT (a
# `sum` of integers) come back as `float64`, DATE and TIMESTAMP as `datetime64[us]`. Strings are matched as
# `StringDtype` because the runner hands GX every text column in that dtype (GX 1.24 matches no name against
# pandas 3's default `str` dtype). The plain Python names (`int`, `float`, `bool`, `str`, `Timestamp`) serve
# GX's per-value check on `object` columns, which is what an all-null or empty VARCHAR column is.
_INTEGER_DTYPES = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
    "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype", "int",
)
KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "string": ("StringDtype", "str"),
    "integer": _INTEGER_DTYPES,
    "number": (*_INTEGER_DTYPES, "float32", "float64", "Float32Dtype", "Float64Dtype", "float"),
    "boolean": ("bool", "BooleanDtype"),
    # Naive timestamps only: the warehouse stores UTC `TIMESTAMP`, so a tz-aware column is a contract slip.
    "timestamp": ("datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]", "Timestamp"),
})
Kind = Literal["string", "integer", "number", "boolean", "timestamp"]


@dataclass(frozen=True)
class Rule:
    """One expectation with a stable name.

    `expectation` is the GX expectation type in snake case (`expect_column_values_to_be_unique`) and `kwargs`
    its arguments, exactly as GX documents them. `when` restricts the rule to rows where every listed column
    equals the given value (`None` meaning "is null"); GX evaluates it as a row condition.
    """

    name: str
    expectation: str
    kwargs: Mapping[str, Any]
    severity: Severity = "error"
    when: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.name}: severity must be one of {SEVERITIES}, not {self.severity!r}")
        if not self.expectation.startswith("expect_"):
            raise ValueError(f"rule {self.name}: {self.expectation!r} is not a GX expectation type")
        # Own copies, as plain dicts so `dataclasses.asdict` and JSON still work on a rule.
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        if self.when is not None:
            object.__setattr__(self, "when", dict(self.when))

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the rule reads; empty for table-level rules."""
        kw = self.kwargs
        if "column" in kw:
            return (kw["column"],)
        if "column_A" in kw:
            return (kw["column_A"], kw["column_B"])
        if "column_list" in kw:
            return tuple(kw["column_list"])
        return ()


@dataclass(frozen=True)
class Suite:
    """The rules for one table, plus what the runner may show about a failing row.

    `key` names the columns that locate a row (its key, or `_file`/`_line` in raw) and are shown in samples
    unless they are sensitive; `sensitive` adds columns to `privacy.is_sensitive` for this table.
    """

    name: str
    rules: tuple[Rule, ...]
    key: tuple[str, ...] = ()
    sensitive: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "sensitive", frozenset(self.sensitive))
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"suite {self.name}: rule name {rule.name} is used twice")
            seen.add(rule.name)

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


def columns_present(table: str, columns: Iterable[str]) -> Rule:
    """Every listed column exists; extra columns are fine (sources may add fields)."""
    return Rule(f"{table}.columns_present", "expect_table_columns_to_match_set",
                {"column_set": list(columns), "exact_match": False})


def of_kind(table: str, column: str, kind: Kind, severity: Severity = "error") -> Rule:
    return Rule(f"{table}.{column}.type", "expect_column_values_to_be_in_type_list",
                {"column": column, "type_list": list(KINDS[kind])}, severity)


def kinds(table: str, **columns_by_kind: Iterable[str]) -> tuple[Rule, ...]:
    """`of_kind` for many columns: `kinds("orders", string=[...], timestamp=[...])`."""
    return tuple(of_kind(table, column, kind)  # type: ignore[arg-type]
                 for kind, columns in columns_by_kind.items() for column in columns)


def required(table: str, column: str, severity: Severity = "error", when: Mapping[str, Any] | None = None,
             check: str = "required") -> Rule:
    return Rule(f"{table}.{column}.{check}", "expect_column_values_to_not_be_null", {"column": column},
                severity, when)


def not_null(table: str, column: str, severity: Severity = "error") -> Rule:
    return required(table, column, severity, check="not_null")


def unique(table: str, column: str) -> Rule:
    return Rule(f"{table}.{column}.unique", "expect_column_values_to_be_unique", {"column": column})


def primary_key(table: str, columns: Iterable[str]) -> tuple[Rule, ...]:
    """`unique` + `not_null` on the grain, as dbt tests it; a compound key is unique as a whole."""
    columns = tuple(columns)
    if len(columns) == 1:
        uniqueness = unique(table, columns[0])
    else:
        uniqueness = Rule(f"{table}.primary_key.unique", "expect_compound_columns_to_be_unique",
                          {"column_list": list(columns)})
    return (uniqueness, *(not_null(table, column) for column in columns))


def accepted_values(table: str, column: str, values: Iterable[Any], severity: Severity = "error") -> Rule:
    return Rule(f"{table}.{column}.accepted_values", "expect_column_values_to_be_in_set",
                {"column": column, "value_set": list(values)}, severity)


def matches(table: str, column: str, regex: str, check: str, severity: Severity = "error") -> Rule:
    return Rule(f"{table}.{column}.{check}", "expect_column_values_to_match_regex",
                {"column": column, "regex": regex}, severity)


def between(table: str, column: str, min_value: Any = None, max_value: Any = None, *,
            check: str = "range", severity: Severity = "error", when: Mapping[str, Any] | None = None) -> Rule:
    """Values within [min_value, max_value]; nulls are not checked (use `required` for that).

    Bounds on timestamp columns must be `pd.Timestamp`/`datetime`: GX parses a string bound into a `date`
    and then raises comparing it with the column.
    """
    if isinstance(min_value, str) or isinstance(max_value, str):
        raise TypeError(f"{table}.{column}: give bounds as numbers or timestamps, not strings")
    return Rule(f"{table}.{column}.{check}", "expect_column_values_to_be_between",
                {"column": column, "min_value": min_value, "max_value": max_value}, severity, when)


def non_negative(table: str, *columns: str, severity: Severity = "error") -> tuple[Rule, ...]:
    return tuple(between(table, column, 0, check="non_negative", severity=severity) for column in columns)


def rate(table: str, *columns: str) -> tuple[Rule, ...]:
    """Shares and conversion rates lie in [0, 1]."""
    return tuple(between(table, column, 0, 1) for column in columns)


def at_least(table: str, column: str, other: str, check: str, severity: Severity = "error") -> Rule:
    """`column >= other` on every row where both are present (an end after its start, a part within its whole)."""
    return Rule(f"{table}.{column}.{check}", "expect_column_pair_values_a_to_be_greater_than_b",
                {"column_A": column, "column_B": other, "or_equal": True,
                 "ignore_row_if": "either_value_is_missing"}, severity)
