"""A VM backend for the fake cloud APIs that boots a real sandbox machine per server (root and
systemd-nspawn needed), so `lightfold create --provider hetzner` can run end to end:

    python -m tests.fakes.hetzner --port 0 --vm-backend tests.fakes.sandbox_backend:SandboxBackend

The sandbox image has no cloud-init, so this applies the part of lightfold's #cloud-config that
matters (see `lightfold.providers.cloud.user_data`): root's authorized keys, the host key
lightfold generated and pinned, and write_files (/etc/lightfold/created).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from lightfold.providers.cloud import read_user_data
from lightfold.sandbox import machine
from lightfold.sandbox.layout import layout

BOOT_TIMEOUT = 90


class SandboxBackend:
    def __init__(self, network: str | None = None, owner: str = "fake-cloud-api"):
        self.network = network or os.environ.get("LIGHTFOLD_FAKE_CLOUD_NETWORK", "isolated")
        self.owner = owner

    @staticmethod
    def machine_name(name: str) -> str:
        """Sandbox names are short and global to the host; 'fc-' keeps them apart from `--provider local`."""
        return "fc-" + (re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:28] or "server")

    def boot(self, name: str, user_data: str | None) -> str:
        config = read_user_data(user_data) if user_data else {}
        keys = "".join(k.strip() + "\n" for k in config.get("ssh_authorized_keys", []))
        mname = self.machine_name(name)
        m = machine.create(mname, self.network, keys, self.owner)
        try:
            root = layout().rootfs(mname)
            host_key = config.get("ssh_keys") or {}
            if host_key.get("ed25519_private") and host_key.get("ed25519_public"):
                _write(root, "/etc/ssh/ssh_host_ed25519_key", host_key["ed25519_private"], 0o600)
                _write(root, "/etc/ssh/ssh_host_ed25519_key.pub", host_key["ed25519_public"] + "\n", 0o644)
            for f in config.get("write_files", []):
                _write(root, f["path"], f.get("content", ""), int(str(f.get("permissions", "0644")), 8))
            machine.wait_for_ssh_port(mname, m.ip, time.monotonic() + BOOT_TIMEOUT)
            if host_key:
                # sshd may have started before the pinned key landed: make it offer that one.
                subprocess.run(machine.exec_argv(mname, ["systemctl", "restart", "ssh.service"]), check=True,
                               capture_output=True, timeout=60)
                machine.wait_for_ssh_port(mname, m.ip, time.monotonic() + BOOT_TIMEOUT)
        except BaseException:
            machine.destroy(mname)
            raise
        return m.ip

    def destroy(self, name: str) -> None:
        machine.destroy(self.machine_name(name))


def _write(root: Path, path: str, content: str, mode: int) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    target.chmod(mode)
