"""The blue/green switch (and the static one), and cleanup of old releases."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time

from .core import (
    JOURNAL_TAIL_LINES,
    KEEP_DEFAULT,
    RELEASE_INFO_FIELDS,
    AgentError,
    now_iso,
    root_from_env,
    run,
    step,
    warn,
)
from .envfile import render_env_file, slot_env
from .files import read_text, restore_link, swap_symlink, write_atomic, write_json
from .health import ANY_OK, http_check, listening_addresses, port_in_use
from .journal import audit, cleanup_selection, load_journal, record_activation, save_journal, upsert_entry
from .layout import Layout, image_name, is_release_id, other_slot, unit_name
from .live import actual_live, check_release_ready, release_info
from .lock import flocked
from .procs import move_procs, procs_release
from .systemd import journal_tail, reload_nginx, systemctl, unit_crashed, unit_pids, unit_state
from .upstream import BACKUP_RE, render_upstream


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


def not_listening(rid: str, slot: str, port: int, timeout: float, listens: list[str]) -> tuple[str, str]:
    """(message, fix) for a slot whose process never accepted a connection on 127.0.0.1:`port`;
    `listens`: where its processes listen (health.listening_addresses). Pure."""
    timeout = float(timeout)
    on_port = [a for a in listens if a.rsplit(":", 1)[-1] == str(port)]
    if on_port and all(a.startswith("[::1]:") for a in on_port):
        return (f"release {rid} listens on [::1]:{port} only (IPv6 loopback), but nginx and the health check "
                f"connect to 127.0.0.1:{port}",
                "make it listen on 127.0.0.1 or on every address (0.0.0.0 or ::): e.g. Node's "
                "`listen(PORT, '127.0.0.1')` rather than 'localhost', which Node resolves to ::1 first; "
                "then deploy again")
    listen_on_port = ("make the start command listen on $PORT on 127.0.0.1 or 0.0.0.0 (e.g. `--port $PORT`, "
                      "`-p $PORT`, `--bind 127.0.0.1:$PORT`, or read process.env.PORT / os.environ['PORT'])")
    if not listens:  # still booting, most likely: it listens nowhere yet
        return (f"release {rid} is running in slot {slot} but did not listen on 127.0.0.1:{port} within the "
                f"{timeout:g}s health timeout (it listens on no port yet: still starting?)",
                f"if it needs longer to boot, {raise_timeout(timeout)}; if it never listens, {listen_on_port}; "
                "then deploy again")
    return (f"release {rid} is running in slot {slot} but nothing accepts connections on 127.0.0.1:{port} "
            f"after {timeout:g}s (it listens on {', '.join(listens)}): the app probably ignores $PORT",
            f"{listen_on_port}, then deploy again")


def raise_timeout(timeout: float) -> str:
    """How to give a release longer than `timeout` seconds to become healthy (both places it is set)."""
    more = max(60, int(timeout) * 2)
    return (f"raise the health timeout: `timeout = \"{more}s\"` under [health] in lightfold.toml, or "
            f"`lightfold config set deploy.health_timeout {more}` for this target")


def unhealthy_error(lay: Layout, cfg: dict, slot: str, rid: str, state: dict, last: dict,
                    ever_connected: bool) -> AgentError:
    h, unit, port = cfg["health"], unit_name(lay.app, slot), cfg["ports"][slot]
    tail = journal_tail(unit)
    where = f"GET http://127.0.0.1:{port}{h['path']}" + (f" (Host: {h['host']})" if h["host"] else "")
    if not ever_connected:
        listens = listening_addresses(unit_pids(state))
        message, fix = not_listening(rid, slot, port, h["timeout"], listens)
        return AgentError(message, fix, log_tail=tail, listening=listens)
    if last["status_code"] is not None:
        fix = "make the health path answer, or set it with `lightfold config` (health_path, health_status)"
        expected = "a 2xx or 3xx" if h["status"] == ANY_OK else h["status"]
        if last["status_code"] == 400:
            fix = (f"the app rejected the Host header {h['host'] or '127.0.0.1'!r}: allow it "
                   "(e.g. Django ALLOWED_HOSTS, Rails config.hosts) or set health_host")
        return AgentError(f"health check failed: {where} answered {last['status_code']}, expected {expected}",
                          fix, log_tail=tail)
    return AgentError(f"health check failed: {where} did not answer within the {float(h['timeout']):g}s health timeout "
                      f"({last['error']})",
                      f"make sure the app answers HTTP quickly on its health path, or {raise_timeout(h['timeout'])}",
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
        slot_started = time.monotonic()
        step(f"waiting for {unit} to answer GET {cfg['health']['path']} (up to {cfg['health']['timeout']}s)")
        health = wait_healthy(lay, cfg, slot, rid)
        baseline = unit_state(unit)["n_restarts"]
        step(f"healthy after {health['seconds']}s; switching nginx to slot {slot}")
        write_intent(lay, op, old_rid, rid)
        # Both slots start at boot from here on, so a reboot while nginx routes to the new one finds
        # it running (the next reconcile stops whichever is idle); the old one is disabled at the end.
        systemctl("enable", "--quiet", "--no-reload", unit)
        backup = cfg["ports"][old_slot] if old_slot else None
        flipping = time.monotonic()
        old_upstream = flip_upstream(lay, port, slot, rid, backup)
    except Exception as e:  # noqa: BLE001 - whatever broke, the old slot must keep serving
        err = e if isinstance(e, AgentError) else AgentError(
            f"switch failed before traffic moved: {type(e).__name__}: {e}", "this is a lightfold bug; please report it")
        clear_intent(lay)
        stop_slot(lay.app, slot)
        systemctl("disable", "--quiet", "--no-reload", unit)
        if old_rid is None:
            restore_link(lay.slot_link(slot), None, "")
        fail_before_flip(lay, rid, op, by, err)
        if err is e:
            raise
        raise err from e
    flipped = time.monotonic()
    timings = {"healthy_s": health["seconds"], "switched_s": round(flipped - started, 2),
               "started_s": round(slot_started - started, 2), "nginx_s": round(flipped - flipping, 2)}
    entries_before = None
    try:
        entries_before = load_journal(lay)
        swap_symlink(lay.current, f"releases/{rid}")
        entries = [dict(e) for e in entries_before]
        info = {k: v for k, v in release_info(lay, rid).items() if k in RELEASE_INFO_FIELDS}
        upsert_entry(entries, rid, **info)
        record_activation(entries, rid, slot, now_iso(), "rolled-back" if op == "rollback" else "previous")
        save_journal(lay, entries)
    except Exception as e:  # noqa: BLE001 - e.g. an unreadable release.json, ENOSPC: traffic must not stay
        failure = f"recording the switch failed after traffic moved ({type(e).__name__}: {e})"
        flip_back(lay, rid, slot, old_rid, old_upstream, entries_before, failure, op)
        clear_intent(lay)
        raise AgentError(f"{failure}; traffic is back on {old_rid or 'nothing'}",
                         "free disk space on the server (`df -h`) or fix the file named above, then deploy again",
                         flipped_back=True) from e
    clear_intent(lay)
    smoke_seconds = float(req.get("smoke_seconds", 5))
    drain = float(req.get("drain_seconds", 2))
    if on_switched is not None:
        on_switched({"release": rid, "slot": slot, "port": port, "previous": old_rid, "previous_slot": old_slot,
                     "health": health, "continuing": {"smoke_seconds": smoke_seconds, "drain_seconds": drain},
                     "timings": timings})
    step(f"traffic is on {rid}; watching it for {smoke_seconds:g}s")
    failure = smoke_failure(unit, baseline, smoke_seconds)
    if failure:
        flip_back(lay, rid, slot, old_rid, old_upstream, entries_before, failure, op)
        raise AgentError(f"{failure}; traffic is back on {old_rid or 'nothing'}",
                         "read the log lines below, fix the crash, and deploy again", log_tail=journal_tail(unit),
                         flipped_back=True)
    old_procs = procs_release(lay)
    try:  # the other processes follow only now: stop-old-then-start-new, and a failure flips back
        move_procs(lay, rid, warnings)
    except Exception as e:  # noqa: BLE001 - whatever broke, the old release must run everything again
        err = e if isinstance(e, AgentError) else AgentError(f"moving the processes failed: {type(e).__name__}: {e}",
                                                             "this is a lightfold bug; please report it")
        move_procs(lay, old_procs, warnings, strict=False)
        flip_back(lay, rid, slot, old_rid, old_upstream, entries_before, err.error, op)
        raise AgentError(f"{err.error}; the processes and traffic are back on {old_rid or 'nothing'}", err.fix,
                         log_tail=err.log_tail, flipped_back=True) from e
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
        "timings": {**timings, "total_s": round(time.monotonic() - started, 2)},
    }


def fail_before_flip(lay: Layout, rid: str, op: str, by: str | None, e: AgentError) -> None:
    """Record a failed switch. A rollback target keeps its status: it served well before."""
    entries = load_journal(lay)
    if op == "activate":
        upsert_entry(entries, rid, status="failed", slot=None, reason=e.error)
        save_journal(lay, entries)
    audit(lay, op, by, release=rid, outcome="failed", reason=e.error)


def flip_back(lay: Layout, rid: str, slot: str, old_rid: str | None, old_upstream: str | None,
              entries_before: list[dict] | None, failure: str, op: str) -> None:
    warn(f"{failure}; switching traffic back")
    restore_upstream(lay, old_upstream)
    reload_nginx()
    restore_link(lay.current, old_rid, "releases/")
    if entries_before is not None:
        entries = [dict(e) for e in entries_before]
        if op == "activate":
            upsert_entry(entries, rid, status="failed", slot=None, reason=failure)
        try:
            save_journal(lay, entries)
        except OSError as e:  # the next op's reconcile brings the journal in line with nginx
            warn(f"could not save the journal ({e}); the next operation reconciles it")
    stop_slot(lay.app, slot)
    systemctl("disable", "--quiet", "--no-reload", unit_name(lay.app, slot))
    if old_rid is None:
        restore_link(lay.slot_link(slot), None, "")
    audit(lay, op, None, release=rid, outcome="flipped-back", reason=failure)


def settle_idle_slot(lay: Layout, cfg: dict) -> list[str]:
    """With no switch running (the caller holds the switch mutex) only the live slot may run and
    be in nginx: a switch that was interrupted (its agent killed, the server rebooted) can leave
    the idle slot started, still nginx's backup, or enabled at boot. Undo that; returns notes."""
    if cfg["static"]:
        return []
    rid, slot = actual_live(lay, cfg)
    if slot is None:
        return []
    idle, notes = other_slot(slot), []
    if BACKUP_RE.search(read_text(lay.upstream) or ""):
        try:
            flip_upstream(lay, cfg["ports"][slot], slot, rid)
            notes.append(f"took slot {idle} out of nginx (an interrupted switch left it as the backup)")
        except AgentError as e:
            warn(f"could not take slot {idle} out of nginx: {e.error}")
    if unit_state(unit_name(lay.app, idle))["active_state"] in ("active", "activating", "reloading"):
        stop_slot(lay.app, idle)
        enable_boot_slot(lay.app, slot, [])
        notes.append(f"stopped slot {idle}: an interrupted switch left it running")
    return notes


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
                if is_release_id(rid) and (not suffix or name.endswith(suffix)):
                    ids.add(rid)
    return ids


