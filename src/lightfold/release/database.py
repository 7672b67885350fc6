"""`lightfold db add|status|url|remove`: a PostgreSQL, MariaDB (kind "mysql") or Redis from the
server's OS packages beside the target's app (the plans are lightfold.server.database's).

add: packages (+ the service running) -> facts (MemTotal, the cluster's version and port) ->
settings (loopback only, sized for the memory) -> the app's role/database, user/database or ACL
user, its password
made on the server and kept in the app's root-only db-<kind>.env. The agent merges that file into
every release's env snapshot from the next deploy on (the user's own env wins on a clash). Every
step is idempotent: a second add changes nothing and says so.

No function here returns a password, except `url(..., reveal=True)`.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

from lightfold.errors import LightfoldError
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection
    from lightfold.server.plan import Plan


async def apply_plan(conn: Connection, plan: Plan, what: str, report: Report = silent) -> list[str]:
    """Run `plan`; the labels of the actions that changed something."""
    from lightfold.release.scripts import run_plan
    from lightfold.server.plan import render

    changed: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("changed") and event.get("action"):
            changed.append(str(event["action"]))
            report("note", f"  {event['action']}")

    run = await run_plan(conn, render(plan), on_event, timeout=900, display=what)
    if not run.ok:
        failure = run.failed
        raise LightfoldError(
            f"{what} failed in step '{failure.get('step', '?')}': {failure.get('action', '?')} exited "
            f"{failure.get('exit', run.exit_status)}",
            "fix the cause shown below and run the command again (it resumes where it stopped)",
            details=[str(x) for x in failure.get("output") or run.stderr.splitlines()][-15:],
        )
    return changed


async def facts(conn: Connection):
    from lightfold.server.database import FACTS_SCRIPT, Facts

    res = await conn.run(as_root(conn, f"sh -c {shlex.quote(FACTS_SCRIPT)}"), display="read database facts")
    return Facts.parse(res.stdout)


async def add(conn: Connection, target: Target, kind: str, report: Report = silent) -> dict:
    from lightfold.agent.layout import Layout
    from lightfold.server import database as db

    kind = db.check_kind(kind)
    app = target.name
    refuse_several_servers(target, f"`db add {kind}`")
    configured = [k for k, v in (await status(conn, target))["databases"].items() if v["configured"]]
    clash = db.url_clash(kind, configured)
    if clash:
        raise LightfoldError(
            f"target '{app}' already has {clash}, whose {db.URL_VARIABLE[kind]} the app gets; one app gets one",
            f"remove it first (`lightfold db remove {clash} --target {app}`), or use a second target")
    report("step", f"{kind}: packages from the OS archive")
    changed = await apply_plan(conn, db.install_plan(kind), f"install {kind}", report)
    f = await facts(conn)
    report("step", f"{kind}: loopback only, sized for {f.mem_kb // 1024} MB of memory")
    changed += await apply_plan(conn, db.settings_plan(kind, f), f"configure {kind}", report)
    report("step", f"{kind}: credentials for {app} (made on the server)")
    changed += await apply_plan(conn, db.credentials_plan(kind, app, f), f"{kind} credentials", report)
    state = (await status(conn, target))["databases"][kind]
    bad = [a for a in state["listening"] if not db.is_loopback(a)]
    if bad:
        raise LightfoldError(f"{kind} listens on {', '.join(bad)}, not only on loopback",
                             f"check the {kind} configuration on the server; lightfold set it to loopback")
    if not state["active"]:
        raise LightfoldError(f"{kind} is not running after db add",
                             f"see `journalctl -u {db.UNITS[kind]}` on the server")
    return {"target": app, "kind": kind, "changed": bool(changed), "actions": changed,
            "env_file": Layout(app).db_env(kind), "names": state["names"], "url": state["url"],
            "listening": state["listening"], "settings": _settings(kind, f.mem_kb)}


async def ensure(conn: Connection, target: Target, kinds: list[str], report: Report = silent) -> list[dict]:
    """lightfold.toml's [databases] on deploy: `add` for each kind not yet set up (credentials kept
    and the server running); one status read when all of them are. The results of the adds."""
    if not kinds:
        return []
    state = (await status(conn, target))["databases"]
    done = [k for k in kinds if state[k]["configured"] and state[k]["active"]]
    if done:
        report("note", f"databases from lightfold.toml already set up: {', '.join(done)}")
    return [await add(conn, target, kind, report) for kind in kinds if kind not in done]


def _settings(kind: str, mem_kb: int) -> dict[str, str]:
    from lightfold.server import database as db

    wanted = {"postgres": db.postgres_settings, "mysql": db.mysql_settings, "redis": db.redis_settings}[kind](mem_kb)
    return {k: v for k, v in wanted.items() if k != "aclfile"}


SEVERAL_SERVERS_FIX = ("keep a target with a database on one server (`lightfold scale --servers 1`), or give the app "
                       "a database of its own elsewhere: `lightfold config set deploy.env_vars.DATABASE_URL ...`")


def refuse_several_servers(target: Target, what: str) -> None:
    """A database lightfold runs lives on the primary and listens on its loopback only: the other
    servers of a scaled target could not reach it (and would start without its variables)."""
    from lightfold import state

    servers = state.servers_of(target.name, target.server.ip, state.load(target.name))
    if len(servers) > 1:
        raise LightfoldError(f"{what} on target '{target.name}', which runs on {len(servers)} servers: the database "
                             "would be on the primary only, on its loopback, out of the other servers' reach",
                             SEVERAL_SERVERS_FIX)


async def status(conn: Connection, target: Target, reveal: bool = False) -> dict:
    from lightfold.server.database import status_command

    res = await conn.run(as_root(conn, status_command(target.name, reveal)), display="read database status")
    return {"target": target.name, "databases": json.loads(res.stdout)}


async def url(conn: Connection, target: Target, kind: str | None, reveal: bool) -> dict:
    """The connection URL of the target's database (`kind`, or the only one); its password as
    "****" unless `reveal`."""
    data = await status(conn, target, reveal)
    kind = _pick(data, target, kind, "url")
    return {"target": target.name, "kind": kind, "url": data["databases"][kind]["url"], "revealed": reveal}


def _pick(data: dict, target: Target, kind: str | None, command: str) -> str:
    """`kind`, or the target's only database; an error naming what to do otherwise."""
    configured = [k for k, v in data["databases"].items() if v["configured"]]
    if kind is None:
        if len(configured) != 1:
            has = "no database" if not configured else "several: " + ", ".join(configured)
            raise LightfoldError(
                f"target '{target.name}' has {has}",
                f"run `lightfold db add postgres --target {target.name}`" if not configured
                else f"name one: `lightfold db {command} {configured[0]}`")
        kind = configured[0]
    if kind not in configured:
        raise LightfoldError(f"target '{target.name}' has no {kind}",
                             f"run `lightfold db add {kind} --target {target.name}`")
    return kind


async def shell_target(conn: Connection, target: Target, kind: str | None) -> tuple[str, str]:
    """For `db shell`: the kind (named, or the only one) and the live release the client runs in."""
    from lightfold.release.run import live_release

    kind = _pick(await status(conn, target), target, kind, "shell")
    return kind, await live_release(conn, target.name)


async def remove(conn: Connection, target: Target, kind: str, purge: bool, report: Report = silent) -> dict:
    from lightfold.agent.layout import Layout
    from lightfold.server import database as db

    kind = db.check_kind(kind)
    report("step", f"{kind}: removing {target.name}'s credentials" + (" and its data" if purge else ""))
    changed = await apply_plan(conn, db.remove_plan(kind, target.name, purge), f"remove {kind}", report)
    return {"target": target.name, "kind": kind, "changed": bool(changed), "actions": changed, "purged": purge,
            "data_kept": not purge or kind == "redis", "env_file": Layout(target.name).db_env(kind)}
