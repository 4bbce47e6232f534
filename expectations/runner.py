"""Validate a pandas DataFrame against a `Suite` with Great Expectations.

Why pandas: GX 1.24 has no DuckDB datasource and its SQL path through duckdb-engine does not work, so callers
read a table with `con.sql(...).df()` and hand the frame over. Why one lazily built GX context: importing GX
takes seconds and building a context costs more than validating a small table, so the first `validate` in a
process pays for both and every later one reuses the same ephemeral context, pandas datasource, dataframe asset
and whole-dataframe batch definition.

The outcome keeps customer data out: GX echoes unexpected values, so the runner never copies GX's value lists.
It asks GX only for counts and the positions of a few offending rows, and builds each sample itself from the
columns `privacy.is_sensitive` allows (the row's key, `_file`/`_line`, and the rule's columns when they are not
sensitive). Exception messages are scrubbed of quoted values before they are kept.

A table larger than memory goes through `validate_batches`: row-wise rules run batch by batch and their verdicts
add up, and rules over a whole column (uniqueness) run once on a frame holding only their columns and the key.

GX is never handed a wider frame than a rule reads: it hashes every column of a batch to name it and copies
every column for each row condition, which on a raw events batch cost more than the rules themselves. Rules
GX judges on the schema alone (the column names; a dtype other than `object` for a type rule) run on no rows
of every column, once per distinct set of columns and dtypes; the others run on just their columns and those
of their row conditions, with the same index, so samples are still taken from the whole batch.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from expectations.privacy import is_sensitive
from expectations.suite import Rule, Severity, Suite

SAMPLE_SIZE = 5
# GX's partial list holds rows, not distinct values: ask for more so a few distinct samples survive dedupe.
_PARTIAL_COUNT = 4 * SAMPLE_SIZE
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": _PARTIAL_COUNT}
_TYPE_EXPECTATIONS = frozenset({"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"})
# Table-level rules that read only the column names: GX gives the same verdict on no rows.
_SCHEMA_EXPECTATIONS = frozenset({"expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
                                  "expect_table_column_count_to_equal", "expect_table_column_count_to_be_between"})
# Rules whose verdict on a row depends on other rows: they need every row of their columns in one frame.
WHOLE_COLUMN_EXPECTATIONS = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})
_MESSAGE_LIMIT = 300

_lock = threading.Lock()
_batch_definition: Any = None


@dataclass(frozen=True)
class RuleFailure:
    """A rule the data broke.

    `unexpected_count` counts rows (for uniqueness, every row sharing a duplicated value; for
    `columns_present`, the missing columns) and is None for rules GX judges on an aggregate. `sample` holds up
    to `SAMPLE_SIZE` distinct dicts of non-sensitive columns of offending rows, or for aggregate rules the
    observed value (a dtype name, the missing column names) when it is not customer data.
    """

    rule: str
    expectation: str
    column: str | None
    severity: Severity
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]


@dataclass(frozen=True)
class RuleError:
    """A rule GX could not evaluate (a missing column, bounds of the wrong type): no verdict on the data."""

    rule: str
    expectation: str
    column: str | None
    severity: Severity
    message: str


@dataclass(frozen=True)
class Outcome:
    """The verdict of one suite on one frame.

    Every rule ends up in exactly one place: passed, `failures`, or `errors`; `evaluated` counts the rules
    that reached a verdict, so `evaluated + len(errors) == len(suite.rules)`.
    """

    suite: str
    rows: int
    success: bool
    evaluated: int
    failures: list[RuleFailure]
    errors: list[RuleError]

    @property
    def severity(self) -> Severity | None:
        """`error` if an error-severity rule failed or any rule raised on one, `warn` if only warn rules did.

        Maps onto Dagster's check severity: a blocking check stops downstream assets only on ERROR.
        """
        if self.success:
            return None
        broken = [*self.failures, *self.errors]
        return "error" if any(item.severity == "error" for item in broken) else "warn"

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-serialisable dict for `AssetCheckResult(metadata=...)`; holds no customer data."""
        return {
            "suite": self.suite,
            "rows": self.rows,
            "success": self.success,
            "severity": self.severity,
            "evaluated": self.evaluated,
            "failed": len(self.failures),
            "errored": len(self.errors),
            "failed_rules": [failure.rule for failure in self.failures],
            "failures": [asdict(failure) for failure in self.failures],
            "errors": [asdict(error) for error in self.errors],
            "summary": self.summary(),
        }

    def summary(self) -> str:
        """One line naming each failing rule with its count and a sample, then each rule that raised."""
        total = self.evaluated + len(self.errors)
        if self.success:
            return f"{self.suite}: all {total} rules passed on {self.rows} rows"
        parts = []
        if self.failures:
            parts.append(f"{len(self.failures)} of {total} rules failed on {self.rows} rows: "
                         + "; ".join(_describe(failure) for failure in self.failures))
        if self.errors:
            parts.append(f"{len(self.errors)} could not be evaluated: "
                         + "; ".join(f"{_tag(error)}: {error.message}" for error in self.errors))
        return f"{self.suite}: " + " | ".join(parts)


