"""The deploy lock: taken by the CLI around a deploy/rollback, visible to everyone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time

from .core import LOCK_TTL_DEFAULT, AgentError, now_iso, step, warn
from .files import fsync_dir, read_json, write_json
from .journal import audit
from .layout import Layout


def proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a pid, from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def proc_start_time(pid: int) -> str | None:
    stat = proc_stat(pid)
    return stat[1] if stat else None


def process_alive(pid: int, start: str | None = None) -> bool:
    """True while `pid` runs and is the same process that took the lock (pids get reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False
    return start is None or started == start


def lock_staleness(lock: dict, now: float, ttl: float | None = None) -> str | None:
    """Why a lock is stale (holder process gone, or older than the TTL), or None if it holds."""
    pid = lock.get("pid")
    if pid and not process_alive(int(pid), lock.get("pid_start")):
        return f"its holder process {pid} is gone"
    limit = ttl or lock.get("ttl") or LOCK_TTL_DEFAULT
    age = now - float(lock.get("started_ts") or 0)
    if age > limit:
        return f"it is {int(age)}s old, older than the {int(limit)}s TTL"
    return None


@contextlib.contextmanager
def flocked(path: str, blocking: bool = True):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)


def read_lock(lay: Layout) -> dict | None:
    try:
        lock = read_json(lay.lock)
    except AgentError:
        # A torn or foreign file still means "locked"; report it rather than crash.
        return {"holder": "unknown (unreadable lock file)", "started_ts": os.stat(lay.lock).st_mtime}
    return lock if isinstance(lock, dict) else None


def describe_lock(lock: dict) -> str:
    what = f"{lock.get('op') or 'an operation'}"
    if lock.get("release"):
        what += f" of {lock['release']}"
    return f"{lock.get('holder')} ({what}, since {lock.get('started_at') or 'unknown'})"


def try_acquire(lay: Layout, holder: str, op: str | None, release: str | None, ttl: float | None,
                pid: int | None) -> tuple[dict | None, dict | None, str | None]:
    """One attempt. Returns (our lock, busy lock, why a stale lock was replaced)."""
    os.makedirs(lay.meta, mode=0o755, exist_ok=True)
    with flocked(lay.lock_guard):
        replaced = None
        current = read_lock(lay)
        if current is not None:
            stale = lock_staleness(current, time.time(), ttl)
            if stale is None:
                return None, current, None
            replaced = f"replaced a stale lock held by {describe_lock(current)}: {stale}"
            os.unlink(lay.lock)
        lock = {
            "holder": holder, "pid": pid, "pid_start": proc_start_time(pid) if pid else None, "op": op,
            "release": release, "started_at": now_iso(), "started_ts": time.time(), "ttl": ttl,
        }
        create_exclusive(lay.lock, json.dumps(lock).encode())
        return lock, None, replaced


def create_exclusive(path: str, data: bytes) -> None:
    """O_EXCL semantics with the content already in place: write a temp file, then link(2) it to
    the name, which fails if the name exists. Readers never see an empty lock file."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".lock.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    fsync_dir(directory)


def check_deploy_lock(lay: Layout, req: dict) -> None:
    """A switch may run only when nobody else holds the deploy lock."""
    lock = read_lock(lay) if os.path.exists(lay.lock) else None
    if lock is None or lock.get("holder") == req.get("holder"):
        return
    if lock_staleness(lock, time.time(), req.get("ttl")) is None:
        raise AgentError(
            f"{lay.app} is locked by {describe_lock(lock)}",
            "wait for it to finish, or `lightfold unlock --force` if you are sure it is dead",
            lock=lock,
        )



def acquire_lock(lay: Layout, holder: str, lock_op: str | None, release: str | None, ttl: float | None,
                 pid: int | None, wait_seconds: float) -> tuple[dict, str | None, bool]:
    """The deploy lock, waiting up to `wait_seconds` for a live holder — and, whatever
    `wait_seconds`, for a switch that only has its smoke window and drain left (its lock says
    `finishing_until`). Returns (our lock, why a stale one was replaced, whether we waited). A busy
    lock raises, naming its holder."""
    user_deadline = time.monotonic() + wait_seconds
    said = waited = False
    while True:
        mine, busy, replaced = try_acquire(lay, holder, lock_op, release, ttl, pid)
        if mine is not None:
            if replaced:
                warn(replaced)
            audit(lay, "lock", holder, lock_op=lock_op, release=release, replaced=replaced)
            return mine, replaced, waited
        finishing = float(busy.get("finishing_until") or 0) - time.time()
        deadline = user_deadline
        if 0 < finishing < 120:
            # Traffic already moved; the holder only watches and drains: worth waiting for.
            deadline = max(user_deadline, time.monotonic() + finishing + 5)
            if not said:
                step(f"waiting ~{finishing:.0f}s for the {busy.get('op') or 'switch'} by {busy.get('holder')} "
                     "to finish its smoke window on the server")
                said = True
        if time.monotonic() >= deadline:
            raise AgentError(f"{lay.app} is locked by {describe_lock(busy)}",
                             "wait and retry (--lock-wait), or `lightfold unlock --force` if it is dead",
                             lock=busy, busy=True)
        waited = True
        time.sleep(min(0.25 if finishing > 0 else 0.5, max(0.01, deadline - time.monotonic())))


def still_ours(lay: Layout, mine: dict) -> dict | None:
    """The lock on file if it is still the one we took (same holder, pid and start time); call
    under the lock guard."""
    current = read_lock(lay) if os.path.exists(lay.lock) else None
    if current is None or any(current.get(k) != mine.get(k) for k in ("holder", "pid", "started_ts")):
        return None
    return current


def release_lock(lay: Layout, mine: dict) -> None:
    """Remove the deploy lock if it is still the one we took."""
    with flocked(lay.lock_guard):
        if still_ours(lay, mine) is None:
            return
        os.unlink(lay.lock)
    audit(lay, "unlock", mine.get("holder"), forced=False, was=mine)


def adopt_lock(lay: Layout, holder: str | None, seconds: float) -> dict:
    """Take over `holder`'s deploy lock for this process (an activate that answers early: the
    caller returns once traffic moved, and this process, which finishes the smoke window and the
    drain, holds the lock until it ends and then releases it). The lock keeps its holder; its pid
    becomes ours, so it goes stale if we die, not when the caller's SSH session ends. `seconds`:
    how long the switch can take at most; a deploy asking meanwhile waits for it (as for a
    finishing switch) instead of refusing, since no one is there to finish it sooner."""
    with flocked(lay.lock_guard):
        current = read_lock(lay) if os.path.exists(lay.lock) else None
        if current is None or current.get("holder") != holder:
            raise AgentError(f"{lay.app}: the deploy lock is not held by {holder} (it is "
                             f"{describe_lock(current) if current else 'free'})",
                             "take the lock first (`lock`), then activate", lock=current)
        pid = os.getpid()
        mine = {**current, "pid": pid, "pid_start": proc_start_time(pid), "adopted_from": current.get("pid"),
                "finishing_until": time.time() + seconds}
        write_json(lay.lock, mine)
    return mine


def mark_lock_finishing(lay: Layout, mine: dict, seconds: float) -> None:
    """Our switch moved traffic and only watches and drains for `seconds` more: say so in the lock,
    so the next deploy waits for it instead of refusing."""
    with flocked(lay.lock_guard):
        current = still_ours(lay, mine)
        if current is not None:
            write_json(lay.lock, {**current, "finishing_until": time.time() + seconds})
