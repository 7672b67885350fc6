"""Options every command shares, so each flag means the same thing everywhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli.fastpath import wait_for_outcome  # noqa: F401 - the commands' (Typer-free, for the fast path)
from lightfold.names import is_target_name, sanitize_target_name

TargetOpt = Annotated[
    str | None,
    typer.Option("--target", "-t", help="Target name (default: the project directory's name).", show_default=False),
]
PathArg = Annotated[Path, typer.Argument(help="Project directory.", show_default=".")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]
# Cloud server shape: `create` and `deploy` both take these.
RegionOpt = Annotated[
    str | None,
    typer.Option("--region", help="Cloud providers: where the server runs (e.g. nbg1, nyc3, ewr). Default: "
                 "chosen from a list on a terminal, else the provider's cheapest sensible one.", show_default=False),
]
SizeOpt = Annotated[
    str | None,
    typer.Option("--size", help="Cloud providers: the server type/plan (e.g. cx22, s-1vcpu-1gb, vc2-1c-1gb).",
                 show_default=False),
]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="The server's OS image: debian-13 (default) or debian-12 for --provider local; "
                 "the provider's image name for cloud providers (default: Debian 13).", show_default=False),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Assume yes; never prompt.")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Run the step even if it looks done.")]
LockWaitOpt = Annotated[
    int, typer.Option("--lock-wait", help="Wait up to this many seconds for another deploy to finish.", min=0)
]
WaitOpt = Annotated[
    bool | None, typer.Option(
        "--wait/--no-wait", show_default=False,
        help="Return only when the server has watched the new release for its smoke window (a crash there "
             "switches traffic back and fails the command) and drained the old one. Default: --wait with --json "
             "(scripts and CI get the final outcome), else return as soon as traffic moved.")
]


def resolve_target(target: str | None, path: Path = Path(".")) -> str:
    """The explicit --target (validated) or the sanitised name of the project directory."""
    from lightfold.errors import UsageError

    if target is None:
        return sanitize_target_name(path.resolve().name)
    if not is_target_name(target):
        raise UsageError(
            f"invalid target name '{target}'", "use lowercase letters, digits and '-', at most 31 characters"
        )
    return target


def interactive(yes: bool = False) -> bool:
    """Prompts are allowed only on a terminal and without --yes."""
    return not yes and sys.stdin.isatty()
