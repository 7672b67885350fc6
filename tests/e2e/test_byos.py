"""`--provider byos` against a sandbox machine standing in for the user's own server.

The machine is created in one lightfold home (A, `shared_sandbox`); each test plays a user who
brings that server to a second, fresh lightfold home (B) with A's SSH key. Host keys: unknown is
refused without --accept-new-host-key, known in the user's known_hosts is trusted, changed is
always refused. Logins: root, a passwordless sudoer (who then deploys a static site), and users
who cannot deploy.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from tests.e2e.apps import get, git
from tests.e2e.conftest import CLI_TIMEOUT, LIGHTFOLD

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

USERS = r"""
set -e
for u in deployer nosudo; do
  id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' "$u"
  install -d -m 700 -o "$u" -g "$u" /home/$u/.ssh
  install -m 600 -o "$u" -g "$u" /root/.ssh/authorized_keys /home/$u/.ssh/authorized_keys
done
echo 'deployer ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deployer
chmod 440 /etc/sudoers.d/deployer
"""


@pytest.fixture(scope="module")
def server(shared_sandbox):
    """The user's own server: A's machine, its key, its host key line and fingerprint."""
    sb = shared_sandbox
    sb.exec(USERS)
    sb.key = sb.config()["targets"][sb.target]["provider_config"]["local"]["ssh_key"]
    line = next(x for x in (sb.home / "known_hosts").read_text().splitlines() if x.split()[0] == sb.ip)
    sb.host_key = " ".join(line.split()[1:3])
    sb.fingerprint = fingerprint_of(sb.host_key, sb.root)
    return sb


def fingerprint_of(key: str, tmp: Path) -> str:
    """SHA256 fingerprint as OpenSSH's own ssh-keygen prints it (an oracle independent of lightfold)."""
    f = tmp / "fp.pub"
    f.write_text(key + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(f)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


class User:
    """Another lightfold user (home B) with a project directory."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.home = Path(env["LIGHTFOLD_HOME"])
        self.user_home = Path(env["HOME"])
        self.project = self.user_home / "project"
        self.project.mkdir(parents=True, exist_ok=True)
        (self.user_home / ".ssh").mkdir(mode=0o700, exist_ok=True)

    def lightfold(self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        proc = subprocess.run([LIGHTFOLD, *args], capture_output=True, text=True, cwd=self.project,
                              env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"lightfold {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def create(self, server, *extra: str, target: str = "web", check: bool = True) -> subprocess.CompletedProcess:
        return self.lightfold("create", "--target", target, "--provider", "byos", "--ip", server.ip,
                              "--ssh-key", server.key, *extra, "--json", check=check)

    def pinned(self) -> str:
        path = self.home / "known_hosts"
        return path.read_text() if path.exists() else ""

    def config(self) -> dict:
        path = self.home / "config.json"
        return json.loads(path.read_text()) if path.exists() else {"targets": {}}

    def state(self, target: str = "web") -> dict:
        path = self.home / "state" / f"{target}.json"
        return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture
def user(fresh_env) -> User:
    return User(fresh_env("b"))


def assert_nothing_recorded(user: User, server, target: str = "web") -> None:
    assert server.ip not in user.pinned()
    byos = user.config()["targets"].get(target, {}).get("provider_config", {}).get("byos", {})
    assert not byos.get("ip")
    assert not user.state(target).get("created")


def test_unknown_host_key_is_refused_without_the_flag(server, user):
    proc = user.create(server, check=False)
    assert proc.returncode == 1, proc.stderr
    assert server.fingerprint in proc.stderr and "--accept-new-host-key" in proc.stderr
    assert "not known" in proc.stderr
    assert_nothing_recorded(user, server)


def test_new_host_key_accepted_with_the_flag_then_rerun_ssh_status_and_forget(server, user):
    data = json.loads(user.create(server, "--accept-new-host-key").stdout)
    assert (data["ip"], data["ssh_user"], data["host_key"], data["host_key_trust"]) == (
        server.ip, "root", server.fingerprint, "accepted")
    assert f"{server.ip} {server.host_key}" in user.pinned()
    byos = user.config()["targets"]["web"]["provider_config"]["byos"]
    assert user.config()["targets"]["web"]["provider"] == "byos"
    assert (byos["ip"], byos["username"], byos["port"]) == (server.ip, "root", 22)
    assert user.state()["created"] is True
    marker = json.loads(server.exec("cat /etc/lightfold/created").stdout)
    assert (marker["target"], marker["provider"]) == ("web", "byos")
    # lightfold ssh (the system ssh client, pinned key only) works from B
    assert user.lightfold("ssh", "--target", "web", "--", "echo", "hi-from-b").stdout.strip() == "hi-from-b"
    # a rerun is a no-op that says so
    again = user.create(server)
    assert json.loads(again.stdout)["changed"] is False and "already registered" in again.stderr
    status = json.loads(user.lightfold("status", "--target", "web", "--json").stdout)
    assert (status["provider"], status["server_state"], status["ssh"]) == ("byos", "running", "reachable")
    # destroy only forgets: unpinned, address and state cleared, the server untouched
    gone = user.lightfold("destroy", "--target", "web", "--yes")
    assert "nothing on the server was changed" in gone.stderr
    assert server.ip not in user.pinned() and not user.state()
    assert server.exec("test -f /etc/lightfold/created && systemctl is-active ssh").returncode == 0
    assert_nothing_recorded(user, server)


def test_key_in_the_users_hashed_known_hosts_is_trusted_without_the_flag(server, user):
    known = user.user_home / ".ssh" / "known_hosts"
    known.write_text(f"{server.ip} {server.host_key}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)  # HashKnownHosts
    assert server.ip not in known.read_text()
    data = json.loads(user.create(server).stdout)
    assert data["host_key_trust"] == "known_hosts" and data["changed"] is True
    assert f"{server.ip} {server.host_key}" in user.pinned()  # copied into lightfold's own file


def test_ssh_config_alias_gives_address_user_and_key(server, user):
    (user.user_home / ".ssh" / "config").write_text(
        f"Host myserver\n  HostName {server.ip}\n  User deployer\n  IdentityFile {server.key}\n"
        "Host *\n  User someone-else\n"
    )
    proc = user.lightfold("create", "--target", "web", "--provider", "byos", "--ip", "myserver",
                          "--accept-new-host-key", "--json")
    data = json.loads(proc.stdout)
    assert (data["ip"], data["ssh_user"], data["ssh_key"]) == (server.ip, "deployer", server.key)


def test_other_ssh_port_uses_the_bracket_form_in_both_known_hosts(server, user):
    server.exec("printf 'Port 22\\nPort 2222\\n' > /etc/ssh/sshd_config.d/byos-test.conf && systemctl reload ssh "
                "&& for i in $(seq 50); do bash -c ': </dev/tcp/127.0.0.1/2222' 2>/dev/null && exit 0; "
                "sleep 0.1; done; exit 1")
    (user.user_home / ".ssh" / "known_hosts").write_text(f"[{server.ip}]:2222 {server.host_key}\n")
    data = json.loads(user.create(server, "--port", "2222").stdout)
    assert (data["ssh_port"], data["host_key_trust"]) == (2222, "known_hosts")
    assert f"[{server.ip}]:2222 {server.host_key}" in user.pinned()
    assert user.lightfold("ssh", "--target", "web", "--", "true").returncode == 0


def test_changed_host_key_is_refused_even_with_the_flag(server, user, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    other_fp = fingerprint_of(other, tmp_path)
    # in the user's known_hosts
    (user.user_home / ".ssh" / "known_hosts").write_text(f"{server.ip} {other}\n")
    proc = user.create(server, "--accept-new-host-key", check=False)
    assert proc.returncode == 1
    assert "changed" in proc.stderr and other_fp in proc.stderr and server.fingerprint in proc.stderr
    assert_nothing_recorded(user, server)
    # in lightfold's own known_hosts (the user's file is fine now)
    (user.user_home / ".ssh" / "known_hosts").unlink()
    user.home.mkdir(parents=True, exist_ok=True)
    (user.home / "known_hosts").write_text(f"{server.ip} {other}\n")
    proc = user.create(server, "--accept-new-host-key", check=False)
    assert proc.returncode == 1
    assert "changed" in proc.stderr and other_fp in proc.stderr and server.fingerprint in proc.stderr
    assert f"ssh-keygen -R {server.ip}" in proc.stderr
    assert user.pinned() == f"{server.ip} {other}\n"  # not replaced
    assert not user.state().get("created")


def test_sudo_user_is_accepted_and_users_who_cannot_deploy_are_refused(server, user):
    no_sudo = user.create(server, "--user", "nosudo", "--accept-new-host-key", check=False)
    assert no_sudo.returncode == 1
    assert "nosudo" in no_sudo.stderr and "sudo without a password" in no_sudo.stderr
    assert "NOPASSWD" in no_sudo.stderr  # the fix
    assert_nothing_recorded(user, server)

    ghost = user.create(server, "--user", "ghost", "--accept-new-host-key", check=False)
    assert ghost.returncode == 1 and "refused the SSH key" in ghost.stderr and "ssh-copy-id" in ghost.stderr

    data = json.loads(user.create(server, "--user", "deployer", "--accept-new-host-key").stdout)
    assert data["ssh_user"] == "deployer"
    marker = json.loads(server.exec("cat /etc/lightfold/created").stdout)  # written through sudo
    assert marker["user"] == "deployer"
    assert server.exec("stat -c %U /etc/lightfold/created").stdout.strip() == "root"
    assert user.lightfold("ssh", "--target", "web", "--", "whoami").stdout.strip() == "deployer"


def create_on_a_terminal(server, user, answer: bytes) -> tuple[int, str, bytes]:
    """`lightfold create` with a terminal on stdin/stderr: waits for the question, answers it."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [LIGHTFOLD, "create", "--target", "web", "--provider", "byos", "--ip", server.ip, "--ssh-key",
             server.key, "--json"],
            stdin=follower, stdout=subprocess.PIPE, stderr=follower, cwd=user.project, env=user.env, text=True,
        )
        os.close(follower)
        seen = b""
        while b"Trust it?" not in seen:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal: it exited without asking
                chunk = b""
            assert chunk, seen
            seen += chunk
        os.write(leader, answer + b"\n")
        out, _ = proc.communicate(timeout=CLI_TIMEOUT)
        with contextlib.suppress(OSError):  # the rest of what it wrote to the terminal (errors go there)
            while chunk := os.read(leader, 65536):
                seen += chunk
    finally:
        os.close(leader)
    return proc.returncode, out, seen


