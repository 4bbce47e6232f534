"""Secure defaults (docs/security.md): loopback UIs, secrets only from the environment, nothing secret tracked."""

from __future__ import annotations

import re
import stat
import subprocess

from orchestration.lib.settings import PROJECT_ROOT, get_settings

SECRET_VARS = ("CXLOOP_PSEUDONYM_KEY", "CXLOOP_SMTP_PASSWORD", "CXLOOP_ALERT_WEBHOOK_URL")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f]


def test_ui_commands_bind_to_loopback_by_default():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", makefile, re.M)
    source = (PROJECT_ROOT / "orchestration" / "cli.py").read_text()
    assert 'ui.add_argument("--host", default="127.0.0.1")' in source
    assert "0.0.0.0" not in source and "0.0.0.0" not in makefile


def test_child_processes_are_not_handed_secrets_by_cxloop(cx, monkeypatch):
    for var in SECRET_VARS:
        monkeypatch.setenv(var, f"secret-value-of-{var.lower()}")
    environ = get_settings().environ()
    assert not [k for k in environ if k in SECRET_VARS]
    assert not [v for v in environ.values() if "secret-value-of" in v]


def test_the_generated_key_is_owner_only_in_an_owner_only_folder(cx, monkeypatch):
    monkeypatch.delenv("CXLOOP_PSEUDONYM_KEY")
    settings = get_settings()
    key = settings.pseudonym_key()
    assert len(key) == 64
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.key_file.parent.stat().st_mode) == 0o700
    assert settings.pseudonym_key() == key


def test_no_store_key_or_installation_data_is_tracked():
    files = tracked_files()
    assert files
    leaked = [f for f in files if f.startswith("data/") or f.endswith((".key", ".duckdb", ".sqlite", "mlflow.db"))
              or "/target/" in f]
    assert leaked == []
    assert "data/" in (PROJECT_ROOT / ".gitignore").read_text().split()
    assignment = re.compile(r"CXLOOP_(PSEUDONYM_KEY|SMTP_PASSWORD)\s*[=:]\s*['\"]?[A-Za-z0-9+/]{16,}")
    for name in files:
        path = PROJECT_ROOT / name
        if path.suffix in (".py", ".yml", ".yaml", ".toml", ".md", ".cfg", ".env", ".sh", "") and path.is_file():
            assert not assignment.search(path.read_text(errors="replace")), f"a secret value is set in {name}"
