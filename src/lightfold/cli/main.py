"""The whole CLI: the Typer app with every command registered, and `run`, where errors become a
single line and an exit code. Each command module registers its commands on `lightfold.cli.app.app`
when imported; the order of the imports below is the order of `--help`."""

from __future__ import annotations

import os

# The order of these imports is the order of `--help`.
# isort: off
from lightfold.cli import detect_cmd  # noqa: F401 - imported for their commands
from lightfold.cli import server_cmds  # noqa: F401
from lightfold.cli import deploy_cmds  # noqa: F401
from lightfold.cli import operate_cmds  # noqa: F401
from lightfold.cli import domain_cmd  # noqa: F401
from lightfold.cli import db_cmd  # noqa: F401
from lightfold.cli import backup_cmd  # noqa: F401
from lightfold.cli import config_cmd  # noqa: F401
# isort: on
from lightfold.cli import output
from lightfold.cli.app import app


def run(argv: list[str]) -> None:
    output.DEBUG = output.DEBUG or "--debug" in argv or bool(os.environ.get("LIGHTFOLD_DEBUG"))
    output.guarded(lambda: app(args=argv, prog_name="lightfold"))
