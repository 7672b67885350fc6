"""Ops. Each takes the request and the layout and returns the reply's data."""

from __future__ import annotations

import os
import shutil
import time

from .core import (
    AGENT_VERSION,
    KEEP_DEFAULT,
    RELEASE_INFO_FIELDS,
    SWITCH_WAIT_SECONDS,
    AgentError,
    now_iso,
    step,
    warn,
    write_result,
)
from .envfile import check_env, env_hash, env_hash_key, merge_env, render_env_file, server_env
from .files import link_release, read_json, write_atomic
from .health import http_check
from .journal import (
    audit,
    default_actor,
    find_entry,
    live_entry,
    load_journal,
    rollback_target,
    save_journal,
    upsert_entry,
)
from .layout import SLOTS, SRV, Layout, unit_name
from .live import actual_live, load_app_config, reconcile, release_info, require_release_id
from .lock import (
    acquire_lock,
    adopt_lock,
    check_deploy_lock,
    describe_lock,
    flocked,
    lock_staleness,
    mark_lock_finishing,
    read_lock,
    release_lock,
)
from .procs import status_view as procs_view
from .switch import release_ids_on_disk, run_cleanup, switch_in_progress, switch_mutex, switch_to
from .systemd import unit_state


def op_activate(req: dict, lay: Layout) -> dict:
    """With `early_result`, the caller's deploy lock passes to this process (adopt_lock), which
    answers as soon as traffic moved and releases the lock when the smoke window and drain end."""
    cfg = load_app_config(lay, req)
    rid = require_release_id(req)
    lock = None
    try:
        with switch_mutex(lay, SWITCH_WAIT_SECONDS):
            check_deploy_lock(lay, req)
            if req.get("early_result"):
                longest = float(cfg["health"]["timeout"]) + float(req.get("smoke_seconds", 5)) + float(
                    req.get("drain_seconds", 2)) + 10
                lock = adopt_lock(lay, req.get("holder"), longest)
            notes = reconcile(lay, cfg, req.get("by"))
            extra = {"reconciled": notes, "lock_taken": lock is not None}
            announce = early_announcer(lay, "activate", extra, lock) if lock is not None else None
            result = switch_to(lay, cfg, rid, req, "activate", on_switched=announce)
    finally:
        if lock is not None:
            release_lock(lay, lock)
    return {**result, **extra}


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
        "disk": {"path": SRV, "free_bytes": usage.free, "total_bytes": usage.total},
        "lock": lock, "switch_in_progress": busy, "last_op": read_json(lay.last_op),
        "reconciled": notes, "server_env": server_env_view(lay), "env_key": env_hash_key(lay),
        **(procs_view(lay) if not cfg["static"] else {"processes": [], "cron": []}),
    }


def server_env_view(lay: Layout) -> dict:
    """The names and hash of the variables lightfold keeps on the server (never the values): a
    deploy folds the hash into the release's env hash, so adding a database makes a new release."""
    extra = server_env(lay)
    return {"names": sorted(extra), "hash": env_hash(extra, env_hash_key(lay)) if extra else None}


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
    own = check_env(req.get("env", {}))
    extra = server_env(lay)
    env, overridden = merge_env(own, extra)
    if overridden:
        warn(f"your own env sets {', '.join(overridden)}: it wins over the value lightfold keeps for the "
             "database (unset it to use the database's)")
    os.makedirs(lay.env_dir, mode=0o700, exist_ok=True)
    os.chmod(lay.env_dir, 0o700)
    path = lay.env_file(rid)
    write_atomic(path, render_env_file(env, f"env snapshot of release {rid} (written by lightfold)").encode(),
                 0o600)
    return {"path": path, "count": len(env), "env_hash": env_hash(env, env_hash_key(lay)), "names": sorted(env),
            "server_names": sorted(extra), "overridden": overridden}


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
        info = {k: req[k] for k in RELEASE_INFO_FIELDS if k in req and k != "created_at"}
        # The journal's times are all the server's clock (activated_at too), even when the laptop's is off.
        if status == "building" and (entry is None or not entry["created_at"]):
            info["created_at"] = now_iso()
        entry = upsert_entry(entries, rid, status=status, reason=req.get("reason"), **info)
        save_journal(lay, entries)
    audit(lay, "journal_mark", req.get("by"), release=rid, status=status, reason=req.get("reason"))
    return {"entry": entry}



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
