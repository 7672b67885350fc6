"""The agent's protocol: its version, its ops, and the shape of every request and reply.

Standard library only, and laptop-side: the agent builds its replies as plain dicts (importing
dataclasses and typing would slow every call), with the keys these classes name; the laptop reads
them back with `from_dict`. The agent's copies of the constants (version, ops) are held equal to
these by tests/unit/agent/test_agent_package.py. `from_dict` is tolerant: unknown
keys are ignored and missing ones take their defaults, so a newer laptop reads an older agent's
reply (and the other way round) without failing; `PROTOCOL_VERSION` (`agent_version` in a status
reply) says which one answered.

The wire:
    python3 -c '<import the agent package and run main()>' [--detach]  < request.json

One JSON request on stdin, `{"op": "...", "app": "...", "by": "user@host", ...}`; exactly one JSON
reply on stdout, `{"ok": true, "op", "app", ...}` or the error reply `{"ok": false, "op", "app",
"error": "...", "fix": "...", "log_tail": [...], ...}`; progress as JSON lines on stderr,
`{"event": "step"|"warn", "msg": "..."}`. Exit status 0 when ok, 1 when not. Requests and replies
carry no secrets except write_env's `env`, which travels on stdin only.

`--lines N [--holder-pid PID]` (agent 4): N requests, one JSON line each, in one agent process, a
reply line for each, stopping at the first that is not ok; a `lock` request with `"pid": "holder"`
takes PID (the shell that holds the deploy lock's liveness: lightfold.release.locking.deploy_lock);
after such a lock that waited or replaced a stale one, the rest is answered `"skipped": true`.

`--detach` (activate, rollback, cleanup) re-runs the request as a transient systemd unit
`lightfold-<op>-<app>` (systemd-run --wait --pipe --collect), so a dropped SSH connection cannot
stop a switch half-way: the unit finishes or flips back on its own, its reply is saved in the
app's last-op.json and `status` reports it (`last_op`, and `switch_in_progress`). A rollback with
`early_result` prints its reply (`"early": true`) as soon as traffic moved and finishes the smoke
window and drain afterwards; an activate with `early_result` does the same, holding the caller's
deploy lock (same holder, its own pid) until it ends.

Ops (request fields beyond op/app/by; "by" names the actor in the audit log everywhere):
    activate {release, health?, smoke_seconds=5, drain_seconds=2, keep=5, holder?, early_result?} -> SwitchResult
    rollback {to?, health?, smoke_seconds, drain_seconds, keep, holder?, lock?, ttl?, wait_seconds?,
              early_result?}                                                      -> SwitchResult
    status {ttl?}                                                                 -> StatusReply
              (with `processes` and `cron`: the app's other processes and cron jobs)
    releases {}                                                                   -> ReleasesReply
    cleanup {keep=5}                                                              -> CleanupReply
    health {slot? | port?, health?}                                               -> HealthResult
    write_env {release, env: {NAME: value}}                                       -> WriteEnvReply
              (merged with the app's db-<kind>.env files on the server; the user's env wins)
    journal_mark {release, status: building|failed, reason?, commit?, dirty?, fingerprint?,
                  env_hash?, builder?, deployed_by?, created_at?}                 -> JournalMarkReply
    lock {holder, lock_op?, release?, ttl?, pid?, wait_seconds=0}                  -> LockReply
    unlock {holder?, force?}                                                      -> UnlockReply
activate and rollback refuse while another holder has the deploy lock (ErrorReply with `lock`); a
lock request refused by a live holder has `busy: true`.

The truth about what is live is what nginx routes to (upstream.conf -> slot -> release); the
journal is brought in line with it at the start of every op (`reconciled` in the reply).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .layout import SRV

# 4: `--lines N [--holder-pid PID]` (several requests in one agent process; lock {pid: "holder"});
# 3: the agent is a package (protocol.py); 2: rollback {lock, early_result}.
PROTOCOL_VERSION = 4

OPS = ("activate", "rollback", "status", "releases", "cleanup", "health", "write_env", "lock", "unlock",
       "journal_mark")
# Ops that `--detach` runs in their own transient unit.
DETACHABLE_OPS = ("activate", "rollback", "cleanup")
# The life of a release in the journal.
STATUSES = ("building", "live", "previous", "failed", "rolled-back", "retired")
EVENTS = ("step", "warn")
# What release.json (written by push) may give a journal entry.
RELEASE_INFO_FIELDS = ("commit", "dirty", "fingerprint", "env_hash", "builder", "deployed_by", "created_at")


class Shape:
    """Dict conversion for the dataclasses below. `_nested` names the fields holding other shapes:
    {"field": Class} (one), {"field": [Class]} (a list) or {"field": {str: Class}} (a mapping).
    `_omit_if_none`: optional keys left out of `to_dict` while unset, as the agent always did."""

    _nested: ClassVar[dict[str, Any]] = {}
    _omit_if_none: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls, data: Any):
        """The shape from a decoded JSON object; unknown keys are ignored, missing ones default,
        and anything that is not an object gives the defaults."""
        data = data if isinstance(data, dict) else {}
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: _load(cls._nested.get(k), v) for k, v in data.items() if k in names}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self._omit_if_none:
                continue
            out[f.name] = _dump(value)
        return out


def _load(kind: Any, value: Any) -> Any:
    if kind is None or value is None:
        return value
    if isinstance(kind, list):
        return [kind[0].from_dict(v) for v in value] if isinstance(value, list) else []
    if isinstance(kind, dict):
        inner = next(iter(kind.values()))
        return {k: inner.from_dict(v) for k, v in value.items()} if isinstance(value, dict) else {}
    return kind.from_dict(value)


def _dump(value: Any) -> Any:
    if isinstance(value, Shape):
        return value.to_dict()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# Pieces of replies


@dataclass
class Event(Shape):
    """One progress line on stderr."""

    event: str = "step"
    msg: str = ""


@dataclass
class HealthResult(Shape):
    """One GET of the app on 127.0.0.1 (op `health`, and `health` in a status reply: the check
    made now). `error`: "refused", "timeout" or "<Exception>: <message>"."""

    healthy: bool = False
    status_code: int | None = None
    error: str | None = None
    port: int | None = None
    path: str = "/"
    elapsed_ms: int | None = None


@dataclass
class JournalEntry(Shape):
    """One release in the server's journal (releases.json), as journal_mark and rollback return it."""

    id: str = ""
    commit: str | None = None
    dirty: bool | None = None
    status: str = "building"
    slot: str | None = None
    env_hash: str | None = None
    fingerprint: str | None = None
    builder: str | None = None
    deployed_by: str | None = None
    created_at: str | None = None
    activated_at: str | None = None
    reason: str | None = None


