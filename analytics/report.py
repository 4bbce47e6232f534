"""The measure step's report: one self-contained HTML file that can be opened from disk, attached to an
email or archived next to a run, and still look the same years later.

Everything the page needs is inside the file: the charts are inline SVG drawn by matplotlib, the styling is
one `<style>` block and there is no script. A reader on a closed network, or a mail client that blocks
remote content, therefore sees the whole report.

The input is a folder of Parquet snapshots, one per mart. Any of them may be missing (a shop that sends only
transactions has no sessions, funnel or experiments): the section then says which source it needs instead of
failing, so the report is produced for every installation.
"""

from __future__ import annotations

import html
import io
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Fixed salt and text kept as <text>: the SVG ids then depend only on the drawing, so two renders of the same
# snapshot differ only in the generated-at timestamp (handy for diffs and caching), and text stays small,
# selectable and searchable.
RC_PARAMS: dict[str, Any] = {
    "svg.hashsalt": "cxloop-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titlelocation": "left",
    "axes.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888888",
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.fontsize": 7,
    "legend.frameon": False,
}

LINE = "#1f4e79"
BAND = "#9ecae1"
DROP = "#d62728"
SPIKE = "#ff7f0e"
GOOD = "#2ca02c"
NEUTRAL = "#7f7f7f"
SERIES = ("#1f4e79", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")

# A year of daily points per small multiple keeps the file well under 2 MB however long the history is.
TREND_DAYS = 365
SUMMARY_DAYS = 7
RECENT_ANOMALY_DAYS = 14
ANOMALY_ROWS = 20
FUNNEL_DAYS = 28
MAX_CHANNELS = 8
MAX_COHORTS = 18
MAX_MONTHS_SINCE = 12

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("kpi-trends", "KPI trends"),
    ("funnel", "Funnel by channel"),
    ("cohorts", "Cohort retention"),
    ("rfm", "RFM segments"),
    ("experiments", "Experiments"),
    ("voc", "Voice of the customer"),
    ("models", "Models"),
    ("audiences", "Audiences"),
)

AUDIENCES: tuple[tuple[str, str], ...] = (
    ("audience_abandoned_carts", "Abandoned carts"),
    ("audience_churn_risk_high_value", "High-value customers at churn risk"),
    ("audience_bad_experience", "Customers with a bad experience"),
)

DECISIONS = {
    "ship": "Ship",
    "dont_ship": "Don't ship",
    "keep_running": "Keep running",
    "invalid_srm": "Invalid: sample ratio mismatch",
}


@dataclass(frozen=True)
class Kpi:
    column: str
    label: str
    kind: str  # count | usd | rate | score: decides formatting and how a week is aggregated
    needs: str  # the source without which the column is null
    higher_is_better: bool = True


KPIS: dict[str, Kpi] = {k.column: k for k in (
    Kpi("sessions", "Sessions", "count", "events"),
    Kpi("conversion_rate", "Conversion rate", "rate", "events"),
    Kpi("orders", "Orders", "count", "orders"),
    Kpi("revenue_usd", "Revenue (USD)", "usd", "orders"),
    Kpi("aov_usd", "Average order value (USD)", "usd", "orders"),
    Kpi("payment_success_rate", "Payment success rate", "rate", "payments"),
    Kpi("new_customers", "New customers", "count", "orders"),
    Kpi("active_customers", "Active customers per day", "count", "orders"),
    Kpi("tickets", "Support tickets", "count", "tickets", higher_is_better=False),
    Kpi("csat_avg", "CSAT", "score", "tickets"),
    Kpi("nps", "NPS", "score", "surveys"),
    Kpi("booked_revenue_usd", "Booked revenue (USD)", "usd", "orders"),
    Kpi("booked_aov_usd", "Booked order value (USD)", "usd", "orders"),
    Kpi("first_orders", "First orders", "count", "orders"),
)}
# The anomaly monitors watch booked value (orders placed, any status), which is final on the day; net revenue
# is final only once orders complete. The trends show what is monitored, so bands and marks match the line.
TREND_METRICS = ("sessions", "conversion_rate", "orders", "booked_revenue_usd", "booked_aov_usd",
                 "payment_success_rate", "nps")
# Monitored measures computed from `kpi_segments_daily` (the whole shop): column -> (numerator, denominator).
BOOKED_MEASURES = {"booked_revenue_usd": ("booked_usd", None), "booked_aov_usd": ("booked_usd", "orders"),
                   "first_orders": ("first_orders", None)}
SUMMARY_METRICS = ("revenue_usd", "orders", "aov_usd", "sessions", "conversion_rate", "payment_success_rate",
                   "new_customers", "active_customers", "tickets", "csat_avg", "nps")

# Pairs of funnel columns; the last is the end-to-end rate. Rates are recomputed from summed users because
# an average of daily rates gives a quiet day as much weight as a busy one.
FUNNEL_STEPS = (
    ("viewed_users", "added_users", "view → add"),
    ("added_users", "checkout_users", "add → checkout"),
    ("checkout_users", "payment_users", "checkout → payment"),
    ("payment_users", "ordered_users", "payment → order"),
    ("viewed_users", "ordered_users", "view → order"),
)


def render_report(snapshot_dir: Path, out_path: Path, models: list[dict] | None = None,
                  title: str = "cxloop report", links: dict[str, str] | None = None) -> dict:
    """Write the report for the marts in `snapshot_dir` to `out_path` and return what it contains.

    `models` describes the registered models (kind, model, version, alias, run_id, run_url, metrics,
    baselines, primary_metric); `links` are name → URL pairs shown in the header (a Dagster run, the MLflow
    UI). The file is replaced atomically, so a reader never sees half a report.

    Returns `{"path", "charts", "sections", "anomalies", "experiments", "bytes"}`: `anomalies` counts the
    rows of kpi_anomalies and `experiments` the distinct experiments in experiment_results.
    """
    # matplotlib is imported here and in the chart helpers, not at module level, so that code which only
    # imports this module (to schedule the report, say) does not pay for it.
    import matplotlib

    # The report is rendered inside job workers that have no display.
    matplotlib.use("Agg")

    snapshot = Snapshot.load(Path(snapshot_dir))
    charts = Charts()
    with matplotlib.rc_context(RC_PARAMS):
        bodies = {
            "summary": summary_section(snapshot),
            "kpi-trends": trends_section(snapshot, charts),
            "funnel": funnel_section(snapshot, charts),
            "cohorts": cohorts_section(snapshot, charts),
            "rfm": rfm_section(snapshot, charts),
            "experiments": experiments_section(snapshot, charts),
            "voc": voc_section(snapshot, charts),
            "models": models_section(snapshot, models or []),
            "audiences": audiences_section(snapshot),
        }
    page = render_page(title, links or {}, snapshot, bodies, datetime.now(timezone.utc))
    out_path = Path(out_path)
    size = write_atomic(out_path, page)
    anomalies = snapshot.get("kpi_anomalies")
    experiments = snapshot.get("experiment_results")
    return {
        "path": str(out_path),
        "charts": charts.count,
        "sections": [name for name, _ in SECTIONS],
        "anomalies": 0 if anomalies is None else len(anomalies),
        "experiments": 0 if experiments is None else int(experiments["experiment_id"].nunique()),
        "bytes": size,
    }


