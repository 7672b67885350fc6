"""Entry point. `--version` answers without importing the CLI framework; everything else goes
through the Typer app in `lightfold.cli.app`."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        from lightfold import __version__

        print(f"lightfold {__version__}")
        return
    from lightfold.cli.app import run

    run(argv)
