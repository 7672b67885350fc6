"""A target on three local sandbox machines behind HAProxy (`lightfold scale`), with the Flask
example app and the availability probe through the load balancer (20 requests/s).

Prints: scale 1 -> 3; each rolling push (a one-line code change: built once on the primary,
shipped, switched one server at a time) and each rollback of every server, with their medians;
scale 3 -> 2 -> 3; and a server that goes away mid-traffic (every packet to it dropped, as a
powered-off VM): how long until HAProxy's checks take it out. Every step with the probe's
failed/total and worst latency (the goal: 0 failed everywhere, redispatch included).

Usage (as root): .venv/bin/python benchmarks/scale.py [RUNS]   (RUNS pushes and rollbacks, default 3)
"""

from __future__ import annotations

import statistics
import sys
import time

from bench import Bench, ProbeTotals, bench_target
from tests.e2e.apps import set_python_message
from tests.e2e.test_scale import backend_state, in_machine

from lightfold.probe import Probe

RATE = 20


def probed(b: Bench, lb_ip: str, *args: str):
    """`lightfold ARGS` under the probe through the load balancer: (wall, answer, probe result)."""
    with Probe(f"http://{lb_ip}/", rate=RATE, expect_status=200, max_seconds=600) as probe:
        wall, data = b.run(*args)
    return wall, data, probe.result


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with bench_target("python-flask") as b:
        b.run("config", "set", "deploy.health_path", "/healthz", "--target", b.target, as_json=False)
        _, first = b.run("deploy", "--target", b.target, "--provider", "local")
        up, grown = b.run("scale", "--target", b.target, "--servers", "3")
        lb = grown["load_balancer"]
        print(f"scale 1 -> 3: {up:.1f} s ({', '.join(s['name'] for s in grown['servers'])} behind {lb['name']})")

        pushes, releases, push_probe = [], [first["push"]["release"]], ProbeTotals()
        for i in range(runs):
            set_python_message(b.project, f"v{i + 2}")
            wall, data, totals = probed(b, lb["ip"], "push", "--target", b.target)
            pushes.append(wall)
            releases.append(data["release"])
            push_probe.add(totals)
            print(f"  rolling push {i + 1}: {wall:.1f} s, {totals.failed} failed / {totals.total}")

        rollbacks, back_probe = [], ProbeTotals()
        for i in range(runs):
            to = releases[-2] if i % 2 == 0 else releases[-1]
            wall, _, totals = probed(b, lb["ip"], "rollback", "--target", b.target, "--to", to)
            rollbacks.append(wall)
            back_probe.add(totals)
            print(f"  rollback {i + 1} (every server to {to}): {wall:.1f} s, {totals.failed} failed / {totals.total}")

        with Probe(f"http://{lb['ip']}/", rate=RATE, expect_status=200, max_seconds=600) as probe:
            down, _ = b.run("scale", "--target", b.target, "--servers", "2")
            again, _ = b.run("scale", "--target", b.target, "--servers", "3")
        print(f"scale 3 -> 2: {down:.1f} s, 2 -> 3: {again:.1f} s, {probe.result.failed} failed / "
              f"{probe.result.total}")

        third = f"{b.target}-3"
        with Probe(f"http://{lb['ip']}/", rate=RATE, expect_status=200, max_seconds=60) as gone:
            time.sleep(1)
            t0 = time.monotonic()
            in_machine(third, "nft insert rule inet lightfold input drop")
            while backend_state(lb["name"], third) != "DOWN":
                if time.monotonic() - t0 > 30:
                    raise SystemExit("HAProxy did not take the dead server out within 30 s")
                time.sleep(0.1)
            detected = time.monotonic() - t0
            time.sleep(2)
        print(f"a server gone mid-traffic: out of rotation after {detected:.1f} s, {gone.result.failed} failed / "
              f"{gone.result.total}, worst latency {gone.result.worst_ms:.0f} ms")

        print(f"\nmedians of {runs}: rolling push {statistics.median(pushes):.1f} s, "
              f"rollback of every server {statistics.median(rollbacks):.1f} s")
        print(push_probe.line("the rolling pushes"))
        print(back_probe.line("the rollbacks"))


if __name__ == "__main__":
    main()
