"""Day-two operations on a deployed target: rollback, status, logs, sync, unlock, targets.

    rollback   the agent's health-gated switch to a retained release (no rebuild), under the
               deploy lock like a push; the abandoned release is marked rolled-back
    status     the agent's view of the app (live release, slots, health, releases, disk, lock)
               flattened into stable keys for `lightfold status`
    logs       journalctl of the live slot's unit (both slots while a switch is in flight), or
               the last build's log saved by push
    sync       local state rebuilt from the server's markers and journal
    unlock     break the deploy lock by hand
    targets    every target with its provider, address and live release, from local files only

Plans (the journalctl command lines) are pure functions, tested as text.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lightfold import state
from lightfold.agent import layout
from lightfold.agent.layout import Layout
from lightfold.agent.protocol import JournalEntry, ReleaseEntry, StatusReply, SwitchResult
from lightfold.errors import LightfoldError, UsageError
from lightfold.release import agent_client, facts
from lightfold.release.migrations import migration_warning, migrations_crossed, release_infos
from lightfold.release.processes import (
    cron_status,
    journalctl_command,
    label_line,
    labelled_logs_command,
    log_units,
    processes_status,
)
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, actor, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection


# ---------------------------------------------------------------------------------------------
# rollback


@dataclass
class RollbackResult:
    release: str
    previous: str | None
    slot: str | None
    timings: dict[str, float] = field(default_factory=dict)
    activation: SwitchResult = field(default_factory=SwitchResult)
    # Releases between the target and the live one (that one included) with a release command:
    # [{id, status, release, backup_before}] (what `migrations_crossed` found before the switch).
    migrations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finishing_on_server(self) -> dict[str, Any] | None:
        return self.activation.finishing_on_server()


def rollback_target(name: str, *, to: str | None = None, lock_wait: int = 0, report: Report = silent
                    ) -> RollbackResult:
    """`rollback` of the target called `name`, from synchronous code (what the command runs)."""
    from lightfold import state
    from lightfold.release import target as targets

    check_release_id(to)
    t = targets.load(name)
    st = state.load(name)
    if st.multi:  # every server, the primary first (lightfold.release.rolling)
        return _rollback_all(t, state.servers_of(name, t.server.ip, st), to, report)
    return targets.on_server(t, lambda conn: rollback(conn, t, to=to, lock_wait=lock_wait, report=report))


def _rollback_all(t: Target, servers: list, to: str | None, report: Report) -> RollbackResult:
    from lightfold.release.rolling import rollback_all
    from lightfold.remote import run_sync

    t0 = time.monotonic()
    result, left = run_sync(rollback_all(t, servers, to, report=report))
    _record_live(t.name, result.release, result.entry or JournalEntry())
    return RollbackResult(result.release or "", left, result.slot, {"total": time.monotonic() - t0}, result)


async def rollback(
    conn: Connection, target: Target, *, to: str | None = None, lock_wait: int = 0, report: Report = silent,
) -> RollbackResult:
    """One agent request: it takes the deploy lock itself (held by the switching process, so the
    lock also covers the smoke window and the drain), switches, and answers as soon as traffic
    moved (`early`); the smoke window and the old slot's drain finish on the server, and a
    flip-back there shows in `lightfold status` (last_op)."""
    import contextlib

    from lightfold.agent.core import AgentError
    from lightfold.release.locking import LOCK_TTL

    app = target.name
    t0 = time.monotonic()
    report("step", f"rolling back {app}" + (f" to {to}" if to else " to the previous release"))
    quiet, migrations, entries = (LightfoldError, AgentError, OSError, ValueError, KeyError, TypeError), [], None
    # Read alongside the rollback (its own exec), never in its way: the agent's pick and errors decide.
    infos = asyncio.ensure_future(release_infos(conn, app))
    if lock_wait:
        report("note", f"waiting up to {lock_wait}s for the deploy lock")
    try:
        result = await agent_client.rollback(conn, app, to=to, holder=actor(), ttl=LOCK_TTL, wait_seconds=lock_wait,
                                             on_event=agent_client.progress_notes(report))
    finally:
        with contextlib.suppress(*quiet):
            entries = await infos
    with contextlib.suppress(*quiet):
        migrations = migrations_crossed(entries or [], result.release, result.rolled_back_from)
    for m in migrations:
        report("warn", migration_warning(app, m))
    if not result.lock_taken:
        report("warn", "the server's agent is older than this lightfold (it did not hold the deploy lock "
                       "itself); run `lightfold configure` to update it")
    timings = {"total": time.monotonic() - t0}
    if result.timings and result.timings.switched_s is not None:
        timings["live_after"] = timings["total"] - _after_switch(result)
    timings.update(agent_client.switch_timings(result))
    release = result.release
    entry = result.entry or await _journal_entry(conn, app, release)
    _record_live(target.name, release, entry)
    return RollbackResult(release, result.rolled_back_from or result.previous, result.slot, timings, result,
                          migrations)


def _after_switch(result: SwitchResult) -> float:
    """Seconds the command spent after traffic moved: none for an early answer; the smoke window
    and the drain for an agent that answered only at the end."""
    if result.early or not result.timings:
        return 0.0
    return max(0.0, float(result.timings.total_s or 0) - float(result.timings.switched_s or 0))


async def _journal_entry(conn: Connection, app: str, release: str | None) -> JournalEntry:
    if not release:
        return JournalEntry()
    try:
        releases = await agent_client.releases(conn, app)
    except LightfoldError:
        return JournalEntry()
    return agent_client.entry_of(releases, release) or JournalEntry()


def _record_live(name: str, release: str | None, entry: JournalEntry) -> None:
    def change(s) -> None:
        s.last_release = release
        s.last_commit = entry.commit
        s.deploy_fingerprint = entry.fingerprint
        s.last_deploy = entry.activated_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        s.builder = entry.builder or s.builder

    state.update(name, change)


# ---------------------------------------------------------------------------------------------
# status


def deploy_status(agent: StatusReply) -> dict[str, Any]:
    """The agent's `status` reply as `lightfold status` keys (documented in README.md,
    "status --json keys"). Pure: tested with recorded answers."""
    live = agent.live
    info = live.info or {}
    rid = live.release
    entry = agent.live_entry() or ReleaseEntry()
    slot = live.slot
    unit = agent.slots.get(slot) if slot else None
    lock, health, disk, last = agent.lock, agent.health, agent.disk, agent.last_op
    return {
        "live_release": rid,
        "commit": info.get("commit") or entry.commit,
        "dirty": info.get("dirty", entry.dirty),
        "deployed_at": entry.activated_at or info.get("created_at"),
        "deployed_by": entry.deployed_by or info.get("deployed_by"),
        "builder": info.get("builder") or entry.builder,
        "slot": slot,
        "port": live.port,
        "static": agent.static,
        "unit": None if unit is None else {
            "name": layout.unit_instance(agent.app, slot), "active_state": unit.active_state,
            "sub_state": unit.sub_state, "restarts": unit.n_restarts,
        },
        "health_now": None if health is None else {
            "ok": bool(health.healthy), "status": health.status_code, "error": health.error,
            "ms": health.elapsed_ms,
        },
        "releases": [
            {"id": r.id, "status": r.status, "commit": r.commit, "activated_at": r.activated_at,
             "deployed_by": r.deployed_by, "on_disk": r.on_disk, "reason": r.reason}
            for r in agent.releases
        ],
        "disk_free_bytes": disk.free_bytes,
        "disk_total_bytes": disk.total_bytes,
        "lock": None if lock is None else {
            "holder": lock.holder, "op": lock.op, "release": lock.release, "since": lock.started_at,
            "stale": lock.stale,
        },
        "switch_in_progress": bool(agent.switch_in_progress),
        "last_switch": None if last is None else {
            "op": last.op, "ok": bool(last.ok), "release": last.release, "error": last.error,
            "finished_at": last.finished_at,
        },
        "certificate": None,  # filled by remote_status when the target has a domain
        # names (never values) of the variables `db add` keeps on the server for every release
        "database_env": list((agent.server_env or {}).get("names") or []),
        "processes": processes_status(agent),
        "cron": cron_status(agent),
    }


EMPTY_DEPLOY_STATUS: dict[str, Any] = {k: None for k in deploy_status(StatusReply())} | {
    "releases": [], "database_env": [], "processes": [], "cron": []}
# What remote_status reads beside the agent's answer (lightfold.release.audit.updates_facts).
EMPTY_UPDATES: dict[str, Any] = {"security_updates": None, "reboot_required": None, "configure_drift": [],
                                 "databases": None}


def database_summary(value: Any) -> dict[str, Any] | None:
    """`status`'s databases: {kind: {active, listening}} of those the app has credentials for
    (no URL, no values); None when they could not be read."""
    if not isinstance(value, dict):
        return None
    return {kind: {"active": bool(info.get("active")), "listening": list(info.get("listening") or [])}
            for kind, info in value.items()}


def remote_status(name: str, timeout: float = 10,
                  ip: str | None = None) -> tuple[str, dict[str, Any] | None, str | None]:
    """(ssh, deploy status or None, why there is none) in one SSH connection; `ip`: one of the
    target's servers (default: the one its config names)."""
    from lightfold.release import target as targets
    from lightfold.release.audit import updates_facts
    from lightfold.remote import run_sync

    t = targets.load(name)
    if ip:
        t = t.on(ip)

    async def go():
        async with await targets.connect(t) as conn:
            domain = t.config.domain.domain if t.config.domain else None
            wanted = (facts.tolerant(facts.status(name, conn.host)), *([facts.certificate(domain)] if domain else []),
                      *updates_facts(cached=True), facts.marker(name), facts.tolerant(facts.databases(name)))
            try:
                values = await facts.read(conn, *wanted, timeout=timeout)
            except LightfoldError as e:
                return "reachable", None, e.problem
            pending = values["pending"]
            from lightfold.server.markers import drifted

            updates = {"security_updates": None if pending is None else len(pending),
                       "reboot_required": values["reboot"]["required"],
                       # files configure wrote that were changed on the server since (configure puts them back)
                       "configure_drift": drifted(values["marker"]),
                       "databases": database_summary(values["databases"])}
            if isinstance(values["status"], LightfoldError):
                return "reachable", {**EMPTY_DEPLOY_STATUS, **updates}, values["status"].problem
            info = deploy_status(values["status"]) | updates
            if domain:
                info["certificate"] = _certificate(values["certificate"])
            return "reachable", info, None

    try:
        return run_sync(go())
    except LightfoldError as e:
        return e.problem, None, e.problem


