#!/usr/bin/env python3
"""lightfold agent: switches releases on the server, in one process per request.

Installed by `configure` at /usr/local/lib/lightfold/agent.py and run as root:

    python3 /usr/local/lib/lightfold/agent.py [--detach]  < request.json

Protocol: one JSON request on stdin, `{"op": "...", "app": "...", ...}`; exactly one JSON result on
stdout, `{"ok": true, ...}` or `{"ok": false, "error": "...", "fix": "...", "log_tail": [...]}`;
progress as JSON lines on stderr, `{"event": "step"|"warn", "msg": "..."}`. Exit status 0 when ok,
1 when not. Standard library only (Debian bookworm's python3.11); it never imports lightfold.

`--detach` (activate, rollback, cleanup) re-runs the request as a transient systemd unit
`lightfold-<op>-<app>` (systemd-run --wait --pipe --collect), so a dropped SSH connection cannot
stop a switch half-way: the unit finishes or flips back on its own, its result is saved in
/srv/<app>/.lightfold/last-op.json and `status` reports it (and `switch_in_progress`).

Server layout (the contract with configure and push; app names are [a-z0-9-]; every path below
sits under a root prefix, $LIGHTFOLD_ROOT or "/", so tests run against a temp dir):

  /etc/lightfold/apps/<app>/app.json    written by configure: {"app", "user", "ports": {"blue": P1,
                                        "green": P2}, "static": bool, "output_dir": str|null,
                                        "health": {"path", "status", "timeout", "host"},
                                        "domain": str|null}. Requests may override "health".
  /etc/lightfold/apps/<app>/upstream.conf  owned by the agent: `server 127.0.0.1:<port>;` plus a
                                        comment naming the live slot and release; configure's
                                        nginx site includes it inside its upstream block.
  /srv/<app>/releases/<id>/             a release (id = YYYYMMDDHHMMSS), owned by the app user;
                                        `.lightfold/start` (executable, `exec <start command>`)
                                        for non-static apps, `.lightfold/release.json` (id, commit,
                                        dirty, fingerprint, env_hash, builder, deployed_by,
                                        created_at).
  /srv/<app>/env/<id>.env               the release's env snapshot, 0600 root, systemd
                                        EnvironmentFile syntax; written by op `write_env`.
  /srv/<app>/slots/<blue|green>         -> ../releases/<id>, swapped atomically.
  /srv/<app>/run/<blue|green>.env       0600: the slot release's env snapshot + PORT=<slot port>.
  /srv/<app>/slots/<blue|green>.names   0644: the names of that snapshot's variables, one a line
                                        (readable by the app user; run/ is root-only).
  lightfold-<app>@<slot>.service        configure's template unit: WorkingDirectory=
                                        /srv/<app>/slots/%i, EnvironmentFile=/srv/<app>/run/%i.env,
                                        ExecStart=/srv/<app>/slots/%i/.lightfold/start, User=<user>,
                                        Restart=on-failure (and [Install] WantedBy=multi-user.target:
                                        the agent enables the live slot so it comes back on boot).
  /srv/<app>/current                    -> releases/<id> (the live release; static sites are
                                        served from current/<output_dir>).
  /srv/<app>/.lightfold/releases.json   the journal: a JSON list of {id, commit, dirty, status
                                        (building|live|previous|failed|rolled-back|retired), slot,
                                        env_hash, fingerprint, builder, deployed_by, created_at,
                                        activated_at, reason}, oldest first; atomic writes.
  /srv/<app>/.lightfold/audit.log       JSON lines, append-only: who did what, when.
  /srv/<app>/.lightfold/lock            the deploy lock: {holder, pid, pid_start, op, release,
                                        started_at, started_ts, ttl}.
  /srv/<app>/.lightfold/switch.json     intent of a switch in flight (reconciled by the next op).
  /srv/<app>/.lightfold/switch.lock     flock held by the one process switching this app.

Ops (request fields beyond op/app; "by" names the actor in the audit log everywhere):
  activate {release, health?, smoke_seconds=5, drain_seconds=2, keep=5, holder?}
  rollback {to?, health?, smoke_seconds, drain_seconds, keep, holder?}
  status {ttl?}   releases {}   cleanup {keep=5}   health {slot? | port?, health?}
  write_env {release, env: {NAME: value}}   journal_mark {release, status: building|failed, reason?,
  commit?, dirty?, fingerprint?, env_hash?, builder?, deployed_by?, created_at?}
  lock {holder, lock_op?, release?, ttl?, pid?, wait_seconds=0}   unlock {holder?, force?}
activate/rollback refuse while another holder has the deploy lock.

The truth about what is live is what nginx routes to (upstream.conf -> slot -> release); the
journal is brought in line with it at the start of every op (`reconciled` in the result).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

AGENT_VERSION = 3  # protocol.PROTOCOL_VERSION (copied until the agent is a package)
SLOTS = ("blue", "green")
STATUSES = ("building", "live", "previous", "failed", "rolled-back", "retired")
KEEP_DEFAULT = 5
LOCK_TTL_DEFAULT = 3600
JOURNAL_TAIL_LINES = 30
DETACHABLE_OPS = ("activate", "rollback", "cleanup")
# How long a switch waits for another one of the same app (a smoke window + drain + cleanup).
SWITCH_WAIT_SECONDS = 30

APP_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RELEASE_RE = re.compile(r"^[0-9]{14}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RELEASE_INFO_FIELDS = ("commit", "dirty", "fingerprint", "env_hash", "builder", "deployed_by", "created_at")


class AgentError(Exception):
    """A failure reported to the CLI as {ok: false, error, fix, log_tail, ...extra}."""

    def __init__(self, error: str, fix: str | None = None, log_tail: list[str] | None = None, **extra):
        super().__init__(error)
        self.error = error
        self.fix = fix
        self.log_tail = log_tail or []
        self.extra = extra

    def result(self) -> dict:
        return {"ok": False, "error": self.error, "fix": self.fix, "log_tail": self.log_tail, **self.extra}


# ---------------------------------------------------------------------------------------------
# Progress on stderr. Writes never fail the op: after a dropped SSH connection the pipe is gone
# but the switch must still finish.


def emit_event(event: str, msg: str) -> None:
    try:
        sys.stderr.write(json.dumps({"event": event, "msg": msg}) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def step(msg: str) -> None:
    emit_event("step", msg)


def warn(msg: str, warnings: list[str] | None = None) -> None:
    emit_event("warn", msg)
    if warnings is not None:
        warnings.append(msg)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------------
# The one door to the system: systemctl, nginx, journalctl, systemd-run go through here.


class Ran:
    """Exit code and output of one command."""

    __slots__ = ("code", "out", "err")

    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


def run(argv: list[str], timeout: float = 90) -> Ran:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return Ran(127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Ran(124, "", f"{' '.join(argv)}: timed out after {timeout:g}s")
    return Ran(p.returncode, p.stdout, p.stderr)


# ---------------------------------------------------------------------------------------------
# Layout


def root_from_env() -> str:
    return os.environ.get("LIGHTFOLD_ROOT") or "/"


class Layout:
    """Every path of one app, under a root prefix."""

    def __init__(self, app: str, root: str = "/"):
        self.app = app
        self.root = root
        self.etc = os.path.join(root, "etc", "lightfold", "apps", app)
        self.srv_root = os.path.join(root, "srv")
        self.srv = os.path.join(self.srv_root, app)
        self.meta = os.path.join(self.srv, ".lightfold")

    app_json = property(lambda self: os.path.join(self.etc, "app.json"))
    upstream = property(lambda self: os.path.join(self.etc, "upstream.conf"))
    releases_dir = property(lambda self: os.path.join(self.srv, "releases"))
    env_dir = property(lambda self: os.path.join(self.srv, "env"))
    slots_dir = property(lambda self: os.path.join(self.srv, "slots"))
    run_dir = property(lambda self: os.path.join(self.srv, "run"))
    current = property(lambda self: os.path.join(self.srv, "current"))
    journal = property(lambda self: os.path.join(self.meta, "releases.json"))
    audit_log = property(lambda self: os.path.join(self.meta, "audit.log"))
    lock = property(lambda self: os.path.join(self.meta, "lock"))
    lock_guard = property(lambda self: os.path.join(self.meta, "lock.guard"))
    switch_lock = property(lambda self: os.path.join(self.meta, "switch.lock"))
    switch_intent = property(lambda self: os.path.join(self.meta, "switch.json"))
    last_op = property(lambda self: os.path.join(self.meta, "last-op.json"))

    def release(self, rid: str) -> str:
        return os.path.join(self.releases_dir, rid)

    def release_info(self, rid: str) -> str:
        return os.path.join(self.release(rid), ".lightfold", "release.json")

    def start_script(self, rid: str) -> str:
        return os.path.join(self.release(rid), ".lightfold", "start")

    def env_file(self, rid: str) -> str:
        return os.path.join(self.env_dir, f"{rid}.env")

    def slot_link(self, slot: str) -> str:
        return os.path.join(self.slots_dir, slot)

    def run_env(self, slot: str) -> str:
        return os.path.join(self.run_dir, f"{slot}.env")

    def slot_names(self, slot: str) -> str:
        return os.path.join(self.slots_dir, f"{slot}.names")


def unit_name(app: str, slot: str) -> str:
    return f"lightfold-{app}@{slot}.service"


def other_slot(slot: str | None) -> str:
    return "green" if slot == "blue" else "blue"


# ---------------------------------------------------------------------------------------------
# Files


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: never half-written."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def write_json(path: str, data, mode: int = 0o644) -> None:
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(), mode)


def read_json(path: str, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AgentError(f"{path} is not valid JSON ({e})", "fix or remove the file, then retry") from e


def read_text(path: str) -> str | None:
    try:
        # newline="": env values may hold CR bytes that must not be translated.
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None


def swap_symlink(link: str, target: str) -> None:
    """Point `link` at `target` atomically (`ln -s` to a temp name + rename over the old link)."""
    directory = os.path.dirname(link)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(link)}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except IsADirectoryError as e:
        os.unlink(tmp)
        raise AgentError(f"{link} is a directory, not a symlink", f"move it away ({link}), then retry") from e
    fsync_dir(directory)


def link_release(link: str) -> str | None:
    """The release id a symlink points at, or None (missing, dangling name, not a release)."""
    try:
        rid = os.path.basename(os.readlink(link).rstrip("/"))
    except OSError:
        return None
    return rid if RELEASE_RE.match(rid) else None


def restore_link(link: str, rid: str | None, target_prefix: str) -> None:
    if rid is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
    else:
        swap_symlink(link, target_prefix + rid)


# ---------------------------------------------------------------------------------------------
# Env files (systemd.exec(5) EnvironmentFile=). Values are always double-quoted: inside double
# quotes systemd keeps every byte literally (newlines and CR included) except that a backslash
# before one of " \ ` $ is removed; it expands no $VAR. So escaping exactly those four characters
# makes every value arrive byte-exact. NUL cannot be carried by an environment at all.

ENV_ESCAPED = '"\\`$'


def check_env(env) -> dict[str, str]:
    if not isinstance(env, dict):
        raise AgentError("env must be a JSON object of NAME: value", "send {\"env\": {\"NAME\": \"value\"}}")
    clean: dict[str, str] = {}
    for name, value in env.items():
        if not ENV_NAME_RE.match(name):
            raise AgentError(
                f"invalid environment variable name {name!r}",
                "use letters, digits and _ only, not starting with a digit (e.g. DATABASE_URL)",
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise AgentError(f"the value of {name} must be a string", f"quote the value of {name}")
        value = str(value)
        if "\x00" in value:
            raise AgentError(f"the value of {name} contains a NUL byte", "environment values cannot hold NUL")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise AgentError(f"the value of {name} is not valid UTF-8", f"fix the value of {name}") from e
        clean[name] = value
    return clean


def quote_env_value(value: str) -> str:
    return '"' + "".join("\\" + c if c in ENV_ESCAPED else c for c in value) + '"'


def render_env_file(env: dict[str, str], header: str | None = None) -> str:
    lines = [f"# {header}"] if header else []
    lines += [f"{name}={quote_env_value(value)}" for name, value in check_env(env).items()]
    return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    """Parse EnvironmentFile syntax the way systemd does (a port of its env-file.c state machine)."""
    newline, whitespace, comments = "\n\r", " \t\n\r", "#;"
    env: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    key_ws = value_ws = None  # index where trailing whitespace starts, as systemd tracks it

    def push():
        k = "".join(key[:key_ws] if key_ws is not None else key)
        env[k] = "".join(value)

    for c in text.split("\x00", 1)[0]:
        if state == "pre_key":
            if c in comments:
                state = "comment"
            elif c not in whitespace:
                state, key, key_ws = "key", [c], None
        elif state == "key":
            if c in newline:
                state, key = "pre_key", []
            elif c == "=":
                state, value, value_ws = "pre_value", [], None
            else:
                if c not in whitespace:
                    key_ws = None
                elif key_ws is None:
                    key_ws = len(key)
                key.append(c)
        elif state == "pre_value":
            if c in newline:
                push()
                state, key = "pre_key", []
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in whitespace:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in newline:
                if value_ws is not None:
                    del value[value_ws:]
                push()
                state, key = "pre_key", []
            elif c == "\\":
                state, value_ws = "value_escape", None
            else:
                if c not in whitespace:
                    value_ws = None
                elif value_ws is None:
                    value_ws = len(value)
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in newline:
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in ENV_ESCAPED:
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in newline:
                state = "pre_key"
        elif state == "comment_escape":
            state = "pre_key" if c in newline else "comment"
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        if state == "value" and value_ws is not None:
            del value[value_ws:]
        push()
    return env


def env_hash(env: dict[str, str]) -> str:
    """sha256 of the env as canonical JSON (sorted keys, UTF-8): equal envs, equal hashes."""
    import hashlib

    canonical = json.dumps(env, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def slot_env(snapshot_text: str | None, port: int) -> dict[str, str]:
    """A slot's environment: the release's snapshot, then PORT (PORT always wins)."""
    env = parse_env_file(snapshot_text) if snapshot_text else {}
    env.pop("PORT", None)
    env["PORT"] = str(port)
    return env


# ---------------------------------------------------------------------------------------------
# Journal: the list of releases and their status. Pure functions over the list, plus load/save.


def load_journal(lay: Layout) -> list[dict]:
    entries = read_json(lay.journal, [])
    if not isinstance(entries, list):
        raise AgentError(f"{lay.journal} is not a list of releases", "fix or remove the file, then retry")
    return sorted(entries, key=lambda e: e["id"])


def save_journal(lay: Layout, entries: list[dict]) -> None:
    os.makedirs(lay.meta, mode=0o755, exist_ok=True)
    write_json(lay.journal, sorted(entries, key=lambda e: e["id"]))


def new_entry(rid: str) -> dict:
    return {
        "id": rid, "commit": None, "dirty": None, "status": "building", "slot": None, "env_hash": None,
        "fingerprint": None, "builder": None, "deployed_by": None, "created_at": None,
        "activated_at": None, "reason": None,
    }


def find_entry(entries: list[dict], rid: str) -> dict | None:
    return next((e for e in entries if e["id"] == rid), None)


def upsert_entry(entries: list[dict], rid: str, **fields) -> dict:
    entry = find_entry(entries, rid)
    if entry is None:
        entry = new_entry(rid)
        entries.append(entry)
        entries.sort(key=lambda e: e["id"])
    entry.update(fields)
    return entry


def live_entry(entries: list[dict]) -> dict | None:
    live = [e for e in entries if e["status"] == "live"]
    return live[-1] if live else None


def record_activation(entries: list[dict], rid: str, slot: str | None, at: str, abandon: str = "previous") -> None:
    """`rid` went live. The release it replaced becomes `abandon` ("previous" after a deploy,
    "rolled-back" after a rollback); exactly one release older than the live one stays
    "previous" (the rollback target cleanup never deletes); other old ones are "retired"."""
    old = live_entry(entries)
    for e in entries:
        if e["status"] == "live" and e["id"] != rid:
            e["status"] = "retired"
    if old is not None and old["id"] != rid:
        old["status"] = abandon
        old["slot"] = None
    upsert_entry(entries, rid, status="live", slot=slot, activated_at=at, reason=None)
    replaced = old is not None and old["id"] != rid
    previous = old["id"] if replaced and abandon == "previous" else None
    if previous is None:
        older = [e for e in entries if e["id"] < rid and e["status"] in ("previous", "retired")]
        previous = older[-1]["id"] if older else None
    for e in entries:
        if e["status"] == "previous" and e["id"] != previous:
            e["status"] = "retired"
        elif e["id"] == previous:
            e["status"] = "previous"


def rollback_target(entries: list[dict], to: str | None = None, available: set[str] | None = None) -> dict:
    """`to`; else the "previous" release (what was live before); else the newest release older than
    the live one that served well (retired). Failed and rolled-back releases are never picked, nor,
    when `available` is given, ones no longer on disk."""
    live = live_entry(entries)
    if to is not None:
        target = find_entry(entries, to)
        if target is None:
            raise AgentError(f"release {to} is not in this server's journal", "pick one from `lightfold releases`")
        if live is not None and target["id"] == live["id"]:
            raise AgentError(f"release {to} is already live", "nothing to do")
        if target["status"] == "building":
            raise AgentError(f"release {to} never finished building", "pick another from `lightfold releases`")
        return target
    if live is None:
        raise AgentError("nothing is live on this server, so there is nothing to roll back from",
                         "deploy first with `lightfold deploy`")
    def usable(e):
        return e["id"] != live["id"] and (available is None or e["id"] in available)

    previous = [e for e in entries if e["status"] == "previous" and usable(e)]
    if previous:
        return previous[-1]
    older = [e for e in entries if e["id"] < live["id"] and e["status"] == "retired" and usable(e)]
    if not older:
        raise AgentError(
            f"no earlier good release to roll back to (live: {live['id']})",
            "failed and rolled-back releases are skipped; deploy a fix, or pass --to <release>",
        )
    return older[-1]


def cleanup_selection(entries: list[dict], ids_on_disk: set[str], keep: int = KEEP_DEFAULT) -> list[str]:
    """Release ids to delete: all but the newest `keep`, never the live, previous or a building
    one, nor a release unknown to the journal that is newer than the live one (a push in flight)."""
    journal_ids = {e["id"] for e in entries}
    every = sorted(journal_ids | ids_on_disk)
    protected = set(every[-keep:]) if keep > 0 else set()
    protected |= {e["id"] for e in entries if e["status"] in ("live", "previous", "building")}
    live = live_entry(entries)
    protected |= {rid for rid in ids_on_disk - journal_ids if live is None or rid > live["id"]}
    return [rid for rid in every if rid not in protected]


def audit(lay: Layout, op: str, by: str | None, **detail) -> None:
    record = {"at": now_iso(), "op": op, "app": lay.app, "by": by or default_actor(), **detail}
    os.makedirs(lay.meta, exist_ok=True)
    fd = os.open(lay.audit_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        # One write per record with O_APPEND: concurrent writers never interleave within a line.
        os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
    finally:
        os.close(fd)


def default_actor() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "root"


# ---------------------------------------------------------------------------------------------
# The deploy lock: taken by the CLI around a deploy/rollback, visible to everyone.


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


# ---------------------------------------------------------------------------------------------
# nginx upstream include


UPSTREAM_RE = re.compile(r"^\s*server\s+127\.0\.0\.1:(\d+)\b", re.M)


def render_upstream(port: int, slot: str, release: str, backup_port: int | None = None) -> str:
    """The live slot first (the agent reads it back from the first `server` line). max_fails=0: a
    single error never takes the live slot out of rotation. During a switch the old slot is a
    `backup`, so if the new one crashes in its smoke window nginx retries on the old one until the
    agent flips back; it is dropped once the old slot stops."""
    text = (
        "# Managed by the lightfold agent; rewritten on every switch.\n"
        f"# live slot: {slot}, release: {release}\n"
        f"server 127.0.0.1:{int(port)} max_fails=0;\n"
    )
    if backup_port is not None:
        text += f"server 127.0.0.1:{int(backup_port)} backup;\n"
    return text


def upstream_port(text: str | None) -> int | None:
    m = UPSTREAM_RE.search(text or "")
    return int(m.group(1)) if m else None


def slot_for_port(ports: dict, port: int | None) -> str | None:
    return next((s for s in SLOTS if port is not None and ports.get(s) == port), None)


# ---------------------------------------------------------------------------------------------
# Health: plain HTTP/1.1 GET to 127.0.0.1:<port>, with the Host header the app expects.


def http_check(port: int, path: str = "/", host: str | None = None, timeout: float = 5.0,
               expect=200) -> dict:
    """One GET. Result: healthy, status_code, error (refused|timeout|...), elapsed_ms."""
    import http.client  # imported here: it is the slowest import and most ops never need it

    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=timeout)
    result = {"healthy": False, "status_code": None, "error": None, "port": int(port), "path": path}
    try:
        headers = {"Host": host, "User-Agent": "lightfold-agent"} if host else {"User-Agent": "lightfold-agent"}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(65536)
        result["status_code"] = resp.status
        expected = expect if isinstance(expect, list) else [expect]
        result["healthy"] = resp.status in [int(s) for s in expected]
    except ConnectionRefusedError:
        result["error"] = "refused"
    except TimeoutError:
        result["error"] = "timeout"
    except (OSError, http.client.HTTPException) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return result


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(port))) == 0


def parse_proc_net_tcp(text: str, ipv6: bool = False) -> dict[int, tuple[str, int]]:
    """Listening sockets from /proc/net/tcp{,6}: {inode: (address, port)}."""
    found = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":
            continue
        addr_hex, port_hex = fields[1].split(":")
        found[int(fields[9])] = (decode_proc_addr(addr_hex, ipv6), int(port_hex, 16))
    return found


def decode_proc_addr(hexaddr: str, ipv6: bool) -> str:
    raw = bytes.fromhex(hexaddr)
    # The kernel prints each 32-bit word in host (little-endian) order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET6 if ipv6 else socket.AF_INET, raw)


def listening_addresses(pids: list[int]) -> list[str]:
    """Where these processes listen ("127.0.0.1:3000", "[::]:8080"), read from /proc."""
    listening: dict[int, tuple[str, int, bool]] = {}
    for name, v6 in (("tcp", False), ("tcp6", True)):
        text = read_text(f"/proc/net/{name}") or ""
        for inode, (addr, port) in parse_proc_net_tcp(text, v6).items():
            listening[inode] = (addr, port, v6)
    found = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inode = int(target[8:-1])
                    if inode in listening:
                        addr, port, v6 = listening[inode]
                        found.add(f"[{addr}]:{port}" if v6 else f"{addr}:{port}")
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# systemd (thin: the e2e tests on real machines cover these)


SHOW_PROPS = ("ActiveState", "SubState", "Result", "NRestarts", "MainPID", "ExecMainStatus", "ControlGroup")


def parse_systemctl_show(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def unit_state(unit: str) -> dict:
    r = run(["systemctl", "show", unit, "--property=" + ",".join(SHOW_PROPS)])
    props = parse_systemctl_show(r.out) if r.code == 0 else {}
    return {
        "active_state": props.get("ActiveState", "unknown"),
        "sub_state": props.get("SubState", "unknown"),
        "result": props.get("Result"),
        "n_restarts": int(props["NRestarts"]) if props.get("NRestarts", "").isdigit() else None,
        "main_pid": int(props["MainPID"]) if props.get("MainPID", "").isdigit() else None,
        "exit_status": props.get("ExecMainStatus"),
        "cgroup": props.get("ControlGroup") or None,
    }


def unit_crashed(state: dict) -> bool:
    return state["active_state"] in ("failed", "inactive") or state["sub_state"] == "auto-restart"


def unit_pids(state: dict) -> list[int]:
    pids = []
    if state.get("cgroup"):
        text = read_text(f"/sys/fs/cgroup{state['cgroup']}/cgroup.procs") or ""
        pids = [int(p) for p in text.split()]
    if not pids and state.get("main_pid"):
        pids = [state["main_pid"]]
    return pids


def journal_tail(unit: str, lines: int = JOURNAL_TAIL_LINES) -> list[str]:
    r = run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager"], timeout=30)
    return (r.out or r.err).splitlines()[-lines:]


def systemctl(*args: str) -> Ran:
    return run(["systemctl", *args])


NGINX_WORKER = b"nginx: worker process"


def nginx_workers() -> set[int]:
    """Worker processes that accept new connections (a worker told to quit retitles itself
    `nginx: worker process is shutting down` and closes its listening sockets)."""
    pids = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0].strip()
            except OSError:
                continue
            if title == NGINX_WORKER:
                pids.add(int(name))
    return pids


def reload_nginx(settle_seconds: float = 10) -> Ran:
    """`systemctl reload nginx` only signals the master and returns; the old workers keep accepting
    connections until the master has started new ones (and, by design, 100 ms more). Return once no
    worker of the old configuration accepts, so "traffic moved" is true when we say it."""
    before = nginx_workers()
    r = systemctl("reload", "nginx")
    if r.code != 0 or not before:
        return r
    end = time.monotonic() + settle_seconds
    while before & nginx_workers():
        if time.monotonic() >= end:
            return Ran(1, r.out, f"nginx did not take the new configuration within {settle_seconds:g}s "
                                 "(its old workers still accept connections); see `journalctl -u nginx`")
        time.sleep(0.02)
    return r


# ---------------------------------------------------------------------------------------------
# App config


def load_app_config(lay: Layout, req: dict) -> dict:
    cfg = read_json(lay.app_json)
    if cfg is None:
        raise AgentError(
            f"{lay.app} is not configured on this server ({lay.app_json} is missing)",
            "run `lightfold configure` for this target",
        )
    health = {"path": "/", "status": 200, "timeout": 60, "host": None}
    health.update({k: v for k, v in (cfg.get("health") or {}).items() if v is not None})
    health.update({k: v for k, v in (req.get("health") or {}).items() if v is not None})
    health["host"] = health.get("host") or cfg.get("domain")
    cfg["health"] = health
    cfg["static"] = bool(cfg.get("static"))
    if not cfg["static"]:
        ports = cfg.get("ports") or {}
        if not all(isinstance(ports.get(s), int) for s in SLOTS):
            raise AgentError(f"{lay.app_json} has no ports for blue and green", "run `lightfold configure` again")
    return cfg


def require_release_id(req: dict, field: str = "release") -> str:
    rid = req.get(field)
    if not isinstance(rid, str) or not RELEASE_RE.match(rid):
        raise AgentError(f"{field} must be a release id like 20250101120000, got {rid!r}",
                         "pass the id printed by push / `lightfold releases`")
    return rid


def check_release_ready(lay: Layout, rid: str, cfg: dict) -> None:
    if not os.path.isdir(lay.release(rid)):
        raise AgentError(f"release {rid} is not on the server ({lay.release(rid)} is missing)",
                         "push it again with `lightfold push`")
    if cfg["static"]:
        out = os.path.join(lay.release(rid), cfg.get("output_dir") or "")
        if not os.path.isdir(out):
            raise AgentError(f"release {rid} has no build output at {cfg.get('output_dir')}/",
                             "check the build command and output dir (`lightfold config`), then deploy again")
        return
    start = lay.start_script(rid)
    if not os.path.isfile(start) or not os.access(start, os.X_OK):
        raise AgentError(f"release {rid} has no executable .lightfold/start",
                         "push writes it from the start command; deploy again with `lightfold push --force`")


def release_info(lay: Layout, rid: str) -> dict:
    info = read_json(lay.release_info(rid), {})
    return info if isinstance(info, dict) else {}


# ---------------------------------------------------------------------------------------------
# What is live, and bringing the journal in line with it


def actual_live(lay: Layout, cfg: dict) -> tuple[str | None, str | None]:
    """(release, slot) that traffic really reaches: upstream.conf for slot apps, current for static."""
    if cfg["static"]:
        return link_release(lay.current), None
    slot = slot_for_port(cfg["ports"], upstream_port(read_text(lay.upstream)))
    if slot is None:
        return None, None
    rid = link_release(lay.slot_link(slot))
    return (rid, slot) if rid and os.path.isdir(lay.release(rid)) else (None, None)


def reconcile(lay: Layout, cfg: dict, by: str | None) -> list[str]:
    """Finish the bookkeeping of a switch that was interrupted (agent killed, machine rebooted)."""
    notes: list[str] = []
    entries = load_journal(lay)
    before = json.dumps(entries, sort_keys=True)
    rid, slot = actual_live(lay, cfg)
    intent = read_json(lay.switch_intent)
    if isinstance(intent, dict):
        if rid == intent.get("to"):
            record_activation(entries, rid, slot, intent.get("started_at") or now_iso(),
                              "rolled-back" if intent.get("op") == "rollback" else "previous")
            notes.append(f"completed the interrupted {intent.get('op')} of {rid}")
        elif intent.get("op") == "activate" and intent.get("to"):
            upsert_entry(entries, intent["to"], status="failed", slot=None,
                         reason="switch interrupted before traffic moved")
            notes.append(f"marked the interrupted activation of {intent['to']} failed")
        os.unlink(lay.switch_intent)
    live = live_entry(entries)
    if rid is not None and (live is None or live["id"] != rid or live.get("slot") != slot):
        if live is not None and live["id"] != rid and live["id"] > rid:
            live["status"], live["reason"] = "failed", f"traffic is on {rid}; its switch was interrupted"
        record_activation(entries, rid, slot, (find_entry(entries, rid) or {}).get("activated_at") or now_iso())
        notes.append(f"nginx routes to {rid}" + (f" (slot {slot})" if slot else "") + "; journal updated")
    if json.dumps(entries, sort_keys=True) != before:
        save_journal(lay, entries)
    if rid is not None and link_release(lay.current) != rid:
        swap_symlink(lay.current, f"releases/{rid}")
        notes.append(f"current now points at {rid}")
    if notes:
        audit(lay, "reconcile", by, notes=notes)
        for n in notes:
            warn(n)
    return notes


# ---------------------------------------------------------------------------------------------
# The switch


@contextlib.contextmanager
def switch_mutex(lay: Layout, wait_seconds: float = 10):
    """One switch per app at a time; the kernel drops the flock if the agent dies, so it never goes stale."""
    os.makedirs(lay.meta, mode=0o755, exist_ok=True)
    fd = os.open(lay.switch_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as e:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise AgentError(f"another switch of {lay.app} is in progress ({holder or 'unknown'})",
                                     "wait for it to finish (`lightfold status`), then retry") from e
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {now_iso()}".encode(), 0)
        yield
    finally:
        os.close(fd)


def switch_in_progress(lay: Layout) -> bool:
    if not os.path.exists(lay.switch_lock):
        return False
    try:
        with flocked(lay.switch_lock, blocking=False):
            return False
    except BlockingIOError:
        return True


def start_slot(lay: Layout, cfg: dict, slot: str, rid: str) -> None:
    unit, port = unit_name(lay.app, slot), cfg["ports"][slot]
    systemctl("stop", unit)
    swap_symlink(lay.slot_link(slot), f"../releases/{rid}")
    env = slot_env(read_text(lay.env_file(rid)), port)
    write_atomic(lay.run_env(slot), render_env_file(env, f"slot {slot}, release {rid}").encode(), 0o600)
    # The names alone (no values: world-readable), for a start script that must pass exactly the
    # release's variables on (the dockerfile builder's `docker run -e NAME`).
    write_atomic(lay.slot_names(slot), "".join(f"{n}\n" for n in sorted(env) if n != "PORT").encode(), 0o644)
    if port_in_use(port):
        raise AgentError(
            f"port {port} (slot {slot}) is already in use by another process",
            f"find it with `ss -ltnp 'sport = :{port}'` and stop it, or pick other ports with `lightfold configure`",
        )
    systemctl("reset-failed", unit)
    r = systemctl("start", unit)
    if r.code != 0:
        raise AgentError(f"systemd could not start {unit}: {r.err.strip()}",
                         "run `lightfold configure` to reinstall the unit, then deploy again",
                         log_tail=journal_tail(unit))


def stop_slot(app: str, slot: str, warnings: list[str] | None = None) -> None:
    r = systemctl("stop", unit_name(app, slot))
    if r.code != 0:
        warn(f"could not stop {unit_name(app, slot)}: {r.err.strip()}", warnings)


def wait_healthy(lay: Layout, cfg: dict, slot: str, rid: str) -> dict:
    """Poll the new slot directly on its port until it answers the expected status: every 50 ms
    for the first 2 s (a refused connect costs nothing, and every moment between "up" and "seen
    up" delays the switch), then backing off to once a second. systemd is asked about the unit
    (a crash or a restart ends the wait) at most every 0.25 s: that is a process spawn."""
    h, unit, port = cfg["health"], unit_name(lay.app, slot), cfg["ports"][slot]
    delay = 0.05
    started = time.monotonic()
    deadline = started + float(h["timeout"])
    attempts, ever_connected, last, first_restarts = 0, False, None, None
    state, next_unit_check = None, 0.0
    while True:
        if time.monotonic() >= next_unit_check:
            state = unit_state(unit)
            next_unit_check = time.monotonic() + 0.25
            if first_restarts is None:
                first_restarts = state["n_restarts"]
            restarted = state["n_restarts"] is not None and state["n_restarts"] != first_restarts
            if unit_crashed(state) or restarted:
                raise AgentError(
                    f"release {rid} exited while starting in slot {slot} ({unit}: {state['active_state']}/"
                    f"{state['sub_state']}, result {state['result']}, exit status {state['exit_status']})",
                    "read the log lines below, fix the app, and deploy again; the live release keeps serving",
                    log_tail=journal_tail(unit),
                )
        attempts += 1
        remaining = deadline - time.monotonic()
        last = http_check(port, h["path"], h["host"], max(0.5, min(5.0, remaining)), h["status"])
        ever_connected = ever_connected or last["error"] != "refused"
        if last["healthy"]:
            return {"status_code": last["status_code"], "attempts": attempts,
                    "seconds": round(time.monotonic() - started, 2)}
        if time.monotonic() >= deadline:
            raise unhealthy_error(lay, cfg, slot, rid, unit_state(unit), last, ever_connected)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        if time.monotonic() - started > 2:
            delay = min(1.0, delay * 1.5)


def unhealthy_error(lay: Layout, cfg: dict, slot: str, rid: str, state: dict, last: dict,
                    ever_connected: bool) -> AgentError:
    h, unit, port = cfg["health"], unit_name(lay.app, slot), cfg["ports"][slot]
    tail = journal_tail(unit)
    where = f"GET http://127.0.0.1:{port}{h['path']}" + (f" (Host: {h['host']})" if h["host"] else "")
    if not ever_connected:
        listens = listening_addresses(unit_pids(state))
        seen = f" (it listens on {', '.join(listens)})" if listens else ""
        return AgentError(
            f"release {rid} is running in slot {slot} but nothing accepts connections on 127.0.0.1:{port} "
            f"after {h['timeout']}s{seen}: the app probably ignores $PORT",
            "make the start command listen on $PORT on 127.0.0.1 or 0.0.0.0 (e.g. `--port $PORT`, `-p $PORT`, "
            "`--bind 127.0.0.1:$PORT`, or read process.env.PORT / os.environ['PORT']), then deploy again",
            log_tail=tail, listening=listens,
        )
    if last["status_code"] is not None:
        fix = "make the health path answer, or set it with `lightfold config` (health_path, health_status)"
        if last["status_code"] == 400:
            fix = (f"the app rejected the Host header {h['host'] or '127.0.0.1'!r}: allow it "
                   "(e.g. Django ALLOWED_HOSTS, Rails config.hosts) or set health_host")
        return AgentError(f"health check failed: {where} answered {last['status_code']}, expected {h['status']}",
                          fix, log_tail=tail)
    return AgentError(f"health check failed: {where} did not answer within {h['timeout']}s ({last['error']})",
                      "make sure the app answers HTTP quickly on its health path, or raise health_timeout",
                      log_tail=tail)


def flip_upstream(lay: Layout, port: int, slot: str, rid: str, backup_port: int | None = None) -> str | None:
    """Point nginx at `port`; returns the old upstream text. Validated with nginx -t, else restored."""
    old = read_text(lay.upstream)
    write_atomic(lay.upstream, render_upstream(port, slot, rid, backup_port).encode())
    for argv in (["nginx", "-t"], ["systemctl", "reload", "nginx"]):
        r = run(argv) if argv[0] == "nginx" else reload_nginx()
        if r.code != 0:
            restore_upstream(lay, old)
            if argv[0] == "systemctl":
                reload_nginx()
            raise AgentError(f"`{' '.join(argv)}` failed, traffic stays on the old release",
                             "run `nginx -t` on the server to see the error, fix the nginx config, deploy again",
                             log_tail=r.err.strip().splitlines()[-JOURNAL_TAIL_LINES:])
    return old


def drop_backup(lay: Layout, port: int, slot: str, rid: str, warnings: list[str]) -> None:
    """Before the old slot stops (and later starts the next release), take it out of nginx."""
    try:
        flip_upstream(lay, port, slot, rid)
    except AgentError as e:
        warn(f"could not drop the old slot from nginx: {e.error}", warnings)


def restore_upstream(lay: Layout, old: str | None) -> None:
    """Put the old include back. With none before (first deploy) the new one stays, because nginx
    fails without the file; the caller unlinks the failed slot so nothing counts as live."""
    if old is not None:
        write_atomic(lay.upstream, old.encode())


def smoke_failure(unit: str, baseline: int | None, seconds: float) -> str | None:
    """Watch the new slot: it must stay active without systemd restarting it."""
    end = time.monotonic() + seconds
    while True:
        st = unit_state(unit)
        if st["active_state"] != "active":
            return f"{unit} went {st['active_state']}/{st['sub_state']} during the {seconds:g}s smoke window"
        if st["n_restarts"] != baseline:
            return f"systemd restarted {unit} during the {seconds:g}s smoke window"
        if time.monotonic() >= end:
            return None
        # Polled often: every moment a crashed new slot stays live costs retried requests.
        time.sleep(max(0.0, min(0.25, end - time.monotonic())))


def write_intent(lay: Layout, op: str, old: str | None, new: str) -> None:
    write_json(lay.switch_intent, {"op": op, "from": old, "to": new, "started_at": now_iso()})


def clear_intent(lay: Layout) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lay.switch_intent)


def switch_to(lay: Layout, cfg: dict, rid: str, req: dict, op: str, on_switched=None) -> dict:
    """The blue/green switch. `op` is "activate" (failure marks the release failed; the old live one
    becomes previous) or "rollback" (the abandoned release becomes rolled-back)."""
    by = req.get("by") or req.get("holder")
    try:
        check_release_ready(lay, rid, cfg)
    except AgentError as e:
        if os.path.isdir(lay.release(rid)):
            fail_before_flip(lay, rid, op, by, e)
        raise
    old_rid, old_slot = actual_live(lay, cfg)
    if old_rid == rid:
        step(f"release {rid} is already live; nothing to switch")
        return {"release": rid, "slot": old_slot, "already_live": True}
    if cfg["static"]:
        return switch_static(lay, cfg, rid, old_rid, req, op, by)
    started = time.monotonic()
    warnings: list[str] = []
    slot = other_slot(old_slot)
    port, unit = cfg["ports"][slot], unit_name(lay.app, slot)
    try:
        step(f"starting {rid} in slot {slot} (port {port})")
        start_slot(lay, cfg, slot, rid)
        step(f"waiting for {unit} to answer GET {cfg['health']['path']} (up to {cfg['health']['timeout']}s)")
        health = wait_healthy(lay, cfg, slot, rid)
        baseline = unit_state(unit)["n_restarts"]
        step(f"healthy after {health['seconds']}s; switching nginx to slot {slot}")
        write_intent(lay, op, old_rid, rid)
        backup = cfg["ports"][old_slot] if old_slot else None
        old_upstream = flip_upstream(lay, port, slot, rid, backup)
    except Exception as e:  # noqa: BLE001 - whatever broke, the old slot must keep serving
        err = e if isinstance(e, AgentError) else AgentError(
            f"switch failed before traffic moved: {type(e).__name__}: {e}", "this is a lightfold bug; please report it")
        clear_intent(lay)
        stop_slot(lay.app, slot)
        if old_rid is None:
            restore_link(lay.slot_link(slot), None, "")
        fail_before_flip(lay, rid, op, by, err)
        if err is e:
            raise
        raise err from e
    flipped = time.monotonic()
    entries_before = load_journal(lay)
    swap_symlink(lay.current, f"releases/{rid}")
    entries = [dict(e) for e in entries_before]
    info = {k: v for k, v in release_info(lay, rid).items() if k in RELEASE_INFO_FIELDS}
    upsert_entry(entries, rid, **info)
    record_activation(entries, rid, slot, now_iso(), "rolled-back" if op == "rollback" else "previous")
    save_journal(lay, entries)
    clear_intent(lay)
    smoke_seconds = float(req.get("smoke_seconds", 5))
    drain = float(req.get("drain_seconds", 2))
    if on_switched is not None:
        on_switched({"release": rid, "slot": slot, "port": port, "previous": old_rid, "previous_slot": old_slot,
                     "health": health, "continuing": {"smoke_seconds": smoke_seconds, "drain_seconds": drain},
                     "timings": {"healthy_s": health["seconds"], "switched_s": round(flipped - started, 2)}})
    step(f"traffic is on {rid}; watching it for {smoke_seconds:g}s")
    failure = smoke_failure(unit, baseline, smoke_seconds)
    if failure:
        flip_back(lay, rid, slot, old_rid, old_upstream, entries_before, failure, op)
        raise AgentError(f"{failure}; traffic is back on {old_rid or 'nothing'}",
                         "read the log lines below, fix the crash, and deploy again", log_tail=journal_tail(unit),
                         flipped_back=True)
    if old_slot is not None:
        step(f"draining slot {old_slot} for {drain:g}s, then stopping it")
        time.sleep(drain)
        drop_backup(lay, port, slot, rid, warnings)
        stop_slot(lay.app, old_slot, warnings)
    elif unit_state(unit_name(lay.app, other_slot(slot)))["active_state"] == "active":
        stop_slot(lay.app, other_slot(slot), warnings)
    enable_boot_slot(lay.app, slot, warnings)
    audit(lay, op, by, release=rid, slot=slot, previous=old_rid, outcome="live")
    removed = run_cleanup(lay, int(req.get("keep", KEEP_DEFAULT)), by, warnings)
    return {
        "release": rid, "slot": slot, "port": port, "previous": old_rid, "previous_slot": old_slot,
        "health": health, "cleanup": {"removed": removed}, "warnings": warnings,
        "timings": {"healthy_s": health["seconds"], "switched_s": round(flipped - started, 2),
                    "total_s": round(time.monotonic() - started, 2)},
    }


def fail_before_flip(lay: Layout, rid: str, op: str, by: str | None, e: AgentError) -> None:
    """Record a failed switch. A rollback target keeps its status: it served well before."""
    entries = load_journal(lay)
    if op == "activate":
        upsert_entry(entries, rid, status="failed", slot=None, reason=e.error)
        save_journal(lay, entries)
    audit(lay, op, by, release=rid, outcome="failed", reason=e.error)


def flip_back(lay: Layout, rid: str, slot: str, old_rid: str | None, old_upstream: str | None,
              entries_before: list[dict], failure: str, op: str) -> None:
    warn(f"{failure}; switching traffic back")
    restore_upstream(lay, old_upstream)
    reload_nginx()
    restore_link(lay.current, old_rid, "releases/")
    entries = [dict(e) for e in entries_before]
    if op == "activate":
        upsert_entry(entries, rid, status="failed", slot=None, reason=failure)
    save_journal(lay, entries)
    stop_slot(lay.app, slot)
    if old_rid is None:
        restore_link(lay.slot_link(slot), None, "")
    audit(lay, op, None, release=rid, outcome="flipped-back", reason=failure)


def enable_boot_slot(app: str, slot: str, warnings: list[str]) -> None:
    """The live slot starts on boot, the idle one does not."""
    for verb, s in (("enable", slot), ("disable", other_slot(slot))):
        # --no-reload: only the wants/ symlinks change, which boot reads; the implicit daemon-reload
        # cost ~0.2 s per call.
        r = systemctl(verb, "--quiet", "--no-reload", unit_name(app, s))
        if r.code != 0:
            warn(f"could not {verb} {unit_name(app, s)}: {r.err.strip()}", warnings)


def switch_static(lay: Layout, cfg: dict, rid: str, old_rid: str | None, req: dict, op: str,
                  by: str | None) -> dict:
    warnings: list[str] = []
    step(f"pointing current at {rid}")
    swap_symlink(lay.current, f"releases/{rid}")
    r = reload_nginx()
    if r.code != 0:
        restore_link(lay.current, old_rid, "releases/")
        e = AgentError("`systemctl reload nginx` failed; current points at the old release again",
                       "run `nginx -t` on the server to see the error", log_tail=r.err.strip().splitlines())
        fail_before_flip(lay, rid, op, by, e)
        raise e
    entries = load_journal(lay)
    info = {k: v for k, v in release_info(lay, rid).items() if k in RELEASE_INFO_FIELDS}
    upsert_entry(entries, rid, **info)
    record_activation(entries, rid, None, now_iso(), "rolled-back" if op == "rollback" else "previous")
    save_journal(lay, entries)
    audit(lay, op, by, release=rid, previous=old_rid, outcome="live")
    removed = run_cleanup(lay, int(req.get("keep", KEEP_DEFAULT)), by, warnings)
    return {"release": rid, "slot": None, "previous": old_rid, "cleanup": {"removed": removed},
            "warnings": warnings}


def release_ids_on_disk(lay: Layout) -> set[str]:
    ids = set()
    for directory, suffix in ((lay.releases_dir, ""), (lay.env_dir, ".env")):
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(directory):
                rid = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
                if RELEASE_RE.match(rid) and (not suffix or name.endswith(suffix)):
                    ids.add(rid)
    return ids


def remove_image(app: str, rid: str) -> None:
    """The dockerfile builder tags each release's image lightfold-<app>:<id>; untag it with its
    release (the image itself goes once no other tag, e.g. an env-only copy's, uses it)."""
    if root_from_env() == "/" and shutil.which("docker"):
        with contextlib.suppress(Exception):
            run(["docker", "rmi", f"lightfold-{app}:{rid}"], timeout=60)


def run_cleanup(lay: Layout, keep: int, by: str | None, warnings: list[str] | None = None) -> list[str]:
    entries = load_journal(lay)
    doomed = cleanup_selection(entries, release_ids_on_disk(lay), keep)
    for rid in doomed:
        try:
            shutil.rmtree(lay.release(rid), ignore_errors=False)
        except FileNotFoundError:
            pass
        except OSError as e:
            warn(f"could not delete release {rid}: {e}", warnings)
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lay.env_file(rid))
        remove_image(lay.app, rid)
    if doomed:
        save_journal(lay, [e for e in load_journal(lay) if e["id"] not in doomed])
        audit(lay, "cleanup", by, removed=doomed)
        step(f"removed {len(doomed)} old release(s): {', '.join(doomed)}")
    return doomed


# ---------------------------------------------------------------------------------------------
# Ops. Each takes the request and the layout and returns the result's data.


def op_activate(req: dict, lay: Layout) -> dict:
    cfg = load_app_config(lay, req)
    rid = require_release_id(req)
    with switch_mutex(lay, SWITCH_WAIT_SECONDS):
        check_deploy_lock(lay, req)
        notes = reconcile(lay, cfg, req.get("by"))
        result = switch_to(lay, cfg, rid, req, "activate")
    return {**result, "reconciled": notes}


def op_rollback(req: dict, lay: Layout) -> dict:
    cfg = load_app_config(lay, req)
    to = require_release_id(req, "to") if req.get("to") is not None else None
    lock = replaced = None
    if req.get("lock"):  # held by this process for the whole op, smoke window and drain included
        holder = req.get("holder") or req.get("by") or default_actor()
        req = {**req, "holder": holder}
        lock, replaced, _ = acquire_lock(lay, holder, "rollback", to, float(req["ttl"]) if req.get("ttl") else None,
                                      os.getpid(), float(req.get("wait_seconds") or 0))
    try:
        with switch_mutex(lay, SWITCH_WAIT_SECONDS):
            if replaced:
                # Inside the switch mutex: a switch the dead holder started has finished by now,
                # so only releases that will never finish are still "building".
                fail_interrupted_builds(lay)
            check_deploy_lock(lay, req)
            notes = reconcile(lay, cfg, req.get("by"))
            entries = load_journal(lay)
            live = live_entry(entries)
            available = {rid for rid in release_ids_on_disk(lay) if os.path.isdir(lay.release(rid))}
            target = rollback_target(entries, to, available)
            step(f"rolling back from {live['id'] if live else 'nothing'} to {target['id']}")
            extra = {"rolled_back_from": live["id"] if live else None, "reconciled": notes,
                     "lock_taken": lock is not None}
            announce = early_announcer(lay, "rollback", extra, lock) if req.get("early_result") else None
            result = switch_to(lay, cfg, target["id"], req, "rollback", on_switched=announce)
    finally:
        if lock is not None:
            release_lock(lay, lock)
    return {**result, **extra, "entry": find_entry(load_journal(lay), result["release"])}


def early_announcer(lay: Layout, op: str, extra: dict, lock: dict | None):
    """A `switch_to` hook that writes the result as soon as traffic moved (`"early": true`), so
    the caller may return while this process finishes the smoke window and the drain; the final
    outcome lands in last-op.json (and `status`) as always. The deploy lock says how long that
    takes, so a deploy started meanwhile waits instead of refusing."""
    def announce(data: dict) -> None:
        if lock is not None:
            rest = data["continuing"]
            mark_lock_finishing(lay, lock, rest["smoke_seconds"] + rest["drain_seconds"] + 10)
        entry = find_entry(load_journal(lay), data["release"])
        write_result({"ok": True, "op": op, "app": lay.app, "early": True, "agent_version": AGENT_VERSION,
                      **data, **extra, "entry": entry})
    return announce


def fail_interrupted_builds(lay: Layout) -> None:
    """After replacing a dead holder's lock: the release it was building never finishes."""
    entries = load_journal(lay)
    building = [e["id"] for e in entries if e.get("status") == "building"]
    for rid in building:
        upsert_entry(entries, rid, status="failed", reason="its deploy was interrupted (the deploying process is gone)")
    if building:
        save_journal(lay, entries)
        warn(f"marked the interrupted release(s) {', '.join(building)} failed")


def op_status(req: dict, lay: Layout) -> dict:
    cfg = load_app_config(lay, req)
    busy = switch_in_progress(lay)
    notes = [] if busy else reconcile_if_free(lay, cfg, req.get("by"))
    rid, slot = actual_live(lay, cfg)
    slots = {}
    if not cfg["static"]:
        for s in SLOTS:
            st = unit_state(unit_name(lay.app, s))
            slots[s] = {"port": cfg["ports"][s], "release": link_release(lay.slot_link(s)),
                        "active_state": st["active_state"], "sub_state": st["sub_state"],
                        "n_restarts": st["n_restarts"]}
    health, h = None, cfg["health"]
    if rid and (slot or cfg["static"]):
        health = http_check(cfg["ports"][slot] if slot else 80, h["path"], h["host"], 5.0, h["status"])
    usage = shutil.disk_usage(lay.srv_root if os.path.isdir(lay.srv_root) else lay.root)
    lock = read_lock(lay) if os.path.exists(lay.lock) else None
    if lock is not None:
        lock["stale"] = lock_staleness(lock, time.time(), req.get("ttl"))
    return {
        "app": lay.app, "agent_version": AGENT_VERSION, "static": cfg["static"],
        "live": {"release": rid, "slot": slot, "port": cfg["ports"][slot] if slot else None,
                 "info": release_info(lay, rid) if rid else None},
        "slots": slots, "health": health, "releases": releases_view(lay),
        "disk": {"path": "/srv", "free_bytes": usage.free, "total_bytes": usage.total},
        "lock": lock, "switch_in_progress": busy, "last_op": read_json(lay.last_op),
        "reconciled": notes,
    }


def reconcile_if_free(lay: Layout, cfg: dict, by: str | None) -> list[str]:
    try:
        with switch_mutex(lay, wait_seconds=0):
            return reconcile(lay, cfg, by)
    except AgentError:
        return []


def releases_view(lay: Layout) -> list[dict]:
    return [{**e, "on_disk": os.path.isdir(lay.release(e["id"])),
             "env_snapshot": os.path.exists(lay.env_file(e["id"]))} for e in reversed(load_journal(lay))]


def op_releases(req: dict, lay: Layout) -> dict:
    return {"releases": releases_view(lay)}


def op_cleanup(req: dict, lay: Layout) -> dict:
    keep = req.get("keep", KEEP_DEFAULT)
    if not isinstance(keep, int) or keep < 1:
        raise AgentError(f"keep must be a positive number, got {keep!r}", "pass keep >= 1 (default 5)")
    if not os.path.isdir(lay.srv):
        raise AgentError(f"{lay.app} has no {lay.srv} on this server", "run `lightfold configure` first")
    warnings: list[str] = []
    with switch_mutex(lay):
        removed = run_cleanup(lay, keep, req.get("by"), warnings)
    return {"removed": removed, "kept": [e["id"] for e in reversed(load_journal(lay))], "warnings": warnings}


def op_health(req: dict, lay: Layout) -> dict:
    cfg = load_app_config(lay, req)
    h = cfg["health"]
    if req.get("port") is not None:
        port = int(req["port"])
    elif req.get("slot") is not None:
        if req["slot"] not in SLOTS or cfg["static"]:
            raise AgentError(f"unknown slot {req['slot']!r}", "use blue or green")
        port = cfg["ports"][req["slot"]]
    elif cfg["static"]:
        port = 80  # static sites are served by nginx itself
    else:
        rid, slot = actual_live(lay, cfg)
        if slot is None:
            raise AgentError(f"{lay.app} has no live slot to check", "pass a port or slot, or deploy first")
        port = cfg["ports"][slot]
    return http_check(port, h["path"], h["host"], min(float(h["timeout"]), 10.0), h["status"])


def op_write_env(req: dict, lay: Layout) -> dict:
    rid = require_release_id(req)
    env = check_env(req.get("env", {}))
    os.makedirs(lay.env_dir, mode=0o700, exist_ok=True)
    os.chmod(lay.env_dir, 0o700)
    path = lay.env_file(rid)
    write_atomic(path, render_env_file(env, f"env snapshot of release {rid} (written by lightfold)").encode(),
                 0o600)
    return {"path": path, "count": len(env), "env_hash": env_hash(env), "names": sorted(env)}


def op_journal_mark(req: dict, lay: Layout) -> dict:
    rid = require_release_id(req)
    status = req.get("status")
    if status not in ("building", "failed"):
        raise AgentError(f"journal_mark sets building or failed, not {status!r}",
                         "activate and rollback set the other statuses")
    with switch_mutex(lay):
        entries = load_journal(lay)
        entry = find_entry(entries, rid)
        if entry is not None and entry["status"] in ("live", "previous"):
            raise AgentError(f"release {rid} is {entry['status']}; refusing to mark it {status}",
                             "roll back or deploy instead")
        info = {k: req[k] for k in RELEASE_INFO_FIELDS if k in req}
        if status == "building" and not info.get("created_at") and (entry is None or not entry["created_at"]):
            info["created_at"] = now_iso()
        entry = upsert_entry(entries, rid, status=status, reason=req.get("reason"), **info)
        save_journal(lay, entries)
    audit(lay, "journal_mark", req.get("by"), release=rid, status=status, reason=req.get("reason"))
    return {"entry": entry}


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


def mark_lock_finishing(lay: Layout, mine: dict, seconds: float) -> None:
    """Our switch moved traffic and only watches and drains for `seconds` more: say so in the lock,
    so the next deploy waits for it instead of refusing."""
    with flocked(lay.lock_guard):
        current = still_ours(lay, mine)
        if current is not None:
            write_json(lay.lock, {**current, "finishing_until": time.time() + seconds})


def op_lock(req: dict, lay: Layout) -> dict:
    holder = req.get("holder")
    if not isinstance(holder, str) or not holder:
        raise AgentError("lock needs a holder (user@host)", "pass {\"holder\": \"you@laptop\"}")
    ttl = float(req["ttl"]) if req.get("ttl") else None
    # "op" is the protocol's; the operation being locked for travels as "lock_op".
    mine, replaced, waited = acquire_lock(lay, holder, req.get("lock_op"), req.get("release"), ttl,
                                          req.get("pid"), float(req.get("wait_seconds") or 0))
    return {"acquired": True, "lock": mine, "replaced_stale": replaced, "waited": waited}


def op_unlock(req: dict, lay: Layout) -> dict:
    holder, force = req.get("holder"), bool(req.get("force"))
    with flocked(lay.lock_guard):
        lock = read_lock(lay) if os.path.exists(lay.lock) else None
        if lock is None:
            return {"released": False, "lock": None}
        if not force and lock.get("holder") != holder:
            raise AgentError(f"{lay.app} is locked by {describe_lock(lock)}, not by {holder}",
                             "let them finish, or pass --force to break it", lock=lock, busy=True)
        os.unlink(lay.lock)
    audit(lay, "unlock", holder, forced=force, was=lock)
    return {"released": True, "lock": lock}


OPS = {
    "activate": op_activate, "rollback": op_rollback, "status": op_status, "releases": op_releases,
    "cleanup": op_cleanup, "health": op_health, "write_env": op_write_env, "lock": op_lock,
    "unlock": op_unlock, "journal_mark": op_journal_mark,
}


# ---------------------------------------------------------------------------------------------
# Entry point


def parse_request(raw: bytes) -> dict:
    try:
        req = json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AgentError(f"the request is not valid JSON ({e})", "send one JSON object on stdin") from e
    if not isinstance(req, dict):
        raise AgentError("the request must be a JSON object", 'send {"op": "status", "app": "myapp"}')
    if req.get("op") not in OPS:
        raise AgentError(f"unknown op {req.get('op')!r}", f"use one of: {', '.join(OPS)}")
    app = req.get("app")
    if not isinstance(app, str) or not APP_RE.match(app):
        raise AgentError(f"invalid app name {app!r}", "app names are lowercase letters, digits and -")
    return req


def handle(req: dict, root: str = "/") -> dict:
    """Run one validated request; always returns a result dict."""
    lay = Layout(req["app"], root)
    try:
        data = OPS[req["op"]](req, lay)
        result = {"ok": True, "op": req["op"], "app": req["app"], **data}
    except AgentError as e:
        result = {**e.result(), "op": req["op"], "app": req["app"]}
    except Exception as e:  # noqa: BLE001 - the CLI must get JSON even when the agent has a bug
        result = {"ok": False, "op": req["op"], "app": req["app"],
                  "error": f"the lightfold agent failed: {type(e).__name__}: {e}",
                  "fix": "this is a lightfold bug; please report it with the lines below",
                  "log_tail": traceback.format_exc().splitlines()[-JOURNAL_TAIL_LINES:]}
    if req["op"] in DETACHABLE_OPS and os.path.isdir(lay.srv):
        with contextlib.suppress(OSError):
            write_json(lay.last_op, {**result, "finished_at": now_iso()})
    return result


def run_detached(raw: bytes, req: dict) -> dict:
    """Re-run this request as a transient unit that outlives the SSH session. Progress events are
    relayed as they come; an early result (`"early": true`, see early_announcer) is returned at
    once, leaving the unit to finish on its own."""
    unit = f"lightfold-{req['op']}-{req['app']}"
    if not wait_unit_gone(unit):
        return AgentError(f"a {req['op']} of {req['app']} is still running ({unit})",
                          "wait for it to finish; `lightfold status` shows the result").result()
    argv = ["systemd-run", f"--unit={unit}", f"--description=lightfold {req['op']} {req['app']}",
            "--collect", "--wait", "--pipe", "--quiet"]
    if os.environ.get("LIGHTFOLD_ROOT"):
        argv.append(f"--setenv=LIGHTFOLD_ROOT={os.environ['LIGHTFOLD_ROOT']}")
    here = os.path.dirname(os.path.abspath(__file__))
    # as a module, so the bytecode cached in __pycache__ is used (see lightfold.agent.remote_command)
    argv += [sys.executable or "python3", "-c",
             f"import sys; sys.path.insert(0, {here!r}); import agent; sys.exit(agent.main())"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with contextlib.suppress(BrokenPipeError):
        p.stdin.write(raw)
    p.stdin.close()
    out = b""
    streams = {p.stdout.fileno(): "out", p.stderr.fileno(): "err"}
    with selectors.DefaultSelector() as sel:
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                elif streams[key.fd] == "err":
                    with contextlib.suppress(OSError, ValueError):
                        sys.stderr.buffer.write(data)
                        sys.stderr.flush()
                else:
                    out += data
                    early = first_early_result(out)
                    if early is not None:
                        return early
    p.wait()
    with contextlib.suppress(ValueError):
        result = json.loads(out.decode().strip().splitlines()[-1] if out.strip() else "null")
        if isinstance(result, dict):
            return result
    return AgentError(f"the detached {req['op']} exited with status {p.returncode} without a result",
                      f"see `journalctl -u {unit}` on the server, then `lightfold status`").result()


def first_early_result(out: bytes) -> dict | None:
    for line in out.split(b"\n")[:-1]:  # complete lines only
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and value.get("early"):
                return value
    return None


def wait_unit_gone(unit: str, seconds: float = 60) -> bool:
    """The previous run of `unit` (e.g. a rollback still in its smoke window) must end before the
    name can be reused; wait for it, saying so once."""
    deadline = time.monotonic() + seconds
    said = False
    while systemctl("is-active", "--quiet", f"{unit}.service").code == 0:
        if time.monotonic() >= deadline:
            return False
        if not said:
            step(f"waiting for the previous {unit} to finish")
            said = True
        time.sleep(0.2)
    return True


def write_result(result: dict) -> None:
    try:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    raw = sys.stdin.buffer.read()
    try:
        req = parse_request(raw)
    except AgentError as e:
        result = e.result()
    else:
        if "--detach" in args and req["op"] in DETACHABLE_OPS:
            result = run_detached(raw, req)
        else:
            result = handle(req, root_from_env())
    write_result(result)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
