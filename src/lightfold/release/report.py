"""How deploy steps tell the user what they are doing without knowing how it is shown.

A step calls `report(kind, message)`; kinds: "step" (a phase starts), "ok" (a phase finished),
"skip" (nothing to do, and why), "note" (detail), "warn", "output" (a line of a remote command's
output, e.g. the build). The CLI maps kinds to rich output on stderr; tests collect them.
"""

from __future__ import annotations

from collections.abc import Callable

Report = Callable[[str, str], None]


def silent(kind: str, message: str) -> None:
    pass