# `read(None)` yields a table's rows in batches of every column (at least one batch, empty for an empty table);
# `read(columns)` yields every row of just those columns, in as many batches as it likes.
Reader = Callable[[Sequence[str] | None], Iterable[pd.DataFrame]]


def validate(df: pd.DataFrame, suite: Suite) -> Outcome:
    """Run every rule of `suite` on `df` and return a PII-free outcome."""
    return validate_batches(lambda columns: [df if columns is None else df[list(columns)]], suite)


def validate_batches(read: Reader, suite: Suite) -> Outcome:
    """Run every rule of `suite` on a table that `read` hands over in batches; memory follows the batch size.

    Row-wise rules (nulls, ranges, sets, patterns, types) run on each batch of `read(None)`, and their verdicts
    merge: counts add up, the percentage is taken over every row checked, samples are the first distinct ones,
    and a rule that raises on any batch is an error. Rules over whole columns (uniqueness) then run once, on
    the rows of `read(key + their columns)` put in one frame: a narrow frame, not the table.
    """
    row_rules = [rule for rule in suite.rules if rule.expectation not in WHOLE_COLUMN_EXPECTATIONS]
    column_rules = [rule for rule in suite.rules if rule.expectation in WHOLE_COLUMN_EXPECTATIONS]
    tallies: dict[str, _Tally] = {}
    errors: dict[str, RuleError] = {}
    schema_verdicts: dict[Any, dict[str, Any]] = {}
    rows = 0
    columns: list[str] | None = None
    for batch in read(None):
        frame = _prepare(batch)
        if columns is None:
            columns = [str(column) for column in frame.columns]
        rows += len(frame)
        _evaluate(frame, row_rules, suite, tallies, errors, schema_verdicts)
    if columns is None:
        raise ValueError(f"suite {suite.name}: the reader yielded no batch (an empty table is one empty batch)")

    if column_rules:
        _evaluate_columns(read, columns, column_rules, suite, tallies, errors)

    failures = [failure for rule in suite.rules if rule.name in tallies and rule.name not in errors
                if (failure := tallies[rule.name].merged()) is not None]
    evaluated = sum(1 for rule in suite.rules if rule.name in tallies and rule.name not in errors)
    ordered_errors = [errors[rule.name] for rule in suite.rules if rule.name in errors]
    return Outcome(suite=suite.name, rows=rows, success=not failures and not ordered_errors,
                   evaluated=evaluated, failures=failures, errors=ordered_errors)


@dataclass
class _Tally:
    """One rule's verdicts over the batches it was evaluated on."""

    batches: int = 0
    checked: int = 0  # rows GX judged (not missing, within the row condition): the percentage's base
    failures: list[RuleFailure] = field(default_factory=list)

    def add(self, failure: RuleFailure | None, result: Mapping[str, Any]) -> None:
        self.batches += 1
        elements = result.get("element_count")
        if isinstance(elements, (int, np.integer)):
            self.checked += int(elements) - int(result.get("missing_count") or 0)
        if failure is not None:
            self.failures.append(failure)

    def merged(self) -> RuleFailure | None:
        if not self.failures:
            return None
        first = self.failures[0]
        aggregate = first.unexpected_count is None or first.expectation == "expect_table_columns_to_match_set"
        if self.batches == 1 or aggregate:
            return first  # GX's own figures, or a verdict on the column's dtype or the table's columns
        count = sum(failure.unexpected_count or 0 for failure in self.failures)
        sample: list[Any] = []
        for item in (item for failure in self.failures for item in failure.sample):
            if item not in sample and len(sample) < SAMPLE_SIZE:
                sample.append(item)
        percent = 100 * count / self.checked if self.checked else first.unexpected_percent
        return replace(first, unexpected_count=count, unexpected_percent=percent, sample=sample)


