"""The agent as configure uploads it, and the command that runs it (laptop side, never uploaded).

    agent_files()                 {"agent/core.py": b"...", ...}: paths relative to layout.AGENT_DIR
    remote_command()              the shell command an SSH exec runs, a JSON request on its stdin
    detached_command(op, app)     the same, run in the op's transient unit (activate, rollback,
                                  cleanup: they must outlive the SSH session)
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from lightfold.agent import layout

PACKAGE_DIR = Path(__file__).parent
# This package's modules the server never needs; every other module of it is uploaded.
LAPTOP_ONLY = frozenset({"bundle.py", "protocol.py"})


def agent_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE_DIR.glob("*.py")) if p.name not in LAPTOP_ONLY]


def agent_files() -> dict[str, bytes]:
    """The agent package's files, by their path relative to layout.AGENT_DIR."""
    return {f"{layout.AGENT_PACKAGE}/{p.name}": p.read_bytes() for p in agent_modules()}


def remote_command(detach: bool = False) -> str:
    return f"python3 -c {shlex.quote(layout.agent_entry())}" + (" --detach" if detach else "")


# How long a detached op waits for the previous run of its unit (a rollback still in its smoke
# window) to end before it refuses: as long as the agent's own `--detach` waits (main.wait_unit_gone).
UNIT_WAIT_SECONDS = 60


def detached_command(op: str, app: str, wait_seconds: float = UNIT_WAIT_SECONDS) -> str:
    """Shell that runs the agent on the request on its stdin inside the transient unit
    `layout.op_unit(op, app)` (systemd-run --wait --pipe: the unit's stdin, stdout and stderr are
    this exec's, and it runs on when the SSH session ends), after waiting for a previous run of
    that unit to end (saying so once on stderr; the agent's error reply after `wait_seconds`).
    One python3 start: the agent's `--detach`, which re-runs itself that way, costs two. Pure."""
    unit = layout.op_unit(op, app)
    waiting = json.dumps({"event": "step", "msg": f"waiting for the previous {unit} to finish"})
    busy = json.dumps({"ok": False, "op": op, "app": app, "error": f"a {op} of {app} is still running ({unit})",
                       "fix": "wait for it to finish; `lightfold status` shows the result", "log_tail": []})
    polls = max(1, int(wait_seconds / 0.2))
    script = (
        f"i=0; while systemctl is-active --quiet {unit}.service; do "
        f"[ $i -eq 0 ] && printf '%s\\n' {shlex.quote(waiting)} >&2; "
        f"i=$((i+1)); [ $i -ge {polls} ] && {{ printf '%s\\n' {shlex.quote(busy)}; exit 1; }}; sleep 0.2; done; "
        f"exec systemd-run --unit={unit} --description={shlex.quote(f'lightfold {op} {app}')} "
        f"--collect --wait --pipe --quiet python3 -c {shlex.quote(layout.agent_entry())}"
    )
    return f"sh -c {shlex.quote(script)}"
