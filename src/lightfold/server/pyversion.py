"""A Python newer than the server's python3, for a project that asks for one (issue 12, class 1).

    need = python_need(detection, server_python)    # None: the server's python3 will do
    need.minor, need.suite, need.interpreter         # '3.13', 'trixie', '/opt/lightfold/python-3.13/bin/python3.13'
    python_steps(need)                               # configure's actions that install it

Decision (pure), from the project's request (detection.runtime_version and runtime_version_source,
found by lightfold.detect.runtime: .python-version, runtime.txt, Pipfile, requires-python, poetry's
python) and the server's python3 (the `python3` fact, read at configure):
  - the server's python3 satisfies the request (or nothing is asked): Debian's python3, as before;
  - else the newest minor of SOURCE_SUITES that satisfies it: CPython built on the server from
    Debian's own source package `python3.<minor>` of that suite, which apt fetches (signature
    checked against the server's Debian archive keyring) from the Debian archive named by the
    server's own apt sources, into layout.python_prefix(minor), once per server;
  - else one LightfoldError naming the version, where it was asked, and the fix.

Why from source: uv's managed Pythons (python-build-standalone) come from GitHub, and no registry a
server reaches (Debian, PyPI, npm) hosts a CPython build for Debian 12; trixie's binary python3.13
needs trixie's libc6 and libssl3t64, a partial upgrade of the server's base system. The source
builds against the server's own libraries: 2 to 5 minutes of configure on two cores, once per
server (sandbox machines: a first configure of 140 s and 229 s with it, 24 s without; 302 s for the
build alone on a busy host).

A version file's bare version ("3.13", "3.13.1") asks for that minor; any patch of it counts (the
archive has one patch per suite). The build uses `interpreter` when it exists (server.build), so
the venv, and the app's unit through the venv, run it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from lightfold.agent import layout
from lightfold.errors import LightfoldError
from lightfold.server.plan import EnsurePackages, Run

# Debian suites whose archive holds the source of a Python minor newer than Debian 12's 3.11.
SOURCE_SUITES = {(3, 13): "trixie"}
# The python3 of each Debian image (`--image`, as sandbox machines and cloud providers name them),
# for the fix of a version that cannot be had.
DEBIAN_PYTHONS = {"debian-13": (3, 13), "debian-12": (3, 11)}
# What CPython's ./configure needs to build the standard library's extension modules.
BUILD_PACKAGES = (
    "build-essential", "pkg-config", "xz-utils", "libssl-dev", "libffi-dev", "zlib1g-dev", "libbz2-dev", "liblzma-dev",
    "libsqlite3-dev", "libreadline-dev", "libncurses-dev", "libgdbm-dev", "uuid-dev", "libexpat1-dev",
)
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
COMPLETE = ".complete"  # written in the prefix once the build installed and imported fine


@dataclass(frozen=True)
class PythonNeed:
    minor: str  # '3.13'
    suite: str  # the Debian suite whose source package is built

    @property
    def prefix(self) -> str:
        return layout.python_prefix(self.minor)

    @property
    def interpreter(self) -> str:
        return f"{self.prefix}/bin/python{self.minor}"


def parse_python3(out: str, _rc: int = 0) -> dict[str, Any]:
    """The `python3` fact: {'version': (3, 11, 2) or None, 'os': 'debian', 'codename': 'bookworm'}."""
    found: dict[str, Any] = {"version": None, "os": None, "codename": None}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip('"')
        if key == "python3" and re.fullmatch(r"\d+\.\d+\.\d+", value):
            found["version"] = tuple(int(n) for n in value.split("."))
        elif key == "ID" and value:
            found["os"] = value
        elif key == "VERSION_CODENAME" and value:
            found["codename"] = value
    return found


PYTHON3_FACT_COMMAND = (
    "python3 -c 'import sys; print(\"python3=%d.%d.%d\" % sys.version_info[:3])'; "
    "grep -E '^(ID|VERSION_CODENAME)=' /etc/os-release"
)


# -- version requests ---------------------------------------------------------------------------

_CLAUSE = re.compile(r"(~=|===|==|!=|<=|>=|<|>|\^|~|=)?\s*v?(\d+(?:\.\d+)*)(\.\*)?")


def _pad(nums: tuple[int, ...]) -> tuple[int, ...]:
    return (nums + (0, 0, 0))[:3]


def _clause_ok(v: tuple[int, int, int], clause: str) -> bool:
    clause = clause.strip().removeprefix("python").removeprefix("cpython").strip("-@ ")
    if clause in ("", "*"):
        return True
    m = _CLAUSE.fullmatch(clause)
    if m is None:
        return True  # a form we do not know decides nothing
    op, want = m.group(1) or "", tuple(int(n) for n in m.group(2).split("."))
    if op == "" or m.group(3):  # a bare version asks for its minor; a wildcard for its prefix
        n = len(want) if m.group(3) else min(len(want), 2)
        return (v[:n] == want[:n]) != (op == "!=")
    upper = {"^": (want[0] + 1,), "~": want[:1] + (want[1] + 1,) if len(want) > 1 else (want[0] + 1,),
             "~=": want[:-2] + (want[-2] + 1,) if len(want) > 1 else (want[0] + 1,)}
    if op in upper:
        return _pad(want) <= v < _pad(upper[op])
    w = _pad(want)
    return {"==": v == w, "===": v == w, "=": v == w, "!=": v != w, ">=": v >= w, ">": v > w,
            "<=": v <= w, "<": v < w}[op]


def satisfies(version: tuple[int, ...], spec: str | None) -> bool:
    """Whether Python `version` (3, 11, 2) meets `spec` as a project writes it: '3.13', '3.12.4',
    '>=3.12', '>=3.10,<3.14', '~=3.12', '==3.13.*', '^3.12' (poetry), '>=3.8 || >=3.12'."""
    if not spec:
        return True
    v = _pad(tuple(version))
    return any(all(_clause_ok(v, c) for c in alt.split(",")) for alt in spec.split("||"))


def _minor_ok(minor: tuple[int, int], spec: str) -> bool:
    """Some patch of `minor` meets `spec` (the archive's patch is not known before the build)."""
    return any(satisfies((*minor, patch), spec) for patch in (0, 99))


# -- the decision -------------------------------------------------------------------------------


def python_need(detection: Any, server: dict[str, Any] | None) -> PythonNeed | None:
    """What to install besides the server's python3 for `detection` (None: nothing), or the
    LightfoldError that says why the asked version cannot be had. `server`: the `python3` fact
    (None when not read: the server's python3 is taken to be Debian 12's 3.11)."""
    if (getattr(detection, "runtime", None) or "").lower() != "python":
        return None
    spec = getattr(detection, "runtime_version", None)
    have = (server or {}).get("version") or (3, 11, 0)
    if not spec or satisfies(have, spec):
        return None
    source = getattr(detection, "runtime_version_source", None) or "the project"
    have_text = ".".join(map(str, have))
    os_id = (server or {}).get("os") or "debian"
    newer = [m for m in sorted(SOURCE_SUITES, reverse=True) if m > tuple(have)[:2]]
    can = [m for m in newer if _minor_ok(m, spec)]
    if can and os_id == "debian":
        minor = can[0]
        return PythonNeed(f"{minor[0]}.{minor[1]}", SOURCE_SUITES[minor])
    offered = ", ".join(f"{a}.{b}" for a, b in sorted(newer if os_id == "debian" else SOURCE_SUITES))
    if os_id != "debian":
        builds = f"lightfold can build only Python {offered} on Debian servers"
    elif newer:
        builds = f"lightfold can build only Python {offered} from Debian's sources"
    else:  # Debian 13's 3.13 is the newest Python lightfold has the source of
        builds = "lightfold builds no newer Python on it"
    admit = f"Python {have_text}" + (f" or {offered}" if newer or os_id != "debian" else "")
    images = [f"--image {image} has {'.'.join(map(str, python))}" for image, python in DEBIAN_PYTHONS.items()
              if _minor_ok(python, spec)]
    raise LightfoldError(
        f"the project asks for Python {spec} ({source}), but the server's python3 is {have_text} and {builds}",
        f"change {source} to admit {admit}, or deploy to a server whose python3 is {spec} "
        f"({'; '.join(images) or '`--image`'}), or deploy with a Dockerfile",
    )


def build_interpreter(detection: Any) -> str | None:
    """The interpreter the build makes the venv with when it exists on the server: the one
    `python_need` decides for a Debian 12 server (configure builds it only where the server's own
    python3 falls short, as on Debian 12; elsewhere, e.g. on Debian 13 whose python3 is 3.13, the
    build finds none and takes python3)."""
    try:
        need = python_need(detection, None)
    except LightfoldError:
        return None
    return need.interpreter if need else None


def python_steps(need: PythonNeed) -> list[Any]:
    """Configure's actions: the build packages, then the build (skipped once it is complete)."""
    return [
        EnsurePackages(BUILD_PACKAGES),
        Run(build_command(need), unless=f"test -f {need.prefix}/{COMPLETE} && test -x {need.interpreter}",
            label=f"python {need.minor} (built from Debian {need.suite}'s source)"),
    ]


def build_command(need: PythonNeed) -> str:
    """Fetch `python3.<minor>`'s source with apt from the Debian archive of the server's own apt
    sources (the suite's signed Sources index in a private list dir: the server's apt sources are
    not changed), build it, install it into the prefix, check its modules, mark it complete."""
    prefix, minor, suite = need.prefix, need.minor, need.suite
    apt = ("apt-get -q -o APT::Sandbox::User=root -o Dir::Etc::SourceList=/dev/null "
           '-o Dir::Etc::SourceParts="$d/sources" -o Dir::State::Lists="$d/lists"')
    sources = (f"Types: deb-src\\nURIs: %s\\nSuites: {suite}\\nComponents: main\\n"
               f"Signed-By: {DEBIAN_KEYRING}\\n")
    check = "import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, decimal, venv, ensurepip"
    script = "\n".join([
        "set -e",
        ". /etc/os-release",
        "archive() { apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null"
        ' | awk -v c="$VERSION_CODENAME" \'$2 == c { print $1; exit }\'; }',
        'uri=$(archive); if [ -z "$uri" ]; then apt-get update -q >/dev/null; uri=$(archive); fi',
        'if [ -z "$uri" ]; then echo "no Debian archive for $VERSION_CODENAME in this server\'s apt sources"'
        f" \"(lightfold fetches python{minor}'s source from it)\" >&2; exit 1; fi",
        'd=$(mktemp -d); trap \'rm -rf "$d"\' EXIT; mkdir -p "$d/sources" "$d/lists/partial" "$d/src" "$d/build"',
        f"printf '{sources}' \"$uri\" > \"$d/sources/{suite}-src.sources\"",
        f"{apt} update >&2",
        f'(cd "$d/src" && {apt} source --download-only python{minor} >&2)',
        f'tar -xJf "$d"/src/python{minor}_*.orig.tar.xz -C "$d/build" --strip-components=1',
        f"rm -rf {prefix}",
        f'cd "$d/build" && ./configure -q --prefix={prefix} --with-ensurepip=no --disable-test-modules >&2',
        'make -s -j"$(nproc)" >"$d/make.log" 2>&1 || { tail -n 40 "$d/make.log" >&2; exit 1; }',
        'make -s install >"$d/install.log" 2>&1 || { tail -n 40 "$d/install.log" >&2; exit 1; }',
        f"rm -rf {prefix}/lib/python{minor}/test",
        f"{prefix}/bin/python{minor} -c {shlex.quote(check)}",
        f"touch {prefix}/{COMPLETE}",
    ])
    return f"bash -c {shlex.quote(script)}"
