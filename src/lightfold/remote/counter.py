"""Counts the round trips this process makes to servers: every SSH exec (asyncssh's `run` and
`start`, and the system ssh of `quick_exec`) and how many of them start python3 on the server.

    counter.totals()          {"execs": N, "python3": M} so far in this process
    LIGHTFOLD_COUNT_EXECS     a file path: each exec also appends one JSON line there
                              {"exec": <what ran, as displayed>, "python3": bool}, so a benchmark
                              can count what a CLI process did (benchmarks/roundtrips.py)

An exec "starts python3" when its command line runs python3, or when it feeds a shell a script
on stdin (`bash -s`) that runs python3. Only the command's display name (or its first 80
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

_totals = {"execs": 0, "python3": 0}


def starts_python(command: str, script: bytes | None = None) -> bool:
    if _PYTHON.search(command.encode()):
        return True
    return command.rstrip().endswith(("bash -s", "sh -s")) and bool(script) and bool(_PYTHON.search(script))


def record(command: str, script: bytes | None = None, display: str | None = None) -> None:
    py = starts_python(command, script)
    _totals["execs"] += 1
    _totals["python3"] += int(py)
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"exec": display or command[:80], "python3": py}) + "\n")


def totals() -> dict[str, int]:
    return dict(_totals)
