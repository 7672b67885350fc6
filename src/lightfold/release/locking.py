"""The deploy lock, taken from the laptop: one deploy per app at a time (the agent's lock),
held by a remote liveness process that lives exactly as long as this CLI's SSH connection, and
released on every exit path.

    async with deploy_lock(conn, app, "push", release_id, lock_wait, report, then=requests) as held:
        held.reply            the agent's LockReply (waited, replaced_stale)
        held.then_replies     the replies of `then`, sent in the lock's own exec (agent 4)
        held.handed_over = True   an early activation's switching process releases it itself
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lightfold.errors import LightfoldError
from lightfold.release import agent_client
from lightfold.release.report import Report, silent
from lightfold.release.target import actor, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection

LOCK_TTL = 3600


async def _unlock(conn: Connection, app: str) -> None:
    # A lock we cannot release goes stale when our holder process ends (or by TTL);
    # `lightfold unlock` clears it by hand.
    with contextlib.suppress(Exception):
        await asyncio.shield(agent_client.unlock(conn, app, holder=actor()))


async def _recover_from_dead_holder(conn: Connection, app: str, ours: str | None, report: Report,
                                    wait_seconds: float = 120) -> None:
    """The previous holder died mid-deploy: let a detached switch it started finish (it runs on
    the server without it), and mark the release it was building failed, so the journal has no
    release forever "building"."""
    deadline = time.monotonic() + wait_seconds
    while True:
        status = await agent_client.status(conn, app)
        if not status.switch_in_progress or time.monotonic() > deadline:
            break
        report("note", "waiting for the interrupted deploy's switch to finish on the server")
        await asyncio.sleep(0.5)
    for r in status.releases:
        if r.status == "building" and r.id != ours:
            with contextlib.suppress(LightfoldError):
                await agent_client.journal_mark(conn, app, r.id, "failed",
                                                reason="its deploy was interrupted (the deploying process is gone)")
                report("note", f"marked the interrupted release {r.id} failed")


# A remote process that lives exactly as long as this CLI's SSH connection: when the CLI dies
# (SIGKILL, lost network) sshd closes its stdin, `cat` exits, and the agent sees the lock's pid gone.
@dataclass
class HeldLock:
    """The deploy lock `deploy_lock` holds. `handed_over`: an early activation's switching process
    took it over and releases it itself (unlocking here would end its cover of the smoke window)."""

    reply: Any
    handed_over: bool = False
    then_replies: list[dict[str, Any]] = field(default_factory=list)


HOLDER_COMMAND = "sh -c 'echo $$; exec cat >/dev/null'"


def holder_with_requests_command(conn: Connection, n: int, agent: str | None = None) -> str:
    """The liveness shell that first runs the agent (`agent`: its command) on `n` requests (the
    lock, then what the caller sends with it) in one process, and lives on (`exec cat`) only if
    they all succeeded: the lock and what follows it cost one exec and one python3 start (agent 4,
    `--lines`). Pure."""
    agent = as_root(conn, agent_client.lines_command(n, holder_pid=True, agent=agent))
    return f"sh -c {shlex.quote(f'{agent} && exec cat >/dev/null')}"


@contextlib.asynccontextmanager
async def deploy_lock(conn: Connection, app: str, op: str, release: str | None, lock_wait: int = 0,
                      report: Report = silent, then: list[tuple[str, dict[str, Any]]] | None = None):
    """The agent's deploy lock for `op`, held by a remote liveness process; released on every
    exit path, Ctrl-C included. A busy lock raises the agent's error naming the holder. `then`:
    agent requests to run right after the lock is taken, in the same exec and agent process (the
    server's agent must be LINES_VERSION or newer; not with `lock_wait`); their replies are
    `held.then_replies` as they came (agent_client.raise_unless_ok says which failed; the runs stop
    at the first that fails, and the lock is released as always)."""
    if then:
        got, holder, replies = await _lock_with_requests(conn, app, op, release, then, report)
    else:
        got, holder, replies = None, await conn.start(HOLDER_COMMAND), []
    try:
        if got is None:
            pid = int(holder.first_line) if holder.first_line.isdigit() else None
            if lock_wait:
                report("note", f"waiting up to {lock_wait}s for the deploy lock")
            got = await agent_client.lock(conn, app, holder=actor(), lock_op=op, release=release, ttl=LOCK_TTL,
                                          pid=pid, wait_seconds=lock_wait,
                                          on_event=agent_client.progress_notes(report))
        if got.replaced_stale:
            report("warn", got.replaced_stale)
            await _recover_from_dead_holder(conn, app, release, report)
        held = HeldLock(got)
        held.then_replies = replies
        try:
            yield held
        finally:
            if not held.handed_over:
                await _unlock(conn, app)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(holder.close())


async def _lock_with_requests(conn: Connection, app: str, op: str, release: str | None,
                              then: list[tuple[str, dict[str, Any]]],
                              report: Report) -> tuple[Any, Any, list[dict[str, Any]]]:
    """(LockReply, the holder, the replies of `then`): the holder shell runs the lock and `then`,
    the agent's progress (e.g. waiting for a switch to finish its smoke window) shown as notes. A
    lock that is not taken raises here (the holder has ended: nothing to release)."""
    from lightfold.agent.protocol import LockReply

    notes, said = agent_client.progress_notes(report), []

    def on_stderr(line: str) -> None:
        said.append(line)
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                notes(json.loads(line))

    requests = [("lock", {"holder": actor(), "lock_op": op, "release": release, "ttl": LOCK_TTL, "pid": "holder",
                          "wait_seconds": 0}), *then]
    holder = await conn.start(holder_with_requests_command(conn, len(requests)),
                              input=agent_client.request_lines(requests, app), lines=len(requests), timeout=180,
                              on_stderr=on_stderr,
                              display=f"lightfold agent {'+'.join(name for name, _ in requests)} (deploy lock)")
    replies = agent_client._json_lines("\n".join(holder.lines))
    if not replies or not replies[0].get("ok"):
        with contextlib.suppress(Exception):
            await asyncio.shield(holder.close())
        agent_client.raise_unless_ok(requests[:1], replies[:1], 1, "\n".join(said), conn.host)
    return LockReply.from_dict(replies[0]), holder, replies[1:]
