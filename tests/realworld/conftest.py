"""The real-world suite: generated apps (tests/realworld/generators.py) deployed to sandbox machines,
several apps per machine (one machine per test module, each app its own byos target on it, with
its own `<app>.rw.test` server name so nginx tells the apps apart).

    pytest -n 2 --dist loadfile tests/realworld                       # the default apps only
    LIGHTFOLD_REALWORLD=all pytest -n 2 --dist loadfile tests/realworld   # every app, and the table

Tests marked `realworld_full` are deselected (not skipped) unless LIGHTFOLD_REALWORLD=all, so the
default suite runs the three DEFAULT apps only. Every deploy records a row (app, framework, pm,
result, seconds) that tests/conftest.py prints as a table at the end of the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pytest
from tests.e2e.apps import commit, get
from tests.e2e.conftest import Sandbox, created, new_sandbox, sandbox_unavailable
from tests.realworld.generators import App

DEPLOY_TIMEOUT = 1100


@pytest.fixture(scope="module")
def machine(tmp_path_factory, request) -> Iterator[Sandbox]:
    """One sandbox machine for every app of a test module (on the module's IMAGE, if it names one)."""
    reason = sandbox_unavailable()
    if reason:
        pytest.skip(reason)
    image = getattr(request.module, "IMAGE", None)
    with created(new_sandbox(tmp_path_factory.mktemp("realworld"), prefix="rw", image=image)) as sb:
        yield sb


@dataclass
class Row:
    app: str
    framework: str = "?"
    pm: str = "?"
    result: str = "not run"
    generate: float | None = None  # making the app on this host (not part of the deploy)
    configure: float | None = None  # the app's configure on the (already created) machine
    install: float | None = None
    build: float | None = None
    boot: float | None = None
    overhead: float | None = None  # until traffic moved, less install, build and boot
    push: float | None = None  # the whole push, the smoke window and the old slot's drain included
    # A one-file redeploy right after: until traffic moved, its overhead (less build and boot), and
    # what its install did ("reused": no network install, the lockfile being unchanged).
    redeploy: float | None = None
    redeploy_overhead: float | None = None
    redeploy_install: str = "-"
    note: str = ""


def phase_seconds(build_log: str) -> dict[str, float]:
    """Seconds of each build phase from the build's JSON events ("at" on start and done)."""
    starts: dict[str, float] = {}
    out: dict[str, float] = {}
    for line in build_log.splitlines():
        line = line.strip()
        if not (line.startswith('{"build"') and line.endswith("}")):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        phase, status, at = ev.get("build"), ev.get("status"), ev.get("at")
        if at is None:
            continue
        if status == "start":
            starts.setdefault(phase, at)
        elif status == "done" and phase in starts:
            out[phase] = round(at - starts[phase], 2)
        elif status in ("reused", "skipped"):
            out.setdefault(phase, 0.0)
    return out


def phase_statuses(build_log: str) -> dict[str, str]:
    """The last status of each build phase (start, done, reused, skipped, failed)."""
    out: dict[str, str] = {}
    for line in build_log.splitlines():
        line = line.strip()
        if line.startswith('{"build"') and line.endswith("}"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            out[ev.get("build")] = ev.get("status")
    return out


def _sum(*values: float | None) -> float | None:
    got = [v for v in values if v is not None]
    return round(sum(got), 2) if got else None


def deploy_app(sb: Sandbox, app: App, request) -> tuple[Row, dict]:
    """Generate `app`, deploy it as its own target on `sb`'s machine; the row goes to the table."""
    row = Row(app.name, pm=app.pm, note=app.note)
    try:
        return _deploy(sb, app, row)
    finally:  # a plain dict: xdist sends user_properties to the controller, which prints the table
        request.node.user_properties.append(("realworld", asdict(row)))


def _deploy(sb: Sandbox, app: App, row: Row) -> tuple[Row, dict]:
    project = sb.root / f"app-{app.name}"
    project.mkdir()
    t = time.monotonic()
    app.make(project)
    row.generate = round(time.monotonic() - t, 1)
    detected = json.loads(sb.lightfold("detect", "--json", str(project)).stdout)
    row.framework = detected["framework"]
    row.pm = detected.get("package_manager") or app.pm
    target = f"{sb.target}-{app.name}"[:31]
    local = sb.config()["targets"][sb.target]["provider_config"]["local"]
    sb.lightfold("create", "--target", target, "--provider", "byos", "--ip", local["ip"],
                 "--ssh-key", local["ssh_key"], str(project))
    sb.lightfold("config", "set", "domain.domain", f"{app.name}.rw.test", "-t", target)
    sb.lightfold("config", "set", "domain.ssl", "false", "-t", target)
    proc = sb.lightfold("deploy", "--target", target, "--json", str(project), check=False, timeout=DEPLOY_TIMEOUT)
    logs = sb.lightfold("logs", "--target", target, "--build", check=False).stdout
    phases = phase_seconds(logs)
    row.install = _sum(phases.get("venv"), phases.get("install"))  # a Python venv is part of the install
    row.build = _sum(phases.get("build"), phases.get("release"))  # the release command (migrations) too
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = {}
    row.configure = (out.get("timings") or {}).get("configure")
    if proc.returncode != 0:
        err = out.get("error") or (proc.stderr.strip().splitlines() or ["?"])[-1]
        row.result = f"failed: {str(err)[:150]}"
        raise AssertionError(
            f"deploy of {app.name} failed\nstdout: {proc.stdout}\nstderr: {proc.stderr}\n{logs[-4000:]}")
    push = out["push"]["timings"]
    row.push, row.boot = push.get("total"), push.get("boot")
    live = push.get("live_after", row.push)  # traffic moved (the smoke window and drain come after)
    if live is not None:
        row.overhead = round(live - sum(x or 0 for x in (row.install, row.build, row.boot)), 2)
    status, body = get(sb.ip, app.check_path, host=f"{app.name}.rw.test", timeout=10)
    text = body.decode(errors="replace")
    row.result = "live" if status == 200 and app.expect in text else f"deployed; GET {app.check_path} -> {status}"
    assert status == 200 and app.expect in text, (status, text[:500])
    assert row.framework == app.framework, detected
    _redeploy_one_file(sb, app, project, target, row)
    return row, out


REDEPLOY_FILE = "lightfold-redeploy.txt"


def _redeploy_one_file(sb: Sandbox, app: App, project, target: str, row: Row) -> None:
    """Change one file (a new one at the root: every app ships it, none reads it), redeploy, and
    time it: a redeploy with an unchanged lockfile must do no network install."""
    (project / REDEPLOY_FILE).write_text("one changed file\n")
    commit(project, "one file")
    proc = sb.lightfold("deploy", "--target", target, "--json", str(project), check=False, timeout=DEPLOY_TIMEOUT)
    assert proc.returncode == 0, f"redeploy of {app.name} failed\n{proc.stdout}\n{proc.stderr}"
    logs = sb.lightfold("logs", "--target", target, "--build", check=False).stdout
    phases, statuses = phase_seconds(logs), phase_statuses(logs)
    push = json.loads(proc.stdout)["push"]["timings"]
    row.redeploy = push.get("live_after", push.get("total"))
    build = _sum(phases.get("venv"), phases.get("install"), phases.get("build"), phases.get("release"))
    if row.redeploy is not None:
        row.redeploy_overhead = round(row.redeploy - (build or 0) - (push.get("boot") or 0), 2)
    row.redeploy_install = statuses.get("install") or "-"
    assert row.redeploy_install in ("reused", "skipped", "-"), (app.name, statuses)
    status, body = get(sb.ip, app.check_path, host=f"{app.name}.rw.test", timeout=10)
    assert status == 200 and app.expect in body.decode(errors="replace"), (status, body[:300])