def _certificate(info: dict[str, Any]) -> dict[str, Any] | None:
    """{expires, days_left, issuer} of the domain's certificate on the server, or None."""
    if not info.get("exists"):
        return None
    return {"expires": info.get("expires"), "days_left": info.get("days_left"), "issuer": info.get("issuer")}


# ---------------------------------------------------------------------------------------------
# logs


def units(app: str, slots: list[str]) -> list[str]:
    return [layout.unit_name(app, s) for s in slots]


def logs_command(app: str, slots: list[str], *, lines: int = 100, since: str | None = None,
                 follow: bool = False) -> str:
    """journalctl for the app's slot units. Pure."""
    return journalctl_command(units(app, slots), "-o", "short-iso", lines=lines, since=since, follow=follow)


def build_log_command(app: str, release: str | None) -> str:
    """Print a release's build log, or the newest one; the first line names the file. Pure."""
    from lightfold.release.push import build_log_path

    if release:
        path = shlex.quote(build_log_path(app, release))
        return f"test -f {path} && echo {path} && cat {path}"
    folder = shlex.quote(Layout(app).builds_dir)
    return f'f=$(ls -1 {folder}/*.log 2>/dev/null | sort | tail -n 1); test -n "$f" && echo "$f" && cat "$f"'


def slots_to_show(agent: StatusReply) -> list[str]:
    """The live slot; both while a switch is in flight or when nothing is live."""
    slot = agent.live.slot
    if agent.switch_in_progress or not slot:
        return ["blue", "green"]
    return [slot]


