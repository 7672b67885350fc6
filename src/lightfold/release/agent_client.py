"""Requests to the on-server agent: one SSH exec, a JSON request on stdin (so env values never
appear on a command line), one JSON result on stdout, progress events on stderr.

The typed client: one function per op the laptop sends, each answering with its reply shape from
lightfold.agent.protocol (read with the tolerant `from_dict`), so callers read fields, not dicts:

    st = await status(conn, app)            # StatusReply: st.live.release, st.live_entry(), st.releases
    await journal_mark(conn, app, rid, "building", info)
    await write_env(conn, app, rid, env)
    got = await lock(conn, app, holder=..., lock_op="push", ...)     # LockReply
    res = await activate(conn, app, rid, holder=..., on_event=...)   # SwitchResult
    res = await rollback(conn, app, to=None, ...)                    # SwitchResult
    await unlock(conn, app, holder=..., force=False)                 # UnlockReply

`call` is the untyped request under them (a dict back); `call_many` sends several requests in ONE
exec (each still its own agent process, one after the other, stopping at the first that fails), and
`mark_building` uses it for journal_mark + write_env. `answer` reads an exec's output into the
reply dict (the fact reader's status uses it too).
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lightfold.agent import protocol
from lightfold.agent.bundle import detached_command, remote_command
from lightfold.errors import LightfoldError
from lightfold.release.target import actor, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection


class AgentError(LightfoldError):
    """The agent answered ok:false. `result` is its whole answer (e.g. `busy` for a held lock)."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(
            result.get("error") or f"the server agent failed ({result.get('op')})",
            result.get("fix"),
            details=[str(line) for line in (result.get("log_tail") or [])][-20:],
        )
        self.result = result


def request(op: str, app: str, **fields: Any) -> dict[str, Any]:
    return {"op": op, "app": app, "by": actor(), **fields}


async def call(
    conn: Connection,
    op: str,
    app: str,
    *,
    detach: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 900,
    **fields: Any,
) -> dict[str, Any]:
    """One agent request. `detach`: run it in its own transient unit (bundle.detached_command), so
    it finishes when this SSH session ends; an early reply (`"early": true`, see the agent's
    early_announcer) is returned at once, leaving the unit to finish on its own."""
    command = as_root(conn, detached_command(op, app) if detach else remote_command())

    def on_output(stream: str, line: str) -> None:
        if stream == "stderr" and on_event is not None and line.startswith("{"):
            with contextlib.suppress(ValueError):
                on_event(json.loads(line))

    res = await conn.run(
        command, input=json.dumps(request(op, app, **fields)), check=False, timeout=timeout,
        on_output=on_output, display=f"lightfold agent {op}", stop_when=is_early_reply if detach else None,
    )
    return answer(op, res.stdout, res.exit_status, res.stderr, conn.host)


def is_early_reply(line: str) -> bool:
    """An agent reply line that says traffic moved while the op goes on (`"early": true`)."""
    if not line.startswith("{"):
        return False
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and bool(value.get("early"))


# The first agent that runs several requests in one process (`--lines`, lightfold.agent.main).
LINES_VERSION = 4


def lines_command(n: int, *, holder_pid: bool = False, agent: str | None = None) -> str:
    """`agent` (the agent's command) reading `n` requests from stdin, one line each, in one
    process; `holder_pid`: its `lock` request with `"pid": "holder"` takes the pid of the shell
    around it (`$$`). Pure."""
    return f"{agent or remote_command()} --lines {n}" + (" --holder-pid $$" if holder_pid else "")


def request_lines(requests: list[tuple[str, dict[str, Any]]], app: str) -> str:
    """`requests` ([(op, fields)], all for `app`) as stdin for `many_command`/`lines_command`: one
    line each (json.dumps escapes newlines), so env values stay off every command line."""
    return "".join(json.dumps(request(op, app, **fields)) + "\n" for op, fields in requests)


