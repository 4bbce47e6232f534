"""`generate`: simulate the shop, write the landing directory and the truth directory.

Each stage draws from its own random stream spawned from the seed, so switching faults off or writing fewer
sources leaves every other file byte-identical, and the same arguments always give the same bytes: there is
no wall clock anywhere, gzip headers carry no time, and all ordering is by stable sorts.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from simulator import catalog as cat
from simulator import blocks, commerce, events, feedback, landing, tables, text, truth, world
from simulator import faults as planted
from simulator.formats import BLOCK_DIGITS, DAY_MS, IdSpace, dates, iso

SOURCES = ("events", "customers", "orders", "payments", "tickets", "reviews", "surveys")
CSV_SOURCES = SOURCES[1:]
DEFAULT_CUSTOMERS = 2000
DEFAULT_DAYS = 120
DEFAULT_SEED = 1
DEFAULT_START_DATE = "2026-01-01"
# New streams go at the end: `SeedSequence.spawn` gives the i-th child the same seed whatever the count, so
# adding one leaves every earlier stream, and everything drawn from it, unchanged.
_STREAMS = ("world", "commerce", "events", "feedback", "tables", "faults", "delivery", "text")
# Blocks after the first spawn their streams under this key, apart from the streams' own spawn keys ("block").
_BLOCK_SPAWN_KEY = 0x626C6F636B
DEFAULT_BLOCK_CUSTOMERS = 20_000


def default_truth_dir(out: Path) -> Path:
    """`data/landing` -> `data/truth`: the truth sits beside the landing directory, never inside it."""
    return Path(out).parent / "truth"


def _start_day(start_date: str | dt.date) -> int:
    return int(np.datetime64(str(start_date), "D").astype(np.int64))


def _prepare(out: Path, truth_dir: Path, sources: tuple[str, ...], overwrite: bool) -> None:
    """Refuse to mix a new simulation into old files, unless asked to replace what this run writes.

    Landed files are immutable under the contract; overwriting them in place would look like a changed file to
    an ingest that already loaded them.
    """
    existing = [out / s for s in sources if (out / s).exists() and any((out / s).rglob("*"))]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already holds files; use overwrite=True (--overwrite) to replace them")
    for folder in existing:
        shutil.rmtree(folder)
    for name in truth.TRUTH_FILES:
        (truth_dir / name).unlink(missing_ok=True)
    shutil.rmtree(blocks.parts_root(truth_dir), ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)


def generate(customers: int = DEFAULT_CUSTOMERS, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED,
             out: Path | str = Path("data/landing"), truth: Path | str | None = None,
             start_date: str | dt.date = DEFAULT_START_DATE, sources: list[str] | tuple[str, ...] | None = None,
             faults: bool = True, progress: bool = False, overwrite: bool = False,
             block_customers: int = DEFAULT_BLOCK_CUSTOMERS, workers: int = 1, gzip_events: bool = False) -> dict:
    """Simulate `customers` customers for `days` days from `start_date` and write landing and truth files.

    Returns the summary also written to `<truth>/summary.json`. `sources` limits which landing folders are
    written (the simulated shop is the same); `faults=False` writes clean data with no planted defects;
    `gzip_events=True` gzips every event file instead of every seventh day's (the same lines, a fraction of the
    disk: a year of 100M events is about 72 GB as plain JSONL).

    A shop of more than `block_customers` customers is simulated in blocks of at most that many customers
    (`blocks.py`), so memory is bounded by the block size, not the shop size; `workers` processes simulate
    blocks in parallel and do not change a byte. A shop that fits in one block is written exactly as a
    one-block shop always was.
    """
    if customers < 1 or days < 1:
        raise ValueError("customers and days must be positive")
    if block_customers < 1 or workers < 1:
        raise ValueError("block_customers and workers must be positive")
    sizes = blocks.block_sizes(customers, block_customers)
    chosen = tuple(SOURCES) if sources is None else tuple(sources)
    unknown = sorted(set(chosen) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; choose from {', '.join(SOURCES)}")
    chosen = tuple(s for s in SOURCES if s in chosen)
    out = Path(out)
    truth_dir = Path(truth) if truth is not None else default_truth_dir(out)
    _prepare(out, truth_dir, chosen, overwrite)
    period = world.Period.build(_start_day(start_date), days)
    args = {"customers": customers, "days": days, "seed": seed, "start_date": str(np.datetime64(period.start_day,
                                                                                                   "D")),
            "sources": list(chosen), "faults": faults}
    jobs = [Block(index=i, count=len(sizes), customers=size, seed=seed, start_day=period.start_day, days=days,
                  out=out, truth=truth_dir if len(sizes) == 1 else blocks.part_dir(truth_dir, i), sources=chosen,
                  faults=faults, gzip_events=gzip_events) for i, size in enumerate(sizes)]
    if len(jobs) == 1:
        return run_block(jobs[0], args, progress)
    with tqdm(total=len(jobs), file=sys.stderr, disable=not progress, desc="blocks", unit="block",
              leave=False) as bar:
        summaries = []
        for summary in blocks.run(run_block, jobs, args, workers):
            summaries.append(summary)
            bar.update(1)
    return blocks.merge_truth(truth_dir, jobs, summaries, args, block_customers)


@dataclass(frozen=True)
class Block:
    """One block of a shop's customers: what a (possibly separate) process needs to simulate and write it."""

    index: int
    count: int
    customers: int
    seed: int
    start_day: int
    days: int
    out: Path
    truth: Path
    sources: tuple[str, ...]
    faults: bool
    gzip_events: bool = False

    @property
    def blocked(self) -> bool:
        return self.count > 1

    @property
    def tag(self) -> str:
        """What a block puts before the extension of every landing file name (`events_<date>_00.b0003.jsonl`)."""
        return f".b{self.index:0{BLOCK_DIGITS}d}" if self.blocked else ""

    def streams(self) -> dict[str, np.random.Generator]:
        """The block's random streams. Block 0 draws exactly what a one-block shop with this seed draws."""
        root = (np.random.SeedSequence(self.seed) if self.index == 0
                else np.random.SeedSequence(self.seed, spawn_key=(_BLOCK_SPAWN_KEY, self.index)))
        return dict(zip(_STREAMS, (np.random.default_rng(s) for s in root.spawn(len(_STREAMS)))))


