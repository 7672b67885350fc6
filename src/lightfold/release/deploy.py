"""`lightfold deploy`: detect → create → configure → push, each skipped when already done.

One SSH connection serves configure and push. `force` reruns configure and push; it never
recreates a server (that is `lightfold create --force`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lightfold import config, state
from lightfold.errors import LightfoldError
from lightfold.release import configure as configure_step
from lightfold.release import facts, noop
from lightfold.release import push as push_step
from lightfold.release import target as targets
from lightfold.release.report import Report, silent


@dataclass
class DeployResult:
    framework: str
    created: str  # "created" | "exists"
    configured: str  # "configured" | "skipped"
    push: push_step.PushResult
    timings: dict[str, float] = field(default_factory=dict)


def deploy(
    path: Path, name: str, *, provider: str | None = None, force: bool = False, lock_wait: int = 0,
    report: Report = silent, create_options: dict | None = None, wait: bool = True, batch: int = 1,
) -> DeployResult:
    """`create_options`: extra keywords for the provider's create when the server must be made
    (cloud providers: region, size, image). `wait`: push's (False: return once traffic moved)."""
    from lightfold.remote import run_sync

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    project = Path(path).resolve()
    chosen = _ensure_target(name, project, provider)
    t = targets.load(name)
    detection = t.detect()
    report("ok", f"detected {detection.framework} ({detection.package_manager or 'no package manager'})")
    for fix in detection.fixes:
        report("note", fix)
    from lightfold.detect.traps import refuse_blocked

    refuse_blocked(detection)  # before a server is created for a build that cannot work
    timings["detect"] = time.monotonic() - t0

    tc = time.monotonic()
    created = _create(t, chosen, project, report, create_options or {})
    t = targets.load(name)  # create recorded the server's address
    timings["create"] = time.monotonic() - tc
    key = noop.local_key(name, project, noop.raw_target(name) or {})  # before configure and push read anything
    from lightfold.release import rolling

    rollout = rolling.rollout_for(t, detection, batch=batch, report=report)  # more than one server

    async def configure_and_push():
        async with await targets.connect(t) as conn:
            tq = time.monotonic()
            report("step", "configure")
            # One exec reads what configure decides from, what chooses the builder (chosen once, here)
            # and, when configure will likely change nothing, the agent's status for push.
            status_fact = (facts.status(t.name, conn.host, missing_ok=True),) if _status_first(t, force) else ()
            server_facts = await facts.read(conn, *configure_step.facts_to_read(t), *_builder_facts(t, detection),
                                            *status_fact)
            choice = push_step.choose_builder(t, detection, server_facts.get("nixpacks"), report)
            conf = await configure_step.configure(conn, t, detection, force=force, report=report,
                                                  server_facts=server_facts, builder=choice.builder())
            timings["configure"] = time.monotonic() - tq
            added = []
            if detection.databases:  # lightfold.toml's [databases]: before push, whose release env has them
                from lightfold.release import database

                td = time.monotonic()
                report("step", "databases")
                added = await database.ensure(conn, t, detection.databases, report)
                timings["databases"] = time.monotonic() - td
            tp = time.monotonic()
            report("step", "push")
            # A configure that changed something may have changed the agent, and a database added
            # changed the env the agent reports (its server_env hash): push reads its status anew.
            status = server_facts.get("status") if conf.skipped and not any(a["changed"] for a in added) else None
            pushed = await push_step.push(conn, t, detection, force=force, lock_wait=lock_wait, report=report,
                                          wait=wait, choice=choice, server_facts={"status": status},
                                          rollout=rollout)
            timings["push"] = time.monotonic() - tp
            if not pushed.finishing_on_server:  # the server still changes what the stamp hashes
                await noop.remember(conn, t, key, detection.framework, pushed.release, pushed.url)
            return conf, pushed

    conf, pushed = run_sync(configure_and_push())
    timings["total"] = time.monotonic() - t0
    return DeployResult(detection.framework, created, "skipped" if conf.skipped else "configured", pushed, timings)


def _status_first(t: targets.Target, force: bool) -> bool:
    """Whether to read the agent's status before configure: only when configure is likely skipped
    (a configured target, no --force), since a configure that runs may change the agent and push
    then reads the status anew (an agent start for nothing)."""
    return not force and state.load(t.name).configured


def _builder_facts(t: targets.Target, detection) -> tuple:
    """The nixpacks fact when whether nixpacks is on the server decides the builder."""
    from lightfold import builders

    return (facts.nixpacks(),) if builders.asks_server(detection, t.config.builder) else ()


def _ensure_target(name: str, project: Path, provider: str | None) -> str:
    """The target exists in config.json with its project path and provider; returns the provider."""
    cfg = config.load()
    existing = cfg.targets.get(name)
    chosen = provider or (existing.provider if existing else None)
    if chosen is None:
        raise LightfoldError(
            f"target '{name}' has no server and no provider",
            "pass --provider local (a sandbox machine here), byos (your server: create it first with "
            "`lightfold create --provider byos --ip …`), digitalocean, vultr or hetzner",
        )
    if existing and existing.provider and provider and provider != existing.provider:
        raise LightfoldError(
            f"target '{name}' already uses the {existing.provider} provider",
            f"drop --provider, or choose another --target for {provider}",
        )

    def change(c: config.Config) -> None:
        if name not in c.targets:
            config.set_value(c, name, "project_path", str(project), project_path=project)
        elif Path(c.targets[name].project_path) != project:
            c.targets[name].project_path = str(project)

    config.update(change)
    return chosen


def _create(t: targets.Target, provider: str, project: Path, report: Report, options: dict) -> str:
    from lightfold import providers

    st = state.load(t.name)
    if st.created and t.config.server().ip and provider != "local":
        report("skip", f"server exists at {t.config.server().ip}")
        return "exists"
    if provider == "byos" and not st.created:
        raise LightfoldError(
            f"target '{t.name}' has no server yet",
            f"register yours first: lightfold create --target {t.name} --provider byos --ip ADDRESS",
        )
    result = providers.get(provider).create(t.name, project, progress=lambda m: report("note", m), **options)
    if result.get("changed"):
        report("ok", f"server ready at {result.get('ip')}")
        return "created"
    report("skip", f"server exists at {result.get('ip')}")
    return "exists"
