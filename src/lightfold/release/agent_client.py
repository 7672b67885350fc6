"""Requests to the on-server agent: one SSH exec, a JSON request on stdin (so env values never
appear on a command line), one JSON result on stdout, progress events on stderr."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lightfold.agent.bundle import remote_command
from lightfold.errors import LightfoldError
from lightfold.release.target import actor, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection


class AgentError(LightfoldError):
    """The agent answered ok:false. `result` is its whole answer (e.g. `busy` for a held lock)."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(
            result.get("error") or f"the server agent failed ({result.get('op')})",
            result.get("fix"),
            details=[str(line) for line in (result.get("log_tail") or [])][-20:],
        )
        self.result = result


def request(op: str, app: str, **fields: Any) -> dict[str, Any]:
    return {"op": op, "app": app, "by": actor(), **fields}


async def call(
    conn: Connection,
    op: str,
    app: str,
    *,
    detach: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 900,
    **fields: Any,
) -> dict[str, Any]:
    command = as_root(conn, remote_command(detach))

    def on_output(stream: str, line: str) -> None:
        if stream == "stderr" and on_event is not None and line.startswith("{"):
            with contextlib.suppress(ValueError):
                on_event(json.loads(line))

    res = await conn.run(
        command, input=json.dumps(request(op, app, **fields)), check=False, timeout=timeout,
        on_output=on_output, display=f"lightfold agent {op}",
    )
    return answer(op, res.stdout, res.exit_status, res.stderr, conn.host)


def answer(op: str, stdout: str, exit_status: int, stderr: str, host: str) -> dict[str, Any]:
    """The agent's reply from what its exec printed; raises when there is none or it is not ok."""
    result = _last_json(stdout)
    if result is None:
        if exit_status == 127 or "No such file" in stderr or "No module named" in stderr:
            raise LightfoldError(
                f"the lightfold agent is not installed on {host}", "run `lightfold configure` first"
            )
        tail = (stderr or stdout).strip().splitlines()[-15:]
        raise LightfoldError(f"the server agent gave no answer to {op} (exit {exit_status})", details=tail)
    if not result.get("ok"):
        raise AgentError(result)
    return result


def progress_notes(report: Callable[[str, str], None]) -> Callable[[dict[str, Any]], None]:
    """An `on_event` that shows the agent's progress events as report notes."""
    return lambda e: report("note", e.get("msg", "")) if e.get("msg") else None


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
