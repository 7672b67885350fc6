"""Builders: how a release is built and started on the server (pure: plans and scripts, no I/O).

    choice = select(detection, configured=cfg.builder, nixpacks_available=None | bool)
    choice.name, choice.reason          # 'dockerfile', 'a Dockerfile exists (Dockerfile, EXPOSE 8000)'
    b = get(choice.name)                # Builder
    b.available_check                   # shell test run on the server (exit 0 = usable)
    b.configure_steps(spec)             # server.plan Steps configure adds (after the app user exists)
    b.replaces_runtime                  # True: the language runtime step is not needed
    b.serves_static(detection)          # nginx serves the build output (no app process)
    b.adapt(detection)                  # the detection as this builder sees it (a copy when changed)
    b.lockfiles(detection)              # files whose hash decides whether dependencies are reused
    b.prepare_command(app, rid, detection, subdir)   # a command to run on the unpacked release, or None
    b.prepared(detection, its_stdout)   # (the detection with what it said, notes)
    b.build_step(app, rid, reuse_from)  # what the push reports
    b.build_script(app, detection, deploy, rid, deps_hash=, reuse_from=, release_info=, app_subdir=)
    b.reuse_commands(app, live, rid)    # an env-only release: commands beyond the hard-linked copy
    choice.builder()                    # get(choice.name)

Callers hold the Builder and ask it; none compares a builder's name.

Selection (the seed's rules, first match wins):
    1. `--builder` / config `builder`                      → that builder
    2. a Dockerfile exists                                 → dockerfile
    3. Node or Python, and `nixpacks` is on the server     → nixpacks
    4. otherwise                                           → native
`nixpacks_available=None` means "not asked yet": rule 3 is skipped with a note (configure does
not need to know; push asks the server with `NIXPACKS_CHECK`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from lightfold.errors import LightfoldError

NAMES = ("native", "nixpacks", "dockerfile")
NIXPACKS_RUNTIMES = ("node", "python")
# One line on stdout: "yes" when the nixpacks binary is on the server's PATH. It is never installed
# (not in the package registries lightfold uses).
NIXPACKS_CHECK = "command -v nixpacks >/dev/null 2>&1 && echo yes || echo no"


class Builder(Protocol):
    name: str
    available_check: str
    replaces_runtime: bool

    def configure_steps(self, spec: Any) -> tuple: ...

    def serves_static(self, detection: Any) -> bool: ...

    def adapt(self, detection: Any) -> Any: ...

    def lockfiles(self, detection: Any) -> tuple[str, ...]: ...

    def prepare_command(self, app: str, release_id: str, detection: Any, app_subdir: str | None) -> str | None: ...

    def prepared(self, detection: Any, output: str) -> tuple[Any, tuple[str, ...]]: ...

    def build_step(self, app: str, release_id: str, reuse_from: str | None) -> str: ...

    def build_script(self, app: str, detection: Any, deploy: Any, release_id: str, *, deps_hash: str | None,
                     reuse_from: str | None, release_info: dict[str, Any], app_subdir: str | None) -> str: ...

    def reuse_commands(self, app: str, from_release: str, to_release: str) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str
    note: str | None = None  # something the user should know (e.g. nixpacks missing → native)

    def builder(self) -> Builder:
        return get(self.name)


def asks_server(detection: Any, configured: str | None = None) -> bool:
    """Whether `select` needs to know if nixpacks is on the server (read it with NIXPACKS_CHECK)."""
    return configured == "nixpacks" or (
        not configured and not getattr(detection, "has_dockerfile", False)
        and getattr(detection, "runtime", None) in NIXPACKS_RUNTIMES and not getattr(detection, "static", False)
    )


def check_name(name: str) -> str:
    if name not in NAMES:
        raise LightfoldError(f"unknown builder '{name}'", f"use one of: {', '.join(NAMES)}")
    return name


def select(detection: Any, configured: str | None = None, nixpacks_available: bool | None = None) -> Choice:
    """The builder for this project, and why (see the module docstring)."""
    if configured:
        check_name(configured)
        note = None
        if configured == "dockerfile" and not getattr(detection, "has_dockerfile", False):
            raise LightfoldError(
                "the dockerfile builder is selected but the project has no Dockerfile",
                "add a Dockerfile, or choose another builder: lightfold config set <target> builder native",
            )
        if configured == "nixpacks" and nixpacks_available is False:
            raise LightfoldError(
                "the nixpacks builder is selected but `nixpacks` is not installed on the server",
                "install nixpacks on the server yourself (lightfold never downloads it), "
                "or choose another builder: --builder native",
            )
        return Choice(configured, "chosen with --builder / config `builder`", note)
    if getattr(detection, "has_dockerfile", False):
        port = getattr(detection, "dockerfile_port", None)
        return Choice("dockerfile", "a Dockerfile exists" + (f" (EXPOSE {port})" if port else ""))
    runtime = getattr(detection, "runtime", None)
    if runtime in NIXPACKS_RUNTIMES and not getattr(detection, "static", False):
        if nixpacks_available:
            return Choice("nixpacks", f"{runtime} project and nixpacks is installed on the server")
        if nixpacks_available is False:
            return Choice("native", f"{runtime} project; nixpacks is not installed on the server",
                          note="nixpacks is not on the server: building natively (lightfold never installs it)")
        return Choice("native", f"{runtime} project; nixpacks would be used if the server had it installed")
    return Choice("native", f"no Dockerfile; {runtime or 'this'} project is built natively")


def get(name: str) -> Builder:
    check_name(name)
    if name == "dockerfile":
        from lightfold.builders.dockerfile import DockerfileBuilder

        return DockerfileBuilder()
    if name == "nixpacks":
        from lightfold.builders.nixpacks import NixpacksBuilder

        return NixpacksBuilder()
    from lightfold.builders.native import NativeBuilder

    return NativeBuilder()
