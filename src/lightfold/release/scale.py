"""`lightfold scale --target T --servers N`: the target on N app servers behind a load balancer
(README, "More than one server").

Growing: the load balancer's server first (HAProxy, lightfold.release.lb), then each new server is
made like the first one (`--provider local`: a sandbox machine named <target>-<n>; `byos`: the
next address of the config's `hosts`, the load balancer on `lb_host`, registered like `create`
registers the first), configured
identically (its firewall accepts web traffic from the load balancer only), given the live release
(built once, on the primary: shipped, lightfold.release.ship) and switched to it by its own
health-gated blue/green switch; then HAProxy gets the new list (a graceful reload) and lightfold
waits until HAProxy's own checks see every server healthy; last, the servers that served before
the load balancer existed get the load-balancer-only firewall.

Shrinking: a server leaves the rotation first (drain on HAProxy's stats socket, its sessions end,
then maint), HAProxy's list loses it (reload), and only then is it destroyed. The primary (it
builds, runs the release command and cron) is never removed.

On a cloud provider (digitalocean, hetzner, vultr) the load balancer is the provider's managed one
(lightfold.providers.cloud_scale): made with the primary as its target in the target's private
network, the new servers are created there, and the load balancer's targets are set through the
API (a server leaving is taken out of the targets, given `DRAIN_GRACE` for its requests in flight,
then deleted).
"""

from __future__ import annotations

import time
from typing import Any

from lightfold import state
from lightfold.errors import LightfoldError, UsageError
from lightfold.names import CLOUD_PROVIDERS
from lightfold.release import lb
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, actor, connect

MAX_SERVERS = 20
SUPPORTED = ("local", "byos", *CLOUD_PROVIDERS)
DRAIN_GRACE = 10  # seconds a server taken out of a managed load balancer keeps serving what it has


def server_name(target: str, index: int) -> str:
    """The name of the target's `index`-th server (1: the target's own)."""
    return target if index == 1 else f"{target}-{index}"


def lb_name(target: str) -> str:
    return f"{target}-lb"


def plan_change(current: list[state.Server], wanted: int, target: str) -> tuple[list[str], list[state.Server]]:
    """(names of the servers to add, servers to remove: the newest first; never the primary)."""
    if not 1 <= wanted <= MAX_SERVERS:
        raise UsageError(f"--servers {wanted} is out of range", f"use 1 to {MAX_SERVERS}")
    if wanted < len(current):
        removable = [s for s in current if s.role != "primary"]
        return [], list(reversed(removable))[: len(current) - wanted]
    taken = {s.name for s in current}
    names, index = [], 1
    while len(current) + len(names) < wanted:
        index += 1
        name = server_name(target, index)
        if name not in taken:
            names.append(name)
    return names, []


