"""`lightfold deploy --provider digitalocean|vultr|hetzner` end to end against the stateful fake
APIs (tests/fakes), whose "create server" boots a real sandbox machine from lightfold's own
#cloud-config (authorized key, the host key lightfold generated and pinned, write_files).

Each test starts its fake in-process on loopback with a SandboxBackend owned by the test's temp
dir, points LIGHTFOLD_<P>_API_URL at it, and runs the CLI as a subprocess from an EMPTY
LIGHTFOLD_HOME. The app is a one-file static site (configure installs only nginx).

How an address change is simulated (POST /__move on the fake): the fake boots a new machine from
the server's user data — same host key, same authorized key, a different IP — and removes the old
one, then reports the new IP for the same server id. The disk is not carried over, so after a move
the tests check what the address change is about: lightfold finds the server again, pins the host
key it generated for the new IP (strict checking, no TOFU), and logs in there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.apps import commit, get, git
from tests.e2e.conftest import LIGHTFOLD, Sandbox, new_sandbox
from tests.fakes import fake_class
from tests.fakes.sandbox_backend import SandboxBackend

from lightfold.providers.http import BASE_URL_ENV
from lightfold.sandbox import layout, machine
from lightfold.secrets import TOKEN_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PAGE = "<!doctype html><title>cloud</title><p>hello from a fake {provider} server</p>\n"
CREATE_PATH = {"hetzner": "/v1/servers", "digitalocean": "/v2/droplets", "vultr": "/v2/instances"}


@dataclass
class Cloud:
    provider: str
    sb: Sandbox
    fake: object
    backend: SandboxBackend
    token: str

    @property
    def target(self) -> str:
        return self.sb.target

    def control(self, path: str, body: dict | None = None) -> dict:
        origin = self.fake.base_url.rsplit("/", 1)[0]
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(origin + path, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    def servers(self) -> list[dict]:
        return self.control("/__state")["servers"]

    def machines(self) -> list[str]:
        """Sandbox machines this test's fake booted (found by owner, as the leftover check does)."""
        lay = layout.layout()
        return [n for n in machine.names(lay) if machine.owner_of(lay, n) == self.backend.owner]

    def ip(self) -> str:
        return self.sb.config()["targets"][self.target]["provider_config"][self.provider]["ip"]

    def assert_no_secret(self, *outputs: str) -> None:
        """The token is in no output, and in no file under LIGHTFOLD_HOME (config, state, logs, keys)."""
        for text in outputs:
            assert self.token not in text
        for path in self.sb.home.rglob("*"):
            if path.is_file():
                assert self.token.encode() not in path.read_bytes(), path


@contextmanager
def fake_cloud(provider: str, root: Path) -> Iterator[Cloud]:
    token = f"lf-e2e-SECRET-{uuid.uuid4().hex}"
    sb = new_sandbox(root, prefix="c")
    backend = SandboxBackend(owner=str(root / "fake-cloud-vms"))
    fake = fake_class(provider)(tokens=(token,), boot_delay=0.5, vm_backend=backend)
    fake.start()
    sb.env.update({TOKEN_ENV[provider]: token, BASE_URL_ENV[provider]: fake.base_url})
    cloud = Cloud(provider, sb, fake, backend, token)
    try:
        yield cloud
    finally:
        fake.stop()  # removes every machine the fake still holds
        for name in cloud.machines():  # a stop that timed out must not leak machines
            machine.destroy(name)


def static_site(sb: Sandbox, provider: str) -> None:
    (sb.project / "index.html").write_text(PAGE.format(provider=provider))
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, "static site")


def ssh_cat(c: Cloud, path: str) -> str:
    """Read a file on the server through `lightfold ssh` (system ssh, strict pinned host key)."""
    return c.sb.lightfold("ssh", "--target", c.target, "--", "cat", path, timeout=60).stdout


