"""Failpoints: named places where a fault-injection test makes a run crash on purpose.

`CXLOOP_FAILPOINTS="ingest.before_commit=kill"` makes the run die by SIGKILL when it reaches that point;
`=raise` raises `FailpointError` instead; `=fail` makes `failpoint()` return True, for callers that then fail
on their own terms (a check reports a failed result). Unset (always, outside the fault tests) a failpoint is
one environment lookup. Each name marks a moment whose crash the platform promises to survive:

- `ingest.before_commit`: rows of a batch written, their transaction not yet committed.
- `dbt.mid_build`: dbt has built some models of an invocation and not the rest.
- `ml.before_register`: a training run logged to MLflow, no model version registered or promoted yet.
- `serving.before_swap`: a new snapshot written, `current` not yet switched to it.
- `check.<check name>`: a blocking check about to report; `fail` makes it report a failure.
"""

from __future__ import annotations

import os
import signal

ENV = "CXLOOP_FAILPOINTS"


class FailpointError(RuntimeError):
    """Raised by a failpoint set to `raise`."""


def _actions() -> dict[str, str]:
    spec = os.environ.get(ENV, "")
    return dict(item.strip().split("=", 1) for item in spec.split(",") if "=" in item)


def failpoint(name: str) -> bool:
    """Crash here if the environment asks for it; True if asked to `fail`; otherwise do nothing (False)."""
    if not os.environ.get(ENV):
        return False
    action = _actions().get(name)
    if action is None:
        return False
    if action == "fail":
        return True
    if action == "kill":
        # A run started as the leader of its own process group (as a container's main process is) takes its
        # children, such as a dbt subprocess, down with it, as the kernel's OOM killer or `docker kill` would.
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "raise":
        raise FailpointError(f"failpoint {name}")
    raise ValueError(f"{ENV}: unknown action {action!r} for {name} (kill or raise)")