def scale(name: str, wanted: int, *, accept_new_host_key: bool = False, report: Report = silent) -> dict[str, Any]:
    from lightfold import providers
    from lightfold.release import target as targets

    t = targets.load(name)
    if t.config.provider not in SUPPORTED:
        raise LightfoldError(f"scale does not support the {t.config.provider or 'unset'} provider",
                             f"it works with --provider {', '.join(SUPPORTED)} (README, \"More than one server\")")
    managed = t.config.provider in CLOUD_PROVIDERS
    # the provider's create_server / destroy_server (`local`: sandbox machines; `byos`: the
    # config's hosts and lb_host, registered and forgotten)
    machines: Any = providers.get(t.config.provider)

    def new_server(server_id: str) -> str:
        return machines.create_server(name, server_id, progress=lambda m: report("note", m),
                                      accept_new_host_key=accept_new_host_key)

    st = state.load(name)
    current = state.servers_of(name, t.server.ip, st)
    if not current:
        raise LightfoldError(f"target '{name}' has no server yet", f"run `lightfold deploy --target {name}` first")
    detection = t.detect()
    live = _live_release(t)
    add, remove = plan_change(current, wanted, name)
    if add:
        _refuse_databases(t)
    if hasattr(machines, "check_new"):  # byos: every new server has an address in the config
        machines.check_new(name, add + ([lb_name(name)] if add and st.load_balancer is None else []))
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    if add and st.load_balancer is None and managed:
        report("step", "creating the load balancer")
        domain = t.config.domain.domain if t.config.domain else None
        balancer = machines.ensure_balancer(name, current, health_path=detection.health_path,
                                            health_host=lb.health_host(t), domain=domain,
                                            progress=lambda m: report("note", m))
        report("ok", f"load balancer {balancer.name} at {balancer.ip}")
    elif add and st.load_balancer is None:
        report("step", f"creating the load balancer's server {lb_name(name)}")
        ip = new_server(lb_name(name))
        balancer = state.LoadBalancer(name=lb_name(name), ip=ip)
    if add and st.load_balancer is None:

        def record_lb(s: state.TargetState) -> None:
            s.load_balancer = balancer
            s.servers = current

        state.update(name, record_lb)
    st = state.load(name)

    # The load balancer's configuration and every new server at once (each in its own thread with
    # its own SSH connections): a new server is made, configured, given the live release and
    # switched to it; only once all are ready do they join the target (state, then HAProxy).
    jobs: dict[str, Any] = {}
    made: dict[str, str] = {}

    def configure_lb() -> None:
        t1 = time.monotonic()
        assert st.load_balancer is not None
        _on(t.on(st.load_balancer.ip), lambda conn: lb.apply(conn, t, current, detection=detection, report=report))
        timings["load_balancer"] = time.monotonic() - t1

    def add_server(server_id: str) -> None:
        t1 = time.monotonic()
        report("step", f"adding server {server_id}")
        made[server_id] = new_server(server_id)
        _prepare(t, t.on(made[server_id]), detection, live, report)
        timings[f"add {server_id}"] = time.monotonic() - t1

    if add:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(add) + 1) as pool:
            # a managed load balancer is configured by the provider when it is made
            jobs = {} if managed else {"load balancer": pool.submit(configure_lb)}
            jobs.update({sid: pool.submit(add_server, sid) for sid in add})
        failed = [(what, job.exception()) for what, job in jobs.items() if job.exception() is not None]
        if failed:
            for server_id, ip in made.items():  # not part of the target yet: nothing routes to them
                machines.destroy_server(name, server_id, ip)
            raise failed[0][1]  # type: ignore[misc]
        added = [state.Server(name=sid, ip=made[sid]) for sid in add]
        servers = [*state.servers_of(name, t.server.ip, state.load(name)), *added]
        state.update(name, lambda s: setattr(s, "servers", servers))

    for server in remove:
        t1 = time.monotonic()
        rest = [s for s in state.servers_of(name, t.server.ip, state.load(name)) if s.name != server.name]
        assert st.load_balancer is not None
        if managed:
            machines.set_balancer_targets(name, rest)
            report("step", f"{server.name} left the load balancer; {DRAIN_GRACE}s for its requests in flight")
            time.sleep(DRAIN_GRACE)
        else:
            waited = _on(t.on(st.load_balancer.ip), lambda conn, server=server: lb.drain(conn, server.name,
                                                                                         report=report))
            report("ok", f"{server.name} drained in {waited:.1f}s")
            _on(t.on(st.load_balancer.ip), lambda conn, rest=rest: lb.apply(conn, t, rest, detection=detection,
                                                                            report=report))
        state.update(name, lambda s, rest=rest: setattr(s, "servers", rest))
        machines.destroy_server(name, server.name, server.ip)
        report("ok", f"server {server.name} removed")
        timings[f"remove {server.name}"] = time.monotonic() - t1

    servers = state.servers_of(name, t.server.ip, state.load(name))
    if add:
        assert st.load_balancer is not None
        names = {s.name for s in servers}

        async def update_lb(conn):
            await lb.apply(conn, t, servers, detection=detection, report=report)
            await lb.wait_healthy(conn, names)

        if managed:
            machines.set_balancer_targets(name, servers)
            checked = machines.wait_balancer_healthy(name, servers)
        else:
            _on(t.on(st.load_balancer.ip), update_lb)
            checked = True
        report("ok", f"the load balancer sees {len(servers)} healthy servers" if checked else
               f"the load balancer has {len(servers)} servers (its API does not report their health; each "
               "passed its own health gate)")
        # Servers that served alone before: web traffic from the load balancer only from now on.
        for server in servers:
            _on(t.on(server.ip), lambda conn, ip=server.ip: _configure(conn, t.on(ip), detection, report))
    final = state.load(name)
    _on(t, lambda conn: record(conn, name, final))  # on the primary, for `sync` to find again
    timings["total"] = time.monotonic() - t0
    return {"target": name, "servers": [s.model_dump() for s in servers],
            "load_balancer": final.load_balancer.model_dump() if final.load_balancer else None,
            "added": add, "removed": [s.name for s in remove], "release": live, "timings": timings}