@dataclass
class Snapshot:
    """The marts that exist in the snapshot folder, with dates parsed and money as floats."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Snapshot:
        names = ["kpi_daily", "kpi_segments_daily", "kpi_anomalies", "kpi_expected", "funnel_daily", "cohort_retention", "customers",
                 "experiment_results", "customer_scores", "voc_texts"] + [name for name, _ in AUDIENCES]
        frames = {}
        for name in names:
            frame = read_parquet(folder / f"{name}.parquet")
            if frame is not None and len(frame):
                frames[name] = frame
        return cls(frames)

    def get(self, name: str) -> pd.DataFrame | None:
        return self.frames.get(name)

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The last day with KPIs: "the last 7 days" and "recent" anomalies are counted back from it."""
        for name in ("kpi_daily", "kpi_anomalies"):
            frame = self.get(name)
            if frame is not None and frame["date"].notna().any():
                return frame["date"].max()
        return None


def read_parquet(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    table = pq.read_table(path)
    # The marts keep money as DECIMAL, which pandas turns into Python Decimal objects that neither numpy
    # arithmetic nor matplotlib handle; a report needs floats.
    schema = pa.schema([pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f for f in table.schema])
    frame = table.cast(schema).to_pandas()
    for column in ("date", "cohort_month", "as_of_date", "first_exposure_date", "last_exposure_date"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], errors="coerce")
    return frame


class Charts:
    """Turns matplotlib figures into inline SVG `<figure>` elements and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.names: list[str] = []

    def figure(self, fig: Figure, name: str, caption: str) -> str:
        base = name = slug(name)
        while name in self.names:
            # Two experiments whose ids differ only in punctuation would otherwise share a name (and ids).
            name = f"{base}-{len(self.names)}"
        self.names.append(name)
        self.count += 1
        svg = figure_svg(fig, prefix=f"{name}-", label=caption)
        return (f'<figure class="chart" data-chart="{esc(name)}">{svg}'
                f"<figcaption>{esc(caption)}</figcaption></figure>")


def new_figure(width: float, height: float, margins: tuple[float, float, float, float] | None = None) -> Figure:
    """A figure outside pyplot's registry, so a long-lived worker does not accumulate open figures.

    Without `margins` the layout is solved when the figure is saved, which suits labels of unknown length.
    With fixed `margins` (left, right, top, bottom, in inches) that step is skipped: it costs about half of a
    chart's rendering time, which adds up over the small multiples whose labels are short and bounded.
    """
    from matplotlib.figure import Figure

    if margins is None:
        return Figure(figsize=(width, height), layout="constrained")
    fig = Figure(figsize=(width, height))
    left, right, top, bottom = margins
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height)
    return fig


def figure_svg(fig: Figure, prefix: str, label: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    # The page's stylesheet carries the same rule once, for all charts.
    svg = re.sub(r'<style type="text/css">.*?</style>', "", svg, flags=re.S)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    # Inline SVGs share the page's id space: matplotlib names groups figure_1, axes_1, ... in every chart, and
    # equal clip rectangles in two charts would hash to the same id. Ids nobody refers to are dropped, the
    # others get the chart's name as a prefix.
    referenced = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', svg))
    svg = re.sub(r' id="([^"]+)"', lambda m: f' id="{prefix}{m.group(1)}"' if m.group(1) in referenced else "", svg)
    svg = re.sub(r'(url\(#|href="#)', lambda m: m.group(1) + prefix, svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{esc(label)}" ', 1)
    head_end = svg.index(">") + 1
    return f"{svg[:head_end]}<title>{esc(label)}</title>{svg[head_end:].strip()}"


def date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))


def value_axis(ax: Axes, kind: str) -> None:
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    if kind == "rate":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    elif kind in ("count", "usd"):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_number(v)))


def compact_number(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.4g}"


def dates_of(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype="datetime64[ns]")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", str(text).lower()).strip("-") or "chart"


def missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, kind: str) -> str:
    """A value as a reader expects it: thousands separators, dollars, percentages; a dash when unknown."""
    if missing(value):
        return "–"
    value = float(value)
    if kind == "rate":
        return f"{value:.1%}" if abs(value) >= 0.001 else f"{value:.2%}"
    if kind == "lift":
        return f"{value:+.1%}"
    if kind == "usd":
        return f"${value:,.0f}" if abs(value) >= 1000 else f"${value:,.2f}"
    if kind == "count":
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    if kind == "score":
        return f"{value:,.1f}"
    if kind == "p":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    return f"{value:,.4g}"


def fmt_date(value: Any) -> str:
    return "–" if missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def kind_of(metric: str) -> str:
    kpi = KPIS.get(metric)
    return kpi.kind if kpi else "number"


def label_of(metric: str) -> str:
    kpi = KPIS.get(metric)
    return kpi.label if kpi else metric.replace("_", " ")


def no_data(needs: str) -> str:
    return f'<p class="nodata">no data: needs {esc(needs)}</p>'


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """An HTML table; the cells are HTML already (callers escape text with `esc`)."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return table_html(headers, body, css)