async def logs(
    conn: Connection, target: Target, *, lines: int = 100, since: str | None = None, follow: bool = False,
    build: bool = False, release: str | None = None, on_line: Callable[[str], None] = print,
    process: str | None = None, everything: bool = False,
) -> None:
    """The app's journal: the live slot's (both during a switch), one process's instances
    (`process`) or everything, each line labelled with its unit (`everything`); or a build log."""
    app = target.name
    if build:
        res = await conn.run(as_root(conn, f"sh -c {shlex.quote(build_log_command(app, release))}"),
                             check=False, display="read the build log")
        if res.exit_status != 0:
            what = f"release {release}" if release else "any deploy"
            raise LightfoldError(f"no build log of {what} on the server",
                                 "build logs are kept from this version on; push again to make one")
        for line in res.stdout.splitlines()[1:]:
            on_line(line)
        return
    agent = await agent_client.status(conn, app)
    if agent.static:
        raise LightfoldError(f"{app} is a static site: nginx serves it and there is no app process to log",
                             f"see the build with `lightfold logs --build --target {app}`")
    if process is None and not everything:
        cmd = logs_command(app, slots_to_show(agent), lines=lines, since=since, follow=follow)
        emit = on_line
    else:
        reported = getattr(agent, "processes", None)  # an older agent does not report processes
        known = sorted({p.name for p in reported}) if reported else None
        units = log_units(app, slots_to_show(agent), process=process, everything=everything, known=known)
        cmd = labelled_logs_command(units, lines=lines, since=since, follow=follow)

        def emit(raw: str) -> None:
            line = label_line(app, raw)
            if line is not None:
                on_line(line)
    res = await conn.run(as_root(conn, cmd), check=False, timeout=None if follow else 120,
                         on_output=lambda stream, line: emit(line) if stream == "stdout" else None,
                         display="journalctl")
    if res.exit_status not in (0, None) and process is not None and "No data available" in res.stderr:
        # journalctl's answer when a unit pattern matches no unit in the journal
        raise LightfoldError(f"the journal has no lines of process '{process}' of {app}",
                             "check its name in `lightfold status` (processes come from lightfold.toml or the "
                             "Procfile)")
    if res.exit_status not in (0, None) and not follow:
        raise LightfoldError(f"journalctl failed on the server (exit {res.exit_status})",
                             details=res.stderr.strip().splitlines()[-5:])