def run_block(job: Block, args: dict, progress: bool = False) -> dict:
    """Simulate one block and write its landing files and truth files (into `job.truth`); returns its summary."""
    rng = job.streams()
    period = world.Period.build(job.start_day, job.days)
    days = job.days
    out, truth_dir, chosen, faults = job.out, job.truth, job.sources, job.faults
    truth_dir.mkdir(parents=True, exist_ok=True)
    ids = IdSpace(job.index, job.blocked)
    with tqdm(total=2 * days + 4, file=sys.stderr, disable=not progress, desc="simulating", unit="step",
              leave=False) as bar:
        shop = world.simulate(rng["world"], job.customers, period, bar, ids)
        bar.set_description("expanding")
        carts = commerce.carts(shop)
        orders = commerce.build_orders(shop, carts, rng["commerce"])
        ev = events.expand(shop, carts, rng["events"])
        _settle_from_events(shop, orders, ev)
        commerce.assign_ids(orders)
        life = commerce.lifecycle(shop, orders, rng["commerce"])
        events.add_refunds(ev, orders, rng["events"])
        tix = feedback.tickets(shop, orders, life["experiences"], rng["feedback"])
        rev = feedback.reviews(shop, orders, life["experiences"], rng["feedback"])
        srv = feedback.surveys(shop, orders, life["experiences"], tix, rng["feedback"])
        bar.update(1)

        times = _event_times(shop, ev, rng["delivery"], rng["faults"], faults)
        order_ids = ids.seq("O", orders["number"], 7)
        crm, history = tables.customers(shop, rng["tables"])
        korean = text.korean_writers(rng["text"], len(shop.customers["tz"]))
        csv_tables = {
            "customers": crm,
            "orders": tables.orders(shop, orders, life["changes"], order_ids),
            "payments": tables.payments(shop, orders, life["payments"], order_ids),
            "tickets": tables.tickets(shop, tix, order_ids, rng["text"], korean),
            "reviews": tables.reviews(shop, rev, rng["text"], korean),
            "surveys": tables.surveys(shop, srv, rng["text"], korean),
        }
        ef = _plant_faults(csv_tables, history, ev, times, shop, rng["faults"], faults)
        bar.update(1)

        bar.set_description("writing")
        renderer = events.Renderer(shop, ev, carts, orders)
        fault_rows: list[list] = []
        files: dict[str, int] = {}
        lines = None
        if "events" in chosen:
            records = landing.event_records(len(ev), times["received"], times["day"], ef, period)
            lines = landing.write_events(out, renderer, times, records, ef, period, bar, tag=job.tag,
                                         gzip_all=job.gzip_events)
            files["events"] = len(lines.files)
            fault_rows += _event_fault_rows(ev, lines, ef, times, shop)
        else:
            bar.update(days)
        for source in CSV_SOURCES:
            if source not in chosen:
                continue
            table = csv_tables[source]
            # Block 0 writes a file for every day, header-only if need be; later blocks only days with rows.
            file, line, written = landing.write_table(out, table, period, tag=job.tag, every_day=job.index == 0)
            files[source] = len(written)
            planted = np.nonzero(table.kind != "")[0]
            fault_rows += [[source, file[i], int(line[i]), table.kind[i], table.row_key[i], table.rule[i],
                            table.detail[i]] for i in planted]
        bar.update(1)

        bar.set_description("truth")
        summary = _write_truth(truth_dir, args, shop, orders, life, ev, times, ef, lines, csv_tables, history,
                               tix, rev, srv, fault_rows, files, chosen)
        bar.update(1)
    return summary