def table_html(headers: Iterable[str], body: str, css: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    cls = f' class="{esc(css)}"' if css else ""
    # Wide tables scroll inside their section instead of widening the whole page.
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def safe_href(url: str) -> str | None:
    """Only web and file links: a `javascript:` URL in a link would run when the reader clicks it."""
    scheme = str(url).split(":", 1)[0].lower() if ":" in str(url) else ""
    return esc(url) if scheme in ("http", "https", "file", "") else None


def link(url: Any, text: str) -> str:
    href = None if missing(url) or not str(url) else safe_href(str(url))
    return f'<a href="{href}" rel="noopener noreferrer">{esc(text)}</a>' if href else esc(text)


def window_value(days: pd.DataFrame, column: str) -> float | None:
    """A KPI over several days, weighted the way the KPI is defined (a rate over the summed denominators)."""
    if column not in days.columns or days[column].isna().all():
        return None
    values = days[column].astype(float)
    if column == "conversion_rate" and {"converted_sessions", "sessions"} <= set(days.columns):
        return ratio(days["converted_sessions"], days["sessions"])
    if column == "aov_usd" and "revenue_usd" in days.columns:
        # Daily AOV is revenue over completed orders, so revenue / AOV recovers each day's completed orders.
        ok = values.notna() & (values > 0)
        return ratio(days.loc[ok, "revenue_usd"], days.loc[ok, "revenue_usd"] / values[ok])
    weights = {"payment_success_rate": "payment_attempts", "csat_avg": "tickets", "nps": "nps_responses"}
    if column in weights and weights[column] in days.columns:
        ok = values.notna() & days[weights[column]].notna()
        return ratio(values[ok] * days.loc[ok, weights[column]], days.loc[ok, weights[column]])
    kpi = KPIS.get(column)
    if column == "active_customers" or (kpi is not None and kpi.kind in ("rate", "score")):
        return float(values.mean())
    return float(values.sum())


def ratio(numerator: pd.Series, denominator: pd.Series) -> float | None:
    total = float(denominator.astype(float).sum())
    return float(numerator.astype(float).sum()) / total if total > 0 else None


def delta_html(kpi: Kpi, current: float | None, previous: float | None) -> str:
    if current is None or previous is None:
        return '<div class="delta">no prior week</div>'
    diff = current - previous
    if kpi.kind == "rate":
        text = f"{diff * 100:+.1f} pp"
    elif kpi.kind == "score":
        text = f"{diff:+.1f}"
    elif previous:
        text = f"{diff / abs(previous):+.1%}"
    else:
        text = "new"
    if re.fullmatch(r"[+-]0(\.0+)?(%| pp)?", text):
        # A change that rounds to zero is shown as no change, not as a small win or loss.
        text, tone = text[1:], "flat"
    else:
        tone = "good" if (diff > 0) == kpi.higher_is_better else "bad"
    return f'<div class="delta {tone}">{esc(text)} vs prior 7 days</div>'


def summary_section(snapshot: Snapshot) -> str:
    parts = []
    daily = snapshot.get("kpi_daily")
    as_of = snapshot.as_of
    if daily is None or as_of is None:
        parts.append(no_data("orders (kpi_daily.parquet)"))
    else:
        current = daily[(daily["date"] > as_of - pd.Timedelta(days=SUMMARY_DAYS)) & (daily["date"] <= as_of)]
        previous = daily[(daily["date"] > as_of - pd.Timedelta(days=2 * SUMMARY_DAYS))
                         & (daily["date"] <= as_of - pd.Timedelta(days=SUMMARY_DAYS))]
        cards = []
        for column in SUMMARY_METRICS:
            kpi = KPIS[column]
            now = window_value(current, column)
            if now is None:
                continue
            before = window_value(previous, column) if len(previous) else None
            cards.append(f'<div class="card" data-kpi="{esc(column)}"><div class="label">{esc(kpi.label)}</div>'
                         f'<div class="value">{esc(fmt(now, kpi.kind))}</div>{delta_html(kpi, now, before)}</div>')
        start = as_of - pd.Timedelta(days=SUMMARY_DAYS - 1)
        parts.append(f'<p class="lead">Last {SUMMARY_DAYS} days ({fmt_date(start)} to {fmt_date(as_of)}) '
                     f"against the {SUMMARY_DAYS} days before.</p>")
        parts.append(f'<div class="cards">{"".join(cards)}</div>')

    anomalies = snapshot.get("kpi_anomalies")
    if anomalies is None:
        parts.append(no_data("KPI anomaly detection (kpi_anomalies.parquet)"))
    elif as_of is not None:
        recent = anomalies[anomalies["date"] > as_of - pd.Timedelta(days=RECENT_ANOMALY_DAYS)]
        overall = int((recent["dimension"] == "all").sum()) if "dimension" in recent.columns else len(recent)
        parts.append(f'<p class="stat" data-stat="recent-anomalies"><strong>{len(recent)}</strong> '
                     f"{'anomaly' if len(recent) == 1 else 'anomalies'} in the last {RECENT_ANOMALY_DAYS} days "
                     f"({overall} on a KPI as a whole, the rest in a segment); "
                     f'<a href="#kpi-trends">see KPI trends</a>.</p>')

    experiments = snapshot.get("experiment_results")
    if experiments is None:
        parts.append(no_data("experiment exposures (experiment_results.parquet)"))
    else:
        rows = []
        for experiment_id, rows_of in experiment_groups(experiments):
            first = rows_of.iloc[0]
            rows.append([esc(experiment_id), esc("running" if truthy(first.get("is_running")) else "stopped"),
                         decision_badge(first), esc(text_or(first.get("decision_reason"), ""))])
        parts.append("<h3>Experiment decisions</h3>" + table(["Experiment", "Status", "Decision", "Reason"], rows,
                                                             "decisions"))
    return "".join(parts)


def with_booked_measures(daily: pd.DataFrame, segments: pd.DataFrame | None) -> pd.DataFrame:
    """`kpi_daily` plus the monitored booked measures of the whole shop, where the snapshot has them."""
    if segments is None or "booked_usd" not in segments.columns:
        return daily
    whole = segments[(segments["dimension"] == "all") & (segments["segment"] == "all")].set_index("date")
    out = daily.copy()
    for column, (numerator, denominator) in BOOKED_MEASURES.items():
        if numerator not in whole.columns:
            continue
        values = whole[numerator].astype(float)
        if denominator is not None:
            values = values / whole[denominator].astype(float).where(whole[denominator] > 0)
        out[column] = out["date"].map(values)
    return out


def trends_section(snapshot: Snapshot, charts: Charts) -> str:
    daily = snapshot.get("kpi_daily")
    if daily is None:
        return no_data("orders (kpi_daily.parquet)")
    daily = with_booked_measures(daily.sort_values("date"), snapshot.get("kpi_segments_daily"))
    start = daily["date"].max() - pd.Timedelta(days=TREND_DAYS - 1)
    daily = daily[daily["date"] >= start]
    anomalies = snapshot.get("kpi_anomalies")
    expected = snapshot.get("kpi_expected")
    tiles = []
    for column in TREND_METRICS:
        kpi = KPIS[column]
        if column not in daily.columns or daily[column].isna().all():
            tiles.append(f'<div class="tile"><h3>{esc(kpi.label)}</h3>{no_data(kpi.needs)}</div>')
            continue
        marks = None
        if anomalies is not None:
            marks = anomalies[(anomalies["metric"] == column) & (anomalies["dimension"] == "all")
                              & (anomalies["date"] >= start)]
        band = None
        if expected is not None:
            band = expected[(expected["metric"] == column) & (expected["date"] >= start)].sort_values("date")
        fig = kpi_figure(daily, kpi, marks, band)
        caption = f"{kpi.label}, daily, last {len(daily)} days"
        if band is not None and len(band):
            caption += "; shaded: expected range"
        if marks is not None and len(marks):
            caption += f"; {plural(len(marks), 'anomaly', 'anomalies')} marked (red: drop, orange: spike)"
        tiles.append(f'<div class="tile">{charts.figure(fig, f"kpi-{column}", caption)}</div>')
    parts = [f'<div class="grid">{"".join(tiles)}</div>', "<h3>Recent anomalies</h3>"]
    if anomalies is None:
        parts.append(no_data("KPI anomaly detection (kpi_anomalies.parquet)"))
    else:
        parts.append(anomaly_table(anomalies))
    return "".join(parts)


def kpi_figure(daily: pd.DataFrame, kpi: Kpi, marks: pd.DataFrame | None, band: pd.DataFrame | None) -> Figure:
    # Tick labels are compact numbers and short dates, so fixed margins fit every KPI.
    fig = new_figure(5.4, 2.3, margins=(0.6, 0.2, 0.3, 0.3))
    ax = fig.add_subplot()
    if band is not None and len(band):
        ax.fill_between(dates_of(band["date"]), band["lower"].astype(float), band["upper"].astype(float),
                        color=BAND, alpha=0.45, linewidth=0, label="expected range")
    ax.plot(dates_of(daily["date"]), daily[kpi.column].astype(float), color=LINE, linewidth=1.0)
    if marks is not None and len(marks):
        values = daily.set_index("date")[kpi.column].astype(float)
        for direction, colour in (("drop", DROP), ("spike", SPIKE)):
            points = marks[marks["direction"] == direction]
            if not len(points):
                continue
            # The anomaly row carries the value it judged; the daily series is the fallback if it is empty.
            y = points["value"].astype(float).fillna(points["date"].map(values))
            ax.scatter(dates_of(points["date"]), y, s=22, color=colour, zorder=3, edgecolors="white",
                       linewidths=0.6, label=direction)
    ax.set_title(kpi.label)
    value_axis(ax, kpi.kind)
    date_axis(ax)
    ax.margins(x=0.01)
    if (band is not None and len(band)) or (marks is not None and len(marks)):
        # Beside the title rather than inside the axes, where it would hide the latest days.
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, handlelength=1.2, borderaxespad=0.1)
    return fig


