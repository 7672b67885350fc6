"""Day-two commands: rollback, logs, run, sync, unlock, targets. The work is in lightfold.release.operate."""

from __future__ import annotations

from typing import Annotated

import typer

from lightfold.cli import output, render
from lightfold.cli.app import app
from lightfold.cli.options import JsonOpt, LockWaitOpt, TargetOpt, YesOpt, resolve_target


@app.command()
def rollback(
    target: TargetOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Release id to go back to (default: the one before "
                                           "the live one).", show_default=False)] = None,
    lock_wait: LockWaitOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Put an earlier release back live: no rebuild, same health-gated switch, its own env.

    Examples: lightfold rollback --target myapp · lightfold rollback --target myapp --to 20260101120000
    """
    from lightfold.cli import fastpath

    fastpath.rollback(resolve_target(target), to, lock_wait, as_json)


@app.command()
def logs(
    target: TargetOpt = None,
    tail: Annotated[bool, typer.Option("--tail", "-f", help="Keep following new lines until Ctrl-C.")] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many recent lines.", min=0)] = 100,
    since: Annotated[str | None, typer.Option("--since", help="Only lines since this time (journalctl "
                                              "syntax: '1 hour ago', '2026-01-01 12:00').",
                                              show_default=False)] = None,
    build: Annotated[bool, typer.Option("--build", help="Show the last deploy's build log instead.")] = False,
    release: Annotated[str | None, typer.Option("--release", help="With --build: that release's build log.",
                                                show_default=False)] = None,
    process: Annotated[str | None, typer.Option("--process", "-p", help="The log of process NAME (all its "
                                                "instances, each line labelled), e.g. worker.",
                                                show_default=False)] = None,
    everything: Annotated[bool, typer.Option("--all", help="Web slots, every process and every cron run, "
                                             "merged, each line labelled with its unit.")] = False,
) -> None:
    """The app's log (the live slot's journal; both slots during a switch), a process's, all of
    them, or a build log. A target on several servers: every server's, merged, each line led by
    the server's name (a build log: the primary's, where releases are built).

    Examples: lightfold logs --target myapp -n 50 · lightfold logs --tail · lightfold logs --build ·
    lightfold logs --process worker --tail · lightfold logs --all -n 200
    """
    import sys

    from lightfold.errors import UsageError
    from lightfold.release import operate
    from lightfold.release import target as targets

    operate.check_release_id(release)
    if release and not build:
        raise UsageError("--release works only with --build", "add --build, or drop --release")
    if build and (tail or since):
        raise UsageError("--build shows a finished build's log; --tail and --since do not apply",
                         "drop --tail/--since")
    if process is not None and everything:
        raise UsageError("--process and --all both choose what to show", "pass one of them")
    if build and (process is not None or everything):
        raise UsageError("--build shows a build's log; --process and --all do not apply", "drop --process/--all")
    t = targets.load(resolve_target(target))

    def on_line(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    from lightfold import state

    servers = state.servers_of(t.name, t.server.ip, state.load(t.name))
    try:
        if len(servers) > 1 and not build:  # builds run on the primary only
            from lightfold.remote import run_sync

            run_sync(operate.logs_of_servers(t, servers, lines=lines, since=since, follow=tail, on_line=on_line,
                                             process=process, everything=everything))
            return
        targets.on_server(t, lambda conn: operate.logs(conn, t, lines=lines, since=since, follow=tail, build=build,
                                                       release=release, on_line=on_line, process=process,
                                                       everything=everything))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None  # Ctrl-C is how --tail ends


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    target: TargetOpt = None,
    command: Annotated[list[str] | None, typer.Argument(help="The command, after `--`: one argument is a shell "
                                                        "command line, several are its argv.",
                                                        show_default=False)] = None,
    pty: Annotated[bool | None, typer.Option(
        "--pty/--no-pty", show_default=False,
        help="Give the command a terminal on the server (a shell, prompts such as createsuperuser's); "
             "default: when this terminal is one (stdin and stdout). Uses the system ssh client.")] = None,
) -> None:
    """Run a one-off command in the live release as the app user, with the release's env.

    Confined like the app (same user, env snapshot, sandbox), output streamed, its exit status
    passed through; stdin is forwarded when it is not a terminal, and on a terminal the command
    gets one of its own (--pty); Ctrl-C stops the command.
    Examples: lightfold run --target myapp -- python manage.py createsuperuser ·
    lightfold run -t myapp -- 'echo $DATABASE_URL | cut -d@ -f2' · lightfold run -- psql < dump.sql
    """
    from lightfold.release import run as one_off
    from lightfold.release import target as targets

    argv = one_off.command_argv(command or [])
    run_in_release(targets.load(resolve_target(target)), argv, pty)


def run_in_release(t, argv: list[str], pty: bool | None, release: str | None = None) -> None:
    """`lightfold run`'s two ways (shared with `db shell`): with a terminal (`pty`, default when
    this one is a terminal) the system ssh replaces this process; else the output is streamed and
    stdin forwarded. Exits with the command's status."""
    import os
    import sys

    from lightfold.release import run as one_off
    from lightfold.release import target as targets

    if pty is None:
        pty = all(s is not None and s.isatty() for s in (sys.stdin, sys.stdout))
    if pty:
        if release is None:
            release = targets.on_server(t, lambda conn: one_off.live_release(conn, t.name))
        ssh = one_off.pty_argv(t, release, argv)
        sys.stdout.flush()
        os.execvp(ssh[0], ssh)

    def sink(stream):
        def write(chunk: bytes) -> None:
            stream.buffer.write(chunk)
            stream.flush()
        return write

    stdin_fd = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.fileno()
    try:
        code = targets.on_server(t, lambda conn: one_off.run(conn, t, argv, on_stdout=sink(sys.stdout),
                                                             on_stderr=sink(sys.stderr), stdin_fd=stdin_fd))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def sync(target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild this machine's state of a target from its server (after losing ~/.lightfold/state).

    Cloud servers are found through the provider's API (a changed IP is followed); local and byos
    servers need their address in the config. Example: lightfold sync --target myapp
    """
    from lightfold.release import operate
    from lightfold.release import target as targets

    t = operate.recover_address(targets.load(resolve_target(target)), progress=output.note)
    r = targets.on_server(t, lambda conn: operate.sync(conn, t))
    output.emit(render.sync_json(r), as_json, lambda: render.show_sync(r))


@app.command()
def unlock(
    target: TargetOpt = None, yes: YesOpt = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Same as --yes: break it without asking.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Break the target's deploy lock by hand (when its holder is surely gone).

    A lock whose holder died is detected and replaced on its own; this is for the rare rest.
    Example: lightfold unlock --target myapp --yes
    """
    import sys

    from lightfold.errors import UsageError
    from lightfold.release import operate
    from lightfold.release import target as targets

    name = resolve_target(target)
    yes = yes or force
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"refusing to break the deploy lock of '{name}' without confirmation "
                         "(stdin is not a terminal)", "pass --yes to confirm")
    t = targets.load(name)
    if not yes and not typer.confirm(f"Break the deploy lock of '{name}'? A deploy still running "
                                     "would then race the next one.", default=False):
        raise typer.Exit(1)

    result = targets.on_server(t, lambda conn: operate.unlock(conn, t))

    output.emit({"target": t.name, **result}, as_json, lambda: render.show_unlock(t.name, result))


@app.command()
def targets(as_json: JsonOpt = False) -> None:
    """List every target with its provider, address and live release (from local state; no network).

    Example: lightfold targets --json
    """
    from lightfold.release import operate

    rows = operate.targets_list()

    output.emit(rows, as_json, lambda: render.show_targets(rows))
