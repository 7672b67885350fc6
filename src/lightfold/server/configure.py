"""`lightfold configure` as one plan: everything a server needs to run one app.

    spec = AppSpec.from_target(name, target, detection, ports, default_server=..., tls=...)
    cfg = configure_plan(spec, agent_files=lightfold.agent.bundle.agent_files(), ssh_port=22)
    cfg.fingerprint     # compare with the marker (markers.marker_read_command) to skip configure
    cfg.script          # the bash script to run as root in one ssh exec

Steps, in order: wait (cloud-init), base (nginx, python3), runtime-<runtime>, agent, app-user,
app-unit, nginx, firewall, ssh, updates (lightfold.server.hardening), marker (excluded from the
fingerprint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from lightfold import __version__
from lightfold.agent import layout
from lightfold.server import runtime
from lightfold.server.app import AppSpec, app_step, user_and_dirs_step
from lightfold.server.hardening import Hardening
from lightfold.server.markers import marker_step, owned_files
from lightfold.server.nginx import nginx_step
from lightfold.server.plan import EnsureDir, EnsurePackages, Plan, Remove, Run, Step, SystemdEnable, WriteFile, render


@dataclass(frozen=True)
class ConfigurePlan:
    plan: Plan  # everything but the marker: what the fingerprint covers
    fingerprint: str
    agent_hash: str
    marker: Step

    @property
    def script(self) -> str:
        return render(self.plan + Plan((self.marker,)))


def agent_hash(agent_files: Mapping[str, bytes]) -> str:
    """sha256 over the agent's files, each name with its content's length and the content."""
    h = hashlib.sha256()
    for name, data in sorted(agent_files.items()):
        h.update(b"%s\0%d\0%s" % (name.encode(), len(data), data))
    return h.hexdigest()


def configure_plan(
    spec: AppSpec, *, agent_files: Mapping[str, bytes], ssh_port: int = 22, lightfold_version: str = __version__,
    builder_steps: tuple[Step, ...] = (), builder_replaces_runtime: bool = False,
    hardening: Hardening | None = None, server_python: dict | None = None,
) -> ConfigurePlan:
    """`builder_steps` (from lightfold.builders) run once the app user exists; a builder that
    brings its own runtime (dockerfile) skips the language runtime step. `hardening`: the
    target's security settings (default: all on, logging in as root on `ssh_port`). `server_python`:
    the `python3` fact (lightfold.server.pyversion: a newer Python is built when the project asks)."""
    hardening = hardening or Hardening(ssh_port)
    plan = Plan((
        wait_step(),
        base_step(hardening.packages()),
        *(() if builder_replaces_runtime else (runtime.runtime_step(spec.detection, server_python),)),
        agent_step(agent_files),
        user_and_dirs_step(spec),
        *builder_steps,
        app_step(spec),
        nginx_step(spec),
        *hardening.steps(),
    ))
    fp = hashlib.sha256(render(plan).encode()).hexdigest()
    ahash = agent_hash(agent_files)
    marker = marker_step(spec.name, fp, ahash, lightfold_version, owned_files(plan, spec.name))
    return ConfigurePlan(plan, fp, ahash, marker)


def wait_step() -> Step:
    """A fresh cloud VM runs cloud-init (and its apt) first: wait for it; never touch apt's locks."""
    return Step("wait", (
        Run(
            "cloud-init status --wait >/dev/null 2>&1 || true",
            unless="! command -v cloud-init >/dev/null 2>&1"
                   " || ! cloud-init status 2>/dev/null | grep -qE 'status: (not started|running)'",
            label="wait for cloud-init",
        ),
    ))


def base_step(extra_packages: tuple[str, ...] = ()) -> Step:
    return Step("base", (
        EnsurePackages(runtime.BASE_PACKAGES + extra_packages),
        SystemdEnable("nginx", now=True),
    ))


def agent_step(agent_files: Mapping[str, bytes]) -> Step:
    """The agent package under layout.AGENT_DIR (`agent_files`: path relative to it -> content);
    the single-file agent.py of earlier versions goes."""
    dirs = sorted({layout.agent_path(name.rpartition("/")[0]) for name in agent_files if "/" in name})
    return Step("agent", (
        EnsureDir(layout.agent_path(), 0o755),
        *(EnsureDir(d, 0o755) for d in dirs),
        *(WriteFile(layout.agent_path(name), data, 0o644) for name, data in sorted(agent_files.items())),
        Remove(layout.agent_path("agent.py")),
    ))
