"""The measure step on a simulated shop: planted incidents found, false alerts, planted experiment effects
recovered, audiences, the report, and what each step costs.

    .venv/bin/python benchmarks/measure_simulated.py                       # the demo shop of `make run`
    .venv/bin/python benchmarks/measure_simulated.py --customers 800 --days 150 --seed 5

Builds a fresh installation in a temporary folder, runs `platform_job` once, and judges `kpi_anomalies` and
`experiment_results` against the simulator's truth (`summary.json`). The last line is a JSON object of the
headline figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.installation import fresh_installation, shop_arguments, simulated_run, step_seconds  # noqa: E402

MEASURE_STEPS = ("kpi_anomalies", "experiment_analysis", "cxloop_activation_models", "report")


def incidents_found(anomalies, incidents: list[dict]) -> dict[str, bool]:
    """Whether each planted incident shows as an anomaly of its KPI, as a whole, on its day and side."""
    expected = {"traffic_drop": ("sessions", "drop"), "payment_failure_spike": ("payment_success_rate", "drop")}
    whole = anomalies[anomalies.dimension == "all"]
    found = {(r.metric, r.date, r.direction) for r in whole.itertuples()}
    return {i["kind"]: (*expected[i["kind"]][:1], date.fromisoformat(i["date"]), expected[i["kind"]][1]) in found
            for i in incidents}


def main() -> int:
    args = shop_arguments(__doc__.splitlines()[0]).parse_args()

    root = Path(tempfile.mkdtemp(prefix="cxloop-measure-"))
    settings = fresh_installation(root, "benchmark-key")
    import duckdb
    import pandas as pd

    truth, result, run_s = simulated_run(settings, args, root / "run.log")
    steps = step_seconds(result)

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        anomalies = con.execute("select * from marts.kpi_anomalies").df()
        bands = con.execute("select metric, date from marts.kpi_expected").df()
        results = con.execute("select * from marts.experiment_results order by experiment_id, variation_id").df()
        audiences = {name: con.execute(f"select count(*) from marts.{name}").fetchone()[0]
                     for name in ("audience_abandoned_carts", "audience_churn_risk_high_value",
                                  "audience_bad_experience")}
    finally:
        con.close()
    for frame in (anomalies, bands):
        frame["date"] = pd.to_datetime(frame["date"]).dt.date

    found = incidents_found(anomalies, truth["incidents"])
    incident_days = {date.fromisoformat(i["date"]) + timedelta(days=d) for i in truth["incidents"] for d in (0, 1)}
    clean = bands[~bands.date.isin(incident_days)].groupby("metric").size()
    false = anomalies[(anomalies.dimension == "all") & ~anomalies.date.isin(incident_days)].groupby("metric").size()
    per_90 = {m: round(float(false.get(m, 0)) * 90 / days, 2) for m, days in clean.items()}

    print(f"shop: {args.customers} customers, {args.days} days, seed {args.seed}; platform_job {run_s:.0f} s")
    print("incidents:")
    for incident in truth["incidents"]:
        print(f"  {incident['kind']:<24} {incident['date']}  {'found' if found[incident['kind']] else 'MISSED'}")
    print("false alerts per 90 clean days (whole KPIs, days scored):")
    for metric in sorted(per_90):
        print(f"  {metric:<26} {per_90[metric]:>5.2f}  ({int(false.get(metric, 0))} in {clean[metric]} days)")
    print(f"breakdown anomalies: {int((anomalies.dimension != 'all').sum())}")
    print("experiments:")
    planted = {e["experiment_id"]: e["planted_relative_lift"] for e in truth["experiments"]}
    for row in results[~results.is_control].itertuples():
        inside = row.rel_lift_low <= planted[row.experiment_id] <= row.rel_lift_high
        print(f"  {row.experiment_id:<16} {row.variation_id:<10} units {row.units:>6,}  rel lift {row.rel_lift:+.3f} "
              f"[{row.rel_lift_low:+.3f}, {row.rel_lift_high:+.3f}]  planted {planted[row.experiment_id]:+.2f} "
              f"({'inside' if inside else 'OUTSIDE'})  p {row.p_value:.3f}  CUPED VR {row.variance_reduction:.3f}  "
              f"-> {row.decision}")
    print("audiences:", ", ".join(f"{k.removeprefix('audience_')} {v:,}" for k, v in audiences.items()))
    report = settings.reports_dir / "latest.html"
    print(f"report: {report.stat().st_size / 1e6:.2f} MB")
    print("step seconds:", ", ".join(f"{s} {steps.get(s, 0):.1f}" for s in MEASURE_STEPS))
    print(json.dumps({
        "customers": args.customers, "days": args.days, "seed": args.seed, "platform_job_s": round(run_s, 1),
        "incidents_found": sum(found.values()), "incidents": len(found),
        "max_false_alerts_per_90_days": max(per_90.values(), default=0.0),
        "planted_lifts_inside_interval": int(sum(
            r.rel_lift_low <= planted[r.experiment_id] <= r.rel_lift_high for r in results[~results.is_control].itertuples())),
        "decisions": dict(zip(results.experiment_id, results.decision)),
        "audiences": audiences, "report_mb": round(report.stat().st_size / 1e6, 2),
        **{f"{s}_s": round(steps.get(s, 0.0), 1) for s in MEASURE_STEPS},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
