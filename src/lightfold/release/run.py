"""`lightfold run -- CMD...`: one command in the live release, as the app user, with the release's
env snapshot, confined like the app, its output streamed back byte for byte and its exit status
passed through.

    run_script(app, release, argv, token)   the root script (pure, tested as text): it resolves the
        release's launcher (`.lightfold/exec`, written by the build; a release built before it
        existed gets the start script's preamble instead: its cd, PATH and venv, then the command)
        and execs `systemd-run --wait --pipe` as the transient unit `layout.run_unit(app, token)`
        with the app unit's user, env file and sandbox (`server.app.sandbox_properties`)
    stop_command(app, token)   `systemctl stop` of that unit: what Ctrl-C on the laptop runs
    run(conn, target, argv, ...)  the agent's status (what is live), then the stream
    pty_argv(target, release, argv)   `ssh -t` running the script with `systemd-run --pty` instead

The env values never appear in any command line: systemd reads the snapshot
(`Layout.env_file(release)`, 0600 root) itself. One argument is a shell command line (`sh -c`),
several are the command's argv as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lightfold.agent import layout
from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError, UsageError
from lightfold.release import agent_client
from lightfold.release.target import Target, as_root, root_command

if TYPE_CHECKING:
    from lightfold.remote import Connection


def command_argv(argv: list[str]) -> list[str]:
    """What runs: one argument is a shell command line, several are an argv."""
    if not argv or not argv[0].strip():
        raise UsageError("no command to run", "put it after `--`: lightfold run --target T -- python manage.py migrate")
    return ["/bin/sh", "-c", argv[0]] if len(argv) == 1 else list(argv)


def new_token() -> str:
    return secrets.token_hex(6)


def run_script(app: str, release: str, argv: list[str], token: str, pty: bool = False) -> str:
    """The bash script root runs for `lightfold run` (pure). `pty`: the command gets a terminal of
    its own (`systemd-run --pty`, under an `ssh -t` session: see `pty_argv`) instead of pipes."""
    from lightfold.server.app import app_user, sandbox_properties

    if not layout.is_release_id(release):
        raise LightfoldError(f"'{release}' is not a valid release id", "see `lightfold status`")
    lay = Layout(app)
    user = app_user(app)
    rel = lay.release(release)
    props = [f"User={user}", f"Group={user}", f"WorkingDirectory={rel}", f"EnvironmentFile={lay.env_file(release)}",
             *sandbox_properties(app)]
    words = " ".join(shlex.quote(w) for w in command_argv(argv))
    preamble_then_exec = '"$(sed \'$d\' "$S")"\'\nexec "$@"\''  # every line of the start script but its exec
    return "\n".join([
        "set -u",
        f"E={shlex.quote(lay.exec_script(release))}",
        f"S={shlex.quote(lay.start_script(release))}",
        f'if [ -x "$E" ]; then set -- "$E" {words}',
        f'elif [ -f "$S" ]; then set -- /bin/sh -c {preamble_then_exec} "$S" {words}',
        f"else echo {shlex.quote(f'lightfold: release {release} has neither .lightfold/exec nor a start script')}"
        " >&2; exit 127; fi",
        f"exec systemd-run --quiet --collect --wait {'--pty' if pty else '--pipe'} --service-type=exec"
        f" --unit={shlex.quote(layout.run_unit(app, token))} "
        + " ".join(f"-p {shlex.quote(p)}" for p in props) + ' -- "$@"',
        "",
    ])


def pty_argv(target: Target, release: str, argv: list[str]) -> list[str]:
    """The system `ssh` with a terminal (`-t`) running `run_script(..., pty=True)` as root: for an
    interactive command (a shell, `manage.py createsuperuser`'s prompts). Keystrokes, Ctrl-C and
    the window size go to the command's own terminal; its exit status is ssh's."""
    from lightfold.remote import openssh

    openssh.require_client()
    server = target.server
    script = run_script(target.name, release, argv, new_token(), pty=True)
    remote = root_command(server.username, f"bash -c {shlex.quote(script)}")
    return openssh.ssh_argv(server.ip, server.port, server.username, server.ssh_key, openssh.known_hosts_path(),
                            [remote], user_known_hosts=target.config.provider == "byos", tty=True)


def stop_command(app: str, token: str) -> str:
    """Stop the run's unit (SIGTERM to all its processes, SIGKILL after the stop timeout)."""
    return f"systemctl stop {shlex.quote(layout.run_unit(app, token))} 2>/dev/null; true"


async def live_release(conn: Connection, app: str) -> str:
    """The live release's id, or an error saying there is nothing to run a command in."""
    status = await agent_client.status(conn, app)
    if status.static:
        raise LightfoldError(f"{app} is a static site: nginx serves its files and there is no runtime to run "
                             "a command in", f"use `lightfold ssh --target {app}` to look at the server")
    if not status.live.release:
        raise LightfoldError(f"nothing is live on {app} yet: there is no release to run the command in",
                             f"deploy first: lightfold deploy --target {app}")
    return status.live.release


async def run(conn: Connection, target: Target, argv: list[str], *, on_stdout: Callable[[bytes], Any],
              on_stderr: Callable[[bytes], Any], stdin_fd: int | None = None) -> int:
    """Run `argv` in the live release; returns its exit status. Cancelled (Ctrl-C): the unit is
    stopped on the server before the cancellation goes on."""
    app = target.name
    command_argv(argv)
    release = await live_release(conn, app)
    token = new_token()
    script = run_script(app, release, argv, token)
    try:
        return await conn.stream(as_root(conn, f"bash -c {shlex.quote(script)}"), on_stdout=on_stdout,
                                 on_stderr=on_stderr, stdin_fd=stdin_fd, display=f"run in {release}")
    except asyncio.CancelledError:
        with contextlib.suppress(LightfoldError, OSError):
            await asyncio.wait_for(conn.run(as_root(conn, stop_command(app, token)), check=False,
                                            display="stop the command"), 60)
        raise
