"""The nginx upstream include: which slot's port nginx routes to."""

from __future__ import annotations

import re

from .layout import SLOTS

UPSTREAM_RE = re.compile(r"^\s*server\s+127\.0\.0\.1:(\d+)\b", re.M)
BACKUP_RE = re.compile(r"^\s*server\s+127\.0\.0\.1:\d+\s+backup;", re.M)


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
