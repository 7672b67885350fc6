"""Running one of lightfold's scripts on a server: a rendered plan (configure, certbot) or a build.

    run = await run_plan(conn, script, on_event, on_stderr=None, timeout=1800, display="configure")

The script runs as root in one exec (`bash -s`, the script on stdin, so nothing in it shows on a
command line). Its stdout carries JSON events (lightfold.server.plan.parse_event: `{"step": ...}`
from plans, `{"build": ...}` from builds); each one is handed to `on_event` as it arrives, other
stdout lines are ignored, and stderr lines go to `on_stderr`. The event that reported a failure
(`"failed": true` from a plan, `"status": "failed"` from a build) is kept in `run.failed`, so the
caller can say which step and command failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lightfold.release.target import as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection

Event = dict[str, Any]


@dataclass
class PlanRun:
    exit_status: int
    stdout: str
    stderr: str
    failed: Event = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def is_failure(event: Event) -> bool:
    return bool(event.get("failed")) or event.get("status") == "failed"


async def run_plan(
    conn: Connection, script: str, on_event: Callable[[Event], None], *,
    on_stderr: Callable[[str], None] | None = None, timeout: float = 1800, display: str = "script",
) -> PlanRun:
    from lightfold.server.plan import parse_event

    failed: Event = {}

    def on_output(stream: str, line: str) -> None:
        if stream == "stderr":
            if on_stderr is not None:
                on_stderr(line)
            return
        event = parse_event(line)
        if event is None:
            return
        if is_failure(event):
            failed.update(event)
        on_event(event)

    res = await conn.run(as_root(conn, "bash -s"), input=script, check=False, timeout=timeout,
                         on_output=on_output, display=display)
    return PlanRun(res.exit_status, res.stdout, res.stderr, failed)
