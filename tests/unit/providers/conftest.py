"""The fakes live in tests/fakes and are imported as `tests.fakes` (as `python -m
tests.fakes.hetzner` runs them), so the repository root must be importable.

`cloud_home` is this directory's own isolated LIGHTFOLD_HOME, so these tests also run with
`--confcutdir=tests/unit/providers` (without the root conftest's sandbox-machine session hooks,
which must not run while other sandbox tests are in flight on the same host)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def cloud_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "lightfold-home"
    monkeypatch.setenv("LIGHTFOLD_HOME", str(home))
    monkeypatch.setenv("LIGHTFOLD_NO_KEYRING", "1")
    for var in ("DIGITALOCEAN_TOKEN", "VULTR_API_KEY", "HCLOUD_TOKEN", "LIGHTFOLD_DIGITALOCEAN_API_URL",
                "LIGHTFOLD_VULTR_API_URL", "LIGHTFOLD_HETZNER_API_URL"):
        monkeypatch.delenv(var, raising=False)
    return home