def anomaly_table(anomalies: pd.DataFrame) -> str:
    recent = anomalies.assign(_abs=anomalies["score"].astype(float).abs()).sort_values(
        ["date", "_abs", "metric"], ascending=[False, False, True], kind="stable").head(ANOMALY_ROWS)
    rows = []
    for _, row in recent.iterrows():
        kind = kind_of(row["metric"])
        segment = "all"
        if row.get("dimension") != "all":
            segment = f"{text_or(row.get('dimension'), '?')} = {text_or(row.get('segment'), '?')}"
        direction = text_or(row.get("direction"), "")
        drill = text_or(row.get("drilldown"), "")
        if not drill and not missing(row.get("drilldown_dimension")):
            drill = f"{row['drilldown_dimension']} = {text_or(row.get('drilldown_segment'), '?')}"
        rows.append([
            esc(fmt_date(row["date"])), esc(label_of(row["metric"])), esc(segment),
            f'<span class="badge {esc(slug(direction))}">{esc(direction)}</span>',
            esc(fmt(row.get("value"), kind)),
            esc(f"{fmt(row.get('expected'), kind)} ({fmt(row.get('lower'), kind)} to {fmt(row.get('upper'), kind)})"),
            esc(fmt(row.get("score"), "score")), esc(drill),
        ])
    note = (f'<p class="note">{plural(len(anomalies), "anomaly", "anomalies")} in the snapshot; the '
            f"{len(recent)} most recent are listed, largest score first within a day.</p>")
    return note + table(["Date", "Metric", "Segment", "Direction", "Value", "Expected (range)", "Score",
                         "Drill-down"], rows, "anomalies")


def plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def text_or(value: Any, default: str) -> str:
    return default if missing(value) else str(value)


def truthy(value: Any) -> bool:
    return False if missing(value) else bool(value)


