"""Shared fixtures: every test gets its own LIGHTFOLD_HOME so the user's files are never touched."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

LIGHTFOLD_BIN = str(Path(sys.executable).with_name("lightfold"))


@pytest.fixture
def lf_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "lightfold-home"
    monkeypatch.setenv("LIGHTFOLD_HOME", str(home))
    monkeypatch.setenv("LIGHTFOLD_NO_KEYRING", "1")
    for var in ("DIGITALOCEAN_TOKEN", "VULTR_API_KEY", "HCLOUD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def cli(lf_home, tmp_path):
    """Run the installed `lightfold` executable as a user would; returns CompletedProcess."""
    import subprocess

    def run(*args: str, input: str | None = None, cwd: Path | None = None, env: dict | None = None):
        full_env = {**os.environ, "LIGHTFOLD_HOME": str(lf_home), "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [LIGHTFOLD_BIN, *args], input=input, capture_output=True, text=True,
            cwd=cwd or tmp_path, env=full_env, timeout=60,
        )

    return run
