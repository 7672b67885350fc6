"""A target on several sandbox machines behind HAProxy on a machine of its own (`lightfold scale`):
the Flask example scaled 1 -> 3, a rolling push (built once, the same release on every server),
then 3 -> 2 -> 3, with the availability probe through the load balancer during the rolling push
and while it shrinks and grows again (0 failed requests), the app servers' web ports open to the
load balancer only, and status's servers / load_balancer keys."""

from __future__ import annotations

import json
import time

import pytest
from tests.e2e.apps import get, install_example, set_python_message

from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def status(sb) -> dict:
    return json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)


def scale(sb, n: int) -> dict:
    return json.loads(sb.lightfold("scale", "--target", sb.target, "--servers", str(n), "--json", timeout=500).stdout)


def test_scale_out_and_in_behind_haproxy_without_a_failed_request(sandbox):
    sb = sandbox
    install_example(sb.project, "python-flask")
    sb.lightfold("config", "set", "deploy.health_path", "/healthz", "--target", sb.target)
    release = json.loads(sb.lightfold("deploy", "--target", sb.target, "--json", timeout=500).stdout)["push"]["release"]
    single = status(sb)
    assert single["load_balancer"] is None and [s["name"] for s in single["servers"]] == [sb.target]

    t0 = time.monotonic()
    grown = scale(sb, 3)
    took_up = time.monotonic() - t0
    lb = grown["load_balancer"]
    assert lb["kind"] == "haproxy" and [s["role"] for s in grown["servers"]] == ["primary", "web", "web"]
    assert get(lb["ip"], "/")[0] == 200
    st = status(sb)
    assert st["load_balancer"]["healthy_backends"] == 3, st["load_balancer"]
    assert {s["live_release"] for s in st["servers"]} == {release}  # built once, the same release everywhere
    assert {s["health"] for s in st["servers"]} == {"healthy"}
    # the app servers take web traffic from the load balancer only
    with pytest.raises(OSError):
        get(grown["servers"][1]["ip"], "/", timeout=2)

    set_python_message(sb.project, "v2")
    with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=300) as rolling:
        t3 = time.monotonic()
        pushed = json.loads(sb.lightfold("push", "--target", sb.target, "--json", timeout=400).stdout)
        took_push = time.monotonic() - t3
    assert rolling.result.failed == 0, rolling.result.summary()
    v2 = pushed["release"]
    assert v2 != release and {s["live_release"] for s in status(sb)["servers"]} == {v2}
    assert {get(lb["ip"], "/")[1] for _ in range(6)} == {b"v2\n"}

    with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=400) as probe:
        t1 = time.monotonic()
        shrunk = scale(sb, 2)
        took_down = time.monotonic() - t1
        assert shrunk["removed"] == [f"{sb.target}-3"] and len(shrunk["servers"]) == 2
        t2 = time.monotonic()
        again = scale(sb, 3)
        took_again = time.monotonic() - t2
    assert probe.result.failed == 0, probe.result.summary()
    assert probe.result.total > 20
    assert again["added"] == [f"{sb.target}-3"]
    assert status(sb)["load_balancer"]["healthy_backends"] == 3
    print(f"scale 1->3 {took_up:.1f}s, rolling push {took_push:.1f}s ({rolling.result.summary()}), "
          f"3->2 {took_down:.1f}s, 2->3 {took_again:.1f}s; probe {probe.result.summary()}")
