"""`lightfold db add|status|url|remove`: PostgreSQL, MariaDB or Redis beside the target's app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import output, render_db
from lightfold.cli.app import app
from lightfold.cli.options import JsonOpt, PathArg, TargetOpt, YesOpt, interactive, resolve_target

db_app = typer.Typer(
    name="db", no_args_is_help=True,
    help="A database beside the app (PostgreSQL, MariaDB or Redis from the server's OS packages, loopback only).",
)
app.add_typer(db_app, name="db")

KindArg = Annotated[str, typer.Argument(help="postgres, mysql (MariaDB; also: mariadb) or redis.", show_default=False)]


@db_app.command("add")
def add_cmd(kind: KindArg, path: PathArg = Path("."), target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Install KIND on the target's server and give the app its connection variables.

    The password is made on the server; the app gets DATABASE_URL and PGHOST/PGPORT/PGUSER/
    PGPASSWORD/PGDATABASE (postgres), DATABASE_URL (mysql://) and MYSQL_HOST/MYSQL_PORT/MYSQL_USER/
    MYSQL_PASSWORD/MYSQL_DATABASE (mysql), or REDIS_URL (redis) from its next deploy on.

    Example: lightfold db add postgres --target myapp && lightfold deploy --target myapp
    Example: lightfold db add mariadb --target myapp
    """
    from lightfold.release import database as step
    from lightfold.release import target as targets
    from lightfold.server.database import check_kind

    kind = check_kind(kind)
    t = targets.load(resolve_target(target, path))
    result = targets.on_server(t, lambda conn: step.add(conn, t, kind, report=output.reporter()))
    output.emit(result, as_json, lambda: render_db.show_db_added(result))


@db_app.command("status")
def status_cmd(path: PathArg = Path("."), target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """The target's databases: running, where they listen, the app's variables (names only).

    Example: lightfold db status --target myapp
    """
    from lightfold.release import database as step
    from lightfold.release import target as targets

    t = targets.load(resolve_target(target, path))
    data = targets.on_server(t, lambda conn: step.status(conn, t))
    output.emit(data, as_json, lambda: render_db.show_db_status(data))


@db_app.command("url")
def url_cmd(
    kind: Annotated[str | None, typer.Argument(help="postgres, mysql or redis (default: the only one).",
                                               show_default=False)] = None,
    path: Annotated[Path, typer.Option("--path", help="Project directory.", show_default=".")] = Path("."),
    target: TargetOpt = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the password too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The connection URL the app gets, its password as **** unless --reveal.

    Example: lightfold db url postgres --reveal --target myapp
    """
    from lightfold.release import database as step
    from lightfold.release import target as targets
    from lightfold.server.database import check_kind

    if kind is not None:
        kind = check_kind(kind)
    t = targets.load(resolve_target(target, path))
    data = targets.on_server(t, lambda conn: step.url(conn, t, kind, reveal))
    output.emit(data, as_json, lambda: render_db.show_db_url(data))


@db_app.command("shell")
def shell_cmd(
    kind: Annotated[str | None, typer.Argument(help="postgres, mysql or redis (default: the only one).",
                                               show_default=False)] = None,
    target: TargetOpt = None,
    pty: Annotated[bool | None, typer.Option(
        "--pty/--no-pty", show_default=False,
        help="A terminal on the server (default: when this terminal is one). Uses the system ssh client.")] = None,
) -> None:
    """The database's own client (psql, mariadb, redis-cli) as the app's role, in the live release.

    Like `lightfold run`: the app's user, the release's env (the client reads its credentials from
    it: never a command line), the app's sandbox. Without a terminal, stdin is the client's input.
    Examples: lightfold db shell -t myapp · lightfold db shell mysql -t myapp < schema.sql
    """
    from lightfold.cli.operate_cmds import run_in_release
    from lightfold.release import database as step
    from lightfold.release import target as targets
    from lightfold.server.database import check_kind, shell_command

    if kind is not None:
        kind = check_kind(kind)
    t = targets.load(resolve_target(target))
    kind, release = targets.on_server(t, lambda conn: step.shell_target(conn, t, kind))
    run_in_release(t, [shell_command(kind, t.name)], pty, release)


@db_app.command("remove")
def remove_cmd(
    kind: KindArg,
    path: PathArg = Path("."),
    target: TargetOpt = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the data (postgres, mysql: the database "
                                        "and its role/user).")] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop giving the app KIND's variables (from its next deploy); the data stays unless --purge.

    Example: lightfold db remove postgres --target myapp --yes
    """
    from lightfold.errors import UsageError
    from lightfold.release import database as step
    from lightfold.release import target as targets
    from lightfold.server.database import check_kind

    kind = check_kind(kind)
    name = resolve_target(target, path)
    what = f"the {kind} database of {name} and all its data" if purge else f"{name}'s {kind} credentials"
    if interactive(yes):
        typer.confirm(f"Remove {what}?", default=False, abort=True)
    elif not yes:
        raise UsageError(f"db remove would remove {what}", "pass --yes to confirm")
    t = targets.load(name)
    result = targets.on_server(t, lambda conn: step.remove(conn, t, kind, purge, report=output.reporter()))
    output.emit(result, as_json, lambda: render_db.show_db_removed(result))