@dataclass
class ReleaseEntry(JournalEntry):
    """A journal entry as `status` and `releases` list it (newest first): with whether the release
    directory and its env snapshot are still on the server."""

    on_disk: bool = False
    env_snapshot: bool = False


@dataclass
class LockInfo(Shape):
    """The deploy lock (the app's .lightfold/lock). `finishing_until`: the holder's switch moved
    traffic and only watches and drains until then; `stale`: in a status reply, why the lock no
    longer holds (None while it does)."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("finishing_until",)

    holder: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    op: str | None = None
    release: str | None = None
    started_at: str | None = None
    started_ts: float | None = None
    ttl: float | None = None
    finishing_until: float | None = None
    stale: str | None = None


@dataclass
class LiveRelease(Shape):
    """What traffic reaches: the release, its slot and port (None for static sites) and its
    release.json (`info`: commit, dirty, fingerprint, env_hash, builder, deps_hash, ...)."""

    release: str | None = None
    slot: str | None = None
    port: int | None = None
    info: dict[str, Any] | None = None


@dataclass
class SlotState(Shape):
    """A slot's systemd unit `lightfold-<app>@<slot>` and the release linked into it."""

    port: int | None = None
    release: str | None = None
    active_state: str = "unknown"
    sub_state: str = "unknown"
    n_restarts: int | None = None


@dataclass
class Disk(Shape):
    path: str = SRV
    free_bytes: int | None = None
    total_bytes: int | None = None


@dataclass
class LastOp(Shape):
    """The reply of the last detached op (last-op.json), with when it finished."""

    ok: bool = False
    op: str | None = None
    app: str | None = None
    release: str | None = None
    error: str | None = None
    fix: str | None = None
    finished_at: str | None = None


@dataclass
class ProcessState(Shape):
    """One instance of a non-web process (`lightfold-<app>.proc@<instance>.service`, instance =
    `<name>-<n>`): its systemd state (`state`: ActiveState, e.g. active, failed, inactive;
    `sub_state`: SubState, e.g. running, auto-restart), its restarts (NRestarts) and the release
    it runs (the procs link's, None when it is not running)."""

    name: str = ""
    instance: str = ""
    unit: str = ""
    state: str = "unknown"
    sub_state: str = "unknown"
    restarts: int | None = None
    release: str | None = None


@dataclass
class CronState(Shape):
    """One cron job (`lightfold-<app>.cron-<name>.timer` starting `lightfold-<app>.cron@<name>`):
    its schedule (systemd OnCalendar), when its last run started (`last_run`, ISO 8601 UTC, None if
    never) and how it ended (`last_result`: systemd's Result, "success", "exit-code", "timeout",
    ...; "running" while a run is active; None if never), when the timer fires next (`next_run`,
    ISO 8601 UTC) and the release its runs use."""

    name: str = ""
    schedule: str = ""
    unit: str = ""
    timer: str = ""
    last_run: str | None = None
    last_result: str | None = None
    next_run: str | None = None
    release: str | None = None