def _settle_from_events(shop: world.World, orders: dict, ev: events.Events) -> None:
    """Facts only the event stream fixes: when online orders were placed and web customers signed up."""
    c = ev.cols
    placed = c["slot"] == events.S_ORDER
    orders["ordered_ms"][c["order"][placed]] = c["true_ts"][placed]
    signed = c["slot"] == events.S_SIGNED_UP
    cust = shop.customers
    cust["signup_ms"][c["customer"][signed]] = c["true_ts"][signed]
    s = shop.sessions
    signup_sessions = np.nonzero(s["signup"])[0]
    who = s["customer"][signup_sessions]
    campaign = s["campaign"][signup_sessions]
    by_campaign = np.array([cat.ACQUISITION_CHANNELS.index(x[3]) for x in cat.CAMPAIGNS])
    by_referrer = np.array([cat.ACQUISITION_CHANNELS.index(x) for x in cat.REFERRER_ACQUISITION])
    credited = np.where(campaign >= 0, by_campaign[np.maximum(campaign, 0)],
                        by_referrer[s["referrer"][signup_sessions]])
    cust["acquisition"][who] = credited


def _event_times(shop: world.World, ev: events.Events, rng: np.random.Generator, fault_rng: np.random.Generator,
                 enabled: bool) -> dict[str, np.ndarray]:
    """Device and server clocks of every event.

    Devices batch events for up to a minute (sentAt later than timestamp) and the network adds up to 800 ms.
    A skewed device shifts timestamp and sentAt by its skew; the server's receivedAt is always true, so
    receivedAt - (sentAt - timestamp) recovers the true time to within the network delay.
    """
    c = ev.cols
    n = len(ev)
    server = c["device"] < 0
    batch = np.where(server, rng.integers(0, 2_000, size=n), rng.integers(0, 60_000, size=n))
    network = rng.integers(0, 800, size=n)
    used = np.unique(c["device"][~server])
    skew_by_device = planted.device_skew(fault_rng, used, len(shop.devices["owner"]), enabled)
    skew = np.where(server, 0, skew_by_device[np.maximum(c["device"], 0)])
    received = c["true_ts"] + batch + network
    day = np.clip(received // DAY_MS - shop.period.start_day, 0, shop.period.days - 1)
    return {"ts": c["true_ts"] + skew, "sent": c["true_ts"] + batch + skew, "received": received, "day": day,
            "skew": skew, "skew_by_device": skew_by_device}


def _plant_faults(csv_tables: dict[str, tables.Table], history: dict, ev: events.Events, times: dict,
                     shop: world.World, rng: np.random.Generator, enabled: bool) -> planted.EventFaults:
    """Plant every fault (when enabled): bad CSV rows, orphan orders, stale CRM updates, event faults."""
    period = shop.period
    ef = planted.event_faults(rng, ev.cols["session"], times["day"], period.days, enabled)
    if not enabled:
        return ef
    extra_customers = 0
    for source in CSV_SOURCES:
        table = csv_tables[source]
        bad = planted.bad_rows(table, period.start_day, rng)
        if bad is not None:
            if source == "customers":
                extra_customers = len(bad)
            table.extend(bad)
    orphans = planted.orphan_orders(csv_tables["orders"], csv_tables["payments"], len(shop.customers["tz"]),
                                   extra_customers, rng, shop.ids)
    if orphans is not None:
        csv_tables["orders"].extend(orphans[0])
        csv_tables["payments"].extend(orphans[1])
    stale = planted.stale_updates(csv_tables["customers"], history, period.start_day, period.days, rng)
    if stale is not None:
        csv_tables["customers"].extend(stale)
    return ef


def _event_fault_rows(ev: events.Events, lines: landing.EventLines, ef: planted.EventFaults, times: dict,
                      shop: world.World) -> list[list]:
    ids = ev.cols["message_id"]
    rows = []
    n = len(ev)
    dup_rec = np.nonzero(lines.kind == landing.REC_DUPLICATE)[0]
    shift = ef.dup_shift_ms
    for j, r in enumerate(dup_rec):
        e = lines.event[r]
        where = "same delivery day" if lines.day[r] == lines.day[e] else "later delivery day"
        what = "identical line" if shift[j] == 0 else f"receivedAt +{shift[j] / 1000:.3f}s"
        rows.append(["events", lines.file[r], int(lines.line[r]), planted.KIND_DUPLICATE, ids[e], "",
                     f"{what}; {where}; first at {lines.file[e]}:{lines.line[e]}"])
    for r in np.nonzero(lines.kind == landing.REC_MALFORMED)[0]:
        style = "truncated line" if ef.bad_text[r - n - len(dup_rec)] == "" else "not a JSON object"
        rows.append(["events", lines.file[r], int(lines.line[r]), planted.KIND_MALFORMED, "", "events.json", style])
    for e in np.nonzero(ef.late_days > 0)[0]:
        rows.append(["events", lines.file[e], int(lines.line[e]), planted.KIND_LATE, ids[e], "",
                     f"delivered {int(ef.late_days[e])} days after receipt"])
    skew = times["skew_by_device"]
    for d in np.nonzero(skew != 0)[0]:
        rows.append(["events", "", "", planted.KIND_SKEWED, shop.devices["anonymous_id"][d], "",
                     f"skew_seconds={skew[d] / 1000:.3f}"])
    return rows


def _write_truth(truth_dir: Path, args: dict, shop: world.World, orders: dict, life: dict, ev: events.Events,
                 times: dict, ef: planted.EventFaults, lines: landing.EventLines | None,
                 csv_tables: dict[str, tables.Table], history: dict, tix: dict, rev: dict, srv: dict,
                 fault_rows: list[list], files: dict[str, int], chosen: tuple[str, ...]) -> dict:
    period = shop.period
    cust = shop.customers
    dev = shop.devices
    c = ev.cols
    n_cust = len(cust["tz"])
    customer_ids = tables.customer_ids(shop)
    order_ids = shop.ids.seq("O", orders["number"], 7)

    fault_rows.sort(key=lambda r: (r[0], r[1], r[2] if r[2] != "" else -1, r[3], r[4]))
    truth.write_csv(truth_dir / "faults.csv", list(truth.FAULT_COLUMNS), fault_rows)

    exp = life["experiences"]
    bad_count = np.bincount(exp["customer"], minlength=n_cust)
    first_bad = np.full(n_cust, -1, dtype=np.int64)
    ordered = np.lexsort((exp["ms"], exp["customer"]))
    firsts = np.unique(exp["customer"][ordered], return_index=True)[1]
    first_bad[exp["customer"][ordered][firsts]] = exp["ms"][ordered][firsts]
    order_count = np.bincount(orders["customer"], minlength=n_cust)
    final = np.ones(len(history["customer"]), dtype=bool)
    final[:-1] = history["customer"][1:] != history["customer"][:-1]
    last = np.nonzero(final)[0]
    devices_per_customer = np.bincount(dev["owner"][dev["owner"] >= 0], minlength=n_cust)
    churned = shop.churn_day >= 0
    variations = np.array([v[0] for v in cat.EXPERIMENTS[0]["variations"]], dtype=object)
    truth.write_csv(truth_dir / "customers.csv", [
        "customer_id", "signup_at", "pre_existing", "acquisition_channel", "country", "city", "marketing_consent",
        "churned_at", "purchase_rate", "browse_rate", "store_rate", "base_hazard", "satisfaction",
        "bad_experiences", "first_bad_experience_at", "orders", "devices", "checkout_button_variation"], {
        "customer_id": customer_ids,
        "signup_at": iso(cust["signup_ms"], 0),
        "pre_existing": np.where(cust["pre_existing"], "true", "false"),
        "acquisition_channel": np.array(cat.ACQUISITION_CHANNELS, dtype=object)[cust["acquisition"]],
        "country": np.array(cat.COUNTRY_CODES, dtype=object)[cust["country"]],
        "city": np.array(cat.CITY_NAMES, dtype=object)[history["city"][last]],
        "marketing_consent": np.where(history["consent"][last], "true", "false"),
        "churned_at": np.where(churned, dates(period.start_day + np.maximum(shop.churn_day, 0)), ""),
        "purchase_rate": np.round(cust["purchase_rate"], 4),
        "browse_rate": np.round(cust["browse_rate"], 4),
        "store_rate": np.round(cust["store_rate"], 4),
        "base_hazard": np.round(cust["base_hazard"], 6),
        "satisfaction": np.round(cust["satisfaction"], 4),
        "bad_experiences": bad_count,
        "first_bad_experience_at": np.where(first_bad >= 0, iso(np.maximum(first_bad, 0), 0), ""),
        "orders": order_count,
        "devices": devices_per_customer,
        "checkout_button_variation": variations[cust["checkout_button"]],
    })

    summary = {
        "args": args,
        "period": {"start_date": args["start_date"], "end_date": str(np.datetime64(period.start_day + period.days
                                                                                    - 1, "D")),
                   "days": period.days},
        "sources": list(chosen),
        "files": files,
    }
    counts: dict[str, object] = {
        "customers": n_cust,
        "customers_pre_existing": int(cust["pre_existing"].sum()),
        "customers_churned": int(churned.sum()),
        "customer_rows": int((csv_tables["customers"].kind == "").sum()),
        "sessions": int(len(shop.sessions["device"])),
        "orders": int(len(order_ids)),
        "orders_online": int((~orders["is_store"]).sum()),
        "orders_by_final_status": {s: int((orders["final_status"] == i).sum())
                                   for i, s in enumerate(commerce.STATUSES)},
        "order_rows": int((csv_tables["orders"].kind == "").sum()),
        "payments": int(len(life["payments"]["order"])),
        "payment_failures": int(life["payments"]["failed"].sum()),
        "refunds": int((orders["refund_ms"] >= 0).sum()),
        "bad_experiences": int(len(exp["customer"])),
        "tickets": int(len(tix["ms"])),
        "reviews": int(len(rev["ms"])),
        "surveys": int(len(srv["ms"])),
        "orphan_orders": int((csv_tables["orders"].kind == planted.KIND_ORPHAN).sum()),
        "stale_updates": int((csv_tables["customers"].kind == planted.KIND_STALE).sum()),
        "bad_rows": {s: int((csv_tables[s].kind == planted.KIND_BAD_ROW).sum()) for s in CSV_SOURCES},
        "events_unique": int(len(ev)),
        "order_completed_events": int((c["slot"] == events.S_ORDER).sum()),
        "order_refunded_events": int((c["slot"] == events.S_REFUND).sum()),
        "duplicate_lines": int(len(ef.dup_event)),
        "malformed_lines": int(len(ef.bad_day)),
        "late_events": int((ef.late_days > 0).sum()),
        "skewed_devices": int((times["skew_by_device"] != 0).sum()),
        "skewed_events": int((times["skew"] != 0).sum()),
    }
    counts["event_lines"] = counts["events_unique"] + counts["duplicate_lines"] + counts["malformed_lines"]
    summary["counts"] = counts
    summary["incidents"] = [
        {"kind": "traffic_drop", "date": _date(period, period.traffic_drop_day), "metric": "sessions",
         "factor": world.TRAFFIC_DROP_FACTOR},
        {"kind": "payment_failure_spike", "date": _date(period, period.payment_spike_day),
         "metric": "payment failure rate of first attempts", "factor": world.PAYMENT_SPIKE_FACTOR},
    ] if period.traffic_drop_day >= 0 else []
    summary["churn"] = {"hazard": "base_hazard * (1 + hazard_per_bad_experience * bad experiences so far)",
                        "hazard_per_bad_experience": world.HAZARD_PER_BAD_EXPERIENCE}

    exposures = _experiments(truth_dir, shop, ev, customer_ids)
    summary["experiments"] = []
    for spec in cat.EXPERIMENTS:
        realised = exposures[spec["experiment_id"]]
        summary["experiments"].append({
            "experiment_id": spec["experiment_id"], "experiment_name": spec["experiment_name"],
            "unit": spec["unit"], "exposure": spec["exposure"],
            "variations": [{"variation_id": v, "variation_name": name, "share": 0.5}
                           for v, name in spec["variations"]],
            "planted_relative_lift": spec["planted_relative_lift"], "metric": spec["metric"],
            "realised": realised,
        })

    _daily(truth_dir, shop, orders, life, ev, tix)
    if "events" in chosen:
        _identity(truth_dir, shop, ev, customer_ids)
        _events(truth_dir, shop, ev, times, ef, lines, customer_ids, order_ids)
    truth.write_json(truth_dir / "summary.json", summary)
    return summary


def _date(period: world.Period, day: int) -> str:
    return str(np.datetime64(period.start_day + day, "D"))


def _experiments(truth_dir: Path, shop: world.World, ev: events.Events, customer_ids: np.ndarray) -> dict:
    """experiments.csv (one row per exposed unit) and the realised conversion per variation."""
    c = ev.cols
    s = shop.sessions
    dev = shop.devices
    rows = []
    realised = {}
    for spec, slot in zip(cat.EXPERIMENTS, (events.S_EXP_CB, events.S_AA)):
        idx = np.nonzero(c["slot"] == slot)[0]
        sess = c["session"][idx]
        if spec["unit"] == "customer_id":
            unit = c["customer"][idx]
            variation = shop.customers["checkout_button"][unit]
            unit_text = customer_ids[unit]
        else:
            unit = c["device"][idx]
            variation = dev["aa_homepage"][unit]
            unit_text = dev["anonymous_id"][unit]
        converted = s["ordered"][sess]
        stats = {}
        for v, (vid, _) in enumerate(spec["variations"]):
            sel = variation == v
            sessions = np.unique(sess[sel])
            units = np.unique(unit[sel])
            conv_units = np.unique(unit[sel & converted])
            stats[vid] = {"units": int(len(units)), "exposed_sessions": int(len(sessions)),
                          "converted_sessions": int(s["ordered"][sessions].sum()),
                          "session_conversion": round(float(s["ordered"][sessions].mean()), 4) if len(sessions)
                          else None,
                          "units_converted": int(len(conv_units))}
        realised[spec["experiment_id"]] = stats
        order = np.lexsort((c["true_ts"][idx], unit))
        idx, unit, sess, variation, unit_text = idx[order], unit[order], sess[order], variation[order], unit_text[order]
        first = np.ones(len(idx), dtype=bool)
        first[1:] = unit[1:] != unit[:-1]
        starts = np.nonzero(first)[0]
        exposures = np.diff(np.append(starts, len(idx)))
        conv = np.add.reduceat(s["ordered"][sess].astype(np.int64), starts) if len(starts) else []
        person = c["customer"][idx[starts]]
        first_at = iso(c["true_ts"][idx[starts]], 0, unit="ms")
        for j, st in enumerate(starts):
            rows.append([spec["experiment_id"], spec["unit"], unit_text[st],
                         customer_ids[person[j]] if person[j] >= 0 else "",
                         spec["variations"][variation[st]][0], first_at[j], int(exposures[j]), int(conv[j])])
    truth.write_csv(truth_dir / "experiments.csv", ["experiment_id", "unit_type", "unit_id", "customer_id",
                                                     "variation_id", "first_exposed_at", "exposures",
                                                     "converted_exposures"], rows)
    return realised


def _identity(truth_dir: Path, shop: world.World, ev: events.Events, customer_ids: np.ndarray) -> None:
    c = ev.cols
    dev = shop.devices
    idx = np.nonzero(np.isin(c["slot"], (events.S_IDENTIFY_START, events.S_IDENTIFY)))[0]
    order = np.lexsort((c["true_ts"][idx], c["device"][idx]))
    idx = idx[order]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = c["device"][idx][1:] != c["device"][idx][:-1]
    idx = idx[first]
    d = c["device"][idx]
    truth.write_csv(truth_dir / "identity.csv", ["anonymous_id", "customer_id", "first_identified_at",
                                                  "device_type", "channel"], {
        "anonymous_id": dev["anonymous_id"][d],
        "customer_id": customer_ids[c["customer"][idx]],
        "first_identified_at": iso(c["true_ts"][idx], 0, unit="ms"),
        "device_type": np.array(cat.DEVICE_TYPES, dtype=object)[dev["type"][d]],
        "channel": np.where(dev["channel"][d] == world.CHANNEL_MOBILE, "mobile", "web"),
    })


def _events(truth_dir: Path, shop: world.World, ev: events.Events, times: dict, ef: planted.EventFaults,
            lines: landing.EventLines, customer_ids: np.ndarray, order_ids: np.ndarray) -> None:
    """events.parquet; text columns are built from small dictionaries (devices, customers, names) by index."""
    c = ev.cols
    dev = shop.devices
    n = len(ev)
    device = np.maximum(c["device"], 0)
    server = c["device"] < 0
    mobile = ~server & (dev["channel"][device] == world.CHANNEL_MOBILE)
    stype = events.SLOT_TYPE[c["slot"]]
    type_code = np.where(stype == events.T_IDENTIFY, 0, np.where(stype == events.T_PAGE, np.where(mobile, 2, 1), 3))
    customer = np.maximum(c["customer"], 0)
    # Codes by lookup, not np.unique: a fixed-width copy of a path per event would be the run's largest array.
    files = sorted(set(lines.files))
    code_of = {f: i for i, f in enumerate(files)}
    file_code = np.fromiter((code_of[f] for f in lines.file[:n]), dtype=np.int64, count=n)
    labels = truth.labels
    truth.write_events(truth_dir / "events.parquet", {
        "message_id": truth.strings(c["message_id"]),
        "type": labels(type_code, ["identify", "page", "screen", "track"]),
        "event": labels(c["slot"], events.SLOT_EVENT, null=events.SLOT_EVENT[c["slot"]] == ""),
        "anonymous_id": labels(device, dev["anonymous_id"], null=server),
        "user_id": labels(customer, customer_ids, null=~c["has_user"]),
        "customer_id": labels(customer, customer_ids, null=c["customer"] < 0),
        "true_ts": truth.timestamps(c["true_ts"]),
        "device_ts": truth.timestamps(times["ts"]),
        "received_at": truth.timestamps(times["received"]),
        "skew_seconds": pa.array(times["skew"] / 1000.0),
        "session_no": pa.array(c["session"] + 1, mask=c["session"] < 0),
        "channel": labels(np.where(server, 2, mobile.astype(np.int64)), ["web", "mobile", "server"]),
        "order_id": labels(np.maximum(c["order"], 0), order_ids, null=c["order"] < 0),
        "delivery_date": pa.array((shop.period.start_day + lines.day[:n]).astype("datetime64[D]"),
                                        type=pa.date32()),
        "is_late": pa.array(ef.late_days > 0),
        "days_late": pa.array(ef.late_days.astype(np.int64)),
        "duplicate_lines": pa.array(np.bincount(ef.dup_event, minlength=n).astype(np.int64)),
        "file": labels(file_code, files),
        "line": pa.array(lines.line[:n].astype(np.int64)),
    })


def _daily(truth_dir: Path, shop: world.World, orders: dict, life: dict, ev: events.Events, tix: dict) -> None:
    period = shop.period
    D = period.days

    def per_day(ms: np.ndarray, weights=None) -> np.ndarray:
        day = ms // DAY_MS - period.start_day
        ok = (day >= 0) & (day < D)
        return np.bincount(day[ok], weights=None if weights is None else weights[ok], minlength=D).astype(np.int64)

    s = shop.sessions
    pay = life["payments"]
    first_attempt = np.zeros(len(pay["order"]), dtype=bool)
    first_attempt[np.unique(pay["order"], return_index=True)[1]] = True  # payments are sorted by time
    cust = shop.customers
    in_period = ~cust["pre_existing"]
    churned = shop.churn_day >= 0
    truth.write_csv(truth_dir / "daily.csv", [
        "date", "sessions", "converted_sessions", "events", "orders", "online_orders", "payment_attempts",
        "payment_failures", "first_attempts", "first_attempt_failures", "signups", "churned", "tickets"], {
        "date": dates(period.start_day + np.arange(D)),
        "sessions": per_day(s["start_ms"]),
        "converted_sessions": per_day(s["start_ms"][s["ordered"]]),
        "events": per_day(ev.cols["true_ts"]),
        "orders": per_day(orders["ordered_ms"]),
        "online_orders": per_day(orders["ordered_ms"][~orders["is_store"]]),
        "payment_attempts": per_day(pay["ms"]),
        "payment_failures": per_day(pay["ms"][pay["failed"]]),
        "first_attempts": per_day(pay["ms"][first_attempt]),
        "first_attempt_failures": per_day(pay["ms"][first_attempt & pay["failed"]]),
        "signups": per_day(cust["signup_ms"][in_period]),
        "churned": np.bincount(shop.churn_day[churned], minlength=D)[:D],
        "tickets": per_day(tix["ms"]),
    })
