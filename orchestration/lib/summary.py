"""The short report `cxloop run` prints: rows per mart, checks, quarantine, and where to look next."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestration.lib.serving import read_status, stale_message
from orchestration.lib.settings import Settings
from orchestration.lib.warehouse import connect, present_sources, table_exists


@dataclass
class CheckTally:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, severity)


def check_tally(result) -> CheckTally:
    tally = CheckTally()
    if result is None:
        return tally
    for evaluation in result.get_asset_check_evaluations():
        key = evaluation.asset_check_key
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        if evaluation.passed:
            tally.passed.append(name)
        else:
            tally.failed.append((name, evaluation.severity.value))
    return tally


def materialized_keys(result) -> set[str]:
    if result is None:
        return set()
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def model_lines(settings: Settings, result) -> list[str]:
    """What training decided in this run (from the assets' metadata) and what the scores were made with."""
    from ml.config import PRIMARY_METRIC

    lines = []
    if result is not None:
        for event in result.get_asset_materialization_events():
            key = event.asset_key.to_user_string()
            if key not in ("churn_model", "ltv_model"):
                continue
            meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
            if not meta.get("trained"):
                lines.append(f"  {key:<12} not trained: {meta.get('reason', 'see the run log')}")
                continue
            metric = PRIMARY_METRIC[key.removesuffix("_model")]
            lines.append(f"  {key:<12} {meta['model']} -> {meta['alias']}: {meta['decision']}")
            lines.append(f"  {'':<12} {metric} {meta[metric]:.4f} on cutoff {meta['eval_cutoff']} "
                         f"({meta['eval_rows']:,} customers); run {meta['mlflow_run']}")
    with connect(settings, read_only=True) as con:
        if table_exists(con, "marts", "customer_scores"):
            row = con.execute(
                "select count(*), any_value(as_of_date), any_value(churn_model_version), "
                "any_value(ltv_model_version), avg(churn_probability), sum(predicted_ltv_usd), "
                "sum(case when risk_segment = 'high' then 1 else 0 end) from marts.customer_scores").fetchone()
            if row[0] == 0:
                lines.append("  customer_scores empty: no champion model yet")
            else:
                lines.append(f"  customer_scores {row[0]:,} customers as of {row[1]} (churn v{row[2] or '-'}, "
                             f"ltv v{row[3] or '-'}): mean churn probability {row[4] or 0:.3f}, predicted revenue "
                             f"{row[5] or 0:,.0f} USD, {row[6]:,} at high risk")
    return (["models:"] + lines) if lines else []


def measure_lines(settings: Settings) -> list[str]:
    """KPI anomalies of the last days, each experiment's decision, audience sizes and where the report is."""
    lines: list[str] = []
    with connect(settings, read_only=True) as con:
        if table_exists(con, "marts", "kpi_anomalies"):
            total, whole = con.execute(
                "select count(*), count(*) filter (where dimension = 'all') from marts.kpi_anomalies").fetchone()
            recent = con.execute(
                """
                select date, metric, value, lower, upper, direction, drilldown
                from marts.kpi_anomalies
                where dimension = 'all'
                order by date desc, abs(score) desc
                limit 8
                """).fetchall()
            lines.append(f"kpi anomalies: {whole} in whole KPIs, {total - whole} more in breakdowns"
                         + (" (latest first):" if recent else ""))
            for day, metric, value, lower, upper, direction, drilldown in recent:
                where = f"; {drilldown}" if drilldown else ""
                lines.append(f"  {day} {metric:<24} {direction:<5} {value:,.4g} outside {lower:,.4g}..{upper:,.4g}"
                             f"{where}")
        if table_exists(con, "marts", "experiment_results"):
            decisions = con.execute(
                """
                select experiment_id, any_value(decision), any_value(decision_reason), sum(units)
                from marts.experiment_results group by experiment_id order by experiment_id
                """).fetchall()
            lines.append("experiments:" if decisions else "experiments: none exposed yet")
            for experiment, decision, reason, units in decisions:
                lines.append(f"  {experiment:<20} {decision:<12} {reason} ({units:,} people)")
        audiences = [name for name in ("audience_abandoned_carts", "audience_churn_risk_high_value",
                                       "audience_bad_experience") if table_exists(con, "marts", name)]
        if audiences:
            counts = {name: con.execute(f"select count(*) from marts.{name}").fetchone()[0] for name in audiences}
            sizes = ", ".join(f"{name.removeprefix('audience_')} {n:,}" for name, n in counts.items())
            lines.append(f"audiences (consenting customers): {sizes}")
    latest = settings.reports_dir / "latest.html"
    if latest.exists():
        lines.append(f"report: {latest}")
    return lines


def summary_lines(settings: Settings, result, elapsed: float | None) -> list[str]:
    from orchestration.lib.dbt import dbt_project, mart_names

    lines: list[str] = []
    if result is not None:
        status = "succeeded" if result.success else "FAILED"
        took = f" in {elapsed:.0f} s" if elapsed is not None else ""
        lines.append(f"cxloop run {result.run_id[:8]} {status}{took}")
    marts = mart_names(dbt_project())
    done = materialized_keys(result)
    with connect(settings, read_only=True) as con:
        counts = {m: con.execute(f"select count(*) from marts.{m}").fetchone()[0]
                  for m in marts if table_exists(con, "marts", m)}
        present = present_sources(con)
        quarantine = []
        if table_exists(con, "marts", "quarantine"):
            quarantine = con.execute(
                "select stage, rule, count(*) from marts.quarantine group by all order by 3 desc, 2").fetchall()
        elif table_exists(con, "raw", "quarantine"):
            quarantine = con.execute(
                "select 'ingest', rule, count(*) from raw.quarantine group by all order by 3 desc, 2").fetchall()
    lines.append(f"sources with data: {', '.join(present) or 'none'}")
    lines.append("marts (rows):")
    for mart in marts:
        if result is not None and not any(k.endswith(f"/{mart}") for k in done):
            if result.success:
                lines.append(f"  {mart:<30} skipped (needs a source with no data)")
            else:
                lines.append(f"  {mart:<30} not built in this run")
        elif mart in counts:
            lines.append(f"  {mart:<30} {counts[mart]:>10,}")
        else:
            lines.append(f"  {mart:<30} not built")
    tally = check_tally(result)
    if result is not None:
        gx = sum(1 for name in tally.passed + [n for n, _ in tally.failed] if name.endswith("_meets_expectations"))
        total = len(tally.passed) + len(tally.failed)
        lines.append(f"checks: {len(tally.passed)} passed, {len(tally.failed)} failed "
                     f"({gx} Great Expectations suites, {total - gx} dbt tests)")
        for name, severity in tally.failed:
            lines.append(f"  FAILED [{severity}] {name}")
    total_q = sum(n for _, _, n in quarantine)
    by_stage: dict[str, int] = {}
    for stage, _, n in quarantine:
        by_stage[stage] = by_stage.get(stage, 0) + n
    stages = ", ".join(f"{s} {n}" for s, n in sorted(by_stage.items()))
    lines.append(f"rows quarantined: {total_q:,}" + (f" ({stages})" if stages else ""))
    for stage, rule, n in quarantine[:12]:
        lines.append(f"  {n:>7,}  {rule}  [{stage}]")
    if len(quarantine) > 12:
        lines.append(f"  ... {len(quarantine) - 12} more rules: select * from marts.quarantine")
    lines += model_lines(settings, result)
    lines += measure_lines(settings)
    status = read_status(settings)
    if status and status.get("state") == "stale":
        lines.append(f"NOT PUBLISHED: {stale_message(status)}")
    elif status:
        lines.append(f"published: serving snapshot {status['snapshot_id']} at {status['published_at']}")
    lines += [
        "next:",
        "  make ui                      Dagster UI on http://127.0.0.1:3000 (runs, lineage, checks)",
        "                               MLflow UI on http://127.0.0.1:5000 (runs, metrics, plots, registry)",
        f"  serving snapshot             {settings.serving_dir / 'current'}/<mart>.parquet "
        "(or serving.duckdb: views)",
        f"  warehouse (DuckDB)           {settings.warehouse}",
        "  quarantine                   marts.quarantine (file, line, rule for every held-back row)",
        "  docs                         docs/data-contract.md, docs/architecture.md, docs/operations.md",
    ]
    return lines


def print_summary(settings: Settings, result, elapsed: float | None) -> None:
    print("\n".join(summary_lines(settings, result, elapsed)))
