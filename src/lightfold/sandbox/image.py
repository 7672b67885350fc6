"""The base images machines boot: Debian 13 (trixie, the default) or 12 (bookworm), each built once
with mmdebstrap and cached side by side.

It looks like a fresh cloud VM: systemd, sshd (key-only, no host keys — each machine gets its own),
python3 and a few basics, no nginx (configure installs what it needs), empty apt lists and masked
apt-daily timers so nothing races a deploy for the dpkg lock. The recipe is data (`recipe_files`);
its hash and the suite name the image directory (`trixie-<hash>`), so a changed recipe builds a new
image instead of reusing a stale one, and both suites' images are kept.

Images are named as the cloud providers name theirs (`--image debian-13`, `debian-12`): `IMAGES`
maps a name to its Debian suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lightfold.errors import LightfoldError, UsageError
from lightfold.sandbox.layout import Layout
from lightfold.sandbox.registries import Registries

# Image name (as `--image` takes it, like Hetzner's `debian-13`) -> Debian suite.
IMAGES = {"debian-13": "trixie", "debian-12": "bookworm"}
DEFAULT_IMAGE = "debian-13"
SUITE = IMAGES[DEFAULT_IMAGE]
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "python3", "sudo", "curl",
    "ca-certificates", "iproute2", "procps", "less",
)
MASKED_UNITS = ("console-getty.service", "apt-daily.timer", "apt-daily-upgrade.timer")
RECIPE_VERSION = 1
BUILD_TIMEOUT = 900
MARKER = "etc/lightfold-image"

SSHD_DROPIN = """\
# lightfold sandbox: key-only logins, one host key generated per machine
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
"""

HOSTS = """\
127.0.0.1\tlocalhost
::1\t\tlocalhost ip6-localhost ip6-loopback
ff02::1\t\tip6-allnodes
ff02::2\t\tip6-allrouters
"""


@dataclass(frozen=True)
class FileSpec:
    path: str  # relative to the root
    content: str
    mode: int = 0o644


def suite_of(name: str | None) -> str:
    """The Debian suite of an image name (None: the default), or a usage error listing the names."""
    name = name or DEFAULT_IMAGE
    if name not in IMAGES:
        raise UsageError(f"unknown local image '{name}'", f"use --image with one of: {', '.join(IMAGES)}")
    return IMAGES[name]


def sources_list(reg: Registries, suite: str = SUITE) -> str:
    return (
        f"deb {reg.debian_mirror} {suite} main\n"
        f"deb {reg.debian_mirror} {suite}-updates main\n"
        f"deb {reg.debian_security} {suite}-security main\n"
    )


def recipe_files(reg: Registries, suite: str = SUITE) -> list[FileSpec]:
    return [
        FileSpec("etc/apt/sources.list", sources_list(reg, suite)),
        FileSpec("etc/machine-id", ""),  # empty: each boot gets its own id
        FileSpec("etc/hosts", HOSTS),
        FileSpec("etc/resolv.conf", ""),  # written per machine
        FileSpec("etc/ssh/sshd_config.d/10-lightfold.conf", SSHD_DROPIN),
    ]


def recipe_hash(reg: Registries, suite: str = SUITE) -> str:
    files = [(f.path, f.content, f.mode) for f in recipe_files(reg, suite)]
    blob = json.dumps([RECIPE_VERSION, suite, PACKAGES, MASKED_UNITS, files])
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def image_path(lay: Layout, reg: Registries, suite: str = SUITE) -> Path:
    return lay.images / f"{suite}-{recipe_hash(reg, suite)}"


def mmdebstrap_argv(reg: Registries, dest: Path, suite: str = SUITE) -> list[str]:
    return [
        "mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(PACKAGES)}",
        suite, str(dest), reg.debian_mirror,
    ]


def _configure(root: Path, reg: Registries, suite: str) -> None:
    for spec in recipe_files(reg, suite):
        p = root / spec.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(spec.content)
        p.chmod(spec.mode)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    for d in ("var/lib/apt/lists", "var/log/journal"):
        for entry in (root / d).glob("*"):
            if entry.is_file():
                entry.unlink()
            elif entry.is_dir() and entry.name != "partial":
                shutil.rmtree(entry)
    marker = {"suite": suite, "recipe": recipe_hash(reg, suite), "built": time.time()}
    (root / MARKER).write_text(json.dumps(marker))


def ensure(lay: Layout, reg: Registries, progress: Callable[[str], None] = lambda _m: None,
           suite: str = SUITE) -> Path:
    """The image directory of `suite`, built first if missing. Concurrent callers wait for one build."""
    from filelock import FileLock, Timeout

    path = image_path(lay, reg, suite)
    if (path / MARKER).is_file():
        return path
    lay.images.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lay.images / ".build.lock"), timeout=BUILD_TIMEOUT):
            if (path / MARKER).is_file():
                return path
            for stale in lay.images.glob("*.tmp.*"):  # a build that was killed
                shutil.rmtree(stale, ignore_errors=True)
            _build(path, reg, progress, suite)
    except Timeout:
        raise LightfoldError(
            "another lightfold process has been building the machine image for 15 minutes",
            f"wait for it, or remove {lay.images}/.build.lock if no build is running",
        ) from None
    return path


def _build(path: Path, reg: Registries, progress: Callable[[str], None], suite: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    progress(f"building the machine image (Debian {suite}, once; about a minute) from {reg.debian_mirror}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            mmdebstrap_argv(reg, tmp, suite), capture_output=True, text=True, timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
            raise LightfoldError(
                f"building the machine image failed (mmdebstrap exit {proc.returncode})",
                f"check that this host reaches {reg.debian_mirror} (or set LIGHTFOLD_DEBIAN_MIRROR), then retry",
                details=tail,
            )
        _configure(tmp, reg, suite)
        tmp.rename(path)
    except subprocess.TimeoutExpired:
        raise LightfoldError(
            f"building the machine image took longer than {BUILD_TIMEOUT // 60} minutes",
            f"check the connection to {reg.debian_mirror}, then retry",
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(f"machine image ready in {time.monotonic() - t0:.0f}s: {path}")
