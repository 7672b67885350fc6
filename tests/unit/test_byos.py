"""The byos provider's pure parts: which login is used (flags, ~/.ssh/config, recorded, defaults),
what the server check accepts and refuses (each with its fix), and the CLI's flag rules."""

from __future__ import annotations

import json

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


# ---- an imported host key (--host-key / LIGHTFOLD_HOST_KEY, as a CI job passes it)

def new_host_key() -> str:
    import asyncssh

    return " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])


ED, ED2 = new_host_key(), new_host_key()


@pytest.fixture
def presents(monkeypatch, lf_home, tmp_path):
    """The server at 203.0.113.7 presents this host key (no network)."""
    from lightfold.providers import byos

    monkeypatch.setenv("HOME", str(tmp_path))
    shown: list[str] = []

    async def server_host_key(host, port, key_types=None, timeout=10):
        return shown[0]

    monkeypatch.setattr(byos.user_ssh, "server_host_key", server_host_key)
    return shown.append


def trust(imported):
    from lightfold.providers import byos
    from lightfold.remote.user_ssh import HostSettings

    pc = ProviderConfig(ip="203.0.113.7", username="root", port=22, ssh_key="/k")
    return byos._trust(pc, HostSettings(), accept=False, confirm=None, progress=lambda m: None, imported=imported)


def test_the_imported_host_key_is_trusted_without_a_prompt_or_flag(presents):
    presents(ED)
    assert trust([ED]) == (ED, "imported")


def test_a_host_key_other_than_the_imported_one_is_refused_with_both_fingerprints(presents):
    from lightfold.remote import fingerprint

    presents(ED2)
    with pytest.raises(LightfoldError) as e:
        trust([ED])
    assert "is not the imported one" in e.value.problem
    assert fingerprint(ED) in e.value.problem and fingerprint(ED2) in e.value.problem
    assert "export-host-key" in e.value.fix


def test_an_imported_key_does_not_override_a_changed_pin(presents, lf_home):
    from lightfold.remote import openssh

    openssh.pin("203.0.113.7", 22, ED)
    presents(ED2)
    with pytest.raises(LightfoldError, match="changed"):
        trust([ED2])


def test_an_empty_or_malformed_imported_key_is_refused_before_connecting():
    from lightfold.providers.byos import imported_keys

    for text, why in (("", "it is empty"), ("SHA256:xyz", "line 1 is not an SSH public key")):
        with pytest.raises(LightfoldError, match=why) as e:
            imported_keys(text)
        assert "export-host-key" in e.value.fix


def test_host_key_flag_is_byos_only_and_the_env_var_is_read_for_byos(cli, tmp_path):
    r = cli("create", "--target", "web", "--provider", "local", "--host-key", ED, str(tmp_path))
    assert r.returncode == 2 and "--host-key applies only to --provider byos" in r.stderr
    r = cli("create", "--target", "web", "--provider", "byos", "--ip", "203.0.113.7", "--ssh-key", str(tmp_path),
            str(tmp_path), env={"LIGHTFOLD_HOST_KEY": "not a key"})
    assert r.returncode == 1 and "not an SSH public key" in r.stderr


# ---- lightfold config export-host-key

def test_export_host_key_prints_the_pinned_key_alone(cli, lf_home):
    from lightfold.remote import fingerprint, openssh

    cli("config", "set", "provider", "byos", "--target", "web")
    cli("config", "set", "provider_config.byos.ip", "203.0.113.7", "--target", "web")
    r = cli("config", "export-host-key", "--target", "web")
    assert r.returncode == 1 and "no host key is pinned for 203.0.113.7" in r.stderr
    openssh.pin("203.0.113.7", 22, ED + " comment")
    r = cli("config", "export-host-key", "--target", "web")
    assert (r.returncode, r.stdout) == (0, ED + "\n")
    data = json.loads(cli("config", "export-host-key", "--target", "web", "--json").stdout)
    assert data == {"target": "web", "ip": "203.0.113.7", "port": 22, "keys": [ED], "fingerprints": [fingerprint(ED)]}


def test_export_host_key_of_a_target_without_a_server(cli, lf_home):
    r = cli("config", "export-host-key", "--target", "nope")
    assert r.returncode == 1 and "nope" in r.stderr


def test_scale_finds_the_byos_servers_in_the_config():
    from lightfold import config
    from lightfold.errors import LightfoldError
    from lightfold.providers import byos

    pc = config.ProviderConfig(ip="10.0.0.1", hosts="10.0.0.2, 10.0.0.3", lb_host="10.0.0.9")
    assert pc.hosts == ["10.0.0.2", "10.0.0.3"]
    assert byos.host_for("web", "web-2", pc) == "10.0.0.2" and byos.host_for("web", "web-3", pc) == "10.0.0.3"
    assert byos.host_for("web", "web-lb", pc) == "10.0.0.9"
    with pytest.raises(LightfoldError, match="lists 2 more servers"):
        byos.host_for("web", "web-4", pc)
    with pytest.raises(LightfoldError, match="no load balancer"):
        byos.host_for("web", "web-lb", config.ProviderConfig(ip="10.0.0.1"))
    with pytest.raises(ValueError):
        config.ProviderConfig(hosts=["10.0.0.2; rm -rf /"])
