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
    emit(data, json_output, lambda: _render(d, explain))


def _render(d, explain: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lightfold.cli.output import out

    con = out()
    version = f" {d.runtime_version}" if d.runtime_version else ""
    variant = f" ({d.variant})" if d.variant else ""
    con.print(f"[bold]{escape(d.framework_name)}[/]{escape(variant)}  [dim]{d.framework}[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    rows = [
        ("app", d.app_root),
        ("workspace", f"{d.workspace_root} (app in {d.app_subdir})" if d.workspace_root else None),
        ("runtime", f"{d.runtime}{version}" + (f" (+ {', '.join(d.extra_runtimes)})" if d.extra_runtimes else "")),
        ("package manager", d.package_manager),
        ("install", d.install),
        ("build", d.build),
        ("start", d.start if not d.static else f"static: nginx serves {d.output_dir}/"),
        ("release", d.release),
        ("port", str(d.port) if d.port else None),
        ("health path", d.health_path if not d.static else None),
        ("env required", ", ".join(d.env_required) if d.env_required else None),
        ("env optional", ", ".join(d.env_optional) if d.env_optional else None),
        (
            "dockerfile",
            f"yes (EXPOSE {d.dockerfile_port})" if d.dockerfile_port else "yes" if d.has_dockerfile else None,
        ),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, escape(str(value)))
    con.print(table)
    for w in d.warnings:
        con.print(f"[yellow]![/] {escape(w)}")
    if not explain:
        return
    con.print("\n[bold]evidence[/]")
    for s in d.signals:
        con.print(f"  • {escape(s)}")
    con.print("\n[bold]candidates[/] [dim](earlier precedence wins)[/]")
    for c in d.explain:
        mark = "[green]✓ won [/]" if c.won else ("[yellow]· lost[/]" if c.matched else "[dim]✗ no  [/]")
        evidence = f" [dim]— {escape('; '.join(c.evidence))}[/]" if c.evidence else ""
        con.print(f"  {mark} #{c.rank:<2} {c.framework:<13} {escape(c.reason)}{evidence}")
    con.print("  [dim]frameworks not listed had no signal at all[/]")
    from lightfold.builders import select

    choice = select(d)
    con.print(f"\n[bold]builder[/] {choice.name} [dim]— {escape(choice.reason)}[/]")
    con.print("  [dim]rules: --builder/config wins; a Dockerfile → dockerfile; Node/Python with nixpacks on the "
              "server → nixpacks; otherwise native[/]")
