"""Network modes of local machines: `isolated` reaches only the host and the package registries
(through the host's proxy), `nat` gets a default route and a MASQUERADE rule. No test sends
traffic to the internet: "fails" is checked against hosts the proxy must refuse."""

from __future__ import annotations

import subprocess

import pytest

from lightfold.sandbox import host, layout, network, registries

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_apt_and_pip_work_inside_an_isolated_machine(shared_sandbox):
    sb = shared_sandbox
    sb.exec("apt-get update -q", timeout=120)
    sb.exec("DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq python3-venv", timeout=180)
    assert sb.exec("echo '{\"a\": 41}' | jq .a").stdout.strip() == "41"
    sb.exec("python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -q --disable-pip-version-check six",
            timeout=180)
    assert sb.exec("/tmp/venv/bin/python -c 'import six; print(six.__name__)'").stdout.strip() == "six"


def test_an_isolated_machine_reaches_nothing_but_the_registries(shared_sandbox):
    sb = shared_sandbox
    lay = layout.layout()
    # The npm registry the host uses, and yarn's name for it, answer through the machine's npm proxy setting.
    for npm_host in dict.fromkeys(registries.npm_hosts() + registries.yarn_hosts()):
        code = sb.exec(f"curl -sS -m 20 -o /dev/null -w '%{{http_code}}' -x http://{lay.host_ip}:{lay.tunnel_port} "
                       f"https://{npm_host}/", check=False).stdout
        assert code.startswith(("2", "3")), code
    assert "default" not in sb.exec("ip route").stdout
    # Direct: no route and no DNS. Through the proxy: refused for anything but a registry.
    direct = sb.exec("curl -sS -m 5 -o /dev/null http://example.com/", check=False)
    assert direct.returncode != 0
    proxied = sb.exec(
        f"curl -sS -m 5 -o /dev/null -w '%{{http_code}}' -x http://{lay.host_ip}:{lay.proxy_port} "
        "http://example.com/", check=False,
    )
    assert proxied.stdout != "200"
    tunnel = sb.exec(f"curl -sS -m 5 -o /dev/null -x http://{lay.host_ip}:{lay.tunnel_port} https://example.com/",
                     check=False)
    assert tunnel.returncode != 0 and "403" in tunnel.stderr


def test_the_proxy_listens_on_the_bridge_only(shared_sandbox):
    lay = layout.layout()
    listening = subprocess.run(["ss", "-Htln"], capture_output=True, text=True).stdout
    for port in (lay.proxy_port, lay.tunnel_port):
        ours = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")]
        assert ours == [f"{lay.host_ip}:{port}"]


@pytest.mark.skipif(host.which("nft") is None, reason="nat mode needs nftables on the host (apt-get install nftables)")
def test_a_nat_machine_gets_a_default_route_and_its_rule_goes_with_it(machine_factory):
    sb = machine_factory(network="nat")
    lay = layout.layout()
    assert f"default via {lay.host_ip}" in sb.exec("ip route").stdout
    assert sb.exec("test -e /etc/apt/apt.conf.d/01lightfold-proxy", check=False).returncode == 1
    rules = network.nat_table_listing() or ""
    assert f"ip saddr {sb.ip}" in rules and "masquerade" in rules and f'"lf-{sb.target}"' in rules
    assert network.IP_FORWARD.read_text().strip() == "1"
    status = sb.lightfold("status", "--target", sb.target, "--json").stdout
    assert '"network": "nat"' in status

    sb.destroy()
    assert f'"lf-{sb.target}"' not in (network.nat_table_listing() or "")
