"""The pure parts of the local provider, checked as text (no machine, no root needed)."""

from __future__ import annotations

import ipaddress

import pytest

from lightfold.errors import LightfoldError
from lightfold.remote import openssh
from lightfold.sandbox import host, machine_plan, network, proxy, registries, tunnel
from lightfold.sandbox.layout import Layout, layout

LAY = Layout(subnet=ipaddress.IPv4Network("10.231.0.0/24"))

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://apt.vendor.example/repo
Suites: stable
Enabled: no
"""


def test_apt_sources_give_the_mirror_and_security_archive():
    sources = registries.parse_deb822(DEB822)
    assert [s.uri for s in sources] == ["http://mirror.example/debian", "http://mirror.example/debian-security"]
    assert registries.pick_debian(sources) == ("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_one_line_sources_with_options_are_parsed():
    text = "deb [signed-by=/k.gpg arch=amd64] http://m.example/debian/ bookworm main\n# deb http://x/ y z\n"
    assert registries.parse_one_line(text) == [registries.AptSource("http://m.example/debian", ("bookworm",))]


def test_no_debian_mirror_is_a_clear_error():
    with pytest.raises(LightfoldError, match="no Debian mirror") as e:
        registries.pick_debian([registries.AptSource("http://archive.ubuntu.example/ubuntu", ("noble",))])
    assert registries.MIRROR_ENV in e.value.fix


def test_proxy_serves_only_the_mirror_and_tunnels_only_registries():
    reg = registries.Registries(
        "http://mirror.example/debian", "http://mirror.example/debian-security",
        https_hosts=("pypi.example", "files.pypi.example", "npm.example"),
    )
    text = proxy.config_text(LAY, reg)
    assert "BindAddress: 10.231.0.1\n" in text  # the bridge only, not 127.0.0.1 or 0.0.0.0
    assert "Port: 3151\n" in text
    assert "ForceManaged: 1\n" in text
    assert "Remap-lf0: mirror.example/debian ; http://mirror.example/debian/\n" in text
    assert "Remap-lf1: mirror.example/debian-security ; http://mirror.example/debian-security/\n" in text
    assert "PassThroughPattern" not in text  # HTTPS goes through lightfold's own tunnel instead
    argv = proxy.tunnel_argv(LAY, reg)
    assert argv[argv.index("--listen") + 1] == "10.231.0.1:3152"
    assert argv[argv.index("--allow") + 1] == "pypi.example,files.pypi.example,npm.example"


def test_the_tunnel_opens_only_https_to_allowed_hosts():
    allowed = frozenset({"pypi.example"})
    assert tunnel.parse_connect(b"CONNECT pypi.example:443 HTTP/1.1\r\nHost: x\r\n\r\n", allowed) == (
        "pypi.example", 443)
    assert tunnel.parse_connect(b"CONNECT PyPI.example:443 HTTP/1.1\r\n\r\n", allowed) == ("PyPI.example", 443)
    for refused in (b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n", b"CONNECT pypi.example:22 HTTP/1.1\r\n\r\n",
                    b"GET http://pypi.example/ HTTP/1.1\r\n\r\n"):
        assert tunnel.parse_connect(refused, allowed) == "403 Forbidden"
    assert tunnel.parse_connect(b"garbage\r\n\r\n", allowed) == "400 Bad Request"


def test_isolated_machine_gets_proxy_settings_and_no_default_route():
    files = {f.path: f for f in machine_plan.machine_files(
        LAY, "web", "isolated", "ssh-ed25519 AAA user", ("PRIV", "ssh-ed25519 BBB root@web\n"),
        machine_plan.isolated_resolv_conf(LAY), {"corp.crt": "-----BEGIN CERTIFICATE-----\n"},
    )}
    apt = files["etc/apt/apt.conf.d/01lightfold-proxy"].content
    assert 'http::Proxy "http://10.231.0.1:3151"' in apt and 'https::Proxy "http://10.231.0.1:3152"' in apt
    assert "proxy = http://10.231.0.1:3152" in files["etc/pip.conf"].content
    assert "https-proxy=http://10.231.0.1:3152" in files["etc/npmrc"].content
    assert files["root/.ssh/authorized_keys"].mode == 0o600
    assert files["etc/ssh/ssh_host_ed25519_key"].mode == 0o600
    assert "usr/local/share/ca-certificates/lightfold-host-corp.crt" in files
    cmds = network.machine_up_commands(LAY, "web", "10.231.0.12", "isolated")
    assert not any("default" in c for c in cmds)
    assert ["ip", "-n", "lf-web", "addr", "add", "10.231.0.12/24", "dev", "eth0"] in cmds
    assert ["ip", "link", "set", "lfv12", "master", "lfbr0", "up"] in cmds
    assert "02:00:0a:e7:00:0c" in cmds[1]  # the same MAC whenever the address is reused
    # The bridge's MAC must not follow its ports, or machines' ARP entries for the host go stale.
    assert network.bridge_up_commands(LAY)[0] == [
        "ip", "link", "add", "lfbr0", "address", "02:00:0a:e7:00:01", "type", "bridge"]


def test_nat_machine_routes_through_the_bridge_and_uses_the_hosts_dns():
    cmds = network.machine_up_commands(LAY, "web", "10.231.0.12", "nat")
    assert cmds[-1] == ["ip", "-n", "lf-web", "route", "add", "default", "via", "10.231.0.1"]
    files = {f.path for f in machine_plan.machine_files(LAY, "web", "nat", "k", ("p", "q"), "x", {})}
    assert "etc/apt/apt.conf.d/01lightfold-proxy" not in files
    masq = network.nat_up_commands(LAY, "web", "10.231.0.12")[3]
    assert " ".join(masq).endswith('ip saddr 10.231.0.12 oifname != lfbr0 masquerade comment "lf-web"')
    assert machine_plan.nat_resolv_conf("nameserver 127.0.0.53\n", "nameserver 192.0.2.1\n") == "nameserver 192.0.2.1\n"
    assert machine_plan.nat_resolv_conf("nameserver 192.0.2.9\n", "nameserver 192.0.2.1\n") == "nameserver 192.0.2.9\n"


def test_nat_rules_are_found_by_machine_for_removal():
    listing = """table ip lightfold { # handle 7
	chain postrouting { # handle 1
		ip saddr 10.231.0.12 oifname != "lfbr0" masquerade comment "lf-web" # handle 4
		ip saddr 10.231.0.13 oifname != "lfbr0" masquerade comment "lf-web2" # handle 5
	}
	chain forward { # handle 2
		iifname "lfbr0" ip saddr 10.231.0.12 accept comment "lf-web" # handle 6
	}
}"""
    assert network.nat_rule_handles(listing, "web") == [("postrouting", 4), ("forward", 6)]


def test_nspawn_runs_without_a_host_systemd_only_with_keep_unit():
    argv = machine_plan.nspawn_argv(LAY, "web", has_systemd=False)
    assert {"--register=no", "--keep-unit", "-b", "--capability=CAP_NET_ADMIN"} <= set(argv)
    assert "--network-namespace-path=/run/netns/lf-web" in argv
    assert "--keep-unit" not in machine_plan.nspawn_argv(LAY, "web", has_systemd=True)


def test_subnet_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIGHTFOLD_SANDBOX_SUBNET", "10.99.0.0/24")
    lay = layout()
    assert lay.host_ip == "10.99.0.1" and lay.candidate_ips()[0] == "10.99.0.10"
    assert lay.veth("10.99.0.250") == "lfv250"
    monkeypatch.setenv("LIGHTFOLD_SANDBOX_SUBNET", "8.8.8.0/24")
    with pytest.raises(LightfoldError, match="private"):
        layout()


def test_refusals_name_the_exact_install_command(monkeypatch):
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    with pytest.raises(LightfoldError, match="needs root") as e:
        host.require_host("isolated")
    assert "sudo" in e.value.fix
    monkeypatch.setattr(host.os, "geteuid", lambda: 0)
    monkeypatch.setattr(host, "which", lambda b: None if b in ("mmdebstrap", "systemd-nspawn") else "/bin/" + b)
    with pytest.raises(LightfoldError) as e:
        host.require_host("isolated")
    assert e.value.fix == "install with: sudo apt-get install -y mmdebstrap systemd-container"
    monkeypatch.setattr(host.sys, "platform", "darwin")
    with pytest.raises(LightfoldError, match="needs Linux"):
        host.require_host()


def test_interactive_ssh_trusts_only_pinned_keys(tmp_path):
    argv = openssh.ssh_argv("10.231.0.12", 22, "root", "/k/id", tmp_path / "kh", ["systemctl", "is-system-running"])
    assert argv[:5] == ["ssh", "-p", "22", "-i", "/k/id"]
    assert "StrictHostKeyChecking=yes" in argv and f"UserKnownHostsFile={tmp_path / 'kh'}" in argv
    assert argv[-6:] == ["-l", "root", "--", "10.231.0.12", "systemctl", "is-system-running"]


def test_ssh_argv_never_lets_a_name_or_path_become_an_option(tmp_path):
    kh = tmp_path / "my keys" / "kh"
    argv = openssh.ssh_argv("-oProxyCommand=touch /tmp/x", 22, "-oProxyCommand=id", None, kh, ["-V"],
                            user_known_hosts=True)
    i = argv.index("--")
    assert argv[i - 2:i] == ["-l", "-oProxyCommand=id"] and argv[i + 1:] == ["-oProxyCommand=touch /tmp/x", "-V"]
    assert f'UserKnownHostsFile="{kh}" ' in " ".join(argv)
    with pytest.raises(LightfoldError, match="cannot be passed to ssh"):
        openssh.ssh_argv("h", 22, "root", None, tmp_path / 'a"b')


def test_pinning_replaces_the_key_of_a_reused_address(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTFOLD_HOME", str(tmp_path))
    openssh.pin("10.231.0.12", 22, "ssh-ed25519 OLD root@a\n")
    openssh.pin("10.231.0.13", 22, "ssh-ed25519 KEEP root@b")
    openssh.pin("10.231.0.12", 22, "ssh-ed25519 NEW root@c")
    assert openssh.known_hosts_path().read_text() == "10.231.0.13 ssh-ed25519 KEEP\n10.231.0.12 ssh-ed25519 NEW\n"
    assert oct(openssh.known_hosts_path().stat().st_mode & 0o777) == "0o600"
    openssh.unpin("10.231.0.12", 22)
    assert openssh.known_hosts_path().read_text() == "10.231.0.13 ssh-ed25519 KEEP\n"


def test_images_are_named_like_cloud_images_and_cached_side_by_side():
    from lightfold.errors import UsageError
    from lightfold.providers import flags
    from lightfold.sandbox import image

    assert tuple(image.IMAGES) == flags.LOCAL_IMAGES  # the CLI's check, made without the sandbox module
    assert image.DEFAULT_IMAGE == "debian-13" and image.suite_of(None) == "trixie"
    assert image.suite_of("debian-12") == "bookworm"
    with pytest.raises(UsageError, match="unknown local image 'ubuntu-24.04'"):
        image.suite_of("ubuntu-24.04")
    reg = registries.Registries("http://mirror.example/debian", "http://mirror.example/debian-security")
    trixie, bookworm = (image.image_path(LAY, reg, s) for s in ("trixie", "bookworm"))
    assert trixie.name.startswith("trixie-") and bookworm.name.startswith("bookworm-") and trixie != bookworm
    assert image.sources_list(reg, "trixie") == (
        "deb http://mirror.example/debian trixie main\n"
        "deb http://mirror.example/debian trixie-updates main\n"
        "deb http://mirror.example/debian-security trixie-security main\n"
    )
    argv = image.mmdebstrap_argv(reg, LAY.images / "x", "bookworm")
    assert argv[-3:] == ["bookworm", str(LAY.images / "x"), "http://mirror.example/debian"]


def test_the_fake_clouds_boot_the_debian_their_image_names():
    from tests.fakes.sandbox_backend import SandboxBackend

    for name in ("debian-12", "debian-12-x64", "Debian 12 x64 (bookworm)"):
        assert SandboxBackend.suite(name) == "bookworm", name
    for name in ("debian-13", "debian-13-x64", "Debian 13 x64 (trixie)", "ubuntu-24.04", None):
        assert SandboxBackend.suite(name) == "trixie", name
