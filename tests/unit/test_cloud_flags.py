"""The cloud flags of `lightfold create/deploy` without a terminal (the terminal prompts are
covered in tests/e2e/test_cloud_deploy.py, on a real pseudo-terminal)."""

from __future__ import annotations

import pytest


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "site"
    p.mkdir()
    (p / "index.html").write_text("x\n")
    return p


@pytest.mark.parametrize("cmd", ["create", "deploy"])
def test_region_size_image_are_refused_for_non_cloud_providers(cli, project, cmd):
    proc = cli(cmd, "--provider", "local", "--region", "nbg1", "--size", "cx22", str(project))
    assert proc.returncode == 2
    assert "--region, --size apply only to cloud providers" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("cmd", "provider", "env_var"), [
    ("create", "hetzner", "HCLOUD_TOKEN"), ("deploy", "vultr", "VULTR_API_KEY"),
    ("create", "digitalocean", "DIGITALOCEAN_TOKEN"),
])
def test_a_missing_token_without_a_terminal_is_one_line_naming_the_env_var(cli, project, lf_home, cmd, provider,
                                                                          env_var):
    proc = cli(cmd, "--provider", provider, "--target", "site", str(project), input="")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and env_var in lines[0] and "token" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (lf_home / "tokens.json").exists()
