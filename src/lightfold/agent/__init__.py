"""The on-server agent, shipped as one standard-library file (agent.py) that configure uploads.

This package only locates that file for the uploader; the agent itself never imports lightfold.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

AGENT_PATH = Path(__file__).with_name("agent.py")
# Where configure installs it; the CLI runs `python3 REMOTE_AGENT_PATH` with a JSON request on stdin.
REMOTE_AGENT_PATH = "/usr/local/lib/lightfold/agent.py"


def agent_source() -> bytes:
    return AGENT_PATH.read_bytes()


def agent_hash() -> str:
    """sha256 of agent.py: configure re-uploads the agent when the server's copy differs."""
    return hashlib.sha256(agent_source()).hexdigest()