def _evaluate_columns(read: Reader, columns: list[str], rules: list[Rule], suite: Suite,
                      tallies: dict[str, _Tally], errors: dict[str, RuleError]) -> None:
    """Whole-column rules on one frame of the suite's key and the rules' columns that exist."""
    wanted = [column for column in suite.key if column in columns]
    for rule in rules:
        wanted += [column for column in rule.columns if column in columns and column not in wanted]
    batches = list(read(wanted))
    frame = _prepare(pd.concat(batches, ignore_index=True)) if batches else pd.DataFrame(columns=wanted)
    # A rule on a column the table lacks is an error named after the table's columns, not the narrow frame's.
    for rule in rules:
        missing = [column for column in rule.columns if column not in columns]
        if missing:
            errors[rule.name] = _error(rule, f"missing column {', '.join(map(repr, missing))}", columns)
    _evaluate(frame, rules, suite, tallies, errors, {})


def _evaluate(frame: pd.DataFrame, rules: Sequence[Rule], suite: Suite, tallies: dict[str, _Tally],
              errors: dict[str, RuleError], schema_verdicts: dict[Any, dict[str, Any]]) -> None:
    """GX's verdicts on the rules not yet in `errors` on `frame`, recorded into `tallies` and `errors`.

    `schema_verdicts` keeps GX's results on rules decided by the schema alone across the batches of one table.
    """
    pending: list[Rule] = []
    expectations = []
    for rule in rules:
        if rule.name in errors:
            continue  # an error on an earlier batch stands: no verdict can be merged with it
        missing = [column for column in rule.columns if column not in frame.columns]
        if missing:
            # GX would raise too, but for some expectations only an IndexError that names nothing.
            errors[rule.name] = _error(rule, f"missing column {', '.join(map(repr, missing))}", frame.columns)
            continue
        try:
            expectations.append(_expectation(rule))
        except Exception as exc:  # a misconfigured rule must not hide the verdicts of the others
            errors[rule.name] = _error(rule, f"invalid rule: {type(exc).__name__}: {exc}", frame.columns)
            continue
        pending.append(rule)
    if not expectations:
        return

    # GX hashes every column of the frame it is handed and copies every column for each row condition, so each
    # expectation goes to the narrowest frame that gives the same verdict: rules on the schema (column names, a
    # dtype GX judges without reading values) to no rows of every column, the others to their own columns.
    # Batches with the same columns and dtypes share those schema verdicts: GX runs them once per kind of batch.
    on_schema: list[tuple[Rule, Any]] = []
    on_values: list[tuple[Rule, Any]] = []
    for rule, expectation in zip(pending, expectations):
        (on_schema if _decided_by_schema(rule, frame) else on_values).append((rule, expectation))
    results: dict[str, Any] = {}
    if on_schema:
        key = (tuple(frame.columns), tuple(frame.dtypes), tuple(rule.name for rule, _ in on_schema))
        if key not in schema_verdicts:
            schema_verdicts[key] = _validate_with_gx(frame.iloc[:0], [e for _, e in on_schema], suite)
        results.update(schema_verdicts[key])
    if on_values:
        narrow = _value_columns([rule for rule, _ in on_values], frame)
        results.update(_validate_with_gx(frame if narrow is None else frame[narrow], [e for _, e in on_values],
                                         suite))
    for rule in pending:
        result = results.get(rule.name)
        if result is None:
            errors[rule.name] = _error(rule, "GX returned no result for this rule", frame.columns)
            continue
        raised = _raised_messages(result.exception_info)
        if raised:
            errors[rule.name] = _error(rule, "; ".join(raised), frame.columns)
            continue
        details = result.result or {}
        failure = None if result.success else _failure(rule, details, frame, suite)
        tallies.setdefault(rule.name, _Tally()).add(failure, details)


def _validate_with_gx(frame: pd.DataFrame, expectations: list[Any], suite: Suite) -> dict[str, Any]:
    """GX's result for each expectation on `frame`, by rule name."""
    import great_expectations as gx

    with _lock:
        batch = _batch_definition_for_process().get_batch(batch_parameters={"dataframe": frame})
        validation = batch.validate(gx.ExpectationSuite(name=suite.name, expectations=expectations),
                                    result_format=_RESULT_FORMAT)
    return {result.expectation_config.meta["rule"]: result for result in validation.results}