# ---------------------------------------------------------------------------------------------
# Replies (each also carries the envelope ok, op, app)


@dataclass
class StatusReply(Shape):
    _nested: ClassVar[dict[str, Any]] = {
        "live": LiveRelease, "slots": {str: SlotState}, "health": HealthResult, "releases": [ReleaseEntry],
        "disk": Disk, "lock": LockInfo, "last_op": LastOp, "processes": [ProcessState],
        "cron": [CronState],
    }

    app: str = ""
    agent_version: int = 0
    static: bool = False
    live: LiveRelease = field(default_factory=LiveRelease)
    slots: dict[str, SlotState] = field(default_factory=dict)
    health: HealthResult | None = None
    releases: list[ReleaseEntry] = field(default_factory=list)
    disk: Disk = field(default_factory=Disk)
    lock: LockInfo | None = None
    switch_in_progress: bool = False
    last_op: LastOp | None = None
    reconciled: list[str] = field(default_factory=list)
    server_env: dict[str, Any] = field(default_factory=dict)  # {names, hash}: the db-<kind>.env files
    # The server's env-hash key (hex; an older agent: None): the laptop hashes its env with it
    # (envfile.env_hash), so the hashes on the server are HMACs. Never rendered.
    env_key: str | None = field(default=None, repr=False)
    # The app's other processes (one entry per instance) and cron jobs, of the procs release.
    processes: list[ProcessState] = field(default_factory=list)
    cron: list[CronState] = field(default_factory=list)

    def live_entry(self) -> ReleaseEntry | None:
        """The journal entry of the live release, if the journal has it."""
        rid = self.live.release
        return next((r for r in self.releases if r.id == rid), None) if rid else None


@dataclass
class WaitHealth(Shape):
    """How the new slot became healthy during a switch."""

    status_code: int | None = None
    attempts: int = 0
    seconds: float = 0.0


