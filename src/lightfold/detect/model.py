"""The result of detection (`Detection`) and the vocabulary the framework modules use to build it:
a `Match` (evidence that a framework is present) and a `Plan` (how to install, build and run it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightfold.detect.project import Project


@dataclass
class Match:
    """Why a framework matched (`evidence`), or why it was considered and rejected (`rejected`).

    `data` carries facts the plan builder needs (e.g. the module:variable of an ASGI app)."""

    evidence: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    rejected: str | None = None

    @property
    def ok(self) -> bool:
        return self.rejected is None and bool(self.evidence)


def reject(reason: str) -> Match:
    return Match(rejected=reason)


@dataclass
class Plan:
    """Shell command lines (POSIX sh, run in the app directory, PORT set in the environment)."""

    install: str | None = None
    build: str | None = None
    start: str | None = None
    release: str | None = None  # e.g. migrations; run once per release before the switch
    port: int | None = None  # the framework's conventional port (what it binds when PORT is unset)
    health_path: str = "/"
    static: bool = False
    output_dir: str | None = None  # static sites: the directory nginx serves, relative to the app
    variant: str | None = None  # e.g. "react" for a Vite SPA, "node" for a SvelteKit adapter
    env_required: list[str] = field(default_factory=list)
    env_optional: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # framework traps the plan handles (e.g. SvelteKit adapter-auto)
    blocked: str | None = None  # a trap that cannot be fixed safely: one line, what to change in the project
    extra_runtimes: list[str] = field(default_factory=list)  # e.g. node for a Rails app's assets
    # Set when the plan knows better than the generic lookups (e.g. maven vs gradle, net8.0).
    package_manager: str | None = None
    runtime_version: tuple[str, str] | None = None  # (version, source)


@dataclass(frozen=True)
class Framework:
    """One detectable framework: identity, how to recognise it, and how to deploy it."""

    id: str
    name: str
    language: str
    runtime: str
    match: Callable[[Project], Match]
    plan: Callable[[Project, Match, Any], Plan]  # (project, match, toolchain) -> Plan


@dataclass
class Candidate:
    """One line of `--explain`: a framework that was considered, and what happened to it."""

    framework: str
    name: str
    rank: int
    matched: bool
    won: bool
    evidence: list[str]
    reason: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProcessSpec:
    """A non-web process of the app (`[processes.<name>]` in lightfold.toml, or a Procfile line
    other than web/release): `count` instances, each a systemd unit running the live release."""

    name: str  # layout.is_process_name
    command: str  # POSIX sh, run in the app directory with the release's env (no PORT)
    count: int = 1
    stop_timeout: int = 30  # seconds between SIGTERM and SIGKILL when it is stopped (drain)
    servers: str = "all"  # a target on several servers: "all" of them run it, or only the "primary"


@dataclass(frozen=True)
class CronSpec:
    """A scheduled job (`[cron.<name>]` in lightfold.toml): a systemd timer running `command` in
    the live release with its env, never overlapping itself."""

    name: str  # layout.is_process_name
    schedule: str  # a systemd OnCalendar expression (cron syntax is converted when read)
    command: str
    timeout: int = 3600  # seconds a run may take before systemd stops it
    # Seconds a run that is going when a deploy (or rollback) moves the jobs may still take on its
    # old release before it is stopped; None: it finishes there (within its timeout).
    deploy_grace: int | None = None


@dataclass
class Detection:
    framework: str
    framework_name: str
    language: str
    runtime: str
    runtime_version: str | None
    runtime_version_source: str | None
    package_manager: str | None
    install: str | None
    build: str | None
    start: str | None
    release: str | None
    port: int | None
    health_path: str
    static: bool
    output_dir: str | None
    variant: str | None
    env_required: list[str]
    env_optional: list[str]
    warnings: list[str]
    signals: list[str]
    app_root: str
    workspace_root: str | None  # monorepo root holding the lockfile, when above app_root
    app_subdir: str | None  # app_root relative to workspace_root
    has_dockerfile: bool
    dockerfile_port: int | None
    extra_runtimes: list[str]
    # The package manager's version to install on the server, and where it was read (None: newest).
    package_manager_version: str | None = None
    package_manager_version_source: str | None = None
    # {start: what it runs} when `start` only runs a package.json script through npm/yarn/pnpm:
    # the script's own command, which the server runs without the package manager in between
    # (about a second less to boot — which every switch and rollback waits for — and SIGTERM
    # reaches the app). Keyed by the start command so a changed start (config, nixpacks) is not
    # mistaken for this one.
    start_exec: dict[str, str] = field(default_factory=dict)
    explain: list[Candidate] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # framework traps handled at build time, one line each
    blocked: str | None = None  # why this plan cannot build a working app, and what to change (one line)
    # From the project file (lightfold.toml) or a Procfile: the app's other processes, its scheduled
    # jobs, its persistent directories (relative to the app root, kept under the app's storage
    # dir across releases), how long the release command may run, and which files said so.
    processes: list[ProcessSpec] = field(default_factory=list)
    cron: list[CronSpec] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)
    # lightfold.toml's [databases]: the kinds `deploy` sets up beside the app (`db add`, idempotent).
    databases: list[str] = field(default_factory=list)
    release_timeout: int = 600
    manifest_sources: list[str] = field(default_factory=list)
    # setting -> the file it came from ("start": "Procfile", "processes.worker": "lightfold.toml"):
    # what `detect --explain` shows the project file contributed.
    manifest_keys: dict[str, str] = field(default_factory=dict)
    # lightfold.toml's [health] beyond the path (the target's deploy.health_* win over them; None:
    # the default — any 2xx/3xx, 60 seconds, the target's domain).
    health_status: int | None = None
    health_timeout: int | None = None
    health_host: str | None = None

    def to_json(self, *, explain: bool = False) -> dict:
        data = asdict(self)
        data.pop("explain")
        if explain:
            data["explain"] = [c.to_json() for c in self.explain]
        return data
