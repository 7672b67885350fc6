"""What a rollback goes back across: the releases whose release command (migrations) ran, read
from the server's journal and each release.json alongside the rollback, and the warning that
names the backup taken before each."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from lightfold.agent.layout import Layout
from lightfold.release.target import as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection


# Run as root with python3: the journal's entries, each with its release.json's release command
# and the backup push took before it (one exec, alongside the rollback's).
_RELEASE_INFOS = r"""
import json, os, sys
journal, releases = sys.argv[1], sys.argv[2]
try:
    entries = json.load(open(journal))
except FileNotFoundError:
    entries = []
for e in entries:
    try:
        info = json.load(open(os.path.join(releases, e["id"], ".lightfold", "release.json")))
    except (OSError, ValueError):
        info = {}
    e["release_command"], e["backup_before"] = info.get("release"), info.get("backup_before")
print(json.dumps(entries))
"""


async def release_infos(conn: Connection, app: str) -> list[dict[str, Any]]:
    import json

    lay = Layout(app)
    res = await conn.run(as_root(conn, f"python3 -c {shlex.quote(_RELEASE_INFOS)} {shlex.quote(lay.journal)} "
                                       f"{shlex.quote(lay.releases_dir)}"), display="read the releases' commands")
    return json.loads(res.stdout)


def migrations_crossed(entries: list[dict[str, Any]], to: str | None,
                       went_from: str | None = None) -> list[dict[str, Any]]:
    """The releases a rollback to `to` (or the agent's own pick) goes back across whose release
    command ran, or may have (a failed one), newest first. `went_from`: the release it went back
    from, once it answered (the journal may then show either side of the switch). Pure."""
    from lightfold.agent.journal import live_entry, rollback_target

    if went_from is not None and to is not None:
        target, top = to, went_from
    else:
        live = live_entry(entries)
        if live is None:
            return []
        target, top = rollback_target(entries, to)["id"], live["id"]
    # The release it went back from was live until then, whatever the journal says now.
    return [{"id": e["id"], "status": "live" if e["id"] == went_from else e["status"], "release": e["release_command"],
             "backup_before": e.get("backup_before")}
            for e in sorted(entries, key=lambda e: e["id"], reverse=True)
            if target < e["id"] <= top and e.get("release_command") and e["status"] != "building"]


def migration_warning(app: str, m: dict[str, Any]) -> str:
    ran = "may have run" if m["status"] == "failed" else "ran"
    text = (f"release {m['id']} {ran} its release command (`{m['release']}`): a rollback does not undo what it "
            "changed in the database")
    if m.get("backup_before"):
        return text + (f"; the backup taken just before it is {m['backup_before']} "
                       f"(`lightfold backup restore {m['backup_before']} --target {app} --yes`)")
    return text + "; no backup was taken before it (the target had no database then)"
