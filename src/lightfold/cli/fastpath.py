"""Hot commands run before Typer loads: the no-op `deploy`/`push` and `rollback` (parsed here,
rendered by lightfold.cli.render).

Importing Typer costs ~150 ms and its first invocation (which imports pydantic to convert the
parameters) ~180 ms more. For a no-op deploy that is more than the whole check
(lightfold.release.noop); for a rollback, time its user waits while the site serves the broken
release. So `lightfold.cli.main` offers the plain command forms to `try_run` first:

    lightfold deploy   [PATH] [--target T] [--provider P] [--wait|--no-wait] [--json]
    lightfold push     [PATH] [--target T] [--wait|--no-wait] [--json]
    lightfold rollback [--target T] [--to RELEASE] [--lock-wait N] [--json]

Any other flag (--force, --builder, --debug, --help, ...) or an invalid target name or path goes
to the Typer app, which also owns the help. A deploy is answered here only when the check proves
nothing changed; otherwise Typer runs it as always. A push the check cannot skip, and `rollback`,
run here the same function the Typer command calls (`push_and_render`, `rollback`), with the same
error handling (output.guarded): a one-file redeploy does not wait for Typer either.
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
# Flags (field, value) each command accepts here.
_WAIT = {"--wait": ("wait", True), "--no-wait": ("wait", False)}
_FLAGS: dict[str, dict[str, tuple[str, bool]]] = {"deploy": _WAIT, "push": _WAIT, "rollback": {}}


def parse(argv: list[str]) -> dict | None:
    """{command, path, as_json, <the command's option fields>} for the plain forms above, else None."""
    if not argv or argv[0] not in _FORMS:
        return None
    options, takes_path = _FORMS[argv[0]]
    flags = _FLAGS[argv[0]]
    got: dict = {"command": argv[0], "path": None, "as_json": False, **dict.fromkeys(options.values()),
                 **{field: None for field, _ in flags.values()}}
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if a == "--json":
            got["as_json"] = True
        elif a in flags:
            field, flag = flags[a]
            if got[field] is not None:
                return None  # Typer says which one wins
            got[field] = flag
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
    if skip(req["command"], name, path if req["command"] == "deploy" else None, req.get("provider"), req["as_json"]):
        return True
    if req["command"] != "push":
        return False
    output.DEBUG = output.DEBUG or bool(os.environ.get("LIGHTFOLD_DEBUG"))
    output.guarded(lambda: push(name, req["wait"], req["as_json"]))
    return True


def push(name: str, wait: bool | None, as_json: bool) -> None:
    """`lightfold push` without --force/--builder/--lock-wait/--batch, the no-op check done."""
    from lightfold.release import target as targets

    push_and_render(targets.load(name), force=False, lock_wait=0, wait=wait_for_outcome(wait, as_json),
                    as_json=as_json)


def wait_for_outcome(wait: bool | None, as_json: bool) -> bool:
    """`--wait/--no-wait`, defaulting to waiting in --json mode."""
    return as_json if wait is None else wait


def push_and_render(t, *, force: bool, lock_wait: int, wait: bool, as_json: bool, batch: int = 1) -> None:
    """Push target `t` (lightfold.release.push, or a rollout on a target with more servers) and
    render the result; remember the no-op stamp when the push waited for its outcome."""
    from lightfold.cli import render
    from lightfold.release import noop, rolling
    from lightfold.release import push as step
    from lightfold.release import target as targets

    key = noop.local_key(t.name, t.project, noop.raw_target(t.name) or {})  # before push reads the project
    detection = t.detect()
    rollout = rolling.rollout_for(t, detection, batch=batch, report=output.reporter())

    async def push_and_remember(conn):
        connected = time.monotonic() - t0
        result = await step.push(conn, t, detection, force=force, lock_wait=lock_wait, wait=wait,
                                 report=output.reporter(), rollout=rollout)
        if not result.finishing_on_server:  # the server still changes what the stamp hashes
            await noop.remember(conn, t, key, detection.framework, result.release, result.url)
        result.timings = {"connect": connected, **result.timings}  # the SSH library's import included
        return result

    t0 = time.monotonic()
    result = targets.on_server(t, push_and_remember)
    output.emit(render.push_json(t.name, result), as_json, lambda: render.show_push(result))


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
