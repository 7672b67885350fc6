"""Counts the round trips this process makes to servers: every SSH exec (asyncssh's `run` and
`start`, and the system ssh of `quick_exec`) and how many of them start python3 on the server.

    counter.totals()          {"execs": N, "python3": M} so far in this process
    LIGHTFOLD_COUNT_EXECS     a file path: each exec also appends one JSON line there
                              {"exec": <what ran, as displayed>, "python3": <starts>}, so a
                              benchmark can count what a CLI process did (benchmarks/roundtrips.py)

An exec starts python3 once per python3 its command line runs (one exec may run several agent
requests: lightfold.release.agent_client.call_many), or once when it feeds a shell a script on
stdin (`bash -s`) that runs python3. Only the command's display name (or its first 80
characters: command lines hold no secrets, see Connection.run) is written, never its input.
"""

from __future__ import annotations

import json
import os
import re

ENV = "LIGHTFOLD_COUNT_EXECS"
# python3 as a command: at a line's start, after ; & | ( or $( or a quote, optionally behind exec or
# sudo — not as a word in a list (a package named python3 in a configure script).
_PYTHON = re.compile(rb"(^|[;&|(\"']|\$\()\s*((exec|sudo(\s+-n)?)\s+)?python3(\s|$)", re.M)
# python3 as the command systemd-run starts (a detached agent op: lightfold.agent.bundle.detached_command).
_SYSTEMD_RUN_PYTHON = re.compile(rb"systemd-run\s[^;&|\n]*?\spython3(\s|$)")

_totals = {"execs": 0, "python3": 0}


def python_starts(command: str, script: bytes | None = None) -> int:
    """How many python3 processes the exec starts on the server (as counted here)."""
    n = len(_PYTHON.findall(command.encode())) + len(_SYSTEMD_RUN_PYTHON.findall(command.encode()))
    if n:
        return n
    return int(command.rstrip().endswith(("bash -s", "sh -s")) and bool(script) and bool(_PYTHON.search(script)))


def starts_python(command: str, script: bytes | None = None) -> bool:
    return python_starts(command, script) > 0


def record(command: str, script: bytes | None = None, display: str | None = None) -> None:
    py = python_starts(command, script)
    _totals["execs"] += 1
    _totals["python3"] += py
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"exec": display or command[:80], "python3": py}) + "\n")


def totals() -> dict[str, int]:
    return dict(_totals)
