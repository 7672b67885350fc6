"""A VM backend for the fake cloud APIs that boots a real sandbox machine per server (root and
systemd-nspawn needed), so `lightfold create --provider hetzner` can run end to end:

    python -m tests.fakes.hetzner --port 0 --vm-backend tests.fakes.sandbox_backend:SandboxBackend

The server's image picks the sandbox image: a Debian 12 or 13 image as the provider names it
(`debian-12`, `debian-12-x64`, "Debian 12 x64 (bookworm)") boots that Debian; anything else (Ubuntu,
which has no sandbox image) boots the default, Debian 13.

The sandbox image has no cloud-init, so this applies the part of lightfold's #cloud-config that
matters (see `lightfold.providers.cloud.user_data`) when the machine is made, before it boots:
root's authorized keys, the host key lightfold generated and pinned, and write_files
(/etc/lightfold/created). sshd therefore offers the pinned key from its first start.

A load balancer is a machine of its own running HAProxy from the OS archive, installed and
configured by the repo's own plan (`lightfold.server.haproxy.lb_plan`, run with bash inside the
machine, no SSH), its stats read on HAProxy's socket: the fake's load balancer carries the e2e
test's traffic.

`owner` is recorded on every machine (who may destroy it). Tests pass a path inside their temp dir,
so the session-end leftover check in tests/conftest.py catches a machine a test failed to remove.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator

from lightfold.agent.layout import SSH_HOST_KEY as HOST_KEY
from lightfold.errors import LightfoldError
from lightfold.providers.cloud import read_user_data
from lightfold.sandbox import machine
from lightfold.sandbox.image import FileSpec

BOOT_TIMEOUT = 90


class SandboxBackend:
    def __init__(self, network: str | None = None, owner: str | None = None):
        self.network = network or os.environ.get("LIGHTFOLD_FAKE_CLOUD_NETWORK", "isolated")
        self.owner = owner or os.environ.get("LIGHTFOLD_FAKE_CLOUD_OWNER") or "fake-cloud-api"

    @staticmethod
    def machine_name(name: str) -> str:
        """Sandbox names are short and global to the host; 'fc-' keeps them apart from `--provider local`."""
        return "fc-" + (re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:28].strip("-") or "server")

    @staticmethod
    def suite(image: str | None) -> str:
        """The sandbox image's Debian suite for a provider's image name."""
        from lightfold.sandbox.image import IMAGES, SUITE

        m = re.search(r"debian[- ](\d+)", (image or "").lower())
        return IMAGES.get(f"debian-{m.group(1)}", SUITE) if m else SUITE

    def boot(self, name: str, user_data: str | None, image: str | None = None) -> str:
        config = read_user_data(user_data) if user_data else {}
        keys = "".join(k.strip() + "\n" for k in config.get("ssh_authorized_keys", []))
        given = config.get("ssh_keys") or {}
        host_key = None
        if given.get("ed25519_private") and given.get("ed25519_public"):
            host_key = (given["ed25519_private"], given["ed25519_public"].strip() + "\n")
        files = [FileSpec(f["path"].lstrip("/"), f.get("content", ""), int(str(f.get("permissions", "0644")), 8))
                 for f in config.get("write_files", [])]
        mname = self.machine_name(name)
        m = machine.create(mname, self.network, keys, self.owner, host_key=host_key, extra_files=files,
                           suite=self.suite(image))
        with _destroyed_on_failure(mname):
            machine.wait_for_ssh_port(mname, m.ip, time.monotonic() + BOOT_TIMEOUT)
        return m.ip

    def host_key(self, name: str) -> tuple[str, str] | None:
        """The host key sshd offers on the machine now (lightfold rotates the user-data one)."""
        mname = self.machine_name(name)
        halves = []
        for path in (HOST_KEY, HOST_KEY + ".pub"):
            r = subprocess.run(machine.exec_argv(mname, ["cat", path]), capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                return None
            halves.append(r.stdout)
        return halves[0], halves[1]

    def destroy(self, name: str) -> None:
        machine.destroy(self.machine_name(name))

    @property
    def private_range(self) -> str:
        from lightfold.sandbox.layout import layout

        return str(layout().subnet)

    # ---- load balancers

    def start_balancer(self, name: str) -> str:
        mname = self.machine_name(name)
        m = machine.create(mname, self.network, "", self.owner)
        with _destroyed_on_failure(mname):
            machine.wait_for_ssh_port(mname, m.ip, time.monotonic() + BOOT_TIMEOUT)  # booted
            self.configure_balancer(name, [], "/", None)
        return m.ip

    def configure_balancer(self, name: str, backends: list[tuple[str, str]], health_path: str,
                           health_host: str | None) -> None:
        from lightfold.server import haproxy
        from lightfold.server.plan import render

        plan = haproxy.lb_plan(name, [haproxy.Backend(n, ip) for n, ip in backends], health_path,
                               health_host=health_host)
        r = subprocess.run(machine.exec_argv(self.machine_name(name), ["bash", "-s"]), input=render(plan),
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"HAProxy on {name}: {(r.stdout + r.stderr)[-2000:]}")

    def balancer_health(self, name: str) -> dict[str, bool]:
        from lightfold.server import haproxy

        r = subprocess.run(machine.exec_argv(self.machine_name(name), ["sh", "-c", haproxy.stat_command()]),
                           capture_output=True, text=True, timeout=30)
        return {s.name: s.healthy for s in haproxy.parse_stat(r.stdout)} if r.returncode == 0 else {}

    def destroy_balancer(self, name: str) -> None:
        machine.destroy(self.machine_name(name))


@contextlib.contextmanager
def _destroyed_on_failure(mname: str) -> Iterator[None]:
    """Machine `mname` is removed when what runs inside fails; a LightfoldError's details (the
    boot log) go into the error, since the machine and its log are gone after this."""
    try:
        yield
    except LightfoldError as e:
        machine.destroy(mname)
        raise RuntimeError(f"{e.problem}: {' | '.join(e.details or [])}") from e
    except BaseException:
        machine.destroy(mname)
        raise
