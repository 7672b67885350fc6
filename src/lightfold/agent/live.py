"""An app's config, its releases' readiness, what is live, and bringing the journal in line
with it."""

from __future__ import annotations

import json
import os

from .core import AgentError, now_iso, warn
from .files import link_release, read_json, read_text, swap_symlink
from .health import ANY_OK
from .journal import audit, find_entry, live_entry, load_journal, record_activation, save_journal, upsert_entry
from .layout import SLOTS, Layout, is_release_id
from .upstream import slot_for_port, upstream_port


def load_app_config(lay: Layout, req: dict) -> dict:
    cfg = read_json(lay.app_json)
    if cfg is None:
        raise AgentError(
            f"{lay.app} is not configured on this server ({lay.app_json} is missing)",
            "run `lightfold configure` for this target",
        )
    health = {"path": "/", "status": ANY_OK, "timeout": 60, "host": None}
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
    if not isinstance(rid, str) or not is_release_id(rid):
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



def actual_live(lay: Layout, cfg: dict) -> tuple[str | None, str | None]:
    """(release, slot) that traffic really reaches: upstream.conf for slot apps, current for static."""
    if cfg["static"]:
        return link_release(lay.current), None
    slot = slot_for_port(cfg["ports"], upstream_port(read_text(lay.upstream)))
    if slot is None:
        return None, None
    rid = link_release(lay.slot_link(slot))
    return (rid, slot) if rid and os.path.isdir(lay.release(rid)) else (None, None)


def deploy_lock_held(lay: Layout) -> bool:
    """Someone is deploying: the deploy lock exists and is not stale."""
    import time

    from .lock import lock_staleness, read_lock

    lock = read_lock(lay) if os.path.exists(lay.lock) else None
    return lock is not None and lock_staleness(lock, time.time()) is None


def _procs_follow(lay: Layout, rid: str) -> list[str]:
    """The other processes run the live release: a switch interrupted between the flip and the
    processes' move (agent killed, reboot in the smoke window) left them on the old one, or
    stopped. Outside a switch (reconcile runs under the switch mutex) that is never meant."""
    from .procs import move_procs, procs_release

    was = procs_release(lay)
    if was == rid:
        return []
    warnings: list[str] = []
    move_procs(lay, rid, warnings, strict=False)
    return [f"the processes ran {was or 'nothing'}, not the live {rid}: moved them", *warnings]


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
    if not deploy_lock_held(lay):  # a release still "building" with nobody deploying never finishes
        for e in entries:
            if e.get("status") == "building":
                e["status"], e["reason"] = "failed", "its deploy ended before it went live (interrupted)"
                notes.append(f"marked the interrupted release {e['id']} failed")
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
    from .switch import settle_idle_slot  # here: switch imports this module

    notes += settle_idle_slot(lay, cfg)
    if rid is not None and not cfg.get("static") and not deploy_lock_held(lay):  # a deploy moves them itself
        notes += _procs_follow(lay, rid)
    if notes:
        audit(lay, "reconcile", by, notes=notes)
        for n in notes:
            warn(n)
    return notes
