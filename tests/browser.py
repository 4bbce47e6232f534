"""Headless-browser and local-server helpers for the UI tests.

The browser is Debian's chromium (`make browser` installs it), driven through playwright's sync API.
Playwright's own downloaded browsers are never used. A missing browser fails the test instead of
skipping it, so that a CI machine without chromium cannot pass by running nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")

# Without the background-networking flags chromium tries to reach update and sync services; on a closed
# network those connections are refused and can stall page loads.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

DEFAULT_VIEWPORT = {"width": 1600, "height": 1000}


def require_chromium() -> Path:
    """Debian's chromium, or a failed test telling how to install it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` to install Debian's chromium", pytrace=False)
    return CHROMIUM


@contextmanager
def browser_page(viewport: dict | None = None, timeout_ms: float = 30_000) -> Iterator:
    """A fresh page in headless chromium; the browser is closed on exit."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport or DEFAULT_VIEWPORT)
            context.set_default_timeout(timeout_ms)
            page = context.new_page()
            yield page
        finally:
            browser.close()


def visible_text(page) -> str:
    """The page's visible text, for error messages."""
    try:
        return page.inner_text("body", timeout=2_000)
    except Exception as exc:  # noqa: BLE001 - only used to enrich an error message
        return f"<page text unavailable: {exc}>"


def wait_for_text(page, text: str, timeout: float = 30.0, within: str = "body") -> str:
    """Wait until `text` is part of the visible text of the elements matching `within` (a selector) and
    return that text; on timeout fail with what was visible."""
    seen = {"text": ""}

    def found() -> str | None:
        seen["text"] = "\n".join(page.locator(within).all_inner_texts())
        return seen["text"] if text in seen["text"] else None

    def detail() -> str:
        return "" if within == "body" else f"\n--- visible text of {within!r} ---\n{seen['text'][-3000:]}"

    return wait_until(page, found, f"{text!r} did not appear in {within!r}", timeout=timeout, detail=detail)


def wait_until(page, check: Callable[[], T | None], what: str, timeout: float = 30.0,
               detail: Callable[[], str] | None = None) -> T:
    """Poll `check()` until it returns something truthy and return it; on timeout raise an AssertionError
    saying `what` failed, with `detail()` and the visible page text."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:  # noqa: BLE001 - the single-page app re-renders or navigates; poll again
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        page.wait_for_timeout(250)
    extra = detail() if detail else ""
    raise AssertionError(f"{what} within {timeout:.0f}s on {page.url}{extra}\n"
                         f"--- visible page text ---\n{visible_text(page)[-4000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A subprocess serving HTTP on 127.0.0.1; its output goes to a temporary file for error messages."""

    def __init__(self, proc: subprocess.Popen, log: Path, url: str):
        self.proc = proc
        self.log = log
        self.url = url

    def output_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the server's process group, then kill it if it does not exit within `grace` seconds."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=grace)
        self.log.unlink(missing_ok=True)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def start_server(cmd: Sequence[str], url: str, timeout: float = 90.0, env: dict | None = None,
                 cwd: str | Path | None = None) -> Server:
    """Start `cmd` in its own process group and wait until `url` answers HTTP.

    The command must listen on 127.0.0.1 (use `free_port()`). On timeout or early exit the server is
    stopped and the test fails with the tail of its output.
    """
    fd, name = tempfile.mkstemp(prefix="cxloop-server-", suffix=".log")
    log = Path(name)
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env if env is not None else os.environ.copy(), cwd=cwd, start_new_session=True)
    server = Server(proc, log, url)
    deadline = time.monotonic() + timeout
    problem = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            problem = f"the process exited with code {proc.returncode}"
            break
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status < 500:
                    return server
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return server
            problem = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            problem = repr(exc)
        time.sleep(0.5)
    tail = server.output_tail()
    server.stop()
    pytest.fail(f"{' '.join(map(str, cmd))} did not serve {url} ({problem})\n--- server output ---\n{tail}",
                pytrace=False)
