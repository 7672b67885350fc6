"""Deploy speed and availability on a local sandbox machine, with the Node (default) or the
Flask example app.

Prints: first deploy time (create + configure + build + switch), no-op deploy time (and whether
the fast path answered), one-file-change redeploy time (median of several, with the push's phase
breakdown and when traffic moved), returning when traffic moved (--no-wait, what a terminal
gets) and with the final outcome (--wait, what --json gets), and the availability probe's
failed/total and worst latency during those redeploys. The breakdown's medians: connect (the SSH
library's import included), prepare (status read, local hashes), lock (with the journal mark and
env snapshot), upload (archive upload + extract), build (build_install: dependencies reused or
installed, build_build: the build command, ...), activate (the switch until traffic moved, of
which slot_start, boot: health polling until healthy, nginx: nginx -t + reload).

Usage (as root): .venv/bin/python benchmarks/deploy.py [REDEPLOYS] [node-express|python-flask] [--no-wait-only]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from bench import ProbeTotals, bench_target, median_breakdown
from tests.e2e.apps import commit

from lightfold.probe import Probe

CHANGED_FILE = {"node-express": "message.json", "python-flask": "bench.json"}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    redeploys = int(args[0]) if args else 5
    example = args[1] if len(args) > 1 else "node-express"
    modes = ("--no-wait",) if "--no-wait-only" in sys.argv else ("--no-wait", "--wait")
    with bench_target(example) as b:
        if example == "python-flask":
            b.run("config", "set", "deploy.health_path", "/healthz", "--target", b.target, as_json=False)
        print(f"example app: {example}")
        first, data = b.run("deploy", "--target", b.target, "--provider", "local")
        ip = b.ip()
        print(f"first deploy (create + configure + build + switch): {first:.1f} s  {data['timings']}")
        noops = [b.run("deploy", "--target", b.target) for _ in range(5)]
        fast = sum(1 for _, d in noops if d.get("fast_path"))
        print(f"no-op deploy: median {statistics.median(t for t, _ in noops):.2f} s wall (of {len(noops)}; "
              f"{fast} answered by the fast path)")
        for mode in modes:
            redeploy_series(b, ip, redeploys, mode, CHANGED_FILE[example])


def redeploy_series(b, ip: str, redeploys: int, mode: str, changed: str) -> None:
    """One-file redeploys: `--no-wait` returns when traffic moved (the probe keeps going until the
    server has finished the smoke window and drain); `--wait` returns with the final outcome."""
    totals, lives, probe_totals, breakdowns = [], [], ProbeTotals(), []
    for i in range(redeploys):
        (b.project / changed).write_text(json.dumps({"text": f"bench {mode} {i}"}))
        commit(b.project, f"bench {mode} {i}")
        with Probe(f"http://{ip}/", rate=100) as probe:
            elapsed, data = b.run("push", "--target", b.target, mode)
            wait_switch_finished(b)
        probe_totals.add(probe.result)
        t = data["timings"]
        live = t.get("live_after", t["total"])
        totals.append(elapsed)
        lives.append(live)
        breakdowns.append(t)
        print(f"  redeploy {mode} {i}: {elapsed:.2f} s wall, traffic on new release after {live:.2f} s, {t}")
    print(f"one-file change redeploy ({mode}): median {statistics.median(totals):.2f} s wall, "
          f"median {statistics.median(lives):.2f} s until traffic moved (of {redeploys})")
    print(f"  breakdown (medians, s): {median_breakdown(breakdowns)}")
    print(probe_totals.line(f"redeploys ({mode})"))


def wait_switch_finished(b, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, s = b.run("status", "--target", b.target)
        if not s.get("switch_in_progress") and s.get("lock") is None:
            return
        time.sleep(0.2)
    raise SystemExit("the server's switch did not finish within 60 s")

if __name__ == "__main__":
    main()
