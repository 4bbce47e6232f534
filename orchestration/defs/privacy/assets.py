"""Erasure requests (GDPR art. 17): processed before any new file loads, so an erased person stays out.

The work is plain Python in `orchestration/lib/erasure.py`; docs/privacy.md describes what is removed, the
suppression list, the space reclaim and the audit log.
"""

import dagster as dg

from orchestration.defs.ingest.assets import ERASURE_REQUESTS, WAREHOUSE_POOL
from orchestration.defs.serving.assets import MARTS
from orchestration.lib.erasure import REQUESTS_SOURCE, process_requests
from orchestration.lib.settings import get_settings

PRIVACY_GROUP = "privacy"


@dg.asset(key=ERASURE_REQUESTS, group_name=PRIVACY_GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb", "python"})
def erasure_requests(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Erasure requests processed: each person named in a new file under `<landing>/erasure_requests/` (or by
    `cxloop erase`) is put on the suppression list and deleted from the restricted PII store and from every
    warehouse table (raw, marts, quarantine, features, scores, audiences); the database files are rewritten
    so the deleted bytes are gone, the serving snapshot is republished and older snapshots are deleted, and
    one line per request is appended to the audit log.

    The raw assets depend on this one, so within a run the suppression list is in force before new files load
    and the marts rebuild without the person. Metadata holds counts only, never identifiers.
    """
    settings = get_settings()
    run = process_requests(settings, MARTS, load_id=context.run_id)
    removed = run.removed_by_layer()
    if run.erasures:
        context.log.info(f"{len(run.erasures)} erasure request(s) processed; rows removed per layer: {removed}")
    if run.already_processed:
        context.log.info(f"{len(run.already_processed)} request(s) were already processed (in the audit log)")
    if run.rows_quarantined:
        context.log.warning(f"{run.rows_quarantined} {REQUESTS_SOURCE} row(s) quarantined: see raw.quarantine")
    return dg.MaterializeResult(metadata={
        "files_new": len(run.files),
        "requests_processed": len(run.erasures),
        "requests_already_processed": len(run.already_processed),
        "requests_quarantined": run.rows_quarantined,
        "rows_removed": sum(e.rows_removed for e in run.erasures),
        "rows_removed_by_layer": removed,
        "bytes_before_after_reclaim": {name: list(sizes) for name, sizes in run.reclaimed.items()},
        "reclaim_seconds": round(run.reclaim_seconds, 3),
        "serving_snapshot": run.snapshot_id or "",
        "serving_snapshots_dropped": len(run.snapshots_dropped),
        **({"audit_log": dg.MetadataValue.path(str(run.audit_log))} if run.audit_log else {}),
    })