def test_unknown_host_key_at_the_prompt_shows_the_fingerprint_and_needs_a_yes(server, user):
    code, _out, shown = create_on_a_terminal(server, user, b"n")
    assert code == 1 and server.fingerprint.encode() in shown and b"was not trusted" in shown
    assert_nothing_recorded(user, server)
    code, out, shown = create_on_a_terminal(server, user, b"y")
    assert code == 0, shown
    assert json.loads(out)["host_key_trust"] == "accepted"
    assert f"{server.ip} {server.host_key}" in user.pinned()


def test_deploy_static_site_to_byos_as_sudo_user(server, user):
    (user.project / "index.html").write_text("<h1>hello from byos</h1>\n")
    git(user.project, "init", "-q", "-b", "main")
    git(user.project, "add", "-A")
    git(user.project, "commit", "-q", "-m", "site")
    # deploy refuses a byos target that was not registered, naming the create command
    refused = user.lightfold("deploy", "--target", "site", "--provider", "byos", check=False)
    assert refused.returncode == 1 and "lightfold create --target site --provider byos --ip" in refused.stderr
    user.create(server, "--user", "deployer", "--accept-new-host-key", target="site")
    data = json.loads(user.lightfold("deploy", "--target", "site", "--json", timeout=900).stdout)
    assert data["created"] == "exists"
    status, body = get(server.ip)
    assert status == 200 and b"hello from byos" in body
