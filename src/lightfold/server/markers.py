"""The configure marker: `/etc/lightfold/apps/<app>/configured`.

JSON {"fingerprint", "agent_hash", "configured_at", "lightfold_version", "files"}: `files` maps every
file the plan writes whole (`owned_files`) to its sha256, so a configure whose fingerprint matches
still sees a file changed by hand (`drifted`: the read command adds each one's current hash). The seed's
`/etc/lightfold/configured` is written too (once, by the first app configured); the fingerprint
marker is per app (not one
`/etc/lightfold/configured` per server) because two apps on one server have different plans: a
single marker would make each app's configure rerun after the other's.

The marker step is not part of the fingerprinted plan (it contains the fingerprint); it is written
only when the stored fingerprint differs, so a second configure reports no change.
`marker_read_command(app)` prints the marker (or nothing); `parse_marker(text)` reads it back.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from lightfold.agent.layout import SERVER_MARKER, Layout, unit_prefix
from lightfold.server.plan import Plan, Run, Step, WriteFile


def marker_path(app: str) -> str:
    return Layout(app).marker


def owned_files(plan: Plan, app: str) -> dict[str, str]:
    """{path: sha256} of this app's files the plan writes whole and keeps (not the create-once
    ones, nor those it leaves alone on a condition): what must still be there, unchanged, on a
    server whose marker has the plan's fingerprint. Server-wide files (the agent, the firewall,
    sshd's and apt's drop-ins, nginx's shared map) are left out: every app's configure writes them,
    and two apps configured by different lightfold versions would each "repair" the other's."""
    mine = (f"/{unit_prefix(app)}.", f"/{unit_prefix(app)}@", Layout(app).etc + "/")
    files = {}
    for step in plan.steps:
        for a in step.actions:
            if (isinstance(a, WriteFile) and not a.only_if_absent and a.unless is None
                    and any(m in a.path for m in mine)):
                files[a.path] = hashlib.sha256(a.data()).hexdigest()
    return dict(sorted(files.items()))


def marker_step(app: str, fingerprint: str, agent_hash: str, lightfold_version: str,
                files: dict[str, str] | None = None) -> Step:
    path = marker_path(app)
    # configured_at is the server's clock, so the plan itself stays deterministic.
    doc = json.dumps({
        "fingerprint": fingerprint, "agent_hash": agent_hash, "lightfold_version": lightfold_version,
        "files": files or {},
    }, sort_keys=True)
    head = doc[:-1] + ', "configured_at": "'
    command = (
        f"printf '%s%s\"}}\\n' {shlex.quote(head)} \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" > {path}.new"
        f" && chmod 644 {path}.new && mv -f {path}.new {path}"
    )
    return Step("marker", (
        Run(command, unless=f"grep -qF '\"fingerprint\": \"{fingerprint}\"' {path}", label=f"marker {path}"),
        # The seed's server-wide marker: the server has been configured by lightfold (for any app).
        Run(f"date -u +%Y-%m-%dT%H:%M:%SZ > {SERVER_MARKER}", unless=f"test -f {SERVER_MARKER}",
            label=f"marker {SERVER_MARKER}"),
    ))


# Prints the marker with "current": each recorded file's sha256 now (null: missing or unreadable).
_READ_MARKER = (
    "import hashlib,json,sys\n"
    "d=json.load(open(sys.argv[1]))\n"
    "c={}\n"
    "for p in d.get('files') or {}:\n"
    "    try: c[p]=hashlib.sha256(open(p,'rb').read()).hexdigest()\n"
    "    except OSError: c[p]=None\n"
    "d['current']=c\n"
    "print(json.dumps(d))\n"
)


def marker_read_command(app: str) -> str:
    path = marker_path(app)
    return f"test -f {path} && {{ python3 -c {shlex.quote(_READ_MARKER)} {path} || cat {path}; }} || true"


def drifted(marker: dict[str, Any] | None) -> list[str]:
    """Files the marker recorded whose content on the server is not what configure wrote."""
    if not marker or not isinstance(marker.get("files"), dict) or not isinstance(marker.get("current"), dict):
        return []
    return [p for p, h in sorted(marker["files"].items()) if marker["current"].get(p) != h]


def parse_marker(text: str) -> dict[str, Any] | None:
    """The marker document, or None when missing or unreadable (then configure must run)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "fingerprint" in doc else None
