"""The byos provider's pure parts: which login is used (flags, ~/.ssh/config, recorded, defaults),
what the server check accepts and refuses (each with its fix), and the CLI's flag rules."""

from __future__ import annotations

import pytest

from lightfold.config import ProviderConfig
from lightfold.errors import LightfoldError
from lightfold.providers.byos import check_facts, marker_command, parse_facts, resolve

DEBIAN = {"uid": "0", "sudo": "root", "pid1": "systemd", "os_ID": "debian",
          "os_PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}


def test_parse_facts_strips_os_release_quotes():
    facts = parse_facts('uid=1000\nsudo=ok\npid1=systemd\nos_ID=ubuntu\nos_ID_LIKE=debian\n'
                        'os_PRETTY_NAME="Ubuntu 24.04 LTS"\nnoise\n')
    assert facts == {"uid": "1000", "sudo": "ok", "pid1": "systemd", "os_ID": "ubuntu", "os_ID_LIKE": "debian",
                     "os_PRETTY_NAME": "Ubuntu 24.04 LTS"}


@pytest.mark.parametrize("facts", [
    DEBIAN,
    {**DEBIAN, "uid": "1000", "sudo": "ok"},
    {**DEBIAN, "os_ID": "ubuntu"},
    {**DEBIAN, "os_ID": "linuxmint", "os_ID_LIKE": "ubuntu debian"},
])
def test_servers_lightfold_can_deploy_to(facts):
    check_facts(facts, "deploy", "203.0.113.7")


@pytest.mark.parametrize(("change", "problem", "fix"), [
    ({"sudo": "password"}, "deploy@203.0.113.7 cannot use sudo without a password", "NOPASSWD:ALL"),
    ({"sudo": "missing"}, "not root and sudo is not installed", "--user root"),
    ({"sudo": ""}, "could not check the login", "login shell"),
    ({"os_ID": "alpine", "os_PRETTY_NAME": "Alpine Linux v3.19"}, "runs Alpine Linux v3.19", "Debian"),
    ({"os_ID": "", "os_PRETTY_NAME": ""}, "unknown OS", "Debian"),
    ({"os_ID": "fedora", "os_ID_LIKE": "rhel centos", "os_PRETTY_NAME": "Fedora 40"}, "Fedora 40", "Ubuntu"),
    ({"pid1": "init"}, "does not run systemd as PID 1 (PID 1 is init)", "boots with systemd"),
    ({"pid1": ""}, "PID 1 is unknown", "boots with systemd"),
])
def test_servers_refused_with_one_line_and_a_fix(change, problem, fix):
    with pytest.raises(LightfoldError) as e:
        check_facts({**DEBIAN, **change}, "deploy", "203.0.113.7")
    assert problem in e.value.problem and fix in (e.value.fix or "")
    assert "\n" not in str(e.value)


def test_marker_goes_through_sudo_only_for_a_sudoer():
    assert marker_command("root").startswith("sh -c ")
    assert marker_command("deploy").startswith("sudo -n sh -c ")
    assert "/etc/lightfold/created" in marker_command("deploy")


# ---- which login

@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def key(home, name):
    path = home / ".ssh" / name
    path.write_text("private")
    return path


def test_defaults_root_port_22_and_the_first_default_key(home):
    key(home, "id_rsa")
    key(home, "id_ecdsa")
    pc = resolve("203.0.113.7", None, None, None, None, home)
    assert (pc.ip, pc.username, pc.port, pc.ssh_key) == ("203.0.113.7", "root", 22, str(home / ".ssh/id_ecdsa"))
    key(home, "id_ed25519")
    assert resolve("203.0.113.7", None, None, None, None, home).ssh_key == str(home / ".ssh/id_ed25519")


def test_ssh_config_fills_what_flags_leave_out(home):
    k = key(home, "web_key")
    (home / ".ssh" / "config").write_text("Host web\n  HostName 203.0.113.7\n  User deploy\n  Port 2222\n"
                                          "  IdentityFile ~/.ssh/missing\n  IdentityFile ~/.ssh/web_key\n")
    pc = resolve("web", None, None, None, None, home)
    assert (pc.ip, pc.username, pc.port, pc.ssh_key) == ("203.0.113.7", "deploy", 2222, str(k))
    other = key(home, "other")
    pc = resolve("web", "admin", 22, str(other), None, home)
    assert (pc.ip, pc.username, pc.port, pc.ssh_key) == ("203.0.113.7", "admin", 22, str(other))


def test_a_rerun_without_flags_uses_what_was_recorded(home):
    k = key(home, "recorded")
    old = ProviderConfig(ip="203.0.113.7", username="deploy", port=2200, ssh_key=str(k))
    pc = resolve(None, None, None, None, old, home)
    assert (pc.ip, pc.username, pc.port, pc.ssh_key) == ("203.0.113.7", "deploy", 2200, str(k))
    key(home, "id_ed25519")  # another address: recorded settings belong to the old server
    pc = resolve("198.51.100.1", None, None, None, old, home)
    assert (pc.username, pc.port, pc.ssh_key) == ("root", 22, str(home / ".ssh/id_ed25519"))


@pytest.mark.parametrize(("args", "problem", "fix"), [
    ((None, None, None, None), "no server address given", "--ip"),
    (("203.0.113.7", None, None, None), "no SSH key found", "--ssh-key"),
    (("203.0.113.7", None, None, "/nonexistent/key"), "SSH key /nonexistent/key does not exist", "--ssh-key"),
    (("203.0.113.7", None, None, "/x/id_ed25519.pub"), "is a public key", "--ssh-key /x/id_ed25519"),
])
def test_bad_login_settings(home, args, problem, fix):
    with pytest.raises(LightfoldError) as e:
        resolve(*args, None, home)
    assert problem in e.value.problem and fix in (e.value.fix or "")


def test_proxy_jump_hosts_are_refused(home):
    (home / ".ssh" / "config").write_text("Host inner\n  HostName 10.1.2.3\n  ProxyJump bastion\n")
    key(home, "id_ed25519")
    with pytest.raises(LightfoldError, match="ProxyJump bastion"):
        resolve("inner", None, None, None, None, home)


# ---- CLI

def test_byos_flags_belong_to_byos_only(cli, tmp_path):
    r = cli("create", "--target", "web", "--provider", "local", "--ip", "203.0.113.7", str(tmp_path))
    assert r.returncode == 2 and "--ip applies only to --provider byos" in r.stderr
    r = cli("create", "--target", "web", "--provider", "byos", "--port", "0", str(tmp_path))
    assert r.returncode == 2


def test_byos_create_without_an_address_says_how(cli, tmp_path):
    r = cli("create", "--target", "web", "--provider", "byos", str(tmp_path))
    assert r.returncode == 1 and "no server address given" in r.stderr and "--ip" in r.stderr


def test_forgetting_a_target_without_a_server_is_a_no_op(cli, lf_home):
    cli("config", "set", "provider", "byos", "--target", "web")
    r = cli("destroy", "--target", "web", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert '"forgotten": false' in r.stdout
