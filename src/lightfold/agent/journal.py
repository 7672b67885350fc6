"""The journal: the list of releases and their status. Pure functions over the list, plus
load/save and the audit log."""

from __future__ import annotations

import json
import os

from .core import KEEP_DEFAULT, AgentError, now_iso
from .files import read_json, write_json
from .layout import Layout


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
    """The entry of `rid` (added if new) with `fields` set, but for a created_at it already has:
    journal_mark stamps that by the server's clock, and release.json's (the laptop's, which a
    switch copies in) must not replace it."""
    entry = find_entry(entries, rid)
    if entry is None:
        entry = new_entry(rid)
        entries.append(entry)
        entries.sort(key=lambda e: e["id"])
    if entry.get("created_at"):
        fields.pop("created_at", None)
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
