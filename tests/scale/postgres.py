"""A throwaway Postgres server from Debian's packages, for the scale-out tests.

`PostgresServer` (the module fixture `postgres_server` in conftest.py) runs `initdb` into a fresh temporary
folder, starts the server with `pg_ctl` on 127.0.0.1 and a free port (password authentication over TCP, no durability: nothing here outlives
the test), and stops and removes it afterwards. Postgres refuses to run as root, so under uid 0 the folder
belongs to the `postgres` user and every server command runs through `runuser -u postgres --`.

Missing binaries fail the test, never skip it: `make scale-services` installs them.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser import free_port

SUPERUSER = "postgres"
# What Dagster and MLflow are given: SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, and cxloop
# installs psycopg2. libpq (psycopg2.connect) takes only the bare form.
SQLALCHEMY_DRIVER = "postgresql+psycopg2"
START_TIMEOUT_S = 60
# Throwaway data: no fsync, no full-page writes, no waiting for WAL flushes (about 2x faster DDL on a VM).
SERVER_OPTIONS = ("-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=100")


def bin_dir() -> Path:
    """The newest Debian Postgres under /usr/lib/postgresql/<major>/bin, or a failure naming the fix."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(re.search(r"/postgresql/(\d+)", p).group(1)))  # type: ignore[union-attr]
    if not found:
        pytest.fail("no Postgres server binaries in /usr/lib/postgresql/*/bin: run `make scale-services`, "
                    "which installs Debian's postgresql", pytrace=False)
    return Path(found[-1]).parent


class PostgresServer:
    """One Postgres cluster in a temporary folder; `url(db)` and `create_database(name)` once started."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            pytest.fail("running as root needs `runuser` (util-linux) to start Postgres as `postgres`",
                        pytrace=False)
        # Not under pytest's tmp_path: that is private to the user running the tests (mode 0700), and the
        # server runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="cxloop-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.password = secrets.token_urlsafe(12)
        self.port = 0
        self.started = False

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=START_TIMEOUT_S + 30)
        if check and proc.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            pytest.fail(f"{' '.join(args[:1])} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}{log}",
                        pytrace=False)
        return proc

    def start(self) -> "PostgresServer":
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_root:
            shutil.chown(self.root, SUPERUSER, SUPERUSER)
            shutil.chown(pwfile, SUPERUSER, SUPERUSER)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()
        # A free port can be taken between the probe and the bind: try a few.
        for _ in range(3):
            self.port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} {SERVER_OPTIONS}"
            proc = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT_S),
                             "-o", options, "start", check=False)
            if proc.returncode == 0:
                self.started = True
                return self
            if "could not bind" not in (self.log.read_text() if self.log.exists() else ""):
                break
        pytest.fail(f"Postgres did not start:\n{proc.stdout}{proc.stderr}"
                    f"{self.log.read_text()[-2000:] if self.log.exists() else ''}", pytrace=False)

    def url(self, database: str = "postgres", driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        return self.url(database, driver=SQLALCHEMY_DRIVER)

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(self.url(database))

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL (for Dagster and MLflow)."""
        con = self.connect()
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'create database "{name}"')
        finally:
            con.close()
        return self.sqlalchemy_url(name)

    def query(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        con = self.connect(database)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are ended) and remove its folder."""
        try:
            if self.started:
                proc = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", check=False)
                if proc.returncode != 0:
                    self._kill_postmaster()
        finally:
            self.started = False
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
            except (ProcessLookupError, ValueError):
                pass
