"""`lightfold configure`: make a server ready to run one app, or say that it already is.

Facts (lightfold.release.facts) are read in one exec (this app's marker, every app's app.json for
port allocation, the domain's certificate), the plan comes from `lightfold.server.configure`, and
the script runs in one more exec. The plan's fingerprint is stored in the marker, so an unchanged
plan is skipped without touching the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lightfold import state
from lightfold.errors import LightfoldError
from lightfold.release import facts
from lightfold.release.facts import Fact
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, source_layout
from lightfold.server.firewall import APPLY_LABEL
from lightfold.server.markers import drifted

if TYPE_CHECKING:
    from lightfold.remote import Connection


@dataclass
class ConfigureResult:
    skipped: bool
    changed: list[str] = field(default_factory=list)  # steps that changed something
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: str = ""
    # Wall time of each step that ran, in plan order (what a slow configure spent its time on).
    step_seconds: dict[str, float] = field(default_factory=dict)
    # Files changed on the server since configure wrote them (the fingerprint matched), put back.
    repaired: list[str] = field(default_factory=list)


def tls_domain(target: Target) -> str | None:
    """The domain whose certificate configure looks for: set, and with SSL wanted."""
    d = target.config.domain
    return d.domain if d and d.ssl else None


def facts_to_read(target: Target) -> tuple[Fact, ...]:
    """What configure decides from: this app's marker, every app's app.json (ports), whether
    the domain's certificate is on the server, and the server's python3 (a newer one to build?)."""
    return (facts.marker(target.name), facts.app_configs(), facts.tls_cert(tls_domain(target)), facts.python3())


def plan_for(target: Target, detection: Any, server_facts: dict[str, Any], builder: Any = None):
    """`builder`: the deploy's (lightfold.builders.Builder); by default the one `select` gives
    without asking the server (nixpacks needs nothing configure would not install for native)."""
    from lightfold import builders
    from lightfold.agent.bundle import agent_files
    from lightfold.server import runtime
    from lightfold.server.app import AppSpec, is_default_site, ports_for
    from lightfold.server.configure import configure_plan
    from lightfold.server.hardening import Hardening

    builder = builder or builders.select(detection, target.config.builder).builder()
    st = state.load(target.name)
    primary = next((s for s in state.servers_of(target.name, target.server.ip, st) if s.role == "primary"), None)
    detection = builder.adapt(detection)
    apps = server_facts.get("apps") or {}
    ports = ports_for(target.name, apps)
    spec = AppSpec.from_target(
        target.name, target.config, detection, ports,
        default_server=is_default_site(target.name, ports, target.config.domain, apps),
        # HTTPS once the certificate is on the server (`lightfold domain add` obtains it first).
        tls=bool(tls_domain(target) and server_facts.get("tls_cert")),
        app_subdir=source_layout(target, detection)[1], ip=target.server.ip,
        http2_directive=runtime.nginx_http2_directive(server_facts.get("python3")),
        cron=primary is None or primary.ip == target.server.ip,  # cron on exactly one server
    )
    lb = st.load_balancer  # more than one server: web traffic from the LB only
    hardening = Hardening.of(target.server.port, target.server.username, target.config.security,
                             web_from=(lb.web_from or lb.ip) if lb else None)
    return configure_plan(spec, agent_files=agent_files(), ssh_port=target.server.port,
                          builder_steps=builder.configure_steps(spec),
                          builder_replaces_runtime=builder.replaces_runtime, hardening=hardening,
                          server_python=server_facts.get("python3"))


async def configure(
    conn: Connection, target: Target, detection: Any, *, force: bool = False, report: Report = silent,
    server_facts: dict[str, Any] | None = None, builder: Any = None,
) -> ConfigureResult:
    """`server_facts`: the values of `facts_to_read(target)` when the caller read them already
    (deploy reads them together with push's); `builder`: the deploy's, chosen once (plan_for)."""
    t0 = time.monotonic()
    if server_facts is None:
        server_facts = await facts.read(conn, *facts_to_read(target))
    plan = plan_for(target, detection, server_facts, builder)
    marker = server_facts.get("marker")
    drift = drifted(marker)
    if not force and marker and marker.get("fingerprint") == plan.fingerprint and not drift:
        state.update(target.name, lambda s: _mark_configured(s, plan.fingerprint))
        steps = [s.name for s in plan.plan.steps]
        report("skip", f"already configured, nothing changed ({', '.join(steps)}); --force reruns it")
        return ConfigureResult(True, unchanged=steps, seconds=time.monotonic() - t0, fingerprint=plan.fingerprint)

    from lightfold.release.scripts import run_plan

    result = ConfigureResult(False, fingerprint=plan.fingerprint)
    if drift and not force and marker.get("fingerprint") == plan.fingerprint:
        result.repaired = drift
        report("warn", f"changed on the server since the last configure: {', '.join(drift)}; putting "
                       f"{'it' if len(drift) == 1 else 'them'} back")
    started: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        step = event.get("step", "?")
        if event.get("failed"):
            return
        if event.get("status") == "start":
            started[step] = time.monotonic()
            report("step", f"configure: {step}")
        elif event.get("status") == "done":
            took = round(time.monotonic() - started.get(step, time.monotonic()), 2)
            result.step_seconds[step] = took
            (result.changed if event.get("changed") else result.unchanged).append(step)
            report("ok" if event.get("changed") else "note",
                   f"{step}: {'changed' if event.get('changed') else 'ok'} ({took:.1f}s)")
        elif event.get("status") == "skipped":
            result.unchanged.append(step)
            report("note", f"{step}: skipped ({event.get('reason', '')})")
        elif event.get("changed"):
            report("note", f"  {event.get('action')}")

    firewall_applied = []

    def on_event_or_apply(event: dict[str, Any]) -> None:
        if event.get("step") == "firewall" and event.get("action") == APPLY_LABEL and event.get("changed"):
            firewall_applied.append(True)
        on_event(event)

    run = await run_plan(conn, plan.script, on_event_or_apply, display="configure script")
    if not run.ok:
        raise _failure(target, run.failed, run)
    if firewall_applied:
        await confirm_firewall(target, report)
    state.update(target.name, lambda s: _mark_configured(s, plan.fingerprint))
    result.seconds = time.monotonic() - t0
    return result


async def confirm_firewall(target: Target, report: Report = silent) -> None:
    """Keep the firewall configure just loaded: log in over a NEW SSH connection (the proof that
    the new rules let SSH in) and stop its revert timer. When that fails the timer restores the
    previous rules (lightfold.server.firewall)."""
    import shlex

    from lightfold.release.target import as_root, connect
    from lightfold.server.firewall import REVERT_SECONDS, confirm_command

    report("step", "firewall: confirming over a new SSH connection")
    try:
        async with await connect(target) as fresh:
            await fresh.run(as_root(fresh, f"sh -c {shlex.quote(confirm_command())}"), timeout=30,
                            display="confirm the firewall")
    except LightfoldError as e:
        raise LightfoldError(
            f"the new firewall was not confirmed over a new SSH connection ({e.problem}); "
            f"the server restores its previous rules within {REVERT_SECONDS} s",
            f"check that port {target.server.port} is the SSH port in use, then rerun "
            f"`lightfold configure --target {target.name}`",
        ) from e
    report("ok", "firewall: kept (confirmed over a new SSH connection)")


def _mark_configured(s, fingerprint: str) -> None:
    s.configured = True
    s.configure_fingerprint = fingerprint


def _failure(target: Target, event: dict[str, Any], res) -> LightfoldError:
    if event:
        step, command = event.get("step", "?"), event.get("command") or event.get("action") or "?"
        lines = [str(x) for x in event.get("output") or []]
        return LightfoldError(
            f"configure failed at step '{step}': `{command}` exited {event.get('exit', '?')}",
            f"fix the cause shown below, then rerun `lightfold configure --target {target.name}` "
            "(the server keeps its previous working configuration)",
            details=lines[-20:],
        )
    tail = (res.stderr or res.stdout).strip().splitlines()[-20:]
    return LightfoldError(
        f"configure failed (exit {res.exit_status})",
        f"rerun with --debug, or inspect the server with `lightfold ssh --target {target.name}`",
        details=tail,
    )


def configure_servers(target: Target, detection: Any, *, force: bool = False,
                      report: Report = silent) -> dict[str, ConfigureResult]:
    """`configure` on every server of the target: the primary first (as a deploy does), then the
    others at once, each from its own facts. {server name: its result}, the primary's first."""
    import asyncio

    from lightfold.release.target import connect
    from lightfold.remote import run_sync

    servers = state.servers_of(target.name, target.server.ip, state.load(target.name))
    if not servers:  # not created yet: the error the connection gives names it
        servers = [state.Server(name=target.name, ip=target.server.ip or "", role="primary")]

    async def one(server) -> ConfigureResult:
        t = target.on(server.ip) if server.ip else target
        async with await connect(t) as conn:
            return await configure(conn, t, detection, force=force, report=report)

    async def every() -> dict[str, ConfigureResult]:
        results = {servers[0].name: await one(servers[0])}
        rest = await asyncio.gather(*(one(s) for s in servers[1:]))
        return {**results, **{s.name: r for s, r in zip(servers[1:], rest, strict=True)}}

    return run_sync(every())
