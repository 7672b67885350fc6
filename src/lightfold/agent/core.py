"""Shared by every agent module: the protocol constants, AgentError, progress events on stderr,
the one reply on stdout, and the one door to the system (`run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

# Copies of lightfold.agent.protocol's (a unit test holds them equal): importing protocol would
# cost every agent call the import of dataclasses and typing.
AGENT_VERSION = 4  # protocol.PROTOCOL_VERSION
KEEP_DEFAULT = 5
LOCK_TTL_DEFAULT = 3600
JOURNAL_TAIL_LINES = 30
DETACHABLE_OPS = ("activate", "rollback", "cleanup")
RELEASE_INFO_FIELDS = ("commit", "dirty", "fingerprint", "env_hash", "builder", "deployed_by", "created_at")
# How long a switch waits for another one of the same app (a smoke window + drain + cleanup).
SWITCH_WAIT_SECONDS = 30


class AgentError(Exception):
    """A failure reported to the CLI as {ok: false, error, fix, log_tail, ...extra}."""

    def __init__(self, error: str, fix: str | None = None, log_tail: list[str] | None = None, **extra):
        super().__init__(error)
        self.error = error
        self.fix = fix
        self.log_tail = log_tail or []
        self.extra = extra

    def result(self) -> dict:
        return {"ok": False, "error": self.error, "fix": self.fix, "log_tail": self.log_tail, **self.extra}


# ---------------------------------------------------------------------------------------------
# Progress on stderr, the reply on stdout. Writes never fail the op: after a dropped SSH connection
# the pipe is gone but the switch must still finish.


def emit_event(event: str, msg: str) -> None:
    try:
        sys.stderr.write(json.dumps({"event": event, "msg": msg}) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def step(msg: str) -> None:
    emit_event("step", msg)


def warn(msg: str, warnings: list[str] | None = None) -> None:
    emit_event("warn", msg)
    if warnings is not None:
        warnings.append(msg)


def write_result(result: dict) -> None:
    try:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------------
# The one door to the system: systemctl, nginx, journalctl, systemd-run go through here.


class Ran:
    """Exit code and output of one command."""

    __slots__ = ("code", "out", "err")

    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


def run(argv: list[str], timeout: float = 90) -> Ran:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return Ran(127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Ran(124, "", f"{' '.join(argv)}: timed out after {timeout:g}s")
    return Ran(p.returncode, p.stdout, p.stderr)


def root_from_env() -> str:
    return os.environ.get("LIGHTFOLD_ROOT") or "/"