def raise_unless_ok(requests: list[tuple[str, dict[str, Any]]], replies: list[dict[str, Any]], exit_status: int,
                    stderr: str, host: str) -> list[dict[str, Any]]:
    """The replies of `requests` (in order), or the error of the first that failed or gave none."""
    for reply in replies:
        if not reply.get("ok"):
            raise AgentError(reply)
    if len(replies) < len(requests):
        op = requests[len(replies)][0]
        answer(op, "", exit_status, stderr, host)  # raises: no reply to `op`
    return replies[:len(requests)]


def many_command(n: int, agent: str | None = None) -> str:
    """sh running `agent` (the agent's command) n times, each on one line of stdin, while each
    succeeds. Pure."""
    one = f'IFS= read -r r && printf "%s\\n" "$r" | {agent or remote_command()}'
    return f"sh -c {shlex.quote(' && '.join([one] * n))}"


async def call_many(conn: Connection, requests: list[tuple[str, dict[str, Any]]], app: str, *,
                    timeout: float = 900) -> list[dict[str, Any]]:
    """The replies of `requests` ([(op, fields)], all for `app`), sent in one exec: the requests go
    on stdin, one line each (json.dumps escapes newlines), and sh hands each agent run exactly one
    line (`read` never reads past a newline), so env values stay off every command line. The runs
    stop at the first reply that is not ok, which raises like `call`."""
    command = as_root(conn, many_command(len(requests)))
    ops = "+".join(op for op, _ in requests)
    res = await conn.run(command, input=request_lines(requests, app), check=False, timeout=timeout,
                         display=f"lightfold agent {ops}")
    return raise_unless_ok(requests, _json_lines(res.stdout), res.exit_status, res.stderr, conn.host)


def answer(op: str, stdout: str, exit_status: int, stderr: str, host: str) -> dict[str, Any]:
    """The agent's reply from what its exec printed; raises when there is none or it is not ok."""
    result = _last_json(stdout)
    if result is None:
        if exit_status == 127 or "No such file" in stderr or "No module named" in stderr:
            raise LightfoldError(
                f"the lightfold agent is not installed on {host}", "run `lightfold configure` first"
            )
        tail = (stderr or stdout).strip().splitlines()[-15:]
        raise LightfoldError(f"the server agent gave no answer to {op} (exit {exit_status})", details=tail)
    if not result.get("ok"):
        raise AgentError(result)
    return result


# ---------------------------------------------------------------------------------------------
# The typed client


def status_reply(data: dict[str, Any]) -> protocol.StatusReply:
    return protocol.StatusReply.from_dict(data)


def entry_of(releases: list[protocol.ReleaseEntry], release: str | None) -> protocol.ReleaseEntry | None:
    """The journal entry of `release` in a releases list, if it is there."""
    return next((r for r in releases if r.id == release), None) if release else None


async def status(conn: Connection, app: str) -> protocol.StatusReply:
    return status_reply(await call(conn, "status", app))


async def releases(conn: Connection, app: str) -> list[protocol.ReleaseEntry]:
    return protocol.ReleasesReply.from_dict(await call(conn, "releases", app)).releases


async def journal_mark(conn: Connection, app: str, release: str, status: str, info: dict[str, Any] | None = None,
                       reason: str | None = None) -> protocol.JournalMarkReply:
    """Mark `release` building (with what release.json will say: `info`) or failed (`reason`)."""
    fields = {k: v for k, v in (info or {}).items() if k in protocol.RELEASE_INFO_FIELDS}
    if reason is not None:
        fields["reason"] = reason
    return protocol.JournalMarkReply.from_dict(
        await call(conn, "journal_mark", app, release=release, status=status, **fields))