def _stamp(line: str) -> dt.datetime | None:
    """The time a journal line starts with (journalctl's short-iso, or a labelled line's ...Z)."""
    try:
        when = dt.datetime.fromisoformat(line.split(" ", 1)[0])
    except ValueError:
        return None
    return when if when.tzinfo else None


def merged_by_time(per_server: dict[str, list[str]]) -> list[str]:
    """Every server's log lines, each led by its server's name, in time order (a line without a
    time of its own, such as a traceback's, stays after the line before it). Pure."""
    width = max(map(len, per_server), default=0)
    earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
    rows = []
    for name, lines in per_server.items():
        when = earliest
        for i, line in enumerate(lines):
            when = _stamp(line) or when
            rows.append((when, name, i, f"{name:<{width}}  {line}"))
    return [row[-1] for row in sorted(rows)]


async def logs_of_servers(target: Target, servers: list, *, follow: bool = False,
                          on_line: Callable[[str], None] = print, **options: Any) -> None:
    """`logs` of every server of a scaled target at once, each line led by its server's name:
    merged in time order, or with `follow` as the lines come. A server that cannot be reached
    is named, and the others' lines still show."""
    import asyncio

    from lightfold.release.target import connect

    width = max(len(s.name) for s in servers)
    got: dict[str, list[str]] = {s.name: [] for s in servers}
    failed: dict[str, str] = {}

    async def one(server) -> None:
        t = target.on(server.ip)
        keep = ((lambda line: on_line(f"{server.name:<{width}}  {line}")) if follow
                else got[server.name].append)
        try:
            async with await connect(t) as conn:
                await logs(conn, t, follow=follow, on_line=keep, **options)
        except Exception as e:  # noqa: BLE001 - named below; the other servers' lines still come
            failed[server.name] = e.problem if isinstance(e, LightfoldError) else f"{type(e).__name__}: {e}"
            if follow:
                on_line(f"{server.name:<{width}}  ! no log from this server: {failed[server.name]}")

    await asyncio.gather(*(one(s) for s in servers))
    if not follow:
        for line in merged_by_time(got):
            on_line(line)
    if failed:
        raise LightfoldError(f"no log from {'; '.join(f'{name}: {why}' for name, why in failed.items())}",
                             "the lines above are the other servers'; `lightfold status` shows which servers answer")


# ---------------------------------------------------------------------------------------------
# sync


@dataclass
class SyncResult:
    target: str
    ip: str | None
    created: bool
    configured: bool
    live_release: str | None
    commit: str | None
    builder: str | None
    service: str | None  # the live unit's active state ("active", ...), "static", or None
    changed: list[str] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)  # a target on several servers: their names
    load_balancer: str | None = None