def funnel_section(snapshot: Snapshot, charts: Charts) -> str:
    funnel = snapshot.get("funnel_daily")
    if funnel is None:
        return no_data("events (funnel_daily.parquet)")
    end = funnel["date"].max()
    start = end - pd.Timedelta(days=FUNNEL_DAYS - 1)
    window = funnel[funnel["date"] >= start].copy()
    window["channel"] = window["channel"].astype(object).where(window["channel"].notna(), "unknown").astype(str)
    counts = ["viewed_users", "added_users", "checkout_users", "payment_users", "ordered_users"]
    totals = window.groupby("channel", sort=True)[counts].sum(min_count=1)
    totals = totals.sort_values("viewed_users", ascending=False, kind="stable").head(MAX_CHANNELS)
    steps = [(a, b, name) for a, b, name in FUNNEL_STEPS if totals[a].notna().any() and totals[b].notna().any()]
    if "payment_users" in totals.columns and totals["payment_users"].isna().all():
        # Without payment events the two steps around payment collapse into one.
        steps.insert(2, ("checkout_users", "ordered_users", "checkout → order"))
    rates = pd.DataFrame({name: totals[b] / totals[a].where(totals[a] > 0) for a, b, name in steps})

    fig = new_figure(9.5, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(rates.columns))
    width = 0.8 / max(len(rates), 1)
    for i, (channel, values) in enumerate(rates.iterrows()):
        bars = ax.bar(x + (i - (len(rates) - 1) / 2) * width, values.to_numpy(dtype=float), width * 0.95,
                      color=SERIES[i % len(SERIES)], label=channel)
        ax.bar_label(bars, labels=[fmt(v, "rate") if not missing(v) else "" for v in values], fontsize=6,
                     padding=1)
    ax.set_xticks(x, list(rates.columns))
    ax.grid(axis="x", visible=False)
    value_axis(ax, "rate")
    ax.set_ylim(0, min(1.0, float(np.nanmax(rates.to_numpy(dtype=float), initial=0.0)) * 1.18 or 1.0))
    ax.set_title("Step conversion by channel")
    ax.legend(loc="upper right", ncols=min(len(rates), 4))
    caption = (f"Share of users moving to the next funnel step, per channel, {fmt_date(start)} to {fmt_date(end)} "
               f"(users summed over the {FUNNEL_DAYS} days)")
    chart = charts.figure(fig, "funnel-rates", caption)
    rows = [[esc(channel)] + [esc(fmt(totals.loc[channel, c], "count")) for c in counts]
            + [esc(fmt(rates.loc[channel].get("view → order"), "rate"))] for channel in totals.index]
    return chart + table(["Channel", "Viewed", "Added", "Checkout", "Payment", "Ordered", "View → order"], rows,
                         "funnel")


def cohorts_section(snapshot: Snapshot, charts: Charts) -> str:
    cohorts = snapshot.get("cohort_retention")
    if cohorts is None:
        return no_data("orders and customers (cohort_retention.parquet)")
    cohorts = cohorts[cohorts["months_since"] <= MAX_MONTHS_SINCE]
    grid = cohorts.pivot_table(index="cohort_month", columns="months_since", values="retention_rate",
                               aggfunc="mean").sort_index()
    grid = grid.tail(MAX_COHORTS)
    sizes = cohorts.groupby("cohort_month")["cohort_size"].max()
    values = grid.to_numpy(dtype=float)
    # Month 0 is ~100% by construction; scaling colours to the later months keeps their differences visible.
    later = values[:, np.asarray(grid.columns) >= 1] if (np.asarray(grid.columns) >= 1).any() else values
    vmax = float(np.nanmax(later)) if np.isfinite(later).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0

    fig = new_figure(max(4.0, 0.55 * len(grid.columns) + 1.6), max(2.0, 0.28 * len(grid) + 1.0))
    ax = fig.add_subplot()
    # Vector cells rather than imshow, which would embed a raster image in the SVG. Every cell carries its
    # percentage, so there is no colour bar (matplotlib would rasterize that too).
    ax.pcolormesh(np.arange(len(grid.columns) + 1) - 0.5, np.arange(len(grid) + 1) - 0.5,
                          np.ma.masked_invalid(values), cmap="Blues", vmin=0, vmax=vmax, edgecolors="white",
                          linewidth=0.5)
    ax.invert_yaxis()
    ax.grid(False)
    ax.set_xticks(range(len(grid.columns)), [str(int(c)) for c in grid.columns])
    ax.set_yticks(range(len(grid)), [f"{month:%Y-%m} (n={fmt(sizes.get(month), 'count')})" for month in grid.index])
    ax.set_xlabel("months since first purchase")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=6.5,
                    color="white" if value > 0.6 * vmax else "#222222")
    ax.set_title("Share of each cohort buying again")
    caption = (f"Retention by first-purchase month (last {len(grid)} cohorts, up to {MAX_MONTHS_SINCE} months): "
               "share of the cohort with a completed order in each later month")
    return charts.figure(fig, "cohort-retention", caption)


def rfm_section(snapshot: Snapshot, charts: Charts) -> str:
    customers = snapshot.get("customers")
    if customers is None:
        return no_data("customers (customers.parquet)")
    segment = customers["rfm_segment"].astype(object).where(customers["rfm_segment"].notna(), "no purchase yet")
    revenue = customers["net_revenue_usd"].astype(float) if "net_revenue_usd" in customers.columns else 0.0
    by_segment = pd.DataFrame({"segment": segment.astype(str), "revenue": revenue}).groupby("segment").agg(
        customers=("revenue", "size"), revenue=("revenue", "sum")).sort_values(
        ["revenue", "customers"], ascending=True, kind="stable")

    fig = new_figure(9.5, max(2.2, 0.3 * len(by_segment) + 1.0))
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(by_segment))
    left.barh(y, by_segment["customers"], color=LINE)
    right.barh(y, by_segment["revenue"], color=SERIES[2])
    left.bar_label(left.containers[0], labels=[fmt(v, "count") for v in by_segment["customers"]], fontsize=6.5,
                   padding=2)
    right.bar_label(right.containers[0], labels=[fmt(v, "usd") for v in by_segment["revenue"]], fontsize=6.5,
                    padding=2)
    left.set_yticks(y, list(by_segment.index))
    left.set_title("Customers")
    right.set_title("Net revenue (USD)")
    for ax in (left, right):
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_formatter(compact_formatter())
        ax.margins(x=0.18)
    caption = "Customers and lifetime net revenue per RFM segment, largest revenue at the top"
    chart = charts.figure(fig, "rfm-segments", caption)
    total_customers = float(by_segment["customers"].sum())
    total_revenue = float(by_segment["revenue"].sum())
    rows = [[esc(name), esc(fmt(r["customers"], "count")),
             esc(fmt(r["customers"] / total_customers if total_customers else None, "rate")),
             esc(fmt(r["revenue"], "usd")), esc(fmt(r["revenue"] / total_revenue if total_revenue else None, "rate"))]
            for name, r in by_segment.iloc[::-1].iterrows()]
    return chart + table(["Segment", "Customers", "Share", "Net revenue", "Share"], rows, "rfm")