def mark_building_requests(release: str, info: dict[str, Any], env: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """journal_mark `release` building (with what release.json will say: `info`) and write its env
    snapshot: the requests, for `call_many` or push's deploy lock (which sends them with its own)."""
    mark = {"release": release, "status": "building",
            **{k: v for k, v in info.items() if k in protocol.RELEASE_INFO_FIELDS}}
    return [("journal_mark", mark), ("write_env", {"release": release, "env": env})]


def marked_building(replies: list[dict[str, Any]]) -> tuple[protocol.JournalMarkReply, protocol.WriteEnvReply]:
    """The typed replies of `mark_building_requests`."""
    marked, written = replies
    return protocol.JournalMarkReply.from_dict(marked), protocol.WriteEnvReply.from_dict(written)


async def mark_building(conn: Connection, app: str, release: str, info: dict[str, Any],
                        env: dict[str, str]) -> tuple[protocol.JournalMarkReply, protocol.WriteEnvReply]:
    """journal_mark `release` building and write its env snapshot, in one exec."""
    return marked_building(await call_many(conn, mark_building_requests(release, info, env), app))


async def write_env(conn: Connection, app: str, release: str, env: dict[str, str]) -> protocol.WriteEnvReply:
    return protocol.WriteEnvReply.from_dict(await call(conn, "write_env", app, release=release, env=env))


async def lock(conn: Connection, app: str, *, holder: str, lock_op: str, release: str | None, ttl: float,
               pid: int | None, wait_seconds: float = 0,
               on_event: Callable[[dict[str, Any]], None] | None = None) -> protocol.LockReply:
    return protocol.LockReply.from_dict(await call(
        conn, "lock", app, holder=holder, lock_op=lock_op, release=release, ttl=ttl, pid=pid,
        wait_seconds=wait_seconds, timeout=wait_seconds + 180, on_event=on_event))


async def unlock(conn: Connection, app: str, *, holder: str, force: bool = False,
                 timeout: float = 30) -> protocol.UnlockReply:
    fields = {"force": True} if force else {}
    return protocol.UnlockReply.from_dict(await call(conn, "unlock", app, holder=holder, timeout=timeout, **fields))


async def activate(conn: Connection, app: str, release: str, *, holder: str, early: bool = False,
                   on_event: Callable[[dict[str, Any]], None] | None = None) -> protocol.SwitchResult:
    """The health-gated switch to `release`, detached from this SSH session. `early`: `holder`'s
    deploy lock passes to the switching process, which answers as soon as traffic moved (`early`
    in the reply, with `continuing`) and releases the lock when its smoke window and drain end
    (an agent older than that answers at the end and leaves the lock to us: `early` unset)."""
    fields: dict[str, Any] = {"early_result": True} if early else {}
    return protocol.SwitchResult.from_dict(await call(
        conn, "activate", app, detach=True, release=release, holder=holder, on_event=on_event, **fields))


async def rollback(conn: Connection, app: str, *, to: str | None, holder: str, ttl: float, wait_seconds: float = 0,
                   on_event: Callable[[dict[str, Any]], None] | None = None) -> protocol.SwitchResult:
    """The switch back to `to` (or the previous good release) under the deploy lock the agent takes
    itself; answers as soon as traffic moved (`early`)."""
    fields: dict[str, Any] = {"to": to} if to else {}
    return protocol.SwitchResult.from_dict(await call(
        conn, "rollback", app, detach=True, holder=holder, lock=True, ttl=ttl, wait_seconds=wait_seconds,
        early_result=True, timeout=wait_seconds + 900, on_event=on_event, **fields))


def switch_timings(activation: protocol.SwitchResult) -> dict[str, float]:
    """The server's side of a switch, in push's timings: `slot_start` (systemctl start of the new
    slot), `boot` (its health polling until the first healthy answer), `nginx` (the flip)."""
    t = activation.timings
    names = (("slot_start", "started_s"), ("boot", "healthy_s"), ("nginx", "nginx_s"))
    return {name: getattr(t, key) for name, key in names if t is not None and getattr(t, key) is not None}


def progress_notes(report: Callable[[str, str], None]) -> Callable[[dict[str, Any]], None]:
    """An `on_event` that shows the agent's progress events as report notes."""
    return lambda e: report("note", e.get("msg", "")) if e.get("msg") else None


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` that is a JSON object, in order."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _last_json(text: str) -> dict[str, Any] | None:
    found = _json_lines(text)
    return found[-1] if found else None
