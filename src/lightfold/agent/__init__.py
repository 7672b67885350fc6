"""The on-server agent, shipped as one standard-library file (agent.py) that configure uploads.

This package only locates that file for the uploader; the agent itself never imports lightfold.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

AGENT_PATH = Path(__file__).with_name("agent.py")
# Where configure installs it; the CLI runs `remote_command()` with a JSON request on stdin.
REMOTE_AGENT_DIR = "/usr/local/lib/lightfold"
REMOTE_AGENT_PATH = f"{REMOTE_AGENT_DIR}/agent.py"
# Imported as a module rather than run as a script: Python keeps a module's bytecode in
# __pycache__ but compiles a script's ~1,700 lines on every run (~30 ms of each agent call).
_RUN_AS_MODULE = f"import sys; sys.path.insert(0, {REMOTE_AGENT_DIR!r}); import agent; sys.exit(agent.main())"


def remote_command(detach: bool = False) -> str:
    return f"python3 -c {shlex.quote(_RUN_AS_MODULE)}" + (" --detach" if detach else "")


def agent_source() -> bytes:
    return AGENT_PATH.read_bytes()


def agent_hash() -> str:
    """sha256 of agent.py: configure re-uploads the agent when the server's copy differs."""
    return hashlib.sha256(agent_source()).hexdigest()
