"""How results reach the user: rich text for people, one JSON document for machines.

With --json, stdout carries exactly one JSON value and nothing else; progress and errors go to
stderr. Consoles are created lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

DEBUG = False


@cache
def out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def err():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    """Print `data` as JSON, or call `human` to render it for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
        sys.stdout.flush()
    else:
        human()


def step(message: str) -> None:
    """A progress line (stderr, so --json output stays clean)."""
    err().print(f"[cyan]•[/] {message}")


def note(message: str) -> None:
    err().print(f"  [dim]{message}[/]")


def ok(message: str) -> None:
    err().print(f"[green]✓[/] {message}")


def warn(message: str) -> None:
    err().print(f"[yellow]![/] {message}")


def error_line(message: str) -> None:
    from rich.markup import escape

    err().print(f"[bold red]error:[/] {escape(message)}")


def error(e) -> None:
    from rich.markup import escape

    text = escape(e.problem)
    if e.fix:
        text += f" [dim]—[/] {escape(e.fix)}"
    err().print(f"[bold red]error:[/] {text}")
    for line in e.details:
        err().print(f"  {escape(line)}", style="dim")


def reporter(quiet_output: bool = False):
    """A `lightfold.release.report.Report` that prints on stderr."""

    def report(kind: str, message: str) -> None:
        from rich.markup import escape

        text = escape(message)
        if kind == "step":
            err().print(f"[cyan]•[/] {text}")
        elif kind == "ok":
            err().print(f"[green]✓[/] {text}")
        elif kind == "skip":
            err().print(f"[green]✓[/] [dim]skipped:[/] {text}")
        elif kind == "warn":
            err().print(f"[yellow]![/] {text}")
        elif kind == "output":
            if not quiet_output:
                err().print(f"  [dim]│ {text}[/]")
        else:
            err().print(f"  [dim]{text}[/]")

    return report


def guarded(run: Callable[[], Any]) -> None:
    """Run a command; errors become one line and an exit code (0 ok, 1 failure, 2 usage error,
    130 interrupted); an unexpected exception is a bug: one line, the traceback only with --debug."""
    from lightfold.errors import LightfoldError

    try:
        run()
    except LightfoldError as e:
        if DEBUG:
            import traceback

            traceback.print_exc()
        error(e)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)
    except Exception as e:
        if DEBUG:
            raise
        error_line(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)")
        sys.exit(1)
