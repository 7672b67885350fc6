"""The load balancer of a target on more than one server, from the laptop: apply HAProxy's plan
(lightfold.server.haproxy) on its server, read its stats socket, drain a server before it goes.

The load balancer's server is reached like the target's own (same login and key, its address);
`lb_target(target, lb)` is that view of the target.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from lightfold.errors import LightfoldError
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, as_root
from lightfold.server import haproxy

if TYPE_CHECKING:
    from lightfold.remote import Connection
    from lightfold.state import LoadBalancer, Server

DRAIN_TIMEOUT = 30  # seconds a draining server's sessions have to end before it is set to maint


def backends(servers: list[Server]) -> list[haproxy.Backend]:
    return [haproxy.Backend(s.name, s.ip) for s in servers]


def health_host(target: Target) -> str | None:
    """The Host header of the load balancer's health checks: the target's health_host or domain."""
    return target.config.deploy.health_host or (target.config.domain.domain if target.config.domain else None)


def plan_for(target: Target, servers: list[Server], detection: Any = None):
    """HAProxy's plan for `target`'s servers, health-checked like the servers' own gate (the
    target's health path, Host header and expected status)."""
    detection = detection or target.detect()
    deploy = target.config.deploy
    return haproxy.lb_plan(target.name, backends(servers), detection.health_path, health_host=health_host(target),
                           health_status=deploy.health_status, ssh_port=target.server.port)


async def apply(conn: Connection, target: Target, servers: list[Server], *, detection: Any = None,
                report: Report = silent) -> None:
    """Install and configure HAProxy on the load balancer `conn` is logged in to; reloads it
    gracefully when its file changed, and keeps its firewall (confirmed over a new connection)."""
    from lightfold.release.configure import confirm_firewall
    from lightfold.release.scripts import run_plan
    from lightfold.server.firewall import APPLY_LABEL
    from lightfold.server.plan import render

    script = render(plan_for(target, servers, detection))
    applied: list[bool] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("step") == "firewall" and event.get("action") == APPLY_LABEL and event.get("changed"):
            applied.append(True)
        if event.get("status") == "done" and event.get("changed"):
            report("ok", f"load balancer: {event.get('step')} changed")

    run = await run_plan(conn, script, on_event, display="load balancer script")
    if not run.ok:
        lines = [str(x) for x in run.failed.get("output") or []] or (run.stderr or run.stdout).splitlines()
        raise LightfoldError(
            f"configuring the load balancer failed at step '{run.failed.get('step', '?')}'",
            "fix the cause shown below and rerun `lightfold scale` (HAProxy keeps its previous configuration)",
            details=lines[-20:],
        )
    if applied:
        await confirm_firewall(target.on(conn.host), report)


async def stats(conn: Connection) -> list[haproxy.ServerStat]:
    res = await conn.run(as_root(conn, haproxy.stat_command()), timeout=15, display="haproxy show stat")
    return haproxy.parse_stat(res.stdout)


async def set_state(conn: Connection, server: str, wanted: str) -> None:
    await conn.run(as_root(conn, haproxy.set_state_command(server, wanted)), timeout=15,
                   display=f"haproxy: {server} {wanted}")


async def drain(conn: Connection, server: str, *, timeout: float = DRAIN_TIMEOUT, report: Report = silent) -> float:
    """Take `server` out of rotation without cutting a request: drain (no new connections), wait
    for its sessions to end, then maint. Returns the seconds waited."""
    t0 = time.monotonic()
    await set_state(conn, server, "drain")
    report("step", f"load balancer: draining {server}")
    while True:
        mine = [s for s in await stats(conn) if s.name == server]
        if not mine or mine[0].sessions == 0:
            break
        if time.monotonic() - t0 > timeout:
            report("warn", f"{server} still had {mine[0].sessions} sessions after {timeout:.0f}s; taking it out anyway")
            break
        await asyncio.sleep(0.25)
    await set_state(conn, server, "maint")
    return time.monotonic() - t0


async def wait_healthy(conn: Connection, names: set[str], *, timeout: float = 30) -> None:
    """Until HAProxy's own checks see every server of `names` UP."""
    deadline = time.monotonic() + timeout
    while True:
        up = {s.name for s in await stats(conn) if s.healthy}
        if names <= up:
            return
        if time.monotonic() > deadline:
            raise LightfoldError(f"the load balancer does not see {', '.join(sorted(names - up))} healthy "
                                 f"after {timeout:.0f}s", "check the server's health path: `lightfold status`")
        await asyncio.sleep(0.25)


def lb_target(target: Target, lb: LoadBalancer) -> Target:
    return target.on(lb.ip)


def status_of(target: Target, lb: LoadBalancer | None) -> dict[str, Any] | None:
    """`status`'s load_balancer: {kind, name, ip, healthy_backends, backends, error}; None without one."""
    if lb is None:
        return None
    if lb.kind != "haproxy":  # the provider's managed load balancer: its API says
        from lightfold import providers

        return providers.get(lb.kind).balancer_status(target.name)  # type: ignore[attr-defined]
    from lightfold.release.target import on_server

    info: dict[str, Any] = {"kind": lb.kind, "name": lb.name, "ip": lb.ip, "healthy_backends": None,
                            "backends": [], "error": None}
    try:
        found = on_server(lb_target(target, lb), stats)
    except LightfoldError as e:
        info["error"] = e.problem
        return info
    info["healthy_backends"] = haproxy.healthy_backends(found)
    info["backends"] = [{"name": s.name, "status": s.status, "sessions": s.sessions} for s in found]
    return info
