"""`lightfold scale` on a cloud target, against each provider's stateful fake (tests/fakes): the
second server is created through the provider's API in the target's private network, behind the
provider's managed load balancer, which in the fake is HAProxy on a sandbox machine of its own
configured from the load balancer's targets and health check, so every request below goes
through it. A static site goes 1 -> 2 servers, a rolling deploy under the availability probe
through the load balancer (0 failed requests), 2 -> 1 under the probe, then destroy leaves
nothing at the provider."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from tests.e2e.apps import commit, get
from tests.e2e.test_cloud_deploy import PAGE, fake_cloud, static_site

from lightfold.agent.layout import FIREWALL_NFT
from lightfold.probe import Probe
from lightfold.sandbox import machine

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def in_machine(c, server_name: str, *cmd: str) -> str:
    """A command inside the fake's machine of a server (nsenter, no SSH); its stdout."""
    proc = subprocess.run(machine.exec_argv(c.backend.machine_name(server_name), list(cmd)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("provider", ["hetzner", "digitalocean", "vultr"])
def test_scale_behind_the_providers_load_balancer_without_a_failed_request(provider, sandbox_host, tmp_path):
    with fake_cloud(provider, tmp_path) as c:
        sb, target = c.sb, c.target
        static_site(sb, provider)
        t0 = time.monotonic()
        sb.lightfold("deploy", "--target", target, "--provider", provider, "--json", timeout=600)
        took_deploy = time.monotonic() - t0

        t1 = time.monotonic()
        grown = json.loads(sb.lightfold("scale", "--target", target, "--servers", "2", "--json", timeout=600).stdout)
        took_up = time.monotonic() - t1
        lb = grown["load_balancer"]
        (api_lb,) = c.control("/__state")["load_balancers"]
        assert lb["kind"] == provider and lb["ip"] and len(c.servers()) == 2
        assert [s["name"] for s in grown["servers"]] == [target, f"{target}-2"]
        assert get(lb["ip"]) == (200, PAGE.format(provider=provider).encode())  # through the fake's HAProxy
        st = json.loads(sb.lightfold("status", "--target", target, "--json").stdout)
        seen = st["load_balancer"]
        assert (seen["kind"], seen["ip"]) == (provider, lb["ip"]) and len(seen["backends"]) == 2, seen
        # Hetzner's API reports its checks per target; DigitalOcean's and Vultr's do not
        assert seen["healthy_backends"] == (2 if provider == "hetzner" else None), seen
        assert {s["live_release"] for s in st["servers"]} == {st["live_release"]}
        # the servers and the load balancer share the target's private network
        if provider == "hetzner":
            (network,) = {p["network"] for p in api_lb["private_net"]}
            assert all(network in [p["network"] for p in s["private_net"]] for s in c.servers())
        elif provider == "digitalocean":
            assert {s["vpc_uuid"] for s in c.servers()} == {api_lb["vpc_uuid"]}
        else:
            assert api_lb["generic_info"]["vpc"] and all(
                api_lb["generic_info"]["vpc"] in c.fake.servers[s["id"]]["_vpcs"] for s in c.servers())
        # the app servers take web traffic from the private network only (Hetzner: the load
        # balancer's own address in it; in the fake the private addresses are the sandbox ones)
        nft = in_machine(c, f"{target}-2", "cat", FIREWALL_NFT)
        web_from = api_lb["private_net"][0]["ip"] if provider == "hetzner" else c.backend.private_range
        assert f"ip saddr {web_from} tcp dport {{ 80, 443 }} accept" in nft, nft
        if provider == "hetzner":
            with pytest.raises(OSError):
                get(grown["servers"][1]["ip"], timeout=2)

        (sb.project / "index.html").write_text("<p>v2</p>\n")
        commit(sb.project, "v2")
        with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=300) as rolling:
            t2 = time.monotonic()
            sb.lightfold("deploy", "--target", target, "--json", timeout=400)
            took_push = time.monotonic() - t2
        assert rolling.result.failed == 0, rolling.result.summary()
        assert {get(lb["ip"])[1] for _ in range(4)} == {b"<p>v2</p>\n"}

        with Probe(f"http://{lb['ip']}/", rate=20, expect_status=200, max_seconds=300) as down:
            t3 = time.monotonic()
            shrunk = json.loads(sb.lightfold("scale", "--target", target, "--servers", "1", "--json",
                                             timeout=400).stdout)
            took_down = time.monotonic() - t3
        assert down.result.failed == 0, down.result.summary()
        assert shrunk["removed"] == [f"{target}-2"] and len(c.servers()) == 1
        (api_lb,) = c.control("/__state")["load_balancers"]
        assert len(api_lb.get("droplet_ids") or api_lb.get("targets") or api_lb.get("instances")) == 1
        assert get(lb["ip"]) == (200, b"<p>v2</p>\n")

        gone = sb.lightfold("destroy", "--target", target, "--yes", "--json", timeout=200)
        deadline = time.monotonic() + 60
        while (c.servers() or c.machines()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert c.servers() == [] and c.control("/__state")["load_balancers"] == [] and c.machines() == []
        c.assert_no_secret(gone.stdout, gone.stderr)
        print(f"{provider}: deploy {took_deploy:.1f}s, scale 1->2 {took_up:.1f}s, rolling deploy {took_push:.1f}s "
              f"({rolling.result.summary()}), 2->1 {took_down:.1f}s ({down.result.summary()})")