def _decided_by_schema(rule: Rule, frame: pd.DataFrame) -> bool:
    """Whether GX's verdict on `rule` depends only on `frame`'s column names and dtypes, not on its rows.

    GX judges a type rule on the column's dtype unless the dtype is `object`, where it checks each value.
    """
    if rule.when or "row_condition" in rule.kwargs:
        return False
    if rule.expectation in _SCHEMA_EXPECTATIONS:
        return True
    if rule.expectation not in _TYPE_EXPECTATIONS or list(frame.columns).count(rule.columns[0]) != 1:
        return False
    return frame.dtypes[rule.columns[0]].type is not np.object_


def _value_columns(rules: Sequence[Rule], frame: pd.DataFrame) -> list[Any] | None:
    """The columns of `frame` that `rules` read, their row conditions included; None for every column.

    A rule without columns (a row count, say) or with a GX row condition of its own may read anything: it gets the
    whole frame.
    """
    wanted: list[Any] = []
    for rule in rules:
        if not rule.columns or "row_condition" in rule.kwargs:
            return None
        for column in (*rule.columns, *(rule.when or {})):
            if column in frame.columns and column not in wanted:
                wanted.append(column)
    return wanted


def _batch_definition_for_process() -> Any:
    """The whole-dataframe batch definition of this process's ephemeral GX context, built on first use.

    Callers hold `_lock`: GX's context is not documented as thread-safe and Dagster may run checks in threads.
    """
    global _batch_definition
    if _batch_definition is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        # tqdm bars per metric would flood the run logs with one line per suite.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas("cxloop").add_dataframe_asset("frame")
        _batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
    return _batch_definition


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    """A frame GX reads correctly, without touching the caller's.

    The index is reset so the row positions GX reports select one row each. Text columns get the NA-backed
    `string` dtype: GX 1.24 matches no `type_list` name against pandas 3's default `str` dtype, and the
    alternative, `object`, makes GX check each value's type in Python (a second per string column per
    100k rows). `object` columns holding anything but strings stay as they are, so a string-kind rule still
    reports their odd values; so do all-null ones, which are not evidence of any kind.
    """
    frame = df.reset_index(drop=True)
    strings = {
        column: pd.StringDtype()
        for column, dtype in frame.dtypes.items()
        if (isinstance(dtype, pd.StringDtype) and dtype != pd.StringDtype())
        or (dtype == object and pd.api.types.infer_dtype(frame[column], skipna=True) == "string")
    }
    return frame.astype(strings) if strings else frame


def _expectation(rule: Rule) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    kwargs = dict(rule.kwargs)
    if rule.when:
        kwargs["row_condition"] = _condition(rule.when)
    return get_expectation_impl(rule.expectation)(**kwargs, meta={"rule": rule.name})


def _condition(when: Mapping[str, Any]) -> Any:
    from great_expectations.expectations.row_conditions import Column

    condition = None
    for column, value in when.items():
        term = Column(column).is_null() if value is None else Column(column) == value
        condition = term if condition is None else condition & term
    return condition


def _raised_messages(info: Any) -> list[str]:
    """Messages of exceptions GX caught while evaluating one expectation.

    GX reports either one flat dict or one dict per metric it tried to compute, keyed by the metric's id;
    metrics shared between expectations repeat their exception in each.
    """
    if not info:
        return []
    if not isinstance(info, Mapping):
        info = getattr(info, "to_json_dict", lambda: {})()
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    messages: list[str] = []
    for entry in entries:
        if entry.get("raised_exception"):
            message = str(entry.get("exception_message") or "exception without message")
            if message not in messages:
                messages.append(message)
    return messages


def _error(rule: Rule, message: str, columns: Iterable[Any]) -> RuleError:
    allowed = {str(column) for column in columns} | set(rule.columns)
    return RuleError(rule=rule.name, expectation=rule.expectation, column=_column_label(rule),
                     severity=rule.severity, message=_scrub(message, allowed))


def _failure(rule: Rule, result: Mapping[str, Any], frame: pd.DataFrame, suite: Suite) -> RuleFailure:
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    if rule.expectation == "expect_table_columns_to_match_set":
        # Column names are schema, not data: show them.
        missing = sorted(((result.get("details") or {}).get("mismatched") or {}).get("missing") or [])
        count, sample = len(missing), missing
    elif isinstance(result.get("partial_unexpected_index_list"), list):
        sample = _row_sample(rule, result["partial_unexpected_index_list"], frame, suite)
    else:
        sample = _aggregate_sample(rule, result.get("observed_value"), suite)
    return RuleFailure(rule=rule.name, expectation=rule.expectation, column=_column_label(rule),
                       severity=rule.severity, unexpected_count=None if count is None else int(count),
                       unexpected_percent=_plain(percent), sample=sample)