def assert_host_key_rotated(c: Cloud, server: dict, ip: str) -> None:
    """The key that went through user data (which the metadata service keeps serving) is
    worthless: sshd offers another one, made on the server, and only that one is pinned."""
    from lightfold.providers.cloud import read_user_data

    user_data_key = read_user_data(c.fake.servers[str(server["id"])]["_user_data"])["ssh_keys"]["ed25519_public"]
    offered = " ".join(ssh_cat(c, "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    assert offered.startswith("ssh-ed25519 ") and offered != " ".join(user_data_key.split()[:2])
    pinned = [" ".join(line.split()[1:3]) for line in (c.sb.home / "known_hosts").read_text().splitlines()
              if ip in line.split()[0]]
    assert pinned == [offered]
    stored = json.loads((c.sb.home / "host-keys" / f"{c.target}.json").read_text())
    assert stored["rotated"].split()[:2] == offered.split() and "rotating" not in stored
    listing = c.sb.lightfold("ssh", "--target", c.target, "--", "ls", "/etc/ssh", timeout=60).stdout.split()
    assert not [n for n in listing if "lightfold-" in n]  # neither the old key nor a new one left beside it


# ---- a full deploy per provider


@pytest.mark.parametrize("provider", ["digitalocean", "vultr", "hetzner"])
def test_deploy_from_an_empty_home_then_destroy(provider, sandbox_host, tmp_path):
    with fake_cloud(provider, tmp_path) as c:
        static_site(c.sb, provider)
        assert not c.sb.home.exists()
        if provider == "vultr":
            # Bursts on the way: 429s (Vultr sends no Retry-After) and a 5xx refusing the create.
            c.control("/__fault", {"status": 429, "count": 3})
            c.control("/__fault", {"status": 500, "count": 1, "method": "POST", "path": CREATE_PATH[provider]})
        # Debian 13 is the default image; Hetzner's server asks for Debian 12, which its machine boots.
        image = ("--image", "debian-12") if provider == "hetzner" else ()
        t0 = time.monotonic()
        proc = c.sb.lightfold("deploy", "--target", c.target, "--provider", provider, *image, "--json", timeout=600)
        took = time.monotonic() - t0
        result = json.loads(proc.stdout)
        assert result["created"] == "created" and result["configured"] == "configured"
        ip = c.ip()
        assert get(ip) == (200, PAGE.format(provider=provider).encode())

        (server,) = c.servers()
        if provider == "vultr":  # the refused create was made again, once: still one server
            assert c.fake.requests.count(("POST", CREATE_PATH[provider])) == 2
        assert result["push"]["url"].startswith(f"http://{ip}")
        pc = c.sb.config()["targets"][c.target]["provider_config"][provider]
        assert pc["server_id"] == str(server["id"]) and pc["username"] == "root"
        st = json.loads((c.sb.home / "state" / f"{c.target}.json").read_text())
        assert st["provisioned_id"] == str(server["id"]) and st["create_tag"]
        # the server is the one lightfold asked for: its marker carries this create's tag
        assert json.loads(ssh_cat(c, "/etc/lightfold/created"))["tag"] == st["create_tag"]
        codename = "bookworm" if image else "trixie"
        assert f"VERSION_CODENAME={codename}" in ssh_cat(c, "/etc/os-release")
        assert_host_key_rotated(c, server, ip)
        print(f"{provider}: deploy from an empty home took {took:.1f}s")

        again = c.sb.lightfold("deploy", "--target", c.target, "--json", timeout=300)
        assert json.loads(again.stdout)["created"] == "exists" and len(c.servers()) == 1

        gone = c.sb.lightfold("destroy", "--target", c.target, "--yes", "--json", timeout=120)
        assert json.loads(gone.stdout)["destroyed"] is True
        deadline = time.monotonic() + 60
        while (c.servers() or c.machines()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert c.servers() == [] and c.control("/__state")["ssh_keys"] == []
        assert c.machines() == []
        c.assert_no_secret(proc.stdout, proc.stderr, again.stdout, again.stderr, gone.stdout, gone.stderr)


# ---- retries, interruptions, address changes, tokens (one provider)


def test_interrupted_create_is_resumed_without_a_duplicate_and_a_moved_server_is_followed(
    sandbox_host, tmp_path,
):
    provider = "hetzner"
    with fake_cloud(provider, tmp_path) as c:
        c.sb.project.joinpath("index.html").write_text("x\n")
        # The create is carried out but its answer never comes; the CLI is killed while waiting.
        c.control("/__fault", {"timeout_after_create": True, "hang": 120})
        cli = c.sb.popen("create", "--target", c.target, "--provider", provider,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not c.servers() and time.monotonic() < deadline and cli.poll() is None:
                time.sleep(0.1)
            assert c.servers(), "the create request never reached the fake"
        finally:
            cli.send_signal(signal.SIGKILL)
            out, err = cli.communicate(timeout=30)
        (first,) = c.servers()
        assert cli.returncode == -signal.SIGKILL

        # The retry meets 429 and 5xx bursts, rides them out, and finds the server by its tag.
        c.control("/__fault", {"status": 429, "count": 2, "retry_after": 1})
        c.control("/__fault", {"status": 503, "count": 2})
        retry = c.sb.lightfold("create", "--target", c.target, "--provider", provider, "--json", timeout=300)
        made = json.loads(retry.stdout)
        assert made["changed"] is True and made["server_id"] == str(first["id"])
        assert "from an earlier create" in retry.stderr
        assert [s["id"] for s in c.servers()] == [first["id"]]
        assert len(c.machines()) == 1
        old_ip = c.ip()
        assert json.loads(ssh_cat(c, "/etc/lightfold/created"))["target"] == c.target
        assert_host_key_rotated(c, first, old_ip)

        # The server moves to another address: a `create` rerun notices and follows it.
        moved = c.control("/__move", {"id": first["id"]})
        assert moved["old_ip"] == old_ip and moved["ip"] != old_ip
        rerun = c.sb.lightfold("create", "--target", c.target, "--provider", provider, "--json", timeout=120)
        info = json.loads(rerun.stdout)
        assert info["changed"] is False and info["address_changed"] is True
        assert (info["ip"], info["previous_ip"]) == (moved["ip"], old_ip) and c.ip() == moved["ip"]
        assert json.loads(ssh_cat(c, "/etc/lightfold/created"))["target"] == c.target  # pinned key, new IP
        known = (c.sb.home / "known_hosts").read_text()
        assert old_ip not in known.split() and moved["ip"] in known.split()

        # And again, recovered by `recover_address` (what `lightfold sync` runs for a cloud target).
        moved2 = c.control("/__move", {"id": first["id"]})
        code = ("import json; from lightfold.providers import cloud_target; "
                f"print(json.dumps(cloud_target.recover_address({provider!r}, {c.target!r})))")
        rec = subprocess.run([sys.executable, "-c", code], env=c.sb.env, capture_output=True, text=True,
                             timeout=120, check=True)
        got = json.loads(rec.stdout)
        assert got["changed"] and (got["ip"], got["previous_ip"]) == (moved2["ip"], moved["ip"])
        assert json.loads(ssh_cat(c, "/etc/lightfold/created"))["target"] == c.target
        assert len(c.servers()) == 1 and len(c.machines()) == 1

        gone = c.sb.lightfold("destroy", "--target", c.target, "--yes", timeout=120)
        deadline = time.monotonic() + 60
        while (c.servers() or c.machines()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert c.servers() == [] and c.machines() == []
        c.assert_no_secret(out, err, retry.stdout, retry.stderr, rerun.stdout, rerun.stderr, rec.stdout,
                           rec.stderr, gone.stdout, gone.stderr)


@pytest.mark.parametrize("provider", ["digitalocean", "vultr", "hetzner"])
def test_a_bad_or_missing_token_is_one_line_naming_the_env_var(provider, tmp_path):
    """No machine is booted: the token is refused before anything is created."""
    from tests.fakes.base import LoopbackBackend

    root = tmp_path / provider
    sb = new_sandbox(root, prefix="c")
    sb.project.joinpath("index.html").write_text("x\n")
    env_var = TOKEN_ENV[provider]
    with fake_class(provider)(tokens=("the-right-one",), vm_backend=LoopbackBackend()) as fake:
        bad = f"wrong-SECRET-{uuid.uuid4().hex}"
        env = {env_var: bad, BASE_URL_ENV[provider]: fake.base_url}
        for cmd in ("create", "deploy"):
            proc = sb.lightfold(cmd, "--target", sb.target, "--provider", provider, check=False, env=env)
            assert proc.returncode == 1, proc.stderr
            assert "Traceback" not in proc.stderr and bad not in proc.stderr + proc.stdout
            assert proc.stderr.strip().splitlines()[-1].startswith("error:"), proc.stderr
            errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and env_var in errors[0] and "401" in errors[0], proc.stderr
            assert fake.servers == {}
            if cmd == "create":  # nothing else was printed
                assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr

        # no token at all, and no terminal to ask on: refused before any request
        asked = len(fake.requests)
        proc = sb.lightfold("create", "--target", sb.target, "--provider", provider, check=False,
                            env={BASE_URL_ENV[provider]: fake.base_url}, input="")
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and env_var in lines[0] and "token" in lines[0], proc.stderr
        assert len(fake.requests) == asked
    for path in sb.home.rglob("*") if sb.home.exists() else []:
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path


# ---- on a terminal: the token is asked once and stored 0600, region and size are chosen from lists


def on_terminal(argv: list[str], env: dict, cwd: Path, answers: list[tuple[str, str]],
                timeout: float = 120) -> tuple[int, str]:
    """Run argv with a pseudo-terminal as its controlling terminal (so getpass turns echo off);
    each answer is typed once its prompt text has appeared. Returns (exit code, everything shown)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the CLI at once
        os.chdir(cwd)
        os.execve(argv[0], argv, env)
    shown, seen, pending = b"", 0, list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal (exited)
                break
            if not chunk:
                break
            shown += chunk
            if pending and pending[0][0].encode() in shown[seen:]:
                seen = len(shown)
                os.write(fd, pending.pop(0)[1].encode() + b"\r")
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"{argv[1:]} did not finish on the terminal; shown:\n{shown.decode(errors='replace')}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert not pending, f"prompts never shown: {pending}\n{shown.decode(errors='replace')}"
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_on_a_terminal_the_token_is_asked_once_and_region_and_size_are_chosen(sandbox_host, tmp_path):
    provider = "digitalocean"
    with fake_cloud(provider, tmp_path) as c:
        c.sb.project.joinpath("index.html").write_text("x\n")
        env = {k: v for k, v in c.sb.env.items() if k != TOKEN_ENV[provider]}
        argv = [LIGHTFOLD, "create", "--target", c.target, "--provider", provider, "."]
        code, shown = on_terminal(argv, env, c.sb.project, [
            # getpass writes the prompt's last character once echo is off; type only after it
            (f"{TOKEN_ENV[provider]}): ", c.token),
            ("Choose a region", "fra1"),
            ("Choose a size", "1"),  # the first size offered in fra1
        ])
        assert code == 0, shown
        assert c.token not in shown  # typed with echo off
        assert "sfo3" in shown and "s-2vcpu-4gb" in shown  # the lists were shown
        (droplet,) = c.servers()
        assert (droplet["region"]["slug"], droplet["size_slug"]) == ("fra1", "s-1vcpu-512mb-10gb")
        tokens = c.sb.home / "tokens.json"
        assert tokens.stat().st_mode & 0o777 == 0o600
        assert json.loads(tokens.read_text())["tokens"][provider] == c.token
        pc = c.sb.config()["targets"][c.target]["provider_config"][provider]
        assert (pc["region"], pc["size"]) == ("fra1", "s-1vcpu-512mb-10gb")

        # asked once: a rerun on the terminal prompts for nothing and finds the server
        code, shown = on_terminal(argv, env, c.sb.project, [])
        assert code == 0 and "Choose" not in shown and "API token" not in shown, shown
        assert len(c.servers()) == 1

        c.sb.lightfold("destroy", "--target", c.target, "--yes", env={TOKEN_ENV[provider]: ""}, timeout=120)
        deadline = time.monotonic() + 60
        while (c.servers() or c.machines()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert c.servers() == [] and c.machines() == []
        for path in c.sb.home.rglob("*"):  # the token store is the one file allowed to hold it
            if path.is_file() and path != tokens:
                assert c.token.encode() not in path.read_bytes(), path
