"""The Typer application and its global options. The command modules register their commands on
`app`; `lightfold.cli.main` imports them all and is the one place where errors become a single line
and an exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""

from __future__ import annotations

import typer

from lightfold.cli import output

app = typer.Typer(
    name="lightfold",
    help="Deploy a web project to a Linux server with one command: [bold]lightfold deploy[/].",
    epilog="Examples:  lightfold detect --explain   ·   lightfold deploy --provider local   ·   "
    "lightfold status --target myapp",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
)


def _version(value: bool) -> None:
    if value:
        from lightfold.cli import version_line

        print(version_line())
        raise typer.Exit()


@app.callback()
def _global(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and remote commands."),
    version: bool = typer.Option(
        False, "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    if debug:
        output.DEBUG = True
