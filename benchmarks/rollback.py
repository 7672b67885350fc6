"""Rollback speed and availability on a local sandbox machine, with the Flask example app.

Deploys two releases (an env-only change makes the second), then rolls back and forth between them
with `lightfold rollback --to` under the availability probe. Prints, for each rollback and as a
median: the CLI's wall time (the command returns once traffic moved; the server then watches the
release for its smoke window and drains the old slot on its own), when traffic moved, how long the
server took to finish, and the probe's failed/total — the probe runs until the server finished.
Between rollbacks it waits until the server has finished, so each one measures a rollback, not a
wait for the previous one.

Usage (as root): .venv/bin/python benchmarks/rollback.py [ROLLBACKS]
"""

from __future__ import annotations

import statistics
import sys
import time

from bench import Bench, ProbeTotals, bench_target, median_breakdown

from lightfold.probe import Probe


def wait_finished(b: Bench) -> float:
    """Seconds until the server ends the rollback's smoke window and drain (status: no switch in
    progress, deploy lock free), and the final outcome was "live"."""
    t0 = time.perf_counter()
    while True:
        _, st = b.run("status", "--target", b.target)
        if not st.get("switch_in_progress") and not st.get("lock"):
            last = st.get("last_switch") or {}
            if last and last.get("ok") is False:
                raise SystemExit(f"the rollback failed on the server after the command returned: {last}")
            return time.perf_counter() - t0
        time.sleep(0.2)


def main() -> None:
    rollbacks = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with bench_target("python-flask") as b:
        b.run("config", "set", "deploy.health_path", "/healthz", "--target", b.target, as_json=False)
        b.run("config", "set", "deploy.env_vars.BENCH", "one", "--target", b.target, as_json=False)
        _, first = b.run("deploy", "--target", b.target, "--provider", "local")
        b.run("config", "set", "deploy.env_vars.BENCH", "two", "--target", b.target, as_json=False)
        _, second = b.run("push", "--target", b.target)
        ids = [first["push"]["release"], second["release"]]
        ip = b.ip()
        wait_finished(b)
        walls, lives, probe_totals, breakdowns = [], [], ProbeTotals(), []
        for i in range(rollbacks):
            to = ids[i % 2]
            with Probe(f"http://{ip}/", rate=100) as probe:
                wall, data = b.run("rollback", "--target", b.target, "--to", to)
                finished = wait_finished(b)
            probe_totals.add(probe.result)
            live = data["timings"].get("live_after", data["timings"]["total"])
            walls.append(wall)
            lives.append(live)
            breakdowns.append(data["timings"])
            print(f"  rollback {i} to {to}: {wall:.2f} s wall, traffic moved after {live:.2f} s, server "
                  f"finished {finished:.1f} s after the command returned, probe {probe.result.failed}/"
                  f"{probe.result.total} failed")
        print(f"rollback: median {statistics.median(walls):.2f} s wall (of {rollbacks}), traffic moved after "
              f"median {statistics.median(lives):.2f} s")
        print(f"  breakdown (medians, s; slot_start, boot = health polling until healthy, nginx = nginx -t + reload): "
              f"{median_breakdown(breakdowns)}")
        print(probe_totals.line("rollbacks (until the server finished)"))


if __name__ == "__main__":
    main()
