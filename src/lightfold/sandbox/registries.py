"""The package registries this host uses, read at run time from its own apt, pip and npm set-up.

No registry host name is written into lightfold: the Debian mirror comes from the host's apt
sources, the Python index from pip's own defaults, the npm registry from `npm config get registry`,
yarn's from yarn itself (`yarn config get registry` / `npmRegistryServer`: the host's yarn, else
yarn classic and berry run through the host's npm, `npm exec`): a yarn.lock's `resolved` URLs name
yarn's registry host, which is a different name for the same registry.
The parsers are pure; the readers below them do the I/O.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lightfold.errors import LightfoldError

MIRROR_ENV = "LIGHTFOLD_DEBIAN_MIRROR"


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]

    @property
    def host(self) -> str:
        return urlsplit(self.uri).netloc

    @property
    def scheme(self) -> str:
        return urlsplit(self.uri).scheme


@dataclass(frozen=True)
class Registries:
    debian_mirror: str  # e.g. http://<host>/debian
    debian_security: str  # e.g. http://<host>/debian-security
    apt_sources: tuple[AptSource, ...] = ()
    https_hosts: tuple[str, ...] = field(default_factory=tuple)  # pip/npm/https apt hosts (CONNECT)


def parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
            continue
        for uri in fields.get("uris", "").split():
            sources.append(AptSource(uri.rstrip("/"), tuple(fields.get("suites", "").split())))
    return sources


def parse_one_line(text: str) -> list[AptSource]:
    sources = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            sources.append(AptSource(words[0].rstrip("/"), (words[1],)))
    return sources


def pick_debian(sources: list[AptSource], override: str | None = None) -> tuple[str, str]:
    """(mirror, security) URIs: the source whose path is /debian, and its -security sibling."""
    mirror = override.rstrip("/") if override else None
    security = None
    for s in sources:
        path = urlsplit(s.uri).path.rstrip("/")
        if mirror is None and path.endswith("/debian") and s.scheme in ("http", "https"):
            mirror = s.uri
        if security is None and path.endswith("/debian-security"):
            security = s.uri
    if mirror is None:
        raise LightfoldError(
            "no Debian mirror found in this host's apt sources (the machine images are Debian)",
            f"set {MIRROR_ENV} to a Debian mirror URL, e.g. the one your organisation uses",
        )
    if security is None:
        security = mirror[: -len("/debian")] + "/debian-security"
    return mirror, security


def host_from_url(url: str) -> str | None:
    url = url.strip()
    if not url or url in ("undefined", "null"):
        return None
    netloc = urlsplit(url if "://" in url else f"https://{url}").netloc
    return netloc.split("@")[-1].split(":")[0] or None


# ---- readers (I/O)

def read_apt_sources(root: Path = Path("/")) -> list[AptSource]:
    sources: list[AptSource] = []
    one = root / "etc/apt/sources.list"
    if one.is_file():
        sources += parse_one_line(one.read_text(errors="replace"))
    d = root / "etc/apt/sources.list.d"
    for f in sorted(d.glob("*")) if d.is_dir() else []:
        if f.suffix == ".sources":
            sources += parse_deb822(f.read_text(errors="replace"))
        elif f.suffix == ".list":
            sources += parse_one_line(f.read_text(errors="replace"))
    return sources


_PIP_HOSTS = "from pip._internal.models.index import PyPI; print(PyPI.netloc); print(PyPI.file_storage_domain)"


def pip_hosts() -> list[str]:
    """PyPI's hosts from pip's own defaults (lightfold's venv may not ship pip; try python3 too)."""
    import shutil

    for python in dict.fromkeys([sys.executable, shutil.which("python3") or ""]):
        if not python:
            continue
        try:
            out = subprocess.run([python, "-c", _PIP_HOSTS], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.split():
            return out.stdout.split()
    return []


def npm_hosts() -> list[str]:
    import shutil

    npm = shutil.which("npm")
    if not npm:
        return []
    try:
        out = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    host = host_from_url(out.stdout) if out.returncode == 0 else None
    return [host] if host else []


# (how to run it when the host has no yarn, the config key naming its registry) per yarn flavour.
_YARNS = {
    "classic": (["--package=yarn@1"], "registry"),
    "berry": (["--package=@yarnpkg/cli-dist"], "npmRegistryServer"),
}


def _yarn_flavour(yarn: str) -> str | None:
    try:
        out = subprocess.run([yarn, "--version"], capture_output=True, text=True, timeout=30, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip()
    return ("classic" if version.startswith(("0.", "1.")) else "berry") if out.returncode == 0 and version else None


def yarn_hosts() -> list[str]:
    """Yarn's registry hosts as yarn itself reports them (its default, or the host's ~/.yarnrc)."""
    import shutil

    commands: list[list[str]] = []
    yarn = shutil.which("yarn")
    flavour = _yarn_flavour(yarn) if yarn else None
    npm = shutil.which("npm")
    for name, (package, key) in _YARNS.items():
        if yarn and flavour == name:
            commands.append([yarn, "config", "get", key])
        elif npm:
            commands.append([npm, "exec", "--yes", "--prefer-offline", *package, "--", "yarn", "config", "get", key])
    hosts = []
    for argv in commands:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
        host = host_from_url(lines[-1]) if lines else None
        if host:
            hosts.append(host)
    return hosts


def discover(https: bool = True) -> Registries:
    """`https=False` skips asking pip, npm and yarn (a second or so) when only apt matters."""
    from concurrent.futures import ThreadPoolExecutor

    sources = read_apt_sources()
    mirror, security = pick_debian(sources, os.environ.get(MIRROR_ENV))
    hosts = [s.host for s in sources if s.scheme == "https"]
    if https:
        with ThreadPoolExecutor(3) as pool:
            found = [pool.submit(f) for f in (pip_hosts, npm_hosts, yarn_hosts)]
            for f in found:
                hosts += f.result()
    return Registries(
        debian_mirror=mirror,
        debian_security=security,
        apt_sources=tuple(sources),
        https_hosts=tuple(dict.fromkeys(h for h in hosts if h)),
    )
