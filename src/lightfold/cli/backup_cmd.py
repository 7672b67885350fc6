"""`lightfold backup create|list|verify|restore|download|schedule`: encrypted backups of the target's
databases and storage, made on the server to this laptop's age key (lightfold.release.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import output, render_db
from lightfold.cli.app import app
from lightfold.cli.options import JsonOpt, PathArg, TargetOpt, YesOpt, interactive, resolve_target

backup_app = typer.Typer(
    name="backup", no_args_is_help=True,
    help="Encrypted backups of the app's databases and storage (the server cannot read them; restores are proven).",
)
app.add_typer(backup_app, name="backup")

IdArg = Annotated[str, typer.Argument(help="A backup id from `backup list`, or latest.", show_default=True)]
PathOpt = Annotated[Path, typer.Option("--path", help="Project directory.", show_default=".")]


def _on_server(target: str | None, path: Path, work):
    from lightfold.release import target as targets

    t = targets.load(resolve_target(target, path))
    return targets.on_server(t, lambda conn: work(conn, t))


@backup_app.command("create")
def create_cmd(path: PathArg = Path("."), target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Back up every database of the target (pg_dump, mariadb-dump, Redis RDB) and its storage, encrypted on the
    server to this laptop's key (~/.lightfold/backup-identity.txt, made on first use).

    Example: lightfold backup create --target myapp
    """
    from lightfold.release import backup as step

    result = _on_server(target, path, lambda conn, t: step.create(conn, t, report=output.reporter()))
    output.emit(result, as_json, lambda: render_db.show_backup_created(result))


@backup_app.command("list")
def list_cmd(path: PathArg = Path("."), target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """The complete backups on the server (and off it), newest last, with their last verify.

    Example: lightfold backup list --target myapp
    """
    from lightfold.release import backup as step

    data = _on_server(target, path, lambda conn, t: step.list_backups(conn, t))
    output.emit(data, as_json, lambda: render_db.show_backup_list(data))


@backup_app.command("verify")
def verify_cmd(backup_id: IdArg = "latest", path: PathOpt = Path("."), target: TargetOpt = None,
               as_json: JsonOpt = False) -> None:
    """Restore a backup into a scratch database on the server, compare every table's rows with the
    manifest, drop the scratch copy and record the result. Exit 1 when the backup is bad.

    Example: lightfold backup verify latest --target myapp
    """
    from lightfold.errors import LightfoldError
    from lightfold.release import backup as step

    result = _on_server(target, path, lambda conn, t: step.verify(conn, t, backup_id, report=output.reporter()))
    output.emit(result, as_json, lambda: render_db.show_backup_verified(result))
    if not result["ok"]:
        raise LightfoldError(f"backup {result['id']} failed its verify", "restore from another backup",
                             details=result["problems"])


@backup_app.command("restore")
def restore_cmd(
    backup_id: IdArg = "latest", path: PathOpt = Path("."), target: TargetOpt = None,
    from_remote: Annotated[bool, typer.Option("--from-remote", help="Fetch the backup from backup.remote "
                                              "first.")] = False,
    yes: YesOpt = False, as_json: JsonOpt = False,
) -> None:
    """Replace the target's database(s) and storage with a backup (a fresh backup is taken first).

    Example: lightfold backup restore 20260101030000 --target myapp --yes
    """
    from lightfold.release import backup as step

    name = resolve_target(target, path)
    if interactive(yes):
        typer.confirm(f"Restore backup {backup_id} over {name}'s live data (a fresh backup is taken first)?",
                      default=False, abort=True)
        yes = True
    result = _on_server(name, path, lambda conn, t: step.restore(conn, t, backup_id, yes, from_remote,
                                                                 report=output.reporter()))
    output.emit(result, as_json, lambda: render_db.show_backup_restored(result))


@backup_app.command("download")
def download_cmd(
    backup_id: IdArg = "latest", path: PathOpt = Path("."), target: TargetOpt = None,
    to: Annotated[Path, typer.Option("--to", help="Directory to put the backup in.", show_default=".")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Copy a backup (still encrypted, with its manifest) to this laptop: TO/<id>/.

    Example: lightfold backup download latest --to ~/backups/myapp
    """
    from lightfold.release import backup as step

    result = _on_server(target, path, lambda conn, t: step.download(conn, t, backup_id, to.expanduser()))
    output.emit(result, as_json, lambda: render_db.show_backup_downloaded(result))


@backup_app.command("schedule")
def schedule_cmd(path: PathArg = Path("."), target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Apply backup.schedule and backup.keep to the server's backup timer (no schedule: no timer).

    Example: lightfold config set backup.schedule daily && lightfold backup schedule
    """
    from lightfold.release import backup as step

    result = _on_server(target, path, lambda conn, t: step.schedule(conn, t, report=output.reporter()))
    output.emit(result, as_json, lambda: render_db.show_backup_schedule(result))