@dataclass
class SwitchTimings(Shape):
    """Seconds since the switch began: `started_s` the new slot's process runs (systemctl start
    returned), `switched_s` traffic moved; `healthy_s` the health polling's own time (start to the
    first healthy answer: the app's boot), `nginx_s` the nginx flip's (nginx -t + reload)."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("total_s", "started_s", "nginx_s")

    healthy_s: float | None = None
    switched_s: float | None = None
    total_s: float | None = None
    started_s: float | None = None
    nginx_s: float | None = None


@dataclass
class Continuing(Shape):
    """In an early reply: what the switch still does after traffic moved."""

    smoke_seconds: float = 0.0
    drain_seconds: float = 0.0


@dataclass
class Cleanup(Shape):
    removed: list[str] = field(default_factory=list)


@dataclass
class SwitchResult(Shape):
    """The reply of activate and rollback. `already_live`: nothing switched. Static sites have no
    slot, port, health or timings. Rollback adds `rolled_back_from`, `lock_taken` and the target's
    journal `entry`; an early reply (`early`) has `continuing` instead of `cleanup`."""

    _nested: ClassVar[dict[str, Any]] = {
        "health": WaitHealth, "cleanup": Cleanup, "timings": SwitchTimings, "continuing": Continuing,
        "entry": JournalEntry,
    }
    _omit_if_none: ClassVar[tuple[str, ...]] = (
        "port", "previous", "previous_slot", "health", "cleanup", "warnings", "timings", "already_live",
        "reconciled", "rolled_back_from", "lock_taken", "entry", "early", "continuing", "agent_version",
    )

    release: str | None = None
    slot: str | None = None
    port: int | None = None
    previous: str | None = None
    previous_slot: str | None = None
    health: WaitHealth | None = None
    cleanup: Cleanup | None = None
    warnings: list[str] | None = None
    timings: SwitchTimings | None = None
    already_live: bool | None = None
    reconciled: list[str] | None = None
    rolled_back_from: str | None = None
    lock_taken: bool | None = None
    entry: JournalEntry | None = None
    early: bool | None = None
    continuing: Continuing | None = None
    agent_version: int | None = None

    def finishing_on_server(self) -> dict[str, Any] | None:
        """After an early reply: what the server still does (smoke window, drain), else None."""
        return self.continuing.to_dict() if self.early and self.continuing else None


@dataclass
class ReleasesReply(Shape):
    _nested: ClassVar[dict[str, Any]] = {"releases": [ReleaseEntry]}

    releases: list[ReleaseEntry] = field(default_factory=list)


@dataclass
class CleanupReply(Shape):
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class WriteEnvReply(Shape):
    """Where the snapshot went and what it holds (names only: values never come back)."""

    path: str = ""
    count: int = 0
    env_hash: str = ""
    names: list[str] = field(default_factory=list)
    server_names: list[str] = field(default_factory=list)  # from the server's db-<kind>.env files
    overridden: list[str] = field(default_factory=list)  # set by both: the user's value won


@dataclass
class JournalMarkReply(Shape):
    _nested: ClassVar[dict[str, Any]] = {"entry": JournalEntry}

    entry: JournalEntry = field(default_factory=JournalEntry)


@dataclass
class LockReply(Shape):
    """`replaced_stale`: why a dead or expired holder's lock was taken over; `waited`: the lock was
    busy at first."""

    _nested: ClassVar[dict[str, Any]] = {"lock": LockInfo}

    acquired: bool = False
    lock: LockInfo | None = None
    replaced_stale: str | None = None
    waited: bool = False


@dataclass
class UnlockReply(Shape):
    _nested: ClassVar[dict[str, Any]] = {"lock": LockInfo}

    released: bool = False
    lock: LockInfo | None = None


@dataclass
class ErrorReply(Shape):
    """`{"ok": false}`: one line of what went wrong, the fix, and the log lines that show it.
    Extras: `lock` (the lock that refused a switch or a lock), `busy` (a live holder has the lock),
    `flipped_back` (the new release crashed after traffic moved; traffic is back on the old one),
    `listening` (where an app that ignores $PORT listens instead)."""

    _nested: ClassVar[dict[str, Any]] = {"lock": LockInfo}
    _omit_if_none: ClassVar[tuple[str, ...]] = ("op", "app", "lock", "busy", "flipped_back", "listening")

    ok: bool = False
    op: str | None = None
    app: str | None = None
    error: str = ""
    fix: str | None = None
    log_tail: list[str] = field(default_factory=list)
    lock: LockInfo | None = None
    busy: bool | None = None
    flipped_back: bool | None = None
    listening: list[str] | None = None


# Which reply each op gives when ok.
REPLIES: dict[str, type[Shape]] = {
    "activate": SwitchResult, "rollback": SwitchResult, "status": StatusReply, "releases": ReleasesReply,
    "cleanup": CleanupReply, "health": HealthResult, "write_env": WriteEnvReply, "lock": LockReply,
    "unlock": UnlockReply, "journal_mark": JournalMarkReply,
}


def parse_reply(op: str, data: Any) -> Shape:
    """A decoded reply as its shape: ErrorReply when not ok, else the op's reply."""
    if not isinstance(data, dict) or not data.get("ok"):
        return ErrorReply.from_dict(data)
    return REPLIES[op].from_dict(data)


# ---------------------------------------------------------------------------------------------
# Requests (what the laptop sends; the agent reads the decoded object and checks each field)


@dataclass
class Request(Shape):
    """The envelope every request has. `to_dict` leaves unset (None) fields out, so the agent's
    own defaults apply."""

    op: str = ""
    app: str = ""
    by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if v is not None}


@dataclass
class HealthSpec(Shape):
    """Overrides of the app's health check (app.json's `health`), field by field."""

    path: str | None = None
    status: int | list[int] | None = None
    timeout: float | None = None
    host: str | None = None


@dataclass
class SwitchRequest(Request):
    """activate (`release`) or rollback (`to`, or the previous good release)."""

    _nested: ClassVar[dict[str, Any]] = {"health": HealthSpec}

    release: str | None = None
    to: str | None = None
    health: HealthSpec | None = None
    smoke_seconds: float | None = None
    drain_seconds: float | None = None
    keep: int | None = None
    holder: str | None = None
    lock: bool | None = None
    ttl: float | None = None
    wait_seconds: float | None = None
    early_result: bool | None = None


@dataclass
class LockRequest(Request):
    holder: str | None = None
    lock_op: str | None = None
    release: str | None = None
    ttl: float | None = None
    pid: int | None = None
    wait_seconds: float | None = None


@dataclass
class UnlockRequest(Request):
    holder: str | None = None
    force: bool | None = None


@dataclass
class JournalMarkRequest(Request):
    release: str | None = None
    status: str | None = None
    reason: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    fingerprint: str | None = None
    env_hash: str | None = None
    builder: str | None = None
    deployed_by: str | None = None
    created_at: str | None = None


@dataclass
class WriteEnvRequest(Request):
    release: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class HealthRequest(Request):
    _nested: ClassVar[dict[str, Any]] = {"health": HealthSpec}

    slot: str | None = None
    port: int | None = None
    health: HealthSpec | None = None


@dataclass
class StatusRequest(Request):
    ttl: float | None = None


@dataclass
class CleanupRequest(Request):
    keep: int | None = None