VOC_WINDOW_DAYS = 28
VOC_EXAMPLE_CHARS = 240
VOC_TOP_TOPICS = 8


def voc_section(snapshot: Snapshot, charts: Charts) -> str:
    """Sentiment by week and source, topics with their movement over the last four weeks against the four
    before, topic spikes, and the most negative recent text of the busiest topics (masked at ingest and again
    by the text layer)."""
    texts = snapshot.get("voc_texts")
    if texts is None or texts.empty:
        return no_data("tickets, reviews or survey comments (voc_texts.parquet)")
    texts = texts.assign(date=pd.to_datetime(texts["created_date"]))
    latest = texts["date"].max()
    start = latest - pd.Timedelta(days=TREND_DAYS - 1)
    recent = texts[texts["date"] >= start]
    weekly = (recent.assign(week=recent["date"].dt.to_period("W-SUN").dt.start_time,
                            negative=(recent["sentiment_label"] == "negative").astype(float))
              .groupby(["week", "source"]).agg(texts=("negative", "size"), negative=("negative", "mean"))
              .reset_index())
    fig = new_figure(9.5, 2.6)
    ax = fig.subplots()
    for i, (source, rows) in enumerate(weekly.groupby("source")):
        ax.plot(rows["week"], rows["negative"], marker="o", markersize=2.5, color=SERIES[i % len(SERIES)],
                label=f"{source}s")
    ax.set_ylim(0, 1)
    value_axis(ax, "rate")
    date_axis(ax)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    parts = [charts.figure(fig, "voc-sentiment", f"Share of negative texts per week and source, last "
                                                 f"{TREND_DAYS} days ({fmt(len(recent), 'count')} texts)")]

    window = pd.Timedelta(days=VOC_WINDOW_DAYS)
    now = texts[texts["date"] > latest - window]
    before = texts[(texts["date"] <= latest - window) & (texts["date"] > latest - 2 * window)]
    topics = (now.groupby("topic_label").agg(texts=("text_id", "size"),
                                             negative=("sentiment_label", lambda s: float((s == "negative").mean())))
              .join(before.groupby("topic_label").size().rename("before"), how="outer").fillna(0.0)
              .sort_values(["texts", "before"], ascending=False).head(VOC_TOP_TOPICS))
    rows = []
    for label, r in topics.iterrows():
        # Every row has texts in one window or the other, so `before == 0` means the topic is new.
        change = (r["texts"] - r["before"]) / r["before"] if r["before"] else None
        movement = "new" if change is None else ("+" if change > 0 else "") + fmt(change, "rate")
        rows.append([esc(label), esc(fmt(r["texts"], "count")), esc(fmt(r["before"], "count")), esc(movement),
                     esc(fmt(r["negative"] if r["texts"] else None, "rate"))])
    parts.append(f"<h3>Topics, last {VOC_WINDOW_DAYS} days against the {VOC_WINDOW_DAYS} before</h3>")
    parts.append(table(["Topic (top terms)", "Texts", "Before", "Change", "Negative"], rows, "voc-topics"))

    anomalies = snapshot.get("kpi_anomalies")
    if anomalies is not None:
        spikes = anomalies[(anomalies["dimension"] == "topic")
                           & (pd.to_datetime(anomalies["date"]) > latest - window)]
        parts.append("<h3>Topic spikes</h3>")
        parts.append(anomaly_table(spikes) if len(spikes) else
                     f"<p>No topic left its expected range in the last {VOC_WINDOW_DAYS} days.</p>")

    review = texts[(texts["source"] == "ticket") & texts["needs_review"].fillna(False).astype(bool)]
    parts.append(f"<p>{esc(plural(len(review), 'ticket', 'tickets'))} with no agent category "
                 "that the intent model could not label confidently are marked for review.</p>")

    examples = []
    for label in topics.index[:3]:
        pool = now[(now["topic_label"] == label) & (now["sentiment_label"] == "negative")]
        if pool.empty:
            continue
        worst = pool.sort_values(["sentiment_score", "created_at"], ascending=[True, False]).iloc[0]
        text = " ".join(str(worst["text"]).split())
        text = text if len(text) <= VOC_EXAMPLE_CHARS else text[:VOC_EXAMPLE_CHARS - 1] + "…"
        examples.append(f"<li><strong>{esc(label)}</strong> ({esc(worst['source'])}, "
                        f"{esc(fmt_date(worst['created_at']))}, {esc(worst['language'])}): "
                        f"<q>{esc(text)}</q></li>")
    if examples:
        parts.append("<h3>Most negative recent text of the busiest topics</h3><ul class=\"voc-examples\">"
                     + "".join(examples) + "</ul>")
    return "".join(parts)


def compact_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: compact_number(v))


