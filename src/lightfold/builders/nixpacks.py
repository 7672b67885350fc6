"""The nixpacks builder: used only when the `nixpacks` binary is already on the server (it is not
in the package registries lightfold uses, and lightfold never downloads it).

Push unpacks the release, runs `nixpacks plan <app dir>` on the server (`plan_command`), and turns
the plan's phases into our own install/build/start (`translate`); the release is then built by the
native build script with those commands, and runs in the same blue/green slot units.

nixpacks' plan format (JSON, `nixpacks plan`):
    {"providers": [], "buildImage": "...", "variables": {"NAME": "value"},
     "phases": {"setup": {"nixPkgs": ["nodejs_18"], "aptPkgs": [...]},
                "install": {"dependsOn": ["setup"], "cmds": ["npm ci"], "cacheDirectories": [...]},
                "build": {"dependsOn": ["install"], "cmds": ["npm run build"]}},
     "start": {"cmd": "npm run start"}}
Phases run in dependency order; `setup` only names Nix/apt packages (our runtime comes from
Debian's apt instead, installed by configure), so its packages become a note, not commands.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from lightfold.builders.native import NativeBuilder
from lightfold.errors import LightfoldError


@dataclass(frozen=True)
class Translated:
    install: str | None
    build: str | None
    start: str | None
    variables: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class NixpacksBuilder(NativeBuilder):
    """Configures and serves like native (the runtime from apt, nginx in front); only the plan
    (install/build/start) comes from `nixpacks plan` at push time."""

    name = "nixpacks"
    available_check = "command -v nixpacks >/dev/null 2>&1"

    def prepare_command(self, app: str, release_id: str, detection: Any, app_subdir: str | None) -> str | None:
        """`nixpacks plan` of the unpacked release's app dir (root runs it as the build user)."""
        from lightfold.server.app import app_root_of, build_user
        from lightfold.server.build import release_dir

        root = app_root_of(detection, app_subdir)
        return plan_command(release_dir(app, release_id) + ("" if root == "." else f"/{root}"), build_user(app))

    def prepared(self, detection: Any, output: str) -> tuple[Any, tuple[str, ...]]:
        """The detection with the plan's install/build/start, and notes for the user."""
        plan = translate(output)
        note = f"nixpacks plan: install `{plan.install}`, build `{plan.build}`, start `{plan.start}`"
        return apply(detection, plan), (*plan.notes, note)


def plan_command(app_dir: str, user: str) -> str:
    """Prints the plan JSON on stdout; run as root (it runs nixpacks as `user`, the build user)."""
    return f"runuser -u {shlex.quote(user)} -- nixpacks plan {shlex.quote(app_dir)}"


def _order(phases: dict[str, Any]) -> list[str]:
    """Topological order of the phases (dependsOn), ties by name; a cycle is an error."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise LightfoldError(f"nixpacks plan: phase '{name}' depends on itself",
                                 "fix nixpacks.toml (dependsOn), or use --builder native")
        visiting.add(name)
        for dep in (phases.get(name) or {}).get("dependsOn") or []:
            if dep in phases:
                visit(dep)
        visiting.discard(name)
        done.append(name)

    for name in sorted(phases):
        visit(name)
    return done


# nixpacks' Python provider makes a venv at /opt/venv (its image's layout); ours is <app>/.venv,
# created by the native build before the install command, and already on PATH.
_OPT_VENV = re.compile(r"^\s*(python3?\s+-m\s+venv\b[^&]*/opt/venv|\.\s+/opt/venv/bin/activate)\s*$")


def _local_venv(cmd: str) -> str:
    parts = [p for p in cmd.split("&&") if not _OPT_VENV.match(p)]
    return " && ".join(p.strip() for p in parts).replace("/opt/venv/", ".venv/")


def translate(plan: dict[str, Any] | str) -> Translated:
    """install = the `install` phase's commands; build = every later phase's commands (in
    dependency order); start = start.cmd. Commands of one phase are joined with ' && '."""
    if isinstance(plan, str):
        try:
            plan = json.loads(plan)
        except ValueError as e:
            raise LightfoldError(f"`nixpacks plan` printed something that is not JSON ({e})",
                                 "run `nixpacks plan .` on the server to see why, or use --builder native") from e
    if not isinstance(plan, dict):
        raise LightfoldError("`nixpacks plan` did not print a JSON object", "use --builder native")
    phases = plan.get("phases") or {}
    notes: list[str] = []
    install_cmds: list[str] = []
    build_cmds: list[str] = []
    for name in _order(phases):
        phase = phases.get(name) or {}
        cmds = [c for c in (phase.get("cmds") or []) if isinstance(c, str) and c.strip() and c != "..."]
        pkgs = [*(phase.get("nixPkgs") or []), *(phase.get("aptPkgs") or [])]
        if pkgs:
            notes.append(f"nixpacks {name}: packages {', '.join(map(str, pkgs))} come from Debian's runtime instead")
        if name == "setup":
            if cmds:
                notes.append(f"nixpacks setup commands skipped: {'; '.join(cmds)}")
            continue
        (install_cmds if name == "install" else build_cmds).extend(_local_venv(c) for c in cmds)
    start = ((plan.get("start") or {}).get("cmd") or "").strip() or None
    variables = {str(k): str(v) for k, v in (plan.get("variables") or {}).items()}
    return Translated(
        " && ".join(install_cmds) or None, " && ".join(build_cmds) or None, start, variables, tuple(notes),
    )


def apply(detection: Any, t: Translated) -> Any:
    """A copy of the detection whose install/build/start come from the nixpacks plan (the
    user's deploy.build_command/start_command still win, in the build script). A build or start
    the project file set (lightfold.toml, Procfile: `manifest_keys`) wins over the plan's too."""
    d = copy.copy(detection)
    own = getattr(detection, "manifest_keys", None) or {}
    d.install = t.install
    if "build" not in own:
        d.build = t.build
    if t.start and "start" not in own:
        d.start = t.start
    return d
