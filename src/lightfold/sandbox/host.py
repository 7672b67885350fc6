"""Host facts and host commands for sandbox machines: refusals with the exact install command,
the one command runner, process liveness and the cgroup hierarchies nspawn tracks machines in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lightfold.errors import LightfoldError

# binary -> Debian package that provides it
BASE_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "ssh-keygen": "openssh-client",
}
ISOLATED_TOOLS = {"apt-cacher-ng": "apt-cacher-ng"}
NAT_TOOLS = {"nft": "nftables"}
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def which(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    for d in SBIN:  # a user's PATH under sudo may lack the sbin directories
        p = Path(d, binary)
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def missing_packages(tools: dict[str, str]) -> list[str]:
    return sorted({pkg for binary, pkg in tools.items() if which(binary) is None})


def require_host(network: str | None = None, tools: dict[str, str] | None = None) -> None:
    """Refuse, in one line with the fix, when this host can't run sandbox machines. `tools`
    replaces the base set (destroy needs only root and iproute2)."""
    if not sys.platform.startswith("linux"):
        raise LightfoldError(
            "the local provider needs Linux (it boots machines with systemd-nspawn)",
            "run lightfold on a Linux host, or use a cloud provider (--provider hetzner|digitalocean|vultr)",
        )
    if os.geteuid() != 0:
        raise LightfoldError(
            "the local provider needs root (it mounts overlays and creates network namespaces)",
            "rerun the command with sudo",
        )
    tools = dict(BASE_TOOLS if tools is None else tools)
    if network == "isolated":
        tools |= ISOLATED_TOOLS
    elif network == "nat":
        tools |= NAT_TOOLS
    missing = missing_packages(tools)
    if missing:
        raise LightfoldError(
            f"the local provider needs {', '.join(missing)}",
            f"install with: sudo apt-get install -y {' '.join(missing)}",
        )


def run(
    argv: Sequence[str], *, check: bool = True, input: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run a host command; a failure becomes a LightfoldError carrying its last lines of output."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise LightfoldError(f"{argv[0]} is not installed", "see `lightfold create --help`") from None
    except subprocess.TimeoutExpired:
        raise LightfoldError(f"`{' '.join(argv)}` did not finish in {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        text = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        raise LightfoldError(f"`{' '.join(argv)}` failed (exit {proc.returncode})", details=text[-15:])
    return proc


def alive(pid: int | None) -> bool:
    """Running and not a zombie: our detached processes are reaped late by a non-init PID 1."""
    if not pid:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] != "Z"


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def host_has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir() and comm(1) == "systemd"


def cgroup_roots() -> list[Path]:
    """The hierarchies nspawn tracks processes in: name=systemd (v1) and cgroup2. The resource
    controller hierarchies are left alone."""
    roots = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        if parts[2] == "cgroup2" or (parts[2] == "cgroup" and "name=systemd" in parts[3].split(",")):
            roots.append(Path(parts[1]))
    return roots


def mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount, from /proc/self/mounts."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        found.append((fields[1].replace("\\040", " "), fields[2]))
    return found


def mounts_under(prefix: Path) -> list[str]:
    return [target for target, _ in mounts() if target == str(prefix) or target.startswith(str(prefix) + "/")]


def fs_type(path: Path) -> str:
    """The file system type of the mount that holds `path` (by /proc/self/mounts' longest prefix)."""
    best, kind = "", ""
    for target, fstype in mounts():
        if (str(path) == target or str(path).startswith(target.rstrip("/") + "/")) and len(target) >= len(best):
            best, kind = target, fstype
    return kind


def ensure_temporary_fs(path: Path) -> bool:
    """Mount a tmpfs on `path` unless it is on one already (or holds entries a mount would hide);
    whether it is on a temporary file system now.

    Why: on `systemctl reboot` inside a machine systemd-nspawn removes its propagation directory
    (/run/systemd/nspawn/propagate/<name>) before booting it again, and refuses to remove
    anything that is not on tmpfs or ramfs ("Attempted to remove disk file system …"): on a host
    whose /run is a plain directory (a container, like this CI machine) it then exits instead of
    rebooting the machine."""
    path.mkdir(parents=True, exist_ok=True)
    if fs_type(path) in ("tmpfs", "ramfs"):
        return True
    if any(path.iterdir()):
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "lightfold-nspawn", str(path)],
                          capture_output=True, text=True)
    return proc.returncode == 0


def raise_inotify_limit(minimum: int = 8192) -> None:
    """Each booted systemd holds ~7 inotify instances, all machines run as uid 0, and the default
    limit of 128 makes the 18th machine fail to boot."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    try:
        if int(path.read_text()) < minimum:
            path.write_text(str(minimum))
    except OSError:
        pass
