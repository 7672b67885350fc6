"""The whole CLI: the Typer app with every command registered, and `run`, where errors become a
single line and an exit code. Each command module registers its commands on `lightfold.cli.app.app`
when imported; the order of the imports below is the order of `--help`."""

from __future__ import annotations

import os

from lightfold.cli import (  # noqa: F401 - imported for their commands
    detect_cmd,
    server_cmds,
    deploy_cmds,
    operate_cmds,
    domain_cmd,
    config_cmd,
)
from lightfold.cli import output
from lightfold.cli.app import app


def run(argv: list[str]) -> None:
    output.DEBUG = output.DEBUG or "--debug" in argv or bool(os.environ.get("LIGHTFOLD_DEBUG"))
    output.guarded(lambda: app(args=argv, prog_name="lightfold"))
