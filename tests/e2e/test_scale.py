"""A target on several sandbox machines behind HAProxy on a machine of its own (`lightfold scale`):
the Flask example scaled 1 -> 3, a rolling push (built once, the same release on every server), a
push whose third server fails its health gate (the others go back), a rollback of every server,
then 3 -> 2 -> 3 and a server gone mid-traffic, each with the availability probe through the load
balancer (0 failed requests); the app servers' web ports open to the load balancer only, and
status's servers / load_balancer keys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.e2e.apps import get, install_example, set_python_message

from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def status(sb) -> dict:
    return json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)


def scale(sb, n: int) -> dict:
    return json.loads(sb.lightfold("scale", "--target", sb.target, "--servers", str(n), "--json", timeout=500).stdout)


@pytest.mark.scale_full  # about 6 minutes: LIGHTFOLD_SCALE=all (README); the byos test below runs by default
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
    # logs: every server's, merged, each line led by its server's name
    logged = sb.lightfold("logs", "--target", sb.target, "-n", "30").stdout.splitlines()
    assert {line.split()[0] for line in logged} == {s["name"] for s in grown["servers"]}, logged[:5]

    # A server that fails its health gate mid-rollout: the third one's slots cannot start. The
    # first two switch, the third fails, and the first two go back: every server still serves v2.
    third = f"{sb.target}-3"
    dropin = f"/etc/systemd/system/lightfold-{sb.target}@.service.d"
    in_machine(third, f"mkdir -p {dropin} && printf '[Service]\\nExecStartPre=/bin/false\\n' > {dropin}/zz-broken.conf"
                      " && systemctl daemon-reload")
    set_python_message(sb.project, "v3")
    with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=300) as failing:
        t4 = time.monotonic()
        refused = sb.lightfold("push", "--target", sb.target, "--json", timeout=400, check=False)
        took_failed = time.monotonic() - t4
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = " ".join(refused.stderr.split())
    assert f"failed on {third}" in said and "went back to their previous release" in said, said
    assert failing.result.failed == 0, failing.result.summary()
    assert {s["live_release"] for s in status(sb)["servers"]} == {v2}
    assert {get(lb["ip"], "/")[1] for _ in range(6)} == {b"v2\n"}

    # rollback: every server back to the first release, the primary first, each by its own gate
    # (the third one repaired first: broken, its rollback fails and the others go forward again,
    # as the first run of this test showed)
    in_machine(third, f"rm -f {dropin}/zz-broken.conf && systemctl daemon-reload")
    with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=300) as back:
        t6 = time.monotonic()
        rolled = json.loads(sb.lightfold("rollback", "--target", sb.target, "--json", timeout=400).stdout)
        took_back = time.monotonic() - t6
    assert back.result.failed == 0, back.result.summary()
    assert rolled["release"] == release
    assert {s["live_release"] for s in status(sb)["servers"]} == {release}
    assert {get(lb["ip"], "/")[1] for _ in range(6)} == {b"hello from lightfold (python)\n"}

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
    st = status(sb)
    assert st["load_balancer"]["healthy_backends"] == 3
    assert {s["live_release"] for s in st["servers"]} == {release}  # the new third got the live release

    # A server that goes away mid-traffic (every packet to it dropped, as a powered-off VM): the
    # requests HAProxy sends it fail to connect and are redispatched; its checks take it out.
    with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=60) as gone:
        time.sleep(1)
        t5 = time.monotonic()
        in_machine(third, "nft insert rule inet lightfold input drop")
        while backend_state(lb["name"], third) != "DOWN":
            assert time.monotonic() - t5 < 20, "HAProxy did not take the dead server out"
            time.sleep(0.2)
        detected = time.monotonic() - t5
        time.sleep(2)
    assert gone.result.failed == 0, gone.result.summary()
    print(f"scale 1->3 {took_up:.1f}s, rolling push {took_push:.1f}s ({rolling.result.summary()}), "
          f"failed rollout back in {took_failed:.1f}s ({failing.result.summary()}), "
          f"rollback {took_back:.1f}s ({back.result.summary()}), "
          f"3->2 {took_down:.1f}s, 2->3 {took_again:.1f}s ({probe.result.summary()}); "
          f"a server gone: out of rotation after {detected:.1f}s ({gone.result.summary()})")


def in_machine(name: str, command: str) -> str:
    """A command inside one of the target's machines as root (nsenter, no SSH); its stdout."""
    import subprocess

    from lightfold.sandbox import machine

    proc = subprocess.run(machine.exec_argv(name, ["sh", "-c", command]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def backend_state(balancer: str, name: str) -> str:
    """The server's state as HAProxy sees it, read on its stats socket inside the load balancer's
    machine (status would wait for SSH to the dead server)."""
    from lightfold.server import haproxy

    stats = haproxy.parse_stat(in_machine(balancer, haproxy.stat_command()))
    return next(s.status for s in stats if s.name == name)


def test_byos_servers_from_the_config_behind_haproxy(machine_factory, fresh_env):
    """`byos`: the user's own servers (three sandbox machines standing in), the second listed in
    provider_config.byos.hosts and the third as lb_host; a static site scaled to two servers."""
    from tests.e2e.apps import git
    from tests.e2e.test_byos import User

    first, second, balancer = machine_factory(), machine_factory(), machine_factory()
    key = first.config()["targets"][first.target]["provider_config"]["local"]["ssh_key"]
    pub = Path(f"{key}.pub").read_text()
    for m in (second, balancer):  # the user's one key logs in everywhere
        m.exec("cat >> /root/.ssh/authorized_keys", input=pub)
    user = User(fresh_env("byos-user"))
    (user.project / "index.html").write_text("<h1>hello from two servers</h1>\n")
    git(user.project, "init", "-q", "-b", "main")
    git(user.project, "add", "-A")
    git(user.project, "commit", "-q", "-m", "site")
    user.lightfold("create", "--target", "site", "--provider", "byos", "--ip", first.ip, "--ssh-key", key,
                   "--accept-new-host-key")
    user.lightfold("config", "set", "provider_config.byos.hosts", second.ip, "--target", "site")
    user.lightfold("config", "set", "provider_config.byos.lb_host", balancer.ip, "--target", "site")
    user.lightfold("deploy", "--target", "site", timeout=400)
    refused = user.lightfold("scale", "--target", "site", "--servers", "3", check=False, timeout=400)
    assert refused.returncode == 1 and "lists 1 more server" in refused.stderr, refused.stderr
    out = json.loads(user.lightfold("scale", "--target", "site", "--servers", "2", "--accept-new-host-key",
                                    "--json", timeout=400).stdout)
    assert [s["ip"] for s in out["servers"]] == [first.ip, second.ip] and out["load_balancer"]["ip"] == balancer.ip
    assert get(balancer.ip, "/") == (200, b"<h1>hello from two servers</h1>\n")
    st = json.loads(user.lightfold("status", "--target", "site", "--json").stdout)
    assert st["load_balancer"]["healthy_backends"] == 2
    assert {s["live_release"] for s in st["servers"]} == {st["live_release"]}
    # configure does every server, each left as scale made it
    conf = json.loads(user.lightfold("configure", "--target", "site", "--json", timeout=400).stdout)
    assert sorted(conf["servers"]) == sorted(s["name"] for s in out["servers"]), conf
    assert all(r["skipped"] for r in conf["servers"].values()), conf
    # a laptop that lost its state: sync finds both servers and the load balancer again
    (user.home / "state" / "site.json").unlink()
    synced = json.loads(user.lightfold("sync", "--target", "site", "--json").stdout)
    assert synced["servers"] == [s["name"] for s in out["servers"]] and synced["load_balancer"], synced
    again = json.loads(user.lightfold("status", "--target", "site", "--json").stdout)
    assert [s["ip"] for s in again["servers"]] == [first.ip, second.ip]
    assert again["load_balancer"]["ip"] == balancer.ip and again["load_balancer"]["healthy_backends"] == 2
    user.lightfold("destroy", "--target", "site", "--yes")  # forgotten; the machines go with the test