def experiment_groups(results: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Experiments with the most recent exposure first; running ones are the most recent by definition."""
    order = []
    for experiment_id, rows in results.groupby("experiment_id", sort=True):
        last = rows["last_exposure_date"].max() if "last_exposure_date" in rows.columns else pd.NaT
        order.append((pd.Timestamp.min if missing(last) else last, str(experiment_id), rows))
    order.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [(experiment_id, rows) for _, experiment_id, rows in order]


def decision_badge(row: pd.Series) -> str:
    decision = text_or(row.get("decision"), "")
    label = DECISIONS.get(decision, decision or "–")
    if decision == "ship" and not missing(row.get("ship_variation")):
        label = f"{label} {row['ship_variation']}"
    return f'<span class="badge decision-{esc(slug(decision))}">{esc(label)}</span>'


def experiments_section(snapshot: Snapshot, charts: Charts) -> str:
    results = snapshot.get("experiment_results")
    if results is None:
        return no_data("experiment exposures (experiment_results.parquet)")
    parts = []
    for experiment_id, rows in experiment_groups(results):
        first = rows.iloc[0]
        status = "running" if truthy(first.get("is_running")) else "stopped"
        span = f"{fmt_date(rows['first_exposure_date'].min())} to {fmt_date(rows['last_exposure_date'].max())}"
        parts.append(f'<article class="experiment" data-experiment="{esc(experiment_id)}">'
                     f"<h3>{esc(experiment_id)} {decision_badge(first)}</h3>"
                     f'<p class="note">{esc(status)}, exposures {esc(span)}</p>')
        arms = rows[~rows["is_control"].map(truthy)]
        if len(arms) and arms["rel_lift"].notna().any():
            parts.append(charts.figure(forest_figure(experiment_id, arms), f"experiment-{experiment_id}",
                                       f"{experiment_id}: relative lift of each variation over control with its "
                                       "95% interval (green: better, red: worse, grey: not distinguishable)"))
        parts.append(experiment_table(rows))
        parts.append("</article>")
    return "".join(parts)


def forest_figure(experiment_id: str, arms: pd.DataFrame) -> Figure:
    arms = arms.sort_values(["metric", "variation_id"], kind="stable")
    labels = [f"{v} · {m}" for v, m in zip(arms["variation_id"].astype(str), arms["metric"].astype(str))]
    lift = arms["rel_lift"].astype(float).to_numpy() * 100
    low = arms["rel_lift_low"].astype(float).to_numpy() * 100
    high = arms["rel_lift_high"].astype(float).to_numpy() * 100
    fig = new_figure(7.5, 0.9 + 0.38 * len(arms))
    ax = fig.add_subplot()
    y = np.arange(len(arms))[::-1]
    for yi, point, lo, hi in zip(y, lift, low, high):
        colour = GOOD if lo > 0 else DROP if hi < 0 else NEUTRAL
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [yi, yi], color=colour, linewidth=2.2, solid_capstyle="butt")
        ax.plot([point], [yi], "o", color=colour, markersize=5)
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, len(arms) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(percent_formatter())
    ax.set_xlabel("relative lift vs control")
    ax.set_title("Relative lift over control, 95% interval")
    return fig


def percent_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:+.0f}%" if v else "0%")


def experiment_table(rows: pd.DataFrame) -> str:
    rows = rows.sort_values(["metric", "is_control", "variation_id"], ascending=[True, False, True], kind="stable")
    first = rows.iloc[0]
    body = []
    for position, (_, row) in enumerate(rows.iterrows()):
        # A metric with conversions is a rate (share of units converting); otherwise a mean per unit.
        kind = "number" if missing(row.get("conversions")) else "rate"
        units = fmt(row.get("units"), "count")
        if not missing(row.get("excluded_units")) and float(row["excluded_units"]) > 0:
            units += f" ({fmt(row['excluded_units'], 'count')} excl.)"
        if truthy(row.get("is_control")):
            lift, p, chance = "control", "–", "–"
        else:
            lift = (f"{fmt(row.get('rel_lift'), 'lift')} "
                    f"[{fmt(row.get('rel_lift_low'), 'lift')}, {fmt(row.get('rel_lift_high'), 'lift')}]")
            p = fmt(row.get("p_value"), "p")
            chance = fmt(row.get("chance_to_beat_control"), "rate")
        srm_p = fmt(row.get("srm_p_value"), "p")
        srm = (f'<span class="badge bad">mismatch (p {esc(srm_p)})</span>' if truthy(row.get("srm"))
               else esc(f"ok (p {srm_p})"))
        cells = [esc(text_or(row.get("variation_id"), "?")), esc(text_or(row.get("metric"), "?")), esc(units),
                 esc(fmt(row.get("mean"), kind)), esc(lift), esc(p), esc(chance), srm]
        tds = "".join(f"<td>{cell}</td>" for cell in cells)
        if position == 0:
            # Decision and reason belong to the experiment, not to one variation: one cell spans all rows.
            tds += (f'<td rowspan="{len(rows)}">{decision_badge(first)}</td><td rowspan="{len(rows)}" '
                    f'class="reason">{esc(text_or(first.get("decision_reason"), ""))}</td>')
        body.append(f"<tr>{tds}</tr>")
    return table_html(["Variation", "Metric", "Units", "Rate / mean", "Lift [95% CI]", "p", "Chance to beat", "SRM",
                       "Decision", "Reason"], "".join(body), "experiment-results")


LOWER_IS_BETTER = ("rmse", "mae", "mape", "loss", "error", "brier", "deviance")


def models_section(snapshot: Snapshot, models: list[dict]) -> str:
    parts = []
    if not models:
        parts.append('<p class="nodata">No model has been trained yet.</p>')
    else:
        rows = []
        for model in models:
            metrics = model.get("metrics") or {}
            primary = model.get("primary_metric") or (next(iter(metrics)) if metrics else "")
            value = metrics.get(primary)
            lower_better = any(word in str(primary).lower() for word in LOWER_IS_BETTER)
            baselines = model.get("baselines") or {}
            baseline_text = []
            for name, base in baselines.items():
                text = f"{name} {fmt(base, 'number')}"
                if not missing(value) and not missing(base):
                    gain = (float(base) - float(value)) if lower_better else (float(value) - float(base))
                    text += f" ({'better' if gain > 0 else 'worse' if gain < 0 else 'equal'} by {abs(gain):.3g})"
                baseline_text.append(text)
            others = ", ".join(f"{k} {fmt(v, 'number')}" for k, v in metrics.items() if k != primary)
            run_id = text_or(model.get("run_id"), "")
            rows.append([
                esc(text_or(model.get("kind"), "")), esc(text_or(model.get("model"), "")),
                esc(text_or(model.get("version"), "")), esc(text_or(model.get("alias"), "")),
                f"<strong>{esc(primary)} {esc(fmt(value, 'number'))}</strong>",
                esc("; ".join(baseline_text) or "–"), esc(others or "–"),
                link(model.get("run_url"), run_id[:12] or "run") if run_id or model.get("run_url") else "–",
            ])
        parts.append(table(["Kind", "Registered model", "Version", "Alias", "Primary metric", "Baselines",
                            "Other metrics", "MLflow run"], rows, "models"))
    parts.append("<h3>Latest scores</h3>")
    scores = snapshot.get("customer_scores")
    if scores is None:
        parts.append(no_data("a trained model and a scoring run (customer_scores.parquet)"))
    else:
        parts.append(scores_table(scores))
    return "".join(parts)


def scores_table(scores: pd.DataFrame) -> str:
    rows = []
    segments = scores["risk_segment"].astype(object).where(scores["risk_segment"].notna(), "unscored")
    order = ["high", "medium", "low"] + sorted(set(segments.astype(str)) - {"high", "medium", "low"})
    for segment in order:
        part = scores[segments.astype(str) == segment]
        if not len(part):
            continue
        rows.append([esc(segment), esc(fmt(len(part), "count")),
                     esc(fmt(part["churn_probability"].astype(float).mean(), "rate")),
                     esc(fmt(part["predicted_ltv_usd"].astype(float).sum(), "usd")),
                     esc(fmt(part["predicted_ltv_usd"].astype(float).mean(), "usd"))])
    versions = []
    for column, name in (("churn_model_version", "churn"), ("ltv_model_version", "LTV")):
        if column in scores.columns and scores[column].notna().any():
            versions.append(f"{name} model v{', v'.join(sorted(scores[column].dropna().astype(str).unique()))}")
    horizon = scores["horizon_days"].dropna() if "horizon_days" in scores.columns else pd.Series(dtype=float)
    note = (f"{fmt(len(scores), 'count')} customers scored as of {fmt_date(scores['as_of_date'].max())}"
            + (f", {int(horizon.iloc[0])}-day horizon" if len(horizon) else "")
            + (f" ({'; '.join(versions)})" if versions else "") + ".")
    return f'<p class="note">{esc(note)}</p>' + table(
        ["Risk segment", "Customers", "Mean churn probability", "Predicted LTV", "LTV per customer"], rows, "scores")


def audiences_section(snapshot: Snapshot) -> str:
    rows = []
    for name, label in AUDIENCES:
        frame = snapshot.get(name)
        if frame is None:
            continue
        reasons = frame["reason"].dropna().astype(str).value_counts() if "reason" in frame.columns else pd.Series()
        reasons = reasons.sort_index().sort_values(ascending=False, kind="stable").head(3)
        top = "; ".join(f"{reason} ({count:,})" for reason, count in reasons.items())
        rows.append([esc(label), f"<code>{esc(name)}</code>", esc(fmt(frame["customer_key"].nunique(), "count")),
                     esc(top or "–")])
    if not rows:
        return no_data("the act step's audiences (audience_*.parquet)")
    absent = [f"<code>{esc(name)}</code>" for name, _ in AUDIENCES if snapshot.get(name) is None]
    note = f'<p class="note">Not in this snapshot: {", ".join(absent)}.</p>' if absent else ""
    return table(["Audience", "Table", "Customers", "Main reasons"], rows, "audiences") + note


CSS = """
:root{--fg:#1d2330;--muted:#5b6577;--line:#e2e6ee;--bg:#f6f7fa;--card:#fff;--good:#1b7f3b;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg)}
header{background:#1f2a44;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .meta{margin:0;color:#c9d2e3;font-size:13px}
header a{color:#cfe0ff}
nav.links,nav.toc{margin-top:8px;font-size:13px}
nav.links a,nav.toc a{margin-right:14px}
main{max-width:1280px;margin:0 auto;padding:8px 28px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 20px;margin:18px 0}
h2{margin:0 0 10px;font-size:18px}
h3{margin:16px 0 8px;font-size:15px}
.lead,.note{color:var(--muted);margin:4px 0 10px}
.nodata{color:var(--muted);font-style:italic;background:var(--bg);border:1px dashed #c6ccd8;border-radius:6px;
padding:10px 12px;margin:6px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card .label{color:var(--muted);font-size:12px}
.card .value{font-size:21px;font-weight:600}
.delta{font-size:12px;color:var(--muted)}
.delta.good{color:var(--good)}
.delta.bad{color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}
.tile{min-width:0}
.tile h3{margin-top:4px}
figure.chart{margin:6px 0 10px}
figure.chart svg{display:block;max-width:100%;height:auto}
.tile figure.chart svg{width:100%}
figure.chart svg *{stroke-linejoin:round;stroke-linecap:butt}
figcaption{color:var(--muted);font-size:12px;margin-top:2px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px;min-width:50%}
th,td{border-bottom:1px solid var(--line);padding:5px 9px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
tbody tr:nth-child(even) td{background:#fafbfc}
table.experiment-results th,table.experiment-results td{padding:5px 7px}
table.experiment-results td{white-space:nowrap}
table.experiment-results td.reason{white-space:normal;min-width:200px;max-width:360px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;background:#e8ebf1;
white-space:nowrap}
.badge.drop,.badge.bad,.badge.decision-invalid_srm{background:#fde4e1;color:var(--bad)}
.badge.spike{background:#fff0dc;color:#a35200}
.badge.decision-ship{background:#dcf3e3;color:var(--good)}
.badge.decision-dont_ship{background:#f1e3e3;color:#7a2a2a}
.badge.decision-keep_running{background:#e3ecfa;color:#1f4e79}
article.experiment{border-top:1px solid var(--line);padding-top:4px}
article.experiment:first-child{border-top:0}
.stat{margin:10px 0}
code{font-size:12px}
@media print{body{background:#fff}section{break-inside:avoid;border:0}header{color:#000;background:#fff}}
"""


def render_page(title: str, links: dict[str, str], snapshot: Snapshot, bodies: dict[str, str],
                generated_at: datetime) -> str:
    as_of = snapshot.as_of
    stamp = generated_at.strftime("%Y-%m-%d %H:%M UTC")
    meta = f"Data through {esc(fmt_date(as_of))} · " if as_of is not None else ""
    link_html = " ".join(link(url, name) for name, url in links.items())
    toc = " ".join(f'<a href="#{esc(name)}">{esc(heading)}</a>' for name, heading in SECTIONS)
    sections = "".join(f'<section id="{esc(name)}"><h2>{esc(heading)}</h2>{bodies[name]}</section>'
                       for name, heading in SECTIONS)
    stamp_iso = generated_at.isoformat(timespec="seconds")
    header = [f"<h1>{esc(title)}</h1>",
              f'<p class="meta">{meta}generated <time class="generated" datetime="{esc(stamp_iso)}">{esc(stamp)}</time>'
              "</p>"]
    if link_html:
        header.append(f'<nav class="links" aria-label="Related tools">{link_html}</nav>')
    header.append(f'<nav class="toc" aria-label="Sections">{toc}</nav>')
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header>{''.join(header)}</header><main>{sections}</main></body></html>\n")


def write_atomic(path: Path, text: str) -> int:
    """Write `text` next to `path` and rename it into place; returns the size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)
