"""The registry proxy of isolated machines: an apt-cacher-ng bound only to the bridge address.

It serves the Debian archive (cached, so the second machine's `apt-get install` is fast) and opens
HTTPS tunnels only to the host's other registries (PyPI, npm, https apt sources). Everything else is
refused (ForceManaged), and isolated machines have no default route, so the proxy is their only way
out. `config_text` is pure; `up`/`down` manage the one daemon.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from urllib.parse import urlsplit

from lightfold.errors import LightfoldError
from lightfold.sandbox import host
from lightfold.sandbox.layout import Layout
from lightfold.sandbox.registries import Registries

ACNG = "apt-cacher-ng"


def config_text(lay: Layout, reg: Registries) -> str:
    lines = [
        f"CacheDir: {lay.apt_cache}",
        f"LogDir: {lay.proxy_dir}",
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"Port: {lay.proxy_port}",
        # Only the bridge: nothing outside this host's machines can use the proxy.
        f"BindAddress: {lay.host_ip}",
        f"PidFile: {lay.proxy_dir}/pid",
        "ForeGround: 0",
        # Serve only the repositories remapped below; a plain proxy request elsewhere is refused.
        "ForceManaged: 1",
        "ExThreshold: 4",
    ]
    http_uris = [reg.debian_mirror, reg.debian_security] + [
        s.uri for s in reg.apt_sources if s.scheme == "http"
    ]
    for i, uri in enumerate(dict.fromkeys(u.rstrip("/") for u in http_uris)):
        parts = urlsplit(uri)
        if parts.scheme != "http":
            continue
        prefix = f"{parts.netloc}{parts.path}"
        lines.append(f"Remap-lf{i}: {prefix} ; {uri}/")
    if reg.https_hosts:
        alts = "|".join(re.escape(h) for h in reg.https_hosts)
        lines.append(f"PassThroughPattern: ^({alts}):443$")
    return "\n".join(lines) + "\n"


def _pid(lay: Layout) -> int | None:
    try:
        pid = int((lay.proxy_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if host.alive(pid) and host.comm(pid) == ACNG else None


def daemon_pids(lay: Layout) -> list[int]:
    """Our apt-cacher-ng processes, found by command line, so a lost pid file doesn't hide one."""
    marker = str(lay.proxy_dir)
    return [
        p
        for p in host.pids()
        if host.comm(p) == ACNG and marker in " ".join(host.cmdline(p)) and host.alive(p)
    ]


def _answers(lay: Layout) -> bool:
    try:
        with socket.create_connection((lay.host_ip, lay.proxy_port), timeout=0.5):
            return True
    except OSError:
        return False


def up(lay: Layout, reg: Registries) -> None:
    """Start the proxy unless it runs (call under the allocation lock, after the bridge is up)."""
    if _pid(lay) and _answers(lay):
        return
    binary = host.which(ACNG)
    if binary is None:
        raise LightfoldError("apt-cacher-ng is not installed", "install with: sudo apt-get install -y apt-cacher-ng")
    for pid in daemon_pids(lay):
        os.kill(pid, signal.SIGKILL)
    lay.proxy_dir.mkdir(parents=True, exist_ok=True)
    lay.apt_cache.mkdir(parents=True, exist_ok=True)
    (lay.proxy_dir / "acng.conf").write_text(config_text(lay, reg))
    (lay.proxy_dir / "pid").unlink(missing_ok=True)
    # It daemonizes; its output must not hold our pipes open.
    subprocess.run(
        [binary, "-c", str(lay.proxy_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _pid(lay) and _answers(lay):
            return
        time.sleep(0.05)
    raise LightfoldError(
        f"the package proxy (apt-cacher-ng) did not start on {lay.host_ip}:{lay.proxy_port}",
        f"see the logs in {lay.proxy_dir}; is the port taken?",
    )


def down(lay: Layout) -> None:
    for pid in daemon_pids(lay):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 5
        while host.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if host.alive(pid):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["rm", "-rf", str(lay.proxy_dir)], check=False)