def record_text(st: state.TargetState) -> str:
    """What the primary keeps about the target's servers and load balancer (JSON; no secret)."""
    import json

    return json.dumps({"servers": [s.model_dump() for s in st.servers],
                       "load_balancer": st.load_balancer.model_dump() if st.load_balancer else None},
                      indent=1, sort_keys=True) + "\n"


async def record(conn, app: str, st: state.TargetState) -> None:
    """The servers record on the primary (0600 root), so that `sync` on a laptop that lost its
    state finds every server and the load balancer again."""
    from lightfold.agent.layout import Layout
    from lightfold.release.target import as_root
    from lightfold.server.plan import write_private_command

    await conn.run(as_root(conn, write_private_command(Layout(app).servers_record)), input=record_text(st),
                   display="record the target's servers")


def _on(target: Target, work):
    from lightfold.remote import run_sync

    async def go():
        async with await connect(target) as conn:
            return await work(conn)

    return run_sync(go())


def _refuse_databases(t: Target) -> None:
    """A database `db add` made lives on the primary's loopback: new servers could not reach it."""
    from lightfold.release import database

    kinds = [k for k, v in _on(t, lambda conn: database.status(conn, t))["databases"].items() if v["configured"]]
    if kinds:
        raise LightfoldError(f"target '{t.name}' has {', '.join(kinds)} on its server, listening on its loopback "
                             "only: servers added now could not reach it",
                             "lightfold's own databases serve a target on one server; to scale, move the data to "
                             "a database every server reaches, set deploy.env_vars.DATABASE_URL to it and "
                             f"`lightfold db remove {kinds[0]} --target {t.name}`")


def _live_release(t: Target) -> str:
    from lightfold.release import agent_client

    status = _on(t, lambda conn: agent_client.status(conn, t.name))
    if not status.live.release:
        raise LightfoldError(f"nothing is deployed to '{t.name}' yet",
                             f"run `lightfold deploy --target {t.name}` first, then scale")
    return status.live.release


async def _configure(conn, target: Target, detection: Any, report: Report):
    from lightfold.release.configure import configure

    return await configure(conn, target, detection, report=report)


def _prepare(t: Target, new: Target, detection: Any, release_id: str, report: Report) -> None:
    """A new server: configured, given the live release from the primary, switched to it."""
    from lightfold.release import agent_client, ship
    from lightfold.release.push import deploy_lock
    from lightfold.remote import run_sync

    async def go():
        async with await connect(new) as dst:
            await _configure(dst, new, detection, report)
            async with await connect(t) as src:
                await ship.ship(src, dst, t, detection, release_id, report=report)
            async with deploy_lock(dst, t.name, "scale", release_id, report=report):
                # a release that does not become healthy raises the agent's error: the server is not added
                await agent_client.activate(dst, t.name, release_id, holder=actor(),
                                            on_event=agent_client.progress_notes(report))

    run_sync(go())
