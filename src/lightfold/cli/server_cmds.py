"""Server commands: create, destroy, ssh, status. Parsing and rendering only; the work is done by
lightfold.providers (and lightfold.sandbox for --provider local)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import output
from lightfold.cli.app import app
from lightfold.cli.options import ForceOpt, JsonOpt, PathArg, TargetOpt, YesOpt, resolve_target

ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="Where the server runs: local, byos, digitalocean, vultr, hetzner.",
                 show_default=False),
]
NetworkOpt = Annotated[
    str | None,
    typer.Option("--network", help="local provider: 'isolated' (only the host and package registries, "
                 "default) or 'nat' (full outbound access through the host).", show_default=False),
]


@app.command(epilog="Example:  sudo lightfold create --target demo --provider local .")
def create(
    path: PathArg = Path("."),
    target: TargetOpt = None,
    provider: ProviderOpt = None,
    network: NetworkOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the target's server (with --provider local: a sandbox machine on this Linux host)."""
    from lightfold import config, providers
    from lightfold.errors import UsageError

    if not path.is_dir():
        raise UsageError(f"project directory {path} does not exist", "pass the path of your project")
    name = resolve_target(target, path)
    existing = config.load().targets.get(name)
    chosen = provider or (existing.provider if existing else None)
    if chosen is None:
        raise UsageError(f"target '{name}' has no provider yet", "pass --provider (e.g. --provider local)")
    if network is not None and network not in ("isolated", "nat"):
        raise UsageError(f"invalid --network '{network}'", "use --network isolated or --network nat")
    if network is not None and chosen != "local":
        raise UsageError("--network applies only to --provider local", "drop --network")
    options: dict = {"force": force, "progress": output.step}
    if chosen == "local":
        options["network"] = network
    result = providers.get(chosen).create(name, path, **options)

    def human() -> None:
        if result.get("changed"):
            output.ok(f"server for '{name}' is ready at {result.get('ip')}")
        else:
            output.ok(f"server for '{name}' already exists at {result.get('ip')} (nothing to do)")
        output.note(f"log in with: lightfold ssh --target {name}")

    output.emit(result, as_json, human)


@app.command(epilog="Example:  sudo lightfold destroy --target demo --yes")
def destroy(
    target: TargetOpt = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Destroy the target's server and everything on it (the target's config is kept)."""
    import sys

    from lightfold import config, providers
    from lightfold.errors import UsageError

    name = resolve_target(target)
    existing = config.load().targets.get(name)
    chosen = (existing.provider if existing else None) or "local"
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to destroy '{name}' without confirmation (stdin is not a terminal)",
                "pass --yes to confirm",
            )
        if not typer.confirm(f"Destroy the server of '{name}' ({chosen}) and everything on it?", default=False):
            raise typer.Exit(1)
    result = providers.get(chosen).destroy(name, progress=output.step)
    output.emit(result, as_json, lambda: output.ok(
        f"destroyed the server of '{name}'" if result.get("destroyed") else f"'{name}' had no server; nothing to do"
    ))


@app.command(context_settings={"allow_interspersed_args": False})
def ssh(
    target: TargetOpt = None,
    command: Annotated[list[str] | None, typer.Argument(help="Command to run instead of a shell.",
                                                        show_default=False)] = None,
) -> None:
    """Open a shell on the target's server, or run one command and exit with its status.

    Examples:  lightfold ssh --target demo   ·   lightfold ssh --target demo -- systemctl status nginx
    """
    import os
    import shutil

    from lightfold import config
    from lightfold.errors import LightfoldError
    from lightfold.remote import openssh

    name = resolve_target(target)
    tc = config.get_target(config.load(), name)
    pc = tc.server()
    if not pc.ip:
        raise LightfoldError(f"target '{name}' has no server address", f"create it: lightfold create --target {name}")
    if tc.provider == "local":
        from lightfold.providers import local

        state = local.server_state(name)
        if state != "running":
            raise LightfoldError(
                f"the local machine '{name}' is {state}",
                f"recreate it with `lightfold create --target {name} --force`",
            )
    if shutil.which("ssh") is None:
        raise LightfoldError("the ssh client is not installed", "install it: sudo apt-get install -y openssh-client")
    argv = openssh.ssh_argv(pc.ip, pc.port, pc.username, pc.ssh_key, openssh.known_hosts_path(), command or None)
    os.execvp(argv[0], argv)


@app.command()
def status(
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the target's server and what runs on it: live release, health, releases, deploy lock.

    Provider, address and SSH, and from the server's agent the live release (commit, when and by
    whom), slot, port, unit, health now, releases kept, disk free and the deploy lock.
    `--json` keys are stable (README: "status --json keys").

    Example: lightfold status --target myapp --json
    """
    from lightfold import providers

    name = resolve_target(target)
    info = providers.status(name)

    def human() -> None:
        con = output.out()
        con.print(f"[bold]{info['target']}[/]  ({info['provider'] or 'no provider'})")
        con.print(f"  address  {info['ip'] or '-'}  (ssh {info['ssh_user']}@, port {info['ssh_port']})")
        con.print(f"  server   {info['server_state']}")
        ok = info["ssh"] == "reachable"
        con.print(f"  ssh      [{'green' if ok else 'red'}]{info['ssh']}[/]")
        if info.get("deploy_error"):
            con.print(f"  deploy   [yellow]{info['deploy_error']}[/]")
        if not info.get("live_release"):
            if ok and not info.get("deploy_error"):
                con.print("  release  none live yet")
            return
        who = f" by {info['deployed_by']}" if info.get("deployed_by") else ""
        commit = (info.get("commit") or "-")[:12] + (" (dirty)" if info.get("dirty") else "")
        con.print(f"  release  [bold]{info['live_release']}[/]  commit {commit}, deployed {info['deployed_at']}{who}")
        if info.get("static"):
            con.print("  serving  static files through nginx")
        else:
            unit = info.get("unit") or {}
            con.print(f"  slot     {info['slot']} (port {info['port']}), {unit.get('name')} "
                      f"{unit.get('active_state')}/{unit.get('sub_state')}, {unit.get('restarts')} restarts")
        h = info.get("health_now") or {}
        hs = "[green]healthy[/]" if h.get("ok") else f"[red]unhealthy[/] ({h.get('error') or h.get('status')})"
        con.print(f"  health   {hs}")
        if info.get("domain"):
            con.print(f"  domain   {info['domain']}")
        free = info.get("disk_free_bytes")
        if free is not None:
            con.print(f"  disk     {free / 2**30:.1f} GiB free on /srv")
        lock = info.get("lock")
        if lock:
            stale = f" [red](stale: {lock['stale']})[/]" if lock.get("stale") else ""
            con.print(f"  lock     held by {lock['holder']} ({lock['op']}, since {lock['since']}){stale}")
        con.print("  releases " + ", ".join(f"{r['id']} {r['status']}" for r in info.get("releases", [])[:6]))

    output.emit(info, as_json, human)
