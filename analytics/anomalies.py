"""KPI anomaly detection: the days on which a KPI, or one of its breakdowns, left the range its own recent
history predicts, and the segment that moved it.

An alert is only useful if it fires on the day something breaks and stays quiet otherwise. That rules out a
mean and standard deviation over a trailing window: the anomaly inflates both, so the band widens exactly when
it should not, and the days after a spike look normal. Here every estimate is a median, a trimmed mean, or a
sum over days that passed a robust screen, and a day is judged from the days before it only, so its score
does not change when later data arrives.

Counts (sessions, orders, booked revenue, first orders):

- Weekday factors. Each day is divided by the mean of the week centred on it (a whole week holds every weekday
  once, so that mean has no weekday pattern); a weekday's factor is the median of its last `window_days // 7`
  such ratios. Where there is no real weekday pattern the factors are noise, so they are shrunk towards 1 by
  the share of their spread that the noise of those medians explains (an empirical-Bayes factor).
- Level. The mean of the last `LEVEL_DAYS` deseasonalised days after trimming values more than `TRIM_Z`
  robust standard deviations from their median (as robust as the median, much less noisy), times the growth
  over the days the level lags behind: the ratio of the medians of the window's two halves, capped at
  `MAX_GROWTH_STEP`. The shops grow, and a plain two-week level would sit 5-10% low.
- Expected = level x the scored day's weekday factor.
- Scale. Counts are compared on the square-root scale (Anscombe's sqrt(x + 3/8)), where Poisson noise is
  about 1/2 whatever the level and nearly symmetric even for a handful of orders a day. The overdispersion is
  the trimmed root mean square of the trailing window's residuals on that scale, never below 1, the Poisson
  floor, so a flat or tiny history cannot give a tiny scale.

Ratios (conversion, payment success, AOV, CSAT, NPS, funnel steps):

- A day's ratio is num / den, and ratios are pooled: sum(num) / sum(den) over days that pass a screen
  (`SCREEN_Z` robust standard deviations around a first pooled estimate), so an outage day does not drag the
  expectation of the days after it. A median of daily ratios would be biased at small volume: with five
  payment attempts a day most days are 100%.
- Additive weekday effects (an NPS near zero has no multiplicative pattern), each weekday's pooled ratio
  minus the window's, shrunk towards 0 like the count factors.
- Level. The deseasonalised pooled ratio of the last `LEVEL_DAYS` days, or of as many more days as it takes
  to hold `MIN_MINORITY` units of the rarer outcome: a small shop has a few payment failures a month, and two
  failure-free weeks must not set the expectation to 100%.
- Scale. Daily ratios are compared on a variance-stabilising scale: the arcsine square root of the position
  in `unit_range` (Anscombe's version at the day's volume) for a bounded unit, where a proportion's sampling
  noise is 1 / (2 sqrt(n)) at any rate and close to symmetric near 0% or 100%; the cube root for a unit bounded
  below only (AOV), which makes a mean of skewed order values nearly normal. For a bounded unit the noise is
  never assumed below that of a unit always at one end of its range: the binomial noise for a proportion, the
  largest a CSAT rating or NPS answer can have at that mean (so CSAT and NPS alert on large moves only). Above
  it, the overdispersion is the trimmed root mean square of the trailing standardised residuals.

The band is symmetric on the transformed scale, expected -/+ sensitivity x its noise, and mapped back, so in
the KPI's own units it is wider towards the middle of a ratio's range and above a count. Each side's scale is
its half-width divided by the sensitivity, score = (value - expected) / the scale of the value's side, and
|score| reaches the sensitivity exactly at the band's edge. A day is scored once its series has
`min_history_days` of history and its volume (expected level for counts, the day's denominator for ratios)
reaches `min_volume`; a count that was zero on more than a quarter of the last two weeks is not scored, as it
has no typical day to compare with.

The defaults watch only measures that are final on the day an order is placed (booked revenue, AOV over
orders placed, first orders), so the latest day is judged like any other; revenue, completed orders and new
customers count an order once it completes, often a day later, and their latest day always reads low.

The defaults were measured on 60 simulated shops (`simulator/`; seeds 1-20 at 300 customers over 120 days,
800 over 150 and 2,000 over 365), once on their daily truth and once with every KPI and breakdown rebuilt
from their exports (sessions and funnel from their true events); booked revenue and first orders come from
the orders export in both. No metric had more than 0.8 false alerts per 90 clean days in any shop, 0.22 at
most averaged over the shops of one size. A breakdown segment, which is alerted on its own when its KPI is not
flagged, had 0.05 false alerts per 90 clean days averaged over all segments; 9 of the 2,280 segments had more
than one per 90 days in their shop: two each for six, and 4 to 10 in 146 days for the store channel's booked
revenue in three 800-customer shops, all in the first weeks after its sparse early sales became daily.

The planted traffic drop was found in 20 of 20 shops of 2,000 customers, 18 of 20 of 800 and 5 of 20 of 300,
where a 60% drop of about 28 sessions is about three standard deviations. The planted payment failure spike
was found in 8 of 20 shops of 2,000 customers, 6 of 20 of 800 and none of 300: it straddles two UTC days and
rests on a few dozen attempts, and on half of those days an exact binomial test against the shop's own rate
finds the failures no more unusual than on one clean day in 90. That is why payment success alone has a
sensitivity of 2.8: the demo shop's spike (2,000 customers, seed 7; 8 of 27 attempts failed where 9% were
expected) scores -2.93. With a ratio's level from 10 units of the rarer outcome no sensitivity would do: the
spike needs 2.90 or less, and up to 2.95 two 800-customer shops had two false alerts in 146 days. From 20
(`MIN_MINORITY`) 2.75 to 2.85 keep every shop within one false alert per 90 days; at 2.7 two shops are not.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

COUNT = "count"
RATIO = "ratio"
KINDS = (COUNT, RATIO)
BOTH = "both"
DROP = "drop"
SPIKE = "spike"
DIRECTIONS = (BOTH, DROP, SPIKE)
# The dimension and segment of the KPI as a whole.
WHOLE = "all"

# Two-sided monitors, counts and AOV: their noise is learned from the data and has heavier tails than a
# normal's; at 3.0 some simulated shops had more than one false alert per 90 days.
SENSITIVITY = 3.5
# Proportions watched in one direction: their floor is the sampling noise of the rate itself, so at 3.0 the
# simulated shops had about one false alert per metric every two years. The funnel steps, CSAT and NPS stay
# there: at 2.8 four of the 60 simulated shops had a funnel step with more than one false alert per 90 days.
ONE_SIDED_RATE_SENSITIVITY = 3.0
# Payment success alone is watched more closely: a failure spike rests on a few dozen attempts a day, the
# 2,000-customer demo shop's planted one scores -2.93, and at 2.8 no simulated shop had more than one false
# alert per 90 days (at 2.7 two did; see the module docstring).
PAYMENT_SUCCESS_SENSITIVITY = 2.8
# Below 5 a day even a day with none is within a count's noise at 3.5, so only a spike of a handful of
# events could be found, which is not worth an alert.
MIN_COUNT = 5
MIN_TOPIC_TEXTS = 2
WINDOW_DAYS = 56
MIN_HISTORY_DAYS = 28

# Multiplier that turns a median absolute deviation into a standard deviation for normal data.
MAD_TO_SD = 1.4826
# Days of the level: two of each weekday. Longer lags the trend, shorter is noisy.
LEVEL_DAYS = 14
# A day's centred week ends three days later, so the latest weekday ratio known before the scored day t is
# that of t - 4.
FACTOR_LAG_DAYS = 4
# Fewer same-weekday ratios than this and the weekday pattern is not estimated at all (factors stay 1).
MIN_FACTOR_DAYS = 3
# The variance of a median of n normal values is about pi/2 times that of their mean.
MEDIAN_VARIANCE_FACTOR = math.pi / 2
# Most the growth correction may move a count's level (43% growth in four weeks); beyond that a "trend" is
# more likely a step that extrapolation would overshoot.
MAX_GROWTH_STEP = 1.1
# More zero days than this share of the level's days and a count has no typical day.
MAX_ZERO_SHARE = 0.25
# Fewer trailing residuals than this and there is no scale, so the day is not scored.
MIN_RESIDUALS = 7
# Values further than this many robust standard deviations from the median are left out of the level's mean
# and the scale's root mean square.
TRIM_Z = 3.5
# The variance of a standard normal truncated to +-TRIM_Z, which the trimmed root mean square corrects for.
TRUNCATED_VARIANCE = 1 - (2 * TRIM_Z * math.exp(-TRIM_Z ** 2 / 2) / math.sqrt(2 * math.pi)
                          / math.erf(TRIM_Z / math.sqrt(2)))
# Days further than this from a first pooled ratio (in robust standard deviations) are left out of the
# ratio's expectation, so an outage day does not train the days after it.
SCREEN_Z = 3.5
# A ratio's level extends beyond LEVEL_DAYS until it holds this many units of the rarer outcome. The band
# takes the level as known, so its own noise must be small: from 10 payment failures the failure rate is
# uncertain by about a third of itself (1 / sqrt(10)), and a level that came out low made ordinary days of
# two 800-customer shops look like drops; from 20 it is about a fifth.
MIN_MINORITY = 20
# Anscombe's offset: sqrt(x + 3/8) has nearly constant variance for Poisson counts, and
# asin(sqrt((x + 3/8) / (n + 3/4))) for binomial ones.
ANSCOMBE = 3 / 8
# Least relative noise per unit of an unbounded ratio, so a perfectly flat AOV history has a scale.
MIN_RELATIVE_NOISE = 0.01
_TINY = 1e-12

OUTPUT_COLUMNS = ("date", "metric", "dimension", "segment", "value", "expected", "lower", "upper", "score",
                  "direction", "volume", "drilldown_dimension", "drilldown_segment", "drilldown")
BAND_COLUMNS = ("date", "metric", "value", "expected", "lower", "upper", "score")
_DTYPES = {"date": "datetime64[us]", "metric": "str", "dimension": "str", "segment": "str", "direction": "str",
           "drilldown_dimension": "object", "drilldown_segment": "object", "drilldown": "object"}
_NULLABLE_TEXT = ("drilldown_dimension", "drilldown_segment", "drilldown")

BASE_MEASURES = ("sessions", "converted_sessions", "orders", "completed_orders", "revenue_usd", "booked_usd",
                 "first_orders", "payment_attempts", "payment_successes", "new_customers", "tickets", "csat_sum",
                 "csat_count", "nps_responses", "nps_net", "viewed_users", "added_users", "checkout_users",
                 "payment_users", "ordered_users", "texts", "negative_texts")


@dataclass(frozen=True)
class Monitor:
    """How one KPI is watched.

    `numerator` is the counted column of a count, or the numerator of a ratio over `denominator`. Output
    values are multiplied by `scale` (100 turns NPS's net share into points). `unit_range` is what one unit
    of a ratio's denominator can contribute to its numerator: (0, 1) for a proportion, (1, 5) for a CSAT
    rating, (-1, 1) for an NPS answer, (0, inf) for an order's value; it sets the sampling-noise floor and
    clips the band. `dimensions` are the breakdowns that are scored too and searched for the segment that
    moved a flagged KPI.
    """

    metric: str
    kind: str
    numerator: str
    denominator: str | None = None
    scale: float = 1.0
    direction: str = BOTH
    sensitivity: float = SENSITIVITY
    window_days: int = WINDOW_DAYS
    min_history_days: int = MIN_HISTORY_DAYS
    min_volume: float = 0.0
    dimensions: tuple[str, ...] = ()
    unit_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.metric}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if (self.kind == RATIO) != (self.denominator is not None):
            raise ValueError(f"{self.metric}: a ratio needs a denominator and a count must not have one")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {self.direction!r}")
        if isinstance(self.sensitivity, bool) or not (isinstance(self.sensitivity, (int, float))
                                                      and self.sensitivity > 0):
            raise ValueError(f"sensitivity must be a positive number, not {self.sensitivity!r}")
        if isinstance(self.window_days, bool) or not (isinstance(self.window_days, int) and self.window_days >= 21):
            raise ValueError(f"window_days must be a whole number of at least 21 days (three of each weekday), "
                             f"not {self.window_days!r}")
        if isinstance(self.min_history_days, bool) or not (isinstance(self.min_history_days, int)
                                                           and self.min_history_days >= 0):
            raise ValueError(f"min_history_days must be a whole number of days, not {self.min_history_days!r}")
        if isinstance(self.min_volume, bool) or not (isinstance(self.min_volume, (int, float))
                                                     and self.min_volume >= 0):
            raise ValueError(f"min_volume must be a non-negative number, not {self.min_volume!r}")
        if isinstance(self.dimensions, str) or not all(isinstance(d, str) for d in self.dimensions):
            raise ValueError(f"dimensions must be a list of breakdown names, not {self.dimensions!r}")
        if WHOLE in self.dimensions:
            raise ValueError(f"dimensions name breakdowns; {WHOLE!r} is the KPI itself")
        low, high = self.unit_range
        if not (math.isfinite(low) and low < high):
            raise ValueError(f"{self.metric}: unit_range must be (low, high) with a finite low < high")
        object.__setattr__(self, "dimensions", tuple(self.dimensions))


def _count(metric: str, column: str, *, min_volume: float = MIN_COUNT,
           dimensions: tuple[str, ...] = ()) -> Monitor:
    return Monitor(metric, COUNT, column, sensitivity=SENSITIVITY, min_volume=min_volume, dimensions=dimensions)


def _ratio(metric: str, numerator: str, denominator: str, *, min_volume: float, direction: str = DROP,
           dimensions: tuple[str, ...] = (), scale: float = 1.0, unit_range: tuple[float, float] = (0.0, 1.0),
           sensitivity: float | None = None) -> Monitor:
    if sensitivity is None:
        one_sided = direction != BOTH and math.isfinite(unit_range[1])
        sensitivity = ONE_SIDED_RATE_SENSITIVITY if one_sided else SENSITIVITY
    return Monitor(metric, RATIO, numerator, denominator, scale=scale, direction=direction,
                   sensitivity=sensitivity, min_volume=min_volume, dimensions=dimensions, unit_range=unit_range)


# Why each default:
# - Every monitor: a 56-day window (eight of each weekday, so a weekday's median survives three bad weeks)
#   and 28 days of history before the first score (four of each weekday for the factors, three weeks of
#   residuals for the scale).
# - Measures final when an order is placed: booked revenue (`booked_usd`, every order's value whatever its
#   status), AOV over orders placed, and first orders (`first_orders`, a customer's first order of any
#   status). Revenue, completed orders and new customers count an order once it completes, and about half of
#   the latest day's orders complete the next day, so the latest day of those always reads low and would be
#   flagged as a drop on every build.
# - Direction: volumes, booked revenue, conversion and AOV both ways (a spike is a tag firing twice, bots, a
#   pricing error); quality rates only for drops, since their rise is never a problem: payment success, CSAT,
#   NPS, the funnel steps.
# - Sensitivity: 3.5, 3.0 for proportions watched in one direction and 2.8 for payment success (SENSITIVITY,
#   ONE_SIDED_RATE_SENSITIVITY, PAYMENT_SUCCESS_SENSITIVITY).
# - min_volume, set against a 300-customer shop (about 28 sessions, 5 orders, 5 payment attempts, 2 first
#   orders, under 1 CSAT rating and 2 survey answers a day): counts from 5 a day (MIN_COUNT); booked revenue
#   always, since a rarely active series is left out by its zero days instead; ratios from the denominator
#   at which a day without a single success leaves the band at the usual rate: 50 sessions for conversion
#   (about 15%), 10 entrants for a funnel step (40% and up), 5 payment attempts, orders, ratings or answers.
#   Such a shop's sessions, booked revenue and funnel steps are scored, its orders, AOV and payment success on
#   its busier days; its conversion, first orders, CSAT and NPS are not, since no day there could be told from
#   chance.
# - Texts (tickets, reviews, NPS comments; voc_texts): their volume by topic, for spikes only (a complaint
#   that suddenly grows); a topic holds a few texts a day in a small shop, so its series is scored from 2 a
#   day (MIN_TOPIC_TEXTS), where the Poisson floor of the scale still needs about 11 to flag; and the share of
#   negative texts, for rises.
# - Breakdowns follow `kpi_segments_daily`: channel for sessions, orders, booked revenue, payments and the
#   funnel; device type for sessions and conversion; payment method for payments.
DEFAULT_MONITORS: tuple[Monitor, ...] = (
    _count("sessions", "sessions", dimensions=("channel", "device_type")),
    _count("orders", "orders", dimensions=("channel",)),
    _count("booked_revenue_usd", "booked_usd", min_volume=0, dimensions=("channel",)),
    _ratio("conversion_rate", "converted_sessions", "sessions", min_volume=50, direction=BOTH,
           dimensions=("channel", "device_type")),
    _ratio("booked_aov_usd", "booked_usd", "orders", min_volume=5, direction=BOTH, dimensions=("channel",),
           unit_range=(0.0, math.inf)),
    _ratio("payment_success_rate", "payment_successes", "payment_attempts", min_volume=5,
           dimensions=("payment_method", "channel"), sensitivity=PAYMENT_SUCCESS_SENSITIVITY),
    _count("first_orders", "first_orders"),
    _ratio("csat", "csat_sum", "csat_count", min_volume=5, unit_range=(1.0, 5.0)),
    _ratio("nps", "nps_net", "nps_responses", min_volume=5, scale=100.0, unit_range=(-1.0, 1.0)),
    _ratio("view_to_add_rate", "added_users", "viewed_users", min_volume=10, dimensions=("channel",)),
    _ratio("add_to_checkout_rate", "checkout_users", "added_users", min_volume=10, dimensions=("channel",)),
    _ratio("checkout_to_payment_rate", "payment_users", "checkout_users", min_volume=10, dimensions=("channel",)),
    _ratio("payment_to_order_rate", "ordered_users", "payment_users", min_volume=10, dimensions=("channel",)),
    Monitor("texts", COUNT, "texts", direction=SPIKE, min_volume=MIN_TOPIC_TEXTS, dimensions=("topic",)),
    _ratio("negative_text_share", "negative_texts", "texts", min_volume=5, direction=SPIKE),
)

# What the configuration may change, per metric and under `defaults`.
TUNABLE_KEYS = ("direction", "sensitivity", "window_days", "min_history_days", "min_volume", "dimensions")
_CONFIG_SECTIONS = ("defaults", "metrics")


def load_monitors(config: Mapping[str, Any] | None) -> list[Monitor]:
    """The monitors to run: `DEFAULT_MONITORS` with the overrides of the parsed `anomalies` section,
    `{"defaults": {...}, "metrics": {metric: {...}}}`.

    A metric's own keys win over `defaults`, which win over the built-in values; `enabled: false` drops a
    metric. Unknown sections, metrics or keys and invalid values raise ValueError naming the key, because a
    silently ignored typo would leave a KPI watched differently from what its owner believes.
    """
    if config is None:
        return list(DEFAULT_MONITORS)
    if not isinstance(config, Mapping):
        raise ValueError(f"anomalies: expected a mapping with {' and '.join(_CONFIG_SECTIONS)}, "
                         f"got {type(config).__name__}")
    unknown = sorted(map(str, set(config) - set(_CONFIG_SECTIONS)))
    if unknown:
        raise ValueError(f"anomalies: unknown key(s) {', '.join(unknown)}; known: {', '.join(_CONFIG_SECTIONS)}")
    defaults = _overrides(config.get("defaults"), "anomalies.defaults", TUNABLE_KEYS)
    metrics = config.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"anomalies.metrics: expected a mapping of metric names, got {type(metrics).__name__}")
    known = [m.metric for m in DEFAULT_MONITORS]
    unknown = sorted(map(str, set(metrics) - set(known)))
    if unknown:
        raise ValueError(f"anomalies.metrics: unknown metric(s) {', '.join(unknown)}; known: {', '.join(known)}")
    monitors = []
    for monitor in DEFAULT_MONITORS:
        where = f"anomalies.metrics.{monitor.metric}"
        own = _overrides(metrics.get(monitor.metric), where, (*TUNABLE_KEYS, "enabled"))
        enabled = own.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"{where}.enabled: expected true or false, not {enabled!r}")
        try:
            monitor = replace(monitor, **defaults)
        except ValueError as exc:
            raise ValueError(f"anomalies.defaults: {exc}") from exc
        try:
            monitor = replace(monitor, **own)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        if enabled:
            monitors.append(monitor)
    return monitors


def _overrides(entry: Any, where: str, allowed: Sequence[str]) -> dict[str, Any]:
    """One mapping of overrides, checked for unknown keys and value types."""
    if entry is None:
        return {}
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = sorted(map(str, set(entry) - set(allowed)))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
    values = dict(entry)
    if "dimensions" in values:
        dims = values["dimensions"]
        if dims is None:
            dims = ()
        if isinstance(dims, str) or not isinstance(dims, Sequence):
            raise ValueError(f"{where}.dimensions: expected a list of breakdown names, not {dims!r}")
        values["dimensions"] = tuple(dims)
    for key in ("sensitivity", "min_volume"):
        if key in values and (isinstance(values[key], bool) or not isinstance(values[key], (int, float))):
            raise ValueError(f"{where}.{key}: expected a number, not {values[key]!r}")
    for key in ("window_days", "min_history_days"):
        if key in values and (isinstance(values[key], bool) or not isinstance(values[key], int)):
            raise ValueError(f"{where}.{key}: expected a whole number of days, not {values[key]!r}")
    if "direction" in values and values["direction"] not in DIRECTIONS:
        raise ValueError(f"{where}.direction: expected one of {', '.join(DIRECTIONS)}, "
                         f"not {values['direction']!r}")
    return values


def empty_anomalies() -> pd.DataFrame:
    """The anomaly table with no rows, typed, so callers can write or concatenate it without special cases."""
    return _typed(pd.DataFrame({c: [] for c in OUTPUT_COLUMNS}), OUTPUT_COLUMNS)


def detect(series: pd.DataFrame, monitors: Sequence[Monitor] | None = None,
           as_of: date | None = None) -> pd.DataFrame:
    """The flagged days of every monitor's KPI and breakdowns, with expected band, score and direction and,
    for a KPI as a whole, the breakdown segment that moved most that day.

    `series` is long: one row per date, dimension and segment with the base measures as columns (those of
    `kpi_segments_daily`); a monitor whose columns are absent is skipped. Rows after `as_of` are ignored, as if
    detection ran that day. The last date of the input is taken as complete, so a segment without a row on a
    day had no activity then. Each day is scored from the days before it only.
    """
    parts = []
    for scored in _score_all(series, monitors, as_of):
        flagged = scored.flagged_rows()
        if len(flagged):
            parts.append(flagged)
    if not parts:
        return empty_anomalies()
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["date", "metric", "dimension", "segment"], kind="stable", ignore_index=True)
    return _typed(out, OUTPUT_COLUMNS)


def expected_bands(series: pd.DataFrame, monitors: Sequence[Monitor] | None = None,
                   as_of: date | None = None) -> pd.DataFrame:
    """Every scored day of every KPI as a whole (date, metric, value, expected, lower, upper, score), flagged
    or not, so a chart can draw the band the alerts were judged against."""
    parts = [part for scored in _score_all(series, monitors, as_of) if len(part := scored.band_rows())]
    if not parts:
        return _typed(pd.DataFrame({c: [] for c in BAND_COLUMNS}), BAND_COLUMNS)
    out = pd.concat(parts, ignore_index=True).sort_values(["date", "metric"], kind="stable", ignore_index=True)
    return _typed(out, BAND_COLUMNS)


def _typed(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({c: frame[c].astype(_DTYPES.get(c, "float64")) for c in columns})
    for column in _NULLABLE_TEXT:
        if column in out:
            out[column] = out[column].where(out[column].notna(), None)
    return out


@dataclass
class _Input:
    """The series as arrays: day number on one calendar, series number, and each base measure."""

    dates: np.ndarray
    day: np.ndarray
    key: np.ndarray
    keys: list[tuple[str, str]]
    measures: dict[str, np.ndarray]


def _prepare(series: pd.DataFrame, as_of: date | None) -> _Input | None:
    """Dates as days from the first, (dimension, segment) as numbers, rows after `as_of` dropped."""
    missing = [c for c in ("date", "dimension", "segment") if c not in series.columns]
    if missing:
        raise ValueError(f"series needs columns date, dimension and segment; missing {', '.join(missing)}")
    dates = pd.to_datetime(series["date"])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    dates = dates.dt.normalize().to_numpy().astype("datetime64[D]")
    keep = ~np.isnat(dates)
    if as_of is not None:
        keep &= dates <= np.datetime64(pd.Timestamp(as_of).date(), "D")
    if not keep.any():
        return None
    dates = dates[keep]
    start, end = dates.min(), dates.max()
    pairs = pd.MultiIndex.from_arrays([series["dimension"].astype(str).to_numpy()[keep],
                                       series["segment"].astype(str).to_numpy()[keep]])
    key, uniques = pd.factorize(pairs)
    measures = {c: pd.to_numeric(series[c], errors="coerce").to_numpy(dtype=float)[keep]
                for c in BASE_MEASURES if c in series.columns}
    calendar = np.arange(start, end + np.timedelta64(1, "D"), dtype="datetime64[D]").astype("datetime64[us]")
    return _Input(calendar, (dates - start).astype(int), key, list(uniques), measures)


def _score_all(series: pd.DataFrame, monitors: Sequence[Monitor] | None, as_of: date | None) -> list[_Scored]:
    data = _prepare(series, as_of)
    if data is None:
        return []
    scored = (_score_monitor(data, m) for m in (DEFAULT_MONITORS if monitors is None else monitors))
    return [s for s in scored if s is not None]


@dataclass
class _Scored:
    """One monitor's series on the shared calendar: arrays are (days, series), series 0 the whole KPI, then
    each of its dimensions in order. `below` and `above` are the scales on each side of `expected`."""

    monitor: Monitor
    dates: np.ndarray
    keys: list[tuple[str, str]]
    value: np.ndarray
    expected: np.ndarray
    below: np.ndarray
    above: np.ndarray
    volume: np.ndarray
    eligible: np.ndarray
    share_weight: np.ndarray

    def score(self) -> np.ndarray:
        deviation = self.value - self.expected
        with np.errstate(divide="ignore", invalid="ignore"):
            return deviation / np.where(deviation < 0, self.below, self.above)

    def flags(self) -> np.ndarray:
        score, m = self.score(), self.monitor
        up = (score >= m.sensitivity) if m.direction in (BOTH, SPIKE) else False
        down = (score <= -m.sensitivity) if m.direction in (BOTH, DROP) else False
        return self.eligible & (up | down)

    def _rows(self, mask: np.ndarray) -> pd.DataFrame:
        days, cols = np.nonzero(mask)
        m = self.monitor
        lower = self.expected - m.sensitivity * self.below
        upper = self.expected + m.sensitivity * self.above
        if m.kind == COUNT:
            lower = np.maximum(lower, 0.0)
        else:
            lower, upper = np.clip(lower, *m.unit_range), np.clip(upper, *m.unit_range)
        score = self.score()[days, cols]
        return pd.DataFrame({
            "date": self.dates[days],
            "metric": m.metric,
            "dimension": [self.keys[c][0] for c in cols],
            "segment": [self.keys[c][1] for c in cols],
            "value": self.value[days, cols] * m.scale,
            "expected": self.expected[days, cols] * m.scale,
            "lower": lower[days, cols] * m.scale,
            "upper": upper[days, cols] * m.scale,
            "score": score,
            "direction": np.where(score > 0, SPIKE, DROP),
            "volume": self.volume[days, cols],
            "drilldown_dimension": [None] * len(days),
            "drilldown_segment": [None] * len(days),
            "drilldown": [None] * len(days),
        }, index=pd.MultiIndex.from_arrays([days, cols]))

    def band_rows(self) -> pd.DataFrame:
        mask = np.zeros_like(self.eligible)
        mask[:, 0] = self.eligible[:, 0]
        return self._rows(mask).reset_index(drop=True)

    def flagged_rows(self) -> pd.DataFrame:
        rows = self._rows(self.flags())
        for i, (day, col) in enumerate(rows.index):
            if col == 0:
                rows.iloc[i, -3:] = self._drilldown(day)
        return rows.reset_index(drop=True)

    def _drilldown(self, day: int) -> tuple[str | None, str | None, str | None]:
        """The breakdown segment with the largest part of the KPI's move that day, in the move's direction.

        A count's segments add up to the whole, so a segment's part is its own deviation. A ratio's whole is
        the volume-weighted mean of its segments', so a segment's part is its deviation times its share of its
        dimension's volume that day.
        """
        move = self.value[day, 0] - self.expected[day, 0]
        if len(self.keys) < 2 or not np.isfinite(move) or move == 0:
            return None, None, None
        parts = (self.value[day, 1:] - self.expected[day, 1:]) * self.share_weight[day, 1:]
        parts = np.where(np.isfinite(parts) & (parts * move > 0), np.abs(parts), -1.0)
        best = int(np.argmax(parts))
        if parts[best] <= 0:
            return None, None, None
        col = best + 1
        dimension, segment = self.keys[col]
        value = self.value[day, col] * self.monitor.scale
        expected = self.expected[day, col] * self.monitor.scale
        change = f" ({(value / expected - 1) * 100:+.0f}%)" if expected else ""
        share = (value - expected) * self.share_weight[day, col] / (move * self.monitor.scale) * 100
        text = (f"{dimension}={segment}: {_number(value)} vs {_number(expected)} expected{change}, "
                f"{share:.0f}% of the move")
        return dimension, segment, text


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:.3g}"


def _score_monitor(data: _Input, monitor: Monitor) -> _Scored | None:
    columns = [monitor.numerator] + ([monitor.denominator] if monitor.denominator else [])
    if any(c not in data.measures for c in columns):
        return None
    # The whole KPI first, then each dimension in the monitor's order, segments by name; only series with a
    # value of this monitor's measures.
    order = {d: i for i, d in enumerate(monitor.dimensions)}
    ranked = sorted((((-1, "") if k == (WHOLE, WHOLE) else (order[k[0]], k[1])), i)
                    for i, k in enumerate(data.keys) if k == (WHOLE, WHOLE) or k[0] in order)
    if not ranked or ranked[0][0] != (-1, ""):
        return None
    present = np.zeros(len(data.keys), dtype=bool)
    observed = np.any([~np.isnan(data.measures[c]) for c in columns], axis=0)
    present[np.unique(data.key[observed])] = True
    chosen = [i for _, i in ranked if present[i]]
    if not chosen or chosen[0] != ranked[0][1]:
        return None
    column_of = np.full(len(data.keys), -1)
    column_of[chosen] = np.arange(len(chosen))
    rows = observed & (column_of[data.key] >= 0)
    day, col = data.day[rows], column_of[data.key[rows]]
    shape = (len(data.dates), len(chosen))

    def matrix(column: str) -> np.ndarray:
        # From a series' first row on every day is a real day: absent means no activity (zero).
        out = np.zeros(shape)
        np.add.at(out, (day, col), data.measures[column][rows])
        nulls = np.zeros(shape, dtype=bool)
        nulls[day[np.isnan(data.measures[column][rows])], col[np.isnan(data.measures[column][rows])]] = True
        out[nulls] = np.nan
        return out

    first = np.full(len(chosen), len(data.dates))
    np.minimum.at(first, col, day)
    days = np.arange(len(data.dates))[:, None]
    before = days < first[None, :]
    history = days - first[None, :] >= monitor.min_history_days
    keys = [data.keys[i] for i in chosen]

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if monitor.kind == COUNT:
            # A null count on a day with a row means nothing was recorded: zero, like an absent day.
            y = np.nan_to_num(matrix(monitor.numerator), nan=0.0)
            y[before] = np.nan
            expected, below, above = _count_model(y, monitor)
            value, volume, share_weight = y, expected, np.ones(shape)
        else:
            num, den = matrix(monitor.numerator), matrix(monitor.denominator)
            unobserved = before | np.isnan(num) | np.isnan(den) | ~(den > 0)
            num[unobserved] = np.nan
            den[unobserved] = np.nan
            expected, below, above = _ratio_model(num, den, monitor)
            value, volume = num / den, np.where(unobserved, 0.0, den)
            share_weight = _volume_shares(volume, keys)
        eligible = (history & np.isfinite(value) & np.isfinite(expected) & np.isfinite(below)
                    & np.isfinite(above) & (below > 0) & (above > 0) & (volume > 0) & (volume >= monitor.min_volume))
    return _Scored(monitor, data.dates, keys, value, expected, below, above, volume, eligible, share_weight)


def _volume_shares(volume: np.ndarray, keys: list[tuple[str, str]]) -> np.ndarray:
    """Each breakdown segment's share of its dimension's volume per day (1 for the whole)."""
    shares = np.ones_like(volume)
    dims = np.array([k[0] for k in keys])
    for dim in dict.fromkeys(dims[1:]):
        cols = np.flatnonzero(dims == dim)
        total = volume[:, cols].sum(axis=1, keepdims=True)
        shares[:, cols] = np.where(total > 0, volume[:, cols] / np.where(total > 0, total, 1.0), np.nan)
    return shares


def _trailing(a: np.ndarray, length: int, lag: int = 1) -> np.ndarray:
    """Windows over the first axis: out[t] holds a[t-lag-length+1 .. t-lag], NaN outside `a`. A negative lag
    reaches into later days (lag -3 with length 7 is the week centred on t)."""
    before = np.full((length + lag - 1,) + a.shape[1:], np.nan)
    after = np.full((max(-lag, 0),) + a.shape[1:], np.nan)
    padded = np.concatenate([before, a, after])
    return np.lib.stride_tricks.sliding_window_view(padded, length, axis=0)[: a.shape[0]]


def _nanmedian(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over the last axis ignoring NaN, and the number of values it saw (sorting puts NaN last)."""
    ordered = np.sort(a, axis=-1)
    n = np.sum(~np.isnan(a), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, np.minimum(n // 2, a.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(n > 0, (low + high) / 2, np.nan), n


def _trimmed_mean(a: np.ndarray, min_sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis of the values within TRIM_Z robust standard deviations (from the MAD, at least
    `min_sd`) of the median, and how many values there were."""
    median, n = _nanmedian(a)
    distance = np.abs(a - median[..., None])
    sd = np.fmax(MAD_TO_SD * _nanmedian(distance)[0], min_sd)
    keep = distance <= TRIM_Z * sd[..., None]
    kept = keep.sum(axis=-1)
    mean = np.where(keep, a, 0.0).sum(axis=-1) / np.maximum(kept, 1)
    return np.where(kept > 0, mean, median), n


def _trimmed_rms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviation of residuals around zero over the last axis: the root mean square of those within
    TRIM_Z robust standard deviations (from their median absolute value), corrected for the truncation; and
    how many residuals there were."""
    magnitude = np.abs(a)
    typical, n = _nanmedian(magnitude)
    keep = magnitude <= TRIM_Z * MAD_TO_SD * typical[..., None]
    kept = keep.sum(axis=-1)
    square = np.where(keep, magnitude ** 2, 0.0).sum(axis=-1) / np.maximum(kept, 1)
    return np.where(kept > 0, np.sqrt(square / TRUNCATED_VARIANCE), np.nan), n


def _shift(a: np.ndarray, days: int) -> np.ndarray:
    """`a` moved `days` later along the first axis (NaN where nothing precedes)."""
    out = np.full_like(a, np.nan)
    if days < a.shape[0]:
        out[days:] = a[: a.shape[0] - days]
    return out


def _shrink(effects: np.ndarray, noise: np.ndarray, neutral: float) -> np.ndarray:
    """Effects (last axis: weekday) pulled towards `neutral` by the share of their spread that their noise
    variance explains: the empirical-Bayes factor max(0, 1 - noise variance / observed variance)."""
    spread = np.mean((effects - neutral) ** 2, axis=-1, keepdims=True)
    keep = np.clip(1 - np.mean(noise, axis=-1, keepdims=True) / np.where(spread > 0, spread, 1.0), 0.0, 1.0)
    return neutral + np.where(spread > 0, keep, 0.0) * (effects - neutral)


def _weekday_factors(y: np.ndarray, weeks: int) -> np.ndarray:
    """Multiplicative weekday factors known at each day t, shape (days, series, 7): [..., k] is the factor of
    the weekday k days before t (k = 0 is t's own weekday), normalised to mean 1 and shrunk towards 1."""
    week_mean = np.mean(_trailing(y, 7, lag=-3), axis=-1)
    ratio = np.where(week_mean > 0, y / np.where(week_mean > 0, week_mean, 1.0), np.nan)
    # The last `weeks` ratios of one weekday, ending at each day: a window with a stride of seven days.
    same_day = _trailing(ratio, 7 * (weeks - 1) + 1, lag=0)[..., ::7]
    factor_at, n_at = _nanmedian(same_day)
    spread_at = MAD_TO_SD * _nanmedian(np.abs(same_day - factor_at[..., None]))[0]
    noise_at = MEDIAN_VARIANCE_FACTOR * spread_at ** 2 / np.maximum(n_at, 1)
    factors, noise, counts = [], [], []
    for offset in range(7):
        # The latest ratio of that weekday whose centred week ended before t.
        end = offset + (7 if offset < FACTOR_LAG_DAYS else 0)
        factors.append(_shift(factor_at, end))
        noise.append(_shift(noise_at, end))
        counts.append(_shift(n_at.astype(float), end))
    factor = np.stack(factors, axis=-1)
    mean = np.mean(factor, axis=-1, keepdims=True)
    known = (np.all(np.stack(counts, axis=-1) >= MIN_FACTOR_DAYS, axis=-1, keepdims=True)
             & np.all(np.isfinite(factor), axis=-1, keepdims=True) & (mean > 0))
    mean = np.where(known, mean, 1.0)
    noise = np.nan_to_num(np.stack(noise, axis=-1)) / mean ** 2
    return np.where(known, _shrink(np.where(known, factor / mean, 1.0), noise, 1.0), 1.0)


def _count_model(y: np.ndarray, monitor: Monitor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected count and the scales below and above it per day, from the days before it."""
    window = monitor.window_days
    factor = _weekday_factors(y, window // 7)
    offsets = (window - np.arange(window)) % 7
    history_factor = factor[..., offsets]
    deseasonalised = np.where(history_factor > 0, _trailing(y, window) / history_factor, np.nan)
    level_days = min(LEVEL_DAYS, window)
    recent = deseasonalised[..., -level_days:]
    rough, n_level = _nanmedian(recent)
    # Poisson noise as the least spread, so a run of equal small counts does not trim every other value.
    level, _ = _trimmed_mean(recent, np.sqrt(np.fmax(rough, 1.0)))
    zero_share = np.sum(recent == 0, axis=-1) / np.maximum(n_level, 1)
    level = np.where((n_level >= level_days // 2) & (zero_share <= MAX_ZERO_SHARE), level, np.nan)
    # Growth: the ratio of the medians of the window's two halves, whose centres are `half` days apart, over
    # the (level_days + 1) / 2 days the level lags behind t.
    half = window // 2
    late, n_late = _nanmedian(deseasonalised[..., -half:])
    early, n_early = _nanmedian(deseasonalised[..., :half])
    growth = np.where((early > 0) & (late > 0) & (n_early >= half // 2) & (n_late >= half // 2),
                      late / np.where(early > 0, early, 1.0), 1.0)
    growth = np.clip(growth ** ((level_days + 1) / 2 / half), 1 / MAX_GROWTH_STEP, MAX_GROWTH_STEP)
    expected = level * growth * factor[..., 0]

    root = np.sqrt(np.fmax(expected, 0.0) + ANSCOMBE)
    residual = 2 * (np.sqrt(np.fmax(y, 0.0) + ANSCOMBE) - root)
    spread, n_resid = _trimmed_rms(_trailing(residual, window))
    spread = np.where(n_resid >= MIN_RESIDUALS, np.fmax(spread, 1.0), np.nan)
    sensitivity = monitor.sensitivity
    step = sensitivity * spread / 2
    # Squared with its sign, so an edge below zero stays below zero.
    low_root = root - step
    low_edge = np.sign(low_root) * low_root ** 2 - ANSCOMBE
    high_edge = (root + step) ** 2 - ANSCOMBE
    return expected, (expected - low_edge) / sensitivity, (high_edge - expected) / sensitivity


def _unit_variance(p: np.ndarray, low: float, high: float) -> np.ndarray:
    """The largest variance of one unit bounded by [low, high] with mean p (Bhatia-Davis); p(1-p) for a
    proportion."""
    return np.maximum((p - low) * (high - p), 0.0)


def _angle(p: np.ndarray, low: float, high: float, n: np.ndarray | None = None) -> np.ndarray:
    """The arcsine square root of p's position in [low, high]; at volume n Anscombe's version,
    asin(sqrt((x + 3/8) / (n + 3/4))) of the x "successes" that position stands for."""
    share = np.clip((p - low) / (high - low), 0.0, 1.0)
    if n is not None:
        share = (share * n + ANSCOMBE) / (n + 2 * ANSCOMBE)
    return np.arcsin(np.sqrt(share))


def _from_angle(angle: np.ndarray, low: float, high: float, n: np.ndarray) -> np.ndarray:
    """Inverse of `_angle` at volume n, continued monotonically past the ends of the range so that a band edge
    beyond the range stays beyond it instead of folding back."""
    angle = np.clip(angle, -math.pi / 2, math.pi)
    sine = np.sin(angle) ** 2
    share = np.where(angle < 0, -sine, np.where(angle > math.pi / 2, 2 - sine, sine))
    share = (share * (n + 2 * ANSCOMBE) - ANSCOMBE) / n
    return low + share * (high - low)


def _standardised(p: np.ndarray, centre: np.ndarray, n: np.ndarray, low: float, high: float) -> np.ndarray:
    """Deviations of daily ratios from `centre` in units of their sampling noise at volume n: on the arcsine
    scale for a bounded unit, on the cube-root scale (relative to the centre) for one bounded below only."""
    if math.isfinite(high):
        return (_angle(p, low, high, n) - _angle(centre, low, high)) * 2 * np.sqrt(n)
    return (np.cbrt(np.fmax(p - low, 0.0) / np.fmax(centre - low, _TINY)) - 1) * 3 * np.sqrt(n)


def _ratio_model(num: np.ndarray, den: np.ndarray,
                 monitor: Monitor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected ratio and the scales below and above it per day, from the days before it."""
    low, high = monitor.unit_range
    bounded = math.isfinite(high)
    # A bounded unit's noise is never assumed below that of a unit always at one end of its range; one bounded
    # below only has no such floor, its spread comes from the data alone.
    floor = 1.0 if bounded else 0.0
    window = monitor.window_days
    p = num / den
    nums, dens, ps = _trailing(num, window), _trailing(den, window), _trailing(p, window)
    total_den = np.nansum(dens, axis=-1)
    first = np.where(total_den > 0, np.nansum(nums, axis=-1) / np.where(total_den > 0, total_den, 1.0), np.nan)
    z = _standardised(ps, first[..., None], dens, low, high)
    dispersion = np.fmax(MAD_TO_SD * _nanmedian(np.abs(z))[0], floor)
    keep = np.abs(z) <= SCREEN_Z * dispersion[..., None]
    nums, dens = np.where(keep, nums, 0.0), np.where(keep, dens, 0.0)

    # Additive weekday effects over the window; position k of a window is `window - k` days before t.
    offsets = (window - np.arange(window)) % 7
    onehot = (offsets[:, None] == np.arange(7)[None, :]).astype(float)
    day_num, day_den = nums @ onehot, dens @ onehot
    kept_den = day_den.sum(axis=-1)
    pooled = np.where(kept_den > 0, day_num.sum(axis=-1) / np.where(kept_den > 0, kept_den, 1.0), np.nan)
    # Noise of one unit: the most a bounded unit can have, or the relative spread times the ratio.
    unit_var = _unit_variance(pooled, low, high) if bounded else (pooled - low) ** 2
    known = (np.all(day_den > 0, axis=-1) & np.isfinite(pooled))[..., None]
    safe_den = np.where(day_den > 0, day_den, 1.0)
    effect = np.where(known, day_num / safe_den - pooled[..., None], 0.0)
    noise = np.where(known, (dispersion ** 2 * unit_var)[..., None] / safe_den, 0.0)
    effect = np.where(known, _shrink(effect, noise, 0.0), 0.0)

    # Level: the deseasonalised pooled ratio of the last LEVEL_DAYS days, or of as many more as it takes to
    # hold MIN_MINORITY units of the rarer outcome.
    adjusted = nums - effect[..., offsets] * dens
    back_num = np.cumsum(adjusted[..., ::-1], axis=-1)
    back_den = np.cumsum(dens[..., ::-1], axis=-1)
    rate = np.where(back_den > 0, back_num / np.where(back_den > 0, back_den, 1.0), np.nan)
    if bounded:
        position = np.clip((rate - low) / (high - low), 0.0, 1.0)
        minority = back_den * np.minimum(position, 1 - position)
    else:
        minority = back_den
    enough = (minority >= MIN_MINORITY) & (np.arange(1, window + 1) >= min(LEVEL_DAYS, window))
    enough[..., -1] = True
    level = np.take_along_axis(rate, np.argmax(enough, axis=-1)[..., None], axis=-1)[..., 0]
    expected = np.clip(level + effect[..., 0], low, high)

    residual = _standardised(p, expected, den, low, high)
    spread, n_resid = _trimmed_rms(_trailing(residual, window))
    spread = np.where(n_resid >= MIN_RESIDUALS, np.fmax(spread, floor), np.nan)
    sensitivity = monitor.sensitivity
    if bounded:
        centre, step = _angle(expected, low, high), sensitivity * spread / (2 * np.sqrt(den))
        lower = _from_angle(centre - step, low, high, den)
        upper = _from_angle(centre + step, low, high, den)
    else:
        step = sensitivity * np.fmax(spread / np.sqrt(den), MIN_RELATIVE_NOISE) / 3
        centre = np.fmax(expected - low, 0.0)
        lower, upper = low + centre * (1 - step) ** 3, low + centre * (1 + step) ** 3
    return expected, (expected - lower) / sensitivity, (upper - expected) / sensitivity
