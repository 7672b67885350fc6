"""Rollback speed and availability on a local sandbox machine, with the Flask example app.

Deploys two releases (an env-only change makes the second), then rolls back and forth between them
with `lightfold rollback --to` under the availability probe. Prints, for each rollback and as a
median: the CLI's wall time (the command returns once traffic moved; the server then watches the
release for its smoke window and drains the old slot on its own), when traffic moved, how long the
server took to finish, and the probe's failed/total. Between rollbacks it waits until the server
has finished, so each one measures a rollback, not a wait for the previous one.

Usage (as root): .venv/bin/python benchmarks/rollback.py [ROLLBACKS]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.apps import install_example  # noqa: E402
from tests.e2e.conftest import LIGHTFOLD, isolated_env  # noqa: E402

from lightfold.probe import Probe  # noqa: E402


def run(env, project, *args, as_json: bool = True) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([LIGHTFOLD, *args, *(["--json"] if as_json else [])], cwd=project, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lightfold {' '.join(args)} failed:\n{proc.stderr}")
    return elapsed, json.loads(proc.stdout) if as_json else {}


def wait_finished(env, project, target) -> float:
    """Seconds until the server ends the rollback's smoke window and drain (status: no switch in
    progress, deploy lock free), and the final outcome was "live"."""
    t0 = time.perf_counter()
    while True:
        _, st = run(env, project, "status", "--target", target)
        if not st.get("switch_in_progress") and not st.get("lock"):
            last = st.get("last_op") or {}
            if last and last.get("ok") is False:
                raise SystemExit(f"the rollback failed on the server after the command returned: {last}")
            return time.perf_counter() - t0
        time.sleep(0.2)


def main() -> None:
    rollbacks = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    root = Path(tempfile.mkdtemp(prefix="lightfold-bench-"))
    env = isolated_env(root)
    project = root / "project"
    project.mkdir()
    install_example(project, "python-flask")
    target = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        run(env, project, "config", "set", "deploy.health_path", "/healthz", "--target", target, as_json=False)
        run(env, project, "config", "set", "deploy.env_vars.BENCH", "one", "--target", target, as_json=False)
        _, first = run(env, project, "deploy", "--target", target, "--provider", "local")
        run(env, project, "config", "set", "deploy.env_vars.BENCH", "two", "--target", target, as_json=False)
        _, second = run(env, project, "push", "--target", target)
        ids = [first["push"]["release"], second["release"]]
        ip = json.loads((Path(env["LIGHTFOLD_HOME"]) / "config.json").read_text())["targets"][target][
            "provider_config"]["local"]["ip"]
        walls, lives, failed, total, worst = [], [], 0, 0, 0.0
        for i in range(rollbacks):
            to = ids[i % 2]
            # The probe runs until the server has finished too (smoke window, drain of the old slot).
            with Probe(f"http://{ip}/", rate=100) as probe:
                wall, data = run(env, project, "rollback", "--target", target, "--to", to)
                finished = wait_finished(env, project, target)
            r = probe.result
            failed, total, worst = failed + r.failed, total + r.total, max(worst, r.worst_ms)
            live = data["timings"].get("live_after", data["timings"]["total"])
            walls.append(wall)
            lives.append(live)
            print(f"  rollback {i} to {to}: {wall:.2f} s wall, traffic moved after {live:.2f} s, server "
                  f"finished {finished:.1f} s after the command returned, probe {r.failed}/{r.total} failed")
        print(f"rollback: median {statistics.median(walls):.2f} s wall (of {rollbacks}), traffic moved after "
              f"median {statistics.median(lives):.2f} s")
        print(f"probe during rollbacks: {failed} failed / {total} requests, worst latency {worst:.0f} ms")
    finally:
        subprocess.run([LIGHTFOLD, "destroy", "--target", target, "--yes"], env=env, cwd=project,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
