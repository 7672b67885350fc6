"""The configure marker: `/etc/lightfold/apps/<app>/configured`.

JSON {"fingerprint", "agent_hash", "configured_at", "lightfold_version"}. The seed's
`/etc/lightfold/configured` is written too (once, by the first app configured); the fingerprint
marker is per app (not one
`/etc/lightfold/configured` per server) because two apps on one server have different plans: a
single marker would make each app's configure rerun after the other's.

The marker step is not part of the fingerprinted plan (it contains the fingerprint); it is written
only when the stored fingerprint differs, so a second configure reports no change.
`marker_read_command(app)` prints the marker (or nothing); `parse_marker(text)` reads it back.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from lightfold.agent.layout import SERVER_MARKER, Layout
from lightfold.server.plan import Run, Step


def marker_path(app: str) -> str:
    return Layout(app).marker


def marker_step(app: str, fingerprint: str, agent_hash: str, lightfold_version: str) -> Step:
    path = marker_path(app)
    # configured_at is the server's clock, so the plan itself stays deterministic.
    doc = json.dumps({
        "fingerprint": fingerprint, "agent_hash": agent_hash, "lightfold_version": lightfold_version,
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


def marker_read_command(app: str) -> str:
    return f"cat {marker_path(app)} 2>/dev/null || true"


def parse_marker(text: str) -> dict[str, Any] | None:
    """The marker document, or None when missing or unreadable (then configure must run)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "fingerprint" in doc else None