def remove_image(app: str, rid: str) -> None:
    """The dockerfile builder tags each release's image lightfold-<app>:<id>; untag it with its
    release (the image itself goes once no other tag, e.g. an env-only copy's, uses it)."""
    if root_from_env() == "/" and shutil.which("docker"):
        with contextlib.suppress(Exception):
            run(["docker", "rmi", f"{image_name(app)}:{rid}"], timeout=60)


LEFTOVER_AGE = 3600  # an upload younger than this may belong to a push that is still running


def sweep_leftovers(lay: Layout, known: set[str], now: float | None = None) -> list[str]:
    """Files that failed or interrupted pushes leave in the meta dir, which would fill the disk:
    upload temp files and archives older than an hour, and the build logs of releases the journal
    no longer knows. Returns the names removed."""
    now = time.time() if now is None else now
    removed = []
    for name in sorted(os.listdir(lay.meta)) if os.path.isdir(lay.meta) else []:
        path = os.path.join(lay.meta, name)
        stale_upload = (name.startswith(".lightfold-upload.") or
                        (name.startswith("upload-") and name.endswith(".tar.gz")))
        if stale_upload:
            with contextlib.suppress(FileNotFoundError):
                if now - os.lstat(path).st_mtime > LEFTOVER_AGE:
                    os.unlink(path)
                    removed.append(name)
    if os.path.isdir(lay.builds_dir):
        for name in sorted(os.listdir(lay.builds_dir)):
            rid = name[:-len(".log")] if name.endswith(".log") else None
            if rid and is_release_id(rid) and rid not in known:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(lay.builds_dir, name))
                    removed.append(f"builds/{name}")
    return removed


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
        for path in (lay.env_file(rid), lay.build_log(rid), lay.upload_archive(rid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        remove_image(lay.app, rid)
    swept = sweep_leftovers(lay, {e["id"] for e in load_journal(lay)} - set(doomed))
    if swept:
        step(f"removed {len(swept)} leftover upload/log file(s)")
    if doomed:
        save_journal(lay, [e for e in load_journal(lay) if e["id"] not in doomed])
        audit(lay, "cleanup", by, removed=doomed)
        step(f"removed {len(doomed)} old release(s): {', '.join(doomed)}")
    return doomed
