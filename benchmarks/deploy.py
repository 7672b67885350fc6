"""Deploy speed and availability on a local sandbox machine, with the Node example app.

Prints: first deploy time (create + configure + build + switch), no-op deploy time, one-file-change
redeploy time (median of several, with the push's phase breakdown and when traffic moved), and
the availability probe's failed/total and worst latency during those redeploys.

Usage (as root): .venv/bin/python benchmarks/deploy.py [REDEPLOYS]
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

from tests.e2e.apps import commit, install_example  # noqa: E402
from tests.e2e.conftest import LIGHTFOLD, isolated_env  # noqa: E402

from lightfold.probe import Probe  # noqa: E402


def run(env, project, *args) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([LIGHTFOLD, *args, "--json"], cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lightfold {' '.join(args)} failed:\n{proc.stderr}")
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    redeploys = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    root = Path(tempfile.mkdtemp(prefix="lightfold-bench-"))
    env = isolated_env(root)
    project = root / "project"
    project.mkdir()
    install_example(project, "node-express")
    target = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        first, data = run(env, project, "deploy", "--target", target, "--provider", "local")
        ip = json.loads((Path(env["LIGHTFOLD_HOME"]) / "config.json").read_text())["targets"][target][
            "provider_config"]["local"]["ip"]
        print(f"first deploy (create + configure + build + switch): {first:.1f} s  {data['timings']}")
        noop = [run(env, project, "deploy", "--target", target)[0] for _ in range(5)]
        print(f"no-op deploy: median {statistics.median(noop):.2f} s (of {len(noop)})")
        totals, lives, failed, total, worst = [], [], 0, 0, 0.0
        for i in range(redeploys):
            (project / "message.json").write_text(json.dumps({"text": f"bench {i}"}))
            commit(project, f"bench {i}")
            with Probe(f"http://{ip}/", rate=100) as probe:
                elapsed, data = run(env, project, "push", "--target", target)
            r = probe.result
            failed, total, worst = failed + r.failed, total + r.total, max(worst, r.worst_ms)
            t = data["timings"]
            live = t.get("live_after", t["total"])
            totals.append(elapsed)
            lives.append(live)
            print(f"  redeploy {i}: {elapsed:.2f} s wall, traffic on new release after {live:.2f} s, {t}")
        print(f"one-file change redeploy: median {statistics.median(totals):.2f} s wall, "
              f"median {statistics.median(lives):.2f} s until traffic moved (of {redeploys})")
        print(f"probe during redeploys: {failed} failed / {total} requests, worst latency {worst:.0f} ms")
    finally:
        subprocess.run([LIGHTFOLD, "destroy", "--target", target, "--yes"], env=env, cwd=project,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
