"""`lightfold detect`: show what lightfold would deploy for a project directory, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli.app import app
from lightfold.cli.options import JsonOpt, PathArg

ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Show the evidence, and why each candidate framework won or lost.")
]


@app.command("detect")
def detect_command(path: PathArg = Path("."), json_output: JsonOpt = False, explain: ExplainOpt = False) -> None:
    """Detect the framework, package manager and deploy plan of a project.

    Examples:  lightfold detect   ·   lightfold detect apps/api --explain   ·   lightfold detect --json
    """
    from lightfold.cli import render
    from lightfold.cli.output import emit
    from lightfold.detect import NothingDetected, detect
    from lightfold.errors import UsageError

    if not path.exists():
        raise UsageError(f"{path} does not exist", "pass the project directory: lightfold detect PATH")
    try:
        d = detect(path)
    except NothingDetected as e:
        if not explain:
            e.details = []
        raise
    data = d.to_json(explain=explain)
    if explain:
        from lightfold.builders import select

        choice = select(d)
        data["builder"] = {"name": choice.name, "reason": choice.reason}
    emit(data, json_output, lambda: render.show_detection(d, explain))
