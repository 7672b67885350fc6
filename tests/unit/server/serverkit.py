"""Helpers for the server plan tests: a Detection stand-in and script runners."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lightfold.server.plan import parse_event


@dataclass
class Det:
    framework: str = "nextjs"
    language: str = "javascript"
    runtime: str = "node"
    runtime_version: str | None = "20"
    runtime_version_source: str | None = None
    package_manager: str | None = "npm"
    install: str | None = "npm ci"
    build: str | None = "npm run build"
    start: str | None = "npm start"
    release: str | None = None
    release_timeout: int = 600
    port: int | None = 3000
    health_path: str = "/"
    static: bool = False
    output_dir: str | None = None
    env_required: list[str] = field(default_factory=list)
    app_root: str = "."
    variant: str | None = None
    extra_runtimes: list[str] = field(default_factory=list)
    start_exec: dict[str, str] = field(default_factory=dict)


def run_script(script: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run a rendered script with bash; returns (exit code, events, stderr)."""
    r = subprocess.run(
        ["bash", "-s"], input=script, capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )
    events = [parse_event(line) for line in r.stdout.splitlines()]
    assert None not in events, f"non-event line on stdout: {r.stdout!r}"
    return r.returncode, events, r.stderr


def bash_syntax_ok(script: str) -> None:
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