def _row_sample(rule: Rule, positions: list[Any], frame: pd.DataFrame, suite: Suite) -> list[dict[str, Any]]:
    """Distinct dicts of the safe key and rule columns of the first offending rows GX located."""
    def shown(column: str) -> bool:
        return column in frame.columns and not is_sensitive(column, suite.sensitive)

    columns = [column for column in suite.key if shown(column)]
    if rule.expectation != "expect_column_values_to_not_be_null":  # the value is null by definition
        columns += [column for column in rule.columns if shown(column) and column not in columns]
    is_type_rule = rule.expectation in _TYPE_EXPECTATIONS
    if not columns and not is_type_rule:
        return []
    sample: list[dict[str, Any]] = []
    for position in positions:
        if position not in frame.index:
            continue
        item = {column: _plain(frame.at[position, column]) for column in columns}
        if is_type_rule:
            # The offending value's type says what went wrong without showing the value.
            item[f"{rule.columns[0]}:type"] = type(frame.at[position, rule.columns[0]]).__name__
        if item not in sample:
            sample.append(item)
        if len(sample) == SAMPLE_SIZE:
            break
    return sample


def _aggregate_sample(rule: Rule, observed: Any, suite: Suite) -> list[Any]:
    if observed is None:
        return []
    if rule.expectation in _TYPE_EXPECTATIONS:
        return [str(observed)]  # a dtype name
    if all(not is_sensitive(column, suite.sensitive) for column in rule.columns):
        return [_plain(observed)]
    return []


def _column_label(rule: Rule) -> str | None:
    return ", ".join(rule.columns) or None


def _plain(value: Any) -> Any:
    """A JSON-native version of a pandas/numpy/GX scalar: NaN and NaT become None, times ISO strings."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (pd.Timestamp, datetime, date, time)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    return str(value)


_QUOTED = re.compile(r"(['\"])(.*?)\1")
_TYPE_NAME = re.compile(
    r"NoneType|NaTType|NAType|str|int|float|bool|bytes|object|list|dict|tuple|Timestamp|Timedelta|Decimal"
    r"|datetime(?:\.date|\.datetime)?|date|time|(?:u?int|float|Int|UInt|Float)\d+(?:Dtype)?|datetime64\[\w+\]"
)
_EMAIL = re.compile(r"[^\s'\"@]+@[^\s'\"@]+")
_LONG_HEX = re.compile(r"\b[0-9a-fA-F]{16,}\b")
_LONG_NUMBER = re.compile(r"\+?\d[\d ().-]{6,}\d")


def _scrub(message: str, allowed: Iterable[str]) -> str:
    """The first line of an exception message with quoted values, e-mails, hashes and phone-like numbers cut.

    Exceptions raised on data (a failed cast, a bad comparison) often quote the offending value. Quoted
    column names and type names stay: they say what broke without saying about whom.
    """
    allowed = set(allowed)
    lines = message.strip().splitlines()
    text = lines[0] if lines else "exception without message"

    def keep_or_cut(match: re.Match[str]) -> str:
        inner = match.group(2)
        if inner in allowed or _TYPE_NAME.fullmatch(inner):
            return match.group(0)
        return f"{match.group(1)}…{match.group(1)}"

    text = _QUOTED.sub(keep_or_cut, text)
    text = _EMAIL.sub("[email]", text)
    text = _LONG_HEX.sub("[hex]", text)
    text = _LONG_NUMBER.sub("[number]", text)
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _tag(item: RuleFailure | RuleError) -> str:
    return item.rule if item.severity == "error" else f"{item.rule} [warn]"


def _describe(failure: RuleFailure) -> str:
    text = _tag(failure)
    if failure.unexpected_count is not None:
        noun = "column" if failure.expectation == "expect_table_columns_to_match_set" else "row"
        text += f" {failure.unexpected_count} {noun}{'' if failure.unexpected_count == 1 else 's'}"
    if failure.sample:
        shown = ", ".join(_render(item) for item in failure.sample[:3])
        more = ", …" if len(failure.sample) > 3 else ""
        text += f" (e.g. {shown}{more})"
    return text


def _render(item: Any) -> str:
    if isinstance(item, Mapping):
        return " ".join(f"{key}={_render(value)}" for key, value in item.items())
    return " ".join(str(item).split())
