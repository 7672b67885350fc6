"""A rolling, health-gated deploy of a target on more than one server (README, "More than one
server"): push builds the release once, on the primary, under the primary's deploy lock (the
target-wide lock: one deploy of the target at a time) and runs its release command there, once;
then `Rollout` ships the built release to every other server (the same release id and content),
and switches the servers in batches (`--batch`, default 1), the primary first, each by its own
blue/green switch with its own health gate. The load balancer keeps sending traffic to every
server throughout: each server's own switch never drops a request.

When a server fails its switch (its health gate, its smoke window), it keeps serving the release
it had, and every server already switched goes back to its previous release (the agent's
rollback to that id), so at the end every server serves the same release; the deploy fails
naming the server and why.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lightfold import state
from lightfold.agent.protocol import SwitchResult
from lightfold.errors import LightfoldError, UsageError
from lightfold.release import agent_client
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, actor, connect

if TYPE_CHECKING:
    from lightfold.remote import Connection


def batches(servers: list[state.Server], size: int) -> list[list[state.Server]]:
    """The switch order: the primary first, `size` servers at a time."""
    if size < 1:
        raise UsageError(f"--batch {size} is out of range", "use --batch 1 or more")
    return [servers[i:i + size] for i in range(0, len(servers), size)]


def rollout_for(t: Target, detection: Any, *, batch: int = 1, report: Report = silent) -> Rollout | None:
    """The rollout of a target on more than one server; None for a single server (push switches it)."""
    servers = state.servers_of(t.name, t.server.ip, state.load(t.name))
    if len(servers) <= 1:
        if batch != 1:
            raise UsageError("--batch needs a target on more than one server", "see `lightfold scale`")
        return None
    batches(servers, batch)
    return Rollout(t, servers, detection, batch, report)


@dataclass
class Rollout:
    target: Target
    servers: list[state.Server]  # the primary first
    detection: Any
    batch: int = 1
    report: Report = silent
    switched: list[str] = field(default_factory=list)  # names, in switch order
    previous: dict[str, str | None] = field(default_factory=dict)

    async def __call__(self, primary: Connection, release_id: str, live: str | None) -> SwitchResult:
        from lightfold.release import ship
        from lightfold.release.push import deploy_lock

        app, report = self.target.name, self.report
        self.previous[self.servers[0].name] = live
        async with contextlib.AsyncExitStack() as stack:
            conns: dict[str, Connection] = {self.servers[0].name: primary}
            for s in self.servers[1:]:
                conns[s.name] = await stack.enter_async_context(await connect(self.target.on(s.ip)))

            async def ship_to(s: state.Server) -> None:
                from lightfold.release.configure import configure

                # configured like the primary (skipped when nothing changed), then the release
                await configure(conns[s.name], self.target.on(s.ip), self.detection, report=report)
                status = await agent_client.status(conns[s.name], app)
                self.previous[s.name] = status.live.release
                await ship.ship(primary, conns[s.name], self.target, self.detection, release_id, report=report)

            report("step", f"shipping {release_id} to {', '.join(s.name for s in self.servers[1:])}")
            await asyncio.gather(*(ship_to(s) for s in self.servers[1:]))

            async def switch(s: state.Server) -> SwitchResult:
                conn = conns[s.name]
                if s is self.servers[0]:  # under push's lock
                    return await agent_client.activate(conn, app, release_id, holder=actor(),
                                                       on_event=agent_client.progress_notes(report))
                async with deploy_lock(conn, app, "push", release_id, report=report):
                    return await agent_client.activate(conn, app, release_id, holder=actor(),
                                                       on_event=agent_client.progress_notes(report))

            first: SwitchResult | None = None
            for group in batches(self.servers, self.batch):
                report("step", f"switching {', '.join(s.name for s in group)} to {release_id}")
                outcomes = await asyncio.gather(*(switch(s) for s in group), return_exceptions=True)
                failed = []
                for s, outcome in zip(group, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        failed.append((s, outcome))
                    else:
                        self.switched.append(s.name)
                        first = first or outcome
                        report("ok", f"{s.name}: {release_id} is live")
                if failed:
                    await self._back(conns, deploy_lock)
                    s, err = failed[0]
                    why = err.problem if isinstance(err, LightfoldError) else f"{type(err).__name__}: {err}"
                    back = (f"; {', '.join(self.switched)} went back to their previous release" if self.switched
                            else "")
                    raise LightfoldError(f"release {release_id} failed on {s.name}: {why}{back}",
                                         "fix the cause and deploy again; every server serves the release it had",
                                         details=getattr(err, "details", []) or []) from err
        assert first is not None
        return first

    async def _back(self, conns: dict[str, Connection], deploy_lock) -> None:
        """Every switched server back to the release it had before this deploy."""
        app = self.target.name
        for name in reversed(self.switched):
            prev = self.previous.get(name)
            if not prev:
                self.report("warn", f"{name} had no release before; it keeps the new one")
                continue
            self.report("step", f"{name}: back to {prev}")
            conn = conns[name]
            if name == self.servers[0].name:
                await _rollback(conn, app, prev)
            else:
                async with deploy_lock(conn, app, "rollback", prev, report=self.report):
                    await _rollback(conn, app, prev)


async def _rollback(conn: Connection, app: str, to: str | None) -> SwitchResult:
    """The agent's rollback to `to` (None: the release it picks, the one before the live one) under
    the deploy lock the caller holds (as `actor()`)."""
    fields = {"to": to} if to else {}
    return SwitchResult.from_dict(await agent_client.call(conn, "rollback", app, detach=True, holder=actor(),
                                                          timeout=900, **fields))


async def rollback_all(t: Target, servers: list[state.Server], to: str | None, *,
                       report: Report = silent) -> tuple[SwitchResult, str | None]:
    """`rollback` of a target on more than one server: the primary first, under its deploy lock
    (the target-wide one), to `to` or the release before its live one; then every other server,
    one at a time under its own lock, to that same release, each by its own health gate. When one
    fails, the servers already rolled back go forward again to the release they had, and the
    rollback fails naming the server. Returns (the primary's switch, the release it left)."""
    from lightfold.release.push import deploy_lock

    app = t.name
    async with contextlib.AsyncExitStack() as stack:
        conns: dict[str, Connection] = {}
        for s in servers:
            conns[s.name] = await stack.enter_async_context(await connect(t.on(s.ip)))
        before = {s.name: (await agent_client.status(conns[s.name], app)).live.release for s in servers}
        primary = servers[0]
        switched: list[str] = []
        async with deploy_lock(conns[primary.name], app, "rollback", to, report=report):
            report("step", f"{primary.name}: rolling back" + (f" to {to}" if to else ""))
            first = await _rollback(conns[primary.name], app, to)
            switched.append(primary.name)
            wanted = first.release
            try:
                for s in servers[1:]:
                    report("step", f"{s.name}: rolling back to {wanted}")
                    async with deploy_lock(conns[s.name], app, "rollback", wanted, report=report):
                        await _rollback(conns[s.name], app, wanted)
                    switched.append(s.name)
            except BaseException as err:
                for name in reversed(switched):
                    if not before.get(name):
                        continue
                    report("step", f"{name}: forward again to {before[name]}")
                    if name == primary.name:
                        await _rollback(conns[name], app, before[name])
                    else:
                        async with deploy_lock(conns[name], app, "rollback", before[name], report=report):
                            await _rollback(conns[name], app, before[name])
                failed = servers[len(switched)].name
                why = err.problem if isinstance(err, LightfoldError) else f"{type(err).__name__}: {err}"
                raise LightfoldError(
                    f"rollback to {wanted} failed on {failed}: {why}; {', '.join(switched)} went forward again to "
                    f"the release they had", "every server serves the release it had; see `lightfold status`",
                    details=getattr(err, "details", []) or []) from err
    return first, before[primary.name]