def recover_address(t: Target, progress=None) -> Target:
    """The target with its server's current address. Cloud servers are looked up in the
    provider's API (by server id, then by the create tag), which follows a changed or lost IP and
    re-pins the stored host key; local and byos servers must have the address in the config."""
    from lightfold import providers
    from lightfold.names import CLOUD_PROVIDERS

    if t.config.provider in CLOUD_PROVIDERS:
        from lightfold.release.target import load

        providers.get_cloud(t.config.provider).recover_address(t.name, progress=progress or (lambda _m: None))
        return load(t.name)
    if t.config.server().ip:
        return t
    raise LightfoldError(
        f"target '{t.name}' has no server address in its config",
        f"set it: lightfold config set provider_config.{t.config.provider or 'byos'}.ip ADDRESS --target {t.name}",
    )


async def sync(conn: Connection, target: Target) -> SyncResult:
    app = target.name
    found = await facts.read(conn, facts.marker(app), facts.servers_record(app))
    marker, record = found["marker"], found["servers_record"]
    agent: StatusReply | None = None
    if marker is not None:
        agent = await agent_client.status(conn, app)
    info = deploy_status(agent) if agent else EMPTY_DEPLOY_STATUS
    service = "static" if info.get("static") else (info["unit"] or {}).get("active_state")
    before = state.load(app).model_dump()

    def change(s) -> None:
        s.created = True
        if target.config.provider == "local" and not s.provisioned_id:
            from lightfold.providers import local

            if local.server_state(app) != "missing":
                s.provisioned_id = app
        s.configured = marker is not None
        s.configure_fingerprint = marker.get("fingerprint") if marker else None
        s.last_release = info["live_release"]
        s.last_commit = info["commit"]
        s.last_deploy = info["deployed_at"]
        s.builder = info["builder"]
        s.deploy_fingerprint = live_fingerprint(agent) if agent else None
        if record is not None and not s.servers:  # what `scale` recorded on the primary
            s.servers = [state.Server.model_validate(x) for x in record["servers"]]
            lb = record.get("load_balancer")
            s.load_balancer = state.LoadBalancer.model_validate(lb) if lb else None

    now = state.update(app, change)
    after = now.model_dump()
    changed = [k for k in after if before.get(k) != after.get(k)]
    return SyncResult(app, target.config.server().ip, True, marker is not None, info["live_release"],
                      info["commit"], info["builder"], service, changed, [x.name for x in now.servers],
                      now.load_balancer.name if now.load_balancer else None)


def live_fingerprint(agent: StatusReply) -> str | None:
    """The live release's deploy fingerprint (what push compares to skip)."""
    if not agent.live.release:
        return None
    entry = agent.live_entry()
    return (entry.fingerprint if entry else None) or (agent.live.info or {}).get("fingerprint")


# ---------------------------------------------------------------------------------------------
# unlock


async def unlock(conn: Connection, target: Target) -> dict[str, Any]:
    """Break the deploy lock whoever holds it (the manual case: `lightfold unlock`)."""
    result = await agent_client.unlock(conn, target.name, holder=actor(), force=True)
    return {"released": result.released, "lock": result.lock.to_dict() if result.lock else None}


# ---------------------------------------------------------------------------------------------
# targets


def targets_list() -> list[dict[str, Any]]:
    """Every target in config.json with what local state knows (no network: fast)."""
    from lightfold import config

    cfg = config.load()
    rows = []
    for name, tc in sorted(cfg.targets.items()):
        try:
            st = state.load(name)
        except LightfoldError:
            st = state.TargetState()
        pc = tc.provider_config.get(tc.provider) if tc.provider else None
        rows.append({
            "target": name, "provider": tc.provider, "ip": pc.ip if pc else None,
            "project_path": tc.project_path, "domain": tc.domain.domain if tc.domain else None,
            "created": st.created, "configured": st.configured, "live_release": st.last_release,
            "commit": st.last_commit, "deployed_at": st.last_deploy,
        })
    return rows


def check_release_id(value: str | None) -> str | None:
    if value is not None and not layout.is_release_id(value):
        raise UsageError(f"invalid release id '{value}'",
                         "release ids are 14 digits (YYYYMMDDHHMMSS); see `lightfold status`")
    return value

