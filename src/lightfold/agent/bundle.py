"""The agent as configure uploads it, and the command that runs it (laptop side, never uploaded).

    agent_files()      {"agent/core.py": b"...", ...}: paths relative to layout.AGENT_DIR
    remote_command()   the shell command an SSH exec runs, a JSON request on its stdin
"""

from __future__ import annotations

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
