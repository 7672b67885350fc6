"""The no-op fast path: answer "nothing changed" for `deploy`/`push` in a fraction of a second.

The full path decides to skip from scratch every time: it loads the config models, detects the
framework, opens an asyncssh connection, reads the server's facts, renders the configure plan and
asks the agent for the live release — about 2 s, most of it imports and round trips. This module
proves the same answer from two hashes, with the standard library and one `ssh` exec:

    local key      hash of every local input the full path decides from: lightfold's own code, the
                   target's raw config, the git HEAD of the project's repository, the content of
                   every path `git status` reports (modified and untracked files), the project's
                   `.env` and `.lightfoldignore`
    server stamp   hash of what the server decides from: every app's app.json, this app's configure
                   marker and nginx upstream, its release journal and switch intent, where `current`
                   and the slots point, whether the domain's certificate exists, the app's
                   database env files (`db add`)

After every successful deploy/push that waited for its outcome (after an early answer the server
still changes what the stamp hashes, so the next deploy takes the full path once), `remember`
stores both (with the exact SSH command that reads the stamp) in the target's state. `check`
recomputes the local key and re-reads the stamp; only if both are equal does it skip, and then the
full path would have skipped every step too. Anything unusual (no git, a config or state it cannot
read, ssh failing, a different answer) returns None and the full path runs, so the fast path can
make a deploy slower by ~0.1 s but never wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lightfold import store

STATE_KEY = "noop"
# A file with a path `git status` reports is hashed whole; a huge one is not worth it.
MAX_HASHED_FILE = 64 * 1024 * 1024


@dataclass
class Hit:
    """What the fast path knows about the live release it found unchanged."""

    release: str
    url: str
    framework: str
    seconds: float  # spent on the server check


# --- the server stamp ------------------------------------------------------------------------------


def stamp_command(app: str, domain: str | None) -> str:
    """Shell that prints what the server-side skip decisions depend on (hashes and link targets).
    Missing files simply print nothing; the output is compared, never parsed."""
    from lightfold.agent.layout import DB_KINDS, SLOTS, Layout

    lay, every_app = Layout(app), Layout("*")
    files = [lay.relative(p) for p in (every_app.app_json, lay.marker, lay.upstream, lay.journal, lay.switch_intent,
                                       *map(lay.db_env, DB_KINDS))]
    links = [lay.relative(p) for p in (lay.current, *map(lay.slot_link, SLOTS))]
    script = (
        f"cd / && {{ sha256sum -- {' '.join(files)} 2>/dev/null; "
        f"for l in {' '.join(links)}; do printf '%s -> %s\\n' \"$l\" \"$(readlink \"$l\")\"; done; "
    )
    if domain:
        live = shlex.quote(f"etc/letsencrypt/live/{domain}")
        script += f"[ -e {live}/fullchain.pem ] && [ -e {live}/privkey.pem ] && echo tls; "
    script += "true; }"
    return f"sh -c {shlex.quote(script)}"


def stamp_of(output: str) -> str:
    return hashlib.sha256(output.encode()).hexdigest()


# --- the local key -------------------------------------------------------------------------------


def local_key(name: str, project: Path, target_raw: dict) -> str | None:
    """Hash of the local inputs of a deploy of target `name` from `project`; None outside git."""
    h = hashlib.sha256()
    h.update(_code_stamp().encode())
    h.update(json.dumps([name, str(project), target_raw], sort_keys=True).encode())
    head = _git(project, "rev-parse", "--show-toplevel", "HEAD")
    if head is None:
        return None
    lines = head.decode("utf-8", "surrogateescape").split("\n")
    top = Path(lines[0])
    h.update(head)
    status = _git(top, "status", "--porcelain=v1", "-z", "-uall", "--no-renames")
    if status is None:
        return None
    h.update(status)
    for entry in status.decode("utf-8", "surrogateescape").split("\0"):
        if len(entry) > 3 and not _hash_file(h, top / entry[3:]):
            return None
    for extra in (project / ".env", project / ".lightfoldignore"):
        h.update(str(extra).encode())
        if not _hash_file(h, extra):
            return None
    return h.hexdigest()


def _git(cwd: Path, *args: str) -> bytes | None:
    try:
        r = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False)
    except OSError:
        return None
    return r.stdout if r.returncode == 0 else None


def _hash_file(h, path: Path) -> bool:
    """Feed the file's content (or its absence, or a symlink's target) into `h`; False = too big to bother."""
    try:
        if path.is_symlink():
            h.update(b"link:" + os.readlink(path).encode("utf-8", "surrogateescape"))
            return True
        if path.is_dir():  # a submodule or nested repo git reports as a whole
            h.update(b"dir")
            return True
        if path.stat().st_size > MAX_HASHED_FILE:
            return False
        h.update(b"file:" + path.read_bytes())
    except FileNotFoundError:
        h.update(b"missing")
    except OSError:
        return False
    return True


def _code_stamp() -> str:
    """lightfold's own source (sizes and mtimes): a new version may plan or build differently."""
    from lightfold import __version__

    root = Path(__file__).resolve().parents[1]
    parts = [__version__]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py"):
                st = os.stat(os.path.join(dirpath, f))
                parts.append(f"{os.path.relpath(os.path.join(dirpath, f), root)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


# --- remember / check ----------------------------------------------------------------------------


def record(key: str, stamp: str, command: str, ssh: dict, framework: str, release: str, url: str) -> dict:
    """The state entry `check` compares against (plain JSON; `ssh` = ip, port, username, key)."""
    return {"key": key, "stamp": stamp, "command": command, "ssh": ssh, "framework": framework,
            "release": release, "url": url}


async def remember(conn, target, key: str | None, framework: str, release: str | None, url: str) -> None:
    """After a deploy/push that left `release` live: store the record `check` compares against.
    `key` must be computed before the step read the project (an edit made meanwhile then
    changes the key, and the next deploy takes the full path)."""
    from lightfold import state
    from lightfold.release.configure import tls_domain
    from lightfold.release.target import as_root, ssh_settings

    if key is None or release is None:
        return
    command = as_root(conn, stamp_command(target.name, tls_domain(target)))
    res = await conn.run(command, check=False, display="read the no-op stamp")
    if res.exit_status != 0:
        return
    rec = record(key, stamp_of(res.stdout), command, ssh_settings(target), framework, release, url)
    state.update(target.name, lambda s: setattr(s, STATE_KEY, rec))


def raw_target(name: str) -> dict | None:
    raw = _read(store.home() / "config.json")
    targets = raw.get("targets") if isinstance(raw, dict) else None
    target = targets.get(name) if isinstance(targets, dict) else None
    return target if isinstance(target, dict) else None


def check(name: str, project: Path | None, *, provider: str | None = None, need_created: bool = True) -> Hit | None:
    """The live release when nothing changed since the last deploy/push of `name` (see module doc);
    None whenever the full path must decide. `project` None = the target's project_path."""
    import time

    target = raw_target(name)
    if target is None or (provider and provider != target.get("provider")) or not target.get("project_path"):
        return None
    project = Path(target["project_path"]) if project is None else project.resolve()
    if target["project_path"] != str(project):
        return None
    st = _read(store.home() / "state" / f"{name}.json")
    rec = st.get(STATE_KEY) if isinstance(st, dict) else None
    if not isinstance(rec, dict) or (need_created and not st.get("created")):
        return None
    if local_key(name, project, target) != rec.get("key"):
        return None
    t0 = time.monotonic()
    from lightfold.remote.openssh import quick_exec

    out = quick_exec(rec.get("ssh") or {}, rec.get("command") or "")
    if out is None or stamp_of(out) != rec.get("stamp"):
        return None
    return Hit(rec["release"], rec["url"], rec["framework"], time.monotonic() - t0)


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
