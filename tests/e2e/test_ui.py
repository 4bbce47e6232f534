"""`cxloop ui` (what `make ui` runs) serves the Dagster UI on 127.0.0.1 with the platform's assets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_ui_serves_the_asset_graph_on_loopback_only(cx, dbt_manifest):
    port = free_port()
    cli = Path(sys.executable).with_name("cxloop")
    proc = subprocess.Popen([str(cli), "ui", "--dagster-port", str(port)], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        keys: list[str] = []
        while time.monotonic() < deadline:
            try:
                data = graphql(port, "{ assetNodes { assetKey { path } } }")
                keys = ["/".join(n["assetKey"]["path"]) for n in data["data"]["assetNodes"]]
                if keys:
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            time.sleep(2)
        if "marts/customers" not in keys:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"UI has no platform assets: {keys[:5]}\n{proc.communicate()[0][-4000:]}")
        assert "raw/events" in keys
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        if listening.strip():  # ss is available: the UI listens on loopback and nowhere else
            assert all("127.0.0.1" in line for line in listening.strip().splitlines()), listening
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert f"Dagster UI: http://127.0.0.1:{port}" in out
