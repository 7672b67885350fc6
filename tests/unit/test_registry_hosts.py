"""Yarn's registry host comes from yarn itself (never a name written into lightfold)."""

from __future__ import annotations

from pathlib import Path

from lightfold.sandbox import registries


def test_the_hosts_yarn_names_its_registry(tmp_path: Path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "yarn").write_text(
        '#!/bin/sh\ncase "$1" in --version) echo 1.22.22;;'
        ' config) echo "https://yarn-mirror.test.invalid:8443/";; esac\n')
    (fake / "yarn").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))  # no npm: yarn berry cannot be asked, and is skipped
    assert registries.yarn_hosts() == ["yarn-mirror.test.invalid"]


def test_no_yarn_and_no_npm_names_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert registries.yarn_hosts() == []
