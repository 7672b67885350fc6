"""The no-op `deploy`/`push`, answered before Typer loads, and how a push result is rendered.

Importing Typer costs ~150 ms and its first invocation (which imports pydantic for parameter
conversion) ~180 ms more — together more than the whole no-op check (lightfold.release.noop). So
`lightfold.cli.main` offers the plain command forms to `try_skip` first:

    lightfold deploy [PATH] [--target T] [--provider P] [--json]
    lightfold push   [PATH] [--target T] [--json]

Any other flag (--force, --builder, --debug, --help, ...), an invalid name or path, or a check
that does not prove "nothing changed" returns False, and the Typer app handles the command as
always — so this module never decides anything the full path would decide differently, and never
reports errors (the full path does, with its fixes).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from lightfold.cli import output

_VALUED = {"--target": "target", "-t": "target", "--provider": "provider", "-p": "provider"}


def parse(argv: list[str]) -> dict | None:
    """{command, path, target, provider, as_json} for the plain forms above, else None."""
    if not argv or argv[0] not in ("deploy", "push"):
        return None
    got: dict = {"command": argv[0], "path": None, "target": None, "provider": None, "as_json": False}
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if a == "--json":
            got["as_json"] = True
        elif name in _VALUED and (eq or i + 1 < len(args)):
            field = _VALUED[name]
            short_with_eq = eq and not name.startswith("--")  # click reads `-t=x` as "=x": leave it to Typer
            if got[field] is not None or short_with_eq or (field == "provider" and argv[0] != "deploy"):
                return None
            if not eq:
                i += 1
                value = args[i]
            got[field] = value
        elif not a.startswith("-") and got["path"] is None:
            got["path"] = a
        else:
            return None
        i += 1
    return got


def try_skip(argv: list[str]) -> bool:
    """Answer `argv` here if it is a plain no-op deploy/push (see module doc)."""
    from lightfold.names import TARGET_NAME, sanitize_target_name

    req = parse(argv)
    if req is None:
        return False
    path = Path(req["path"] or ".")
    if not path.is_dir() or (req["target"] is not None and not TARGET_NAME.match(req["target"])):
        return False
    name = req["target"] or sanitize_target_name(path.resolve().name)
    return skip(req["command"], name, path if req["command"] == "deploy" else None, req["provider"], req["as_json"])


def skip(command: str, name: str, path: Path | None, provider: str | None, as_json: bool) -> bool:
    """True when lightfold.release.noop proved nothing changed, after rendering what the full path
    would have (plus `fast_path: true` and the check's timings in --json); False = run the full path."""
    from lightfold.release import noop

    t0 = time.monotonic()
    hit = noop.check(name, path, provider=provider, need_created=command == "deploy")
    if hit is None:
        return False
    pushed = SimpleNamespace(skipped=True, release=hit.release, previous=None, build="skipped", url=hit.url,
                             timings={})
    seconds = {"check": round(hit.seconds, 2), "total": round(time.monotonic() - t0, 2)}
    again = "deploys" if command == "deploy" else "pushes"
    output.reporter()("skip", f"nothing changed since release {hit.release} went live: same code, env, settings "
                              f"and server configuration (checked on the server in {hit.seconds:.2f}s; --force "
                              f"{again} anyway)")
    data = push_json(name, pushed)
    if command == "deploy":
        data = {"target": name, "framework": hit.framework, "created": "exists", "configured": "skipped",
                "push": data}
    output.emit({**data, "timings": seconds, "fast_path": True}, as_json, lambda: render_push(pushed))
    return True


def push_json(name: str, result) -> dict:
    return {
        "target": name, "skipped": result.skipped, "release": result.release, "previous": result.previous,
        "build": result.build, "url": result.url,
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
    }


def render_push(result) -> None:
    if result.skipped:
        output.out().print(f"{result.release} is live at {result.url}")
        return
    t = result.timings
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in t.items() if k not in ("total", "live_after"))
    live = f"traffic moved after {t['live_after']:.1f}s, " if "live_after" in t else ""
    output.ok(f"{result.release} is live at {result.url} ({live}done in {t.get('total', 0):.1f}s: {parts})")
