"""Hot commands run before Typer loads: the no-op `deploy`/`push` and `rollback` (parsed here,
rendered by lightfold.cli.render).

Importing Typer costs ~150 ms and its first invocation (which imports pydantic to convert the
parameters) ~180 ms more. For a no-op deploy that is more than the whole check
(lightfold.release.noop); for a rollback, time its user waits while the site serves the broken
release. So `lightfold.cli.main` offers the plain command forms to `try_run` first:

    lightfold deploy   [PATH] [--target T] [--provider P] [--json]
    lightfold push     [PATH] [--target T] [--json]
    lightfold rollback [--target T] [--to RELEASE] [--lock-wait N] [--json]

Any other flag (--force, --builder, --debug, --help, ...) or an invalid target name or path goes
to the Typer app, which also owns the help. A deploy/push is answered here only when the check
proves nothing changed; otherwise Typer runs it as always. `rollback` here is the same function
the Typer command calls, with the same error handling (output.guarded).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lightfold.cli import output

# Whether this process has run the no-op check already: a plain command line that `try_run` could
# not skip reaches the Typer command, which must not pay for the same ssh exec a second time.
_checked = False

_TARGET = {"--target": "target", "-t": "target"}
# The options each command accepts here (field names as in its Typer signature), and whether it
# takes a PATH argument.
_FORMS: dict[str, tuple[dict[str, str], bool]] = {
    "deploy": ({**_TARGET, "--provider": "provider", "-p": "provider"}, True),
    "push": (_TARGET, True),
    "rollback": ({**_TARGET, "--to": "to", "--lock-wait": "lock_wait"}, False),
}


def parse(argv: list[str]) -> dict | None:
    """{command, path, as_json, <the command's option fields>} for the plain forms above, else None."""
    if not argv or argv[0] not in _FORMS:
        return None
    options, takes_path = _FORMS[argv[0]]
    got: dict = {"command": argv[0], "path": None, "as_json": False, **dict.fromkeys(options.values())}
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if a == "--json":
            got["as_json"] = True
        elif name in options and (eq or i + 1 < len(args)):
            field = options[name]
            if got[field] is not None or (eq and not name.startswith("--")):  # click reads `-t=x` as "=x"
                return None
            if not eq:
                i += 1
                value = args[i]
            got[field] = value
        elif takes_path and not a.startswith("-") and got["path"] is None:
            got["path"] = a
        else:
            return None
        i += 1
    if got.get("lock_wait") is not None:
        if not got["lock_wait"].isdigit():
            return None  # Typer explains
        got["lock_wait"] = int(got["lock_wait"])
    return got


def try_run(argv: list[str]) -> bool:
    """Run `argv` here if it is one of the plain forms (see module doc); False = use Typer."""
    from lightfold.names import is_target_name, sanitize_target_name

    req = parse(argv)
    if req is None:
        return False
    path = Path(req["path"] or ".")
    if not path.is_dir() or (req["target"] is not None and not is_target_name(req["target"])):
        return False
    name = req["target"] or sanitize_target_name(path.resolve().name)
    if req["command"] == "rollback":
        output.DEBUG = output.DEBUG or bool(os.environ.get("LIGHTFOLD_DEBUG"))
        output.guarded(lambda: rollback(name, req["to"], req["lock_wait"] or 0, req["as_json"]))
        return True
    return skip(req["command"], name, path if req["command"] == "deploy" else None, req.get("provider"),
                req["as_json"])


def rollback(name: str, to: str | None, lock_wait: int, as_json: bool) -> None:
    """`lightfold rollback` (lightfold.release.operate.rollback_target), rendered."""
    from lightfold.cli import render
    from lightfold.release import operate

    result = operate.rollback_target(name, to=to, lock_wait=lock_wait, report=output.reporter())
    output.emit(render.rollback_json(name, result), as_json, lambda: render.show_rollback(result))


def skip(command: str, name: str, path: Path | None, provider: str | None, as_json: bool) -> bool:
    """True when lightfold.release.noop proved nothing changed, after rendering what the full path
    would have (plus `fast_path: true` and the check's timings in --json); False = run the full path."""
    from lightfold.cli import render
    from lightfold.release import noop

    global _checked
    if _checked:  # `main` already asked for this command line (and the answer was no)
        return False
    _checked = True
    t0 = time.monotonic()
    hit = noop.check(name, path, provider=provider, need_created=command == "deploy")
    if hit is None:
        return False
    render.noop(command, name, hit, time.monotonic() - t0, as_json)
    return True
