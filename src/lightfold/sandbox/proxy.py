"""The registry proxy of isolated machines, bound only to the bridge address: apt-cacher-ng for
the Debian archive (cached, so the second machine's `apt-get install` is fast) and lightfold's own
CONNECT tunnel (tunnel.py) for the HTTPS registries (PyPI, npm, https apt sources). Anything else
is refused (ForceManaged; the tunnel's allow-list), and isolated machines have no default route,
so these are their only way out. `config_text` is pure; `up`/`down` manage both daemons.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
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
    return "\n".join(lines) + "\n"


def tunnel_argv(lay: Layout, reg: Registries) -> list[str]:
    return [
        sys.executable, "-m", "lightfold.sandbox.tunnel",
        "--listen", f"{lay.host_ip}:{lay.tunnel_port}",
        "--allow", ",".join(reg.https_hosts) or "-",
        "--pidfile", str(lay.proxy_dir / "tunnel.pid"),
    ]


def _pid(lay: Layout, pidfile: str, comm: str | None) -> int | None:
    try:
        pid = int((lay.proxy_dir / pidfile).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if host.alive(pid) and (comm is None or host.comm(pid) == comm) else None


def daemon_pids(lay: Layout) -> list[int]:
    """Our proxy processes, found by command line, so a lost pid file doesn't hide one."""
    marker = str(lay.proxy_dir)
    found = []
    for p in host.pids():
        args = " ".join(host.cmdline(p))
        if marker in args and (host.comm(p) == ACNG or "lightfold.sandbox.tunnel" in args) and host.alive(p):
            found.append(p)
    return found


def _answers(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def running(lay: Layout) -> bool:
    return bool(
        _pid(lay, "pid", ACNG) and _pid(lay, "tunnel.pid", None)
        and _answers(lay.host_ip, lay.proxy_port) and _answers(lay.host_ip, lay.tunnel_port)
    )


def up(lay: Layout, reg: Registries) -> None:
    """Start whichever daemon isn't running (call under the allocation lock, with the bridge up);
    one that runs is left alone, so other machines' downloads are never cut."""
    lay.proxy_dir.mkdir(parents=True, exist_ok=True)
    if not (_pid(lay, "pid", ACNG) and _answers(lay.host_ip, lay.proxy_port)):
        _start_acng(lay, reg)
    if not (_pid(lay, "tunnel.pid", None) and _answers(lay.host_ip, lay.tunnel_port)):
        _start_tunnel(lay, reg)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if running(lay):
            return
        time.sleep(0.05)
    raise LightfoldError(
        f"the package proxy did not start on {lay.host_ip}:{lay.proxy_port}/{lay.tunnel_port}",
        f"see the logs in {lay.proxy_dir}; is a port taken?",
    )


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _start_acng(lay: Layout, reg: Registries) -> None:
    binary = host.which(ACNG)
    if binary is None:
        raise LightfoldError("apt-cacher-ng is not installed", "install with: sudo apt-get install -y apt-cacher-ng")
    _kill([p for p in daemon_pids(lay) if host.comm(p) == ACNG])
    lay.apt_cache.mkdir(parents=True, exist_ok=True)
    (lay.proxy_dir / "acng.conf").write_text(config_text(lay, reg))
    (lay.proxy_dir / "pid").unlink(missing_ok=True)
    # It daemonizes; its output must not hold our pipes open.
    subprocess.run(
        [binary, "-c", str(lay.proxy_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, check=False,
    )


def _start_tunnel(lay: Layout, reg: Registries) -> None:
    _kill([p for p in daemon_pids(lay) if host.comm(p) != ACNG])
    (lay.proxy_dir / "tunnel.pid").unlink(missing_ok=True)
    with open(lay.proxy_dir / "tunnel.log", "ab") as log:
        proc = subprocess.Popen(
            tunnel_argv(lay, reg), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, cwd="/",
        )
    proc.returncode = 0  # never waited for: PID 1 reaps it once we exit


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
