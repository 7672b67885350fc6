"""Fixtures for the on-server agent: a temp root laid out like a configured server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightfold.agent import layout
from lightfold.agent.bundle import agent_files
from lightfold.agent.main import handle, parse_request

APP = "web"
PORTS = {"blue": 18001, "green": 18002}


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def lay(root):
    return layout.Layout(APP, str(root))


def write_app_json(root: Path, app: str = APP, **overrides) -> dict:
    cfg = {
        "app": app, "user": app, "ports": dict(PORTS), "static": False, "output_dir": None,
        "health": {"path": "/health", "status": 200, "timeout": 5, "host": None}, "domain": "example.test",
        **overrides,
    }
    path = root / "etc/lightfold/apps" / app / "app.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))
    return cfg


def make_release(root: Path, rid: str, app: str = APP, start: bool = True, output_dir: str | None = None,
                 env: str | None = None) -> Path:
    rel = root / "srv" / app / "releases" / rid
    (rel / ".lightfold").mkdir(parents=True, exist_ok=True)
    (rel / ".lightfold/release.json").write_text(json.dumps({"id": rid, "commit": f"c{rid[-4:]}", "dirty": False}))
    if start:
        script = rel / ".lightfold/start"
        script.write_text("#!/bin/sh\nexec true\n")
        script.chmod(0o755)
    if output_dir:
        (rel / output_dir).mkdir(parents=True, exist_ok=True)
        (rel / output_dir / "index.html").write_text(f"<h1>{rid}</h1>")
    if env is not None:
        env_file = root / "srv" / app / "env" / f"{rid}.env"
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(env)
    return rel


def install_agent(directory: Path) -> Path:
    """The agent's files as configure uploads them, under `directory` (the server's AGENT_DIR)."""
    for name, data in agent_files().items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return directory


@pytest.fixture(scope="session")
def agent_dir(tmp_path_factory) -> Path:
    return install_agent(tmp_path_factory.mktemp("agent"))


def run_agent(root: Path, agent_dir: Path, request, *args: str, timeout: float = 30) -> tuple[dict, list[dict], int]:
    """Run the uploaded agent as the CLI does: JSON on stdin, one JSON result on stdout, JSON lines
    on stderr."""
    raw = request if isinstance(request, (bytes, str)) else json.dumps(request)
    p = subprocess.run(
        [sys.executable, "-c", layout.agent_entry(str(agent_dir)), *args],
        input=raw if isinstance(raw, bytes) else raw.encode(),
        capture_output=True, timeout=timeout,
        env={**os.environ, "LIGHTFOLD_ROOT": str(root), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    stdout_lines = p.stdout.decode().splitlines()
    assert len(stdout_lines) == 1, p.stdout
    events = [json.loads(line) for line in p.stderr.decode().splitlines()]
    return json.loads(stdout_lines[0]), events, p.returncode


@pytest.fixture
def agent_cli(root, agent_dir):
    """run_agent bound to this test's root: agent_cli(request, *args) -> (result, events, exit code)."""
    return lambda request, *args, **kw: run_agent(root, agent_dir, request, *args, **kw)


@pytest.fixture
def app_json(root):
    return lambda **overrides: write_app_json(root, **overrides)


@pytest.fixture
def release(root):
    return lambda rid, **kw: make_release(root, rid, **kw)


@pytest.fixture
def agent_call(root):
    """The same request handling in-process (faster than a subprocess): agent_call(request) -> result."""
    return lambda request: handle(parse_request(json.dumps(request).encode()), str(root))


OLD_RID, NEW_RID = "20260101120000", "20260101120100"


def blue_live_and_systemd_ok(lay, monkeypatch) -> dict:
    """Release OLD_RID live in slot blue (journal, links, upstream), NEW_RID building; systemd and
    nginx answer as if all went well. Returns the app config. The releases must exist."""
    from lightfold.agent import switch
    from lightfold.agent.core import Ran
    from lightfold.agent.files import swap_symlink, write_atomic
    from lightfold.agent.journal import save_journal, upsert_entry
    from lightfold.agent.live import load_app_config
    from lightfold.agent.upstream import render_upstream

    entries: list[dict] = []
    upsert_entry(entries, OLD_RID, status="live", slot="blue")
    upsert_entry(entries, NEW_RID, status="building")
    save_journal(lay, entries)
    swap_symlink(lay.slot_link("blue"), f"../releases/{OLD_RID}")
    swap_symlink(lay.current, f"releases/{OLD_RID}")
    cfg = load_app_config(lay, {})
    write_atomic(lay.upstream, render_upstream(cfg["ports"]["blue"], "blue", OLD_RID).encode())
    ok = Ran(0, "", "")
    monkeypatch.setattr(switch, "run", lambda argv, timeout=90: ok)
    monkeypatch.setattr(switch, "systemctl", lambda *args: ok)
    monkeypatch.setattr(switch, "reload_nginx", lambda: ok)
    monkeypatch.setattr(switch, "wait_healthy", lambda *a: {"seconds": 0.1, "status_code": 200, "attempts": 1})
    monkeypatch.setattr(switch, "unit_state", lambda unit: {"n_restarts": 0, "active_state": "active",
                                                            "sub_state": "running"})
    monkeypatch.setattr(switch, "journal_tail", lambda unit: [])
    return cfg
