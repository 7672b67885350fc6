"""Server commands: create, destroy, ssh, status. Parsing and rendering only; the work is done by
lightfold.providers (and lightfold.sandbox for --provider local)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import output, render
from lightfold.cli.app import app
from lightfold.cli.options import (
    ForceOpt,
    ImageOpt,
    JsonOpt,
    PathArg,
    RegionOpt,
    SizeOpt,
    TargetOpt,
    YesOpt,
    resolve_target,
)
from lightfold.names import PROVIDERS
from lightfold.providers.flags import HOST_KEY_ENV

ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help=f"Where the server runs: {', '.join(PROVIDERS)}.", show_default=False),
]
NetworkOpt = Annotated[
    str | None,
    typer.Option("--network", help="local provider: 'isolated' (only the host and package registries, "
                 "default) or 'nat' (full outbound access through the host).", show_default=False),
]
IpOpt = Annotated[
    str | None,
    typer.Option("--ip", help="byos: your server's address (IP, host name or a Host alias from ~/.ssh/config).",
                 show_default=False),
]
UserOpt = Annotated[
    str | None,
    typer.Option("--user", help="byos: SSH login, root or a user with passwordless sudo (default: root).",
                 show_default=False),
]
SshKeyOpt = Annotated[
    str | None,
    typer.Option("--ssh-key", help="byos: private key that logs in (default: ~/.ssh/id_ed25519, id_ecdsa or "
                 "id_rsa).", show_default=False),
]
PortOpt = Annotated[
    int | None, typer.Option("--port", min=1, max=65535, help="byos: SSH port (default: 22).", show_default=False)
]
AcceptKeyOpt = Annotated[
    bool,
    typer.Option("--accept-new-host-key", help="byos: trust the server's host key when it is not known yet "
                 "(check the fingerprint shown). A changed key is always refused."),
]
HostKeyOpt = Annotated[
    str | None,
    typer.Option("--host-key", help=f"byos: trust only this host key, as `lightfold config export-host-key` printed "
                 f"it (default: ${HOST_KEY_ENV}, as a CI job sets it from a secret).", show_default=False),
]


def cloud_options(provider: str, name: str, region: str | None, size: str | None, image: str | None,
                  *, creating: bool = True) -> dict:
    """`lightfold.providers.flags.cloud_options` with this terminal's prompts (none without one)."""
    from lightfold.cli.options import interactive
    from lightfold.providers import flags

    asking = interactive()
    return flags.cloud_options(
        provider, name, region, size, image, creating=creating, progress=output.note,
        ask_token=(lambda q: typer.prompt(q, hide_input=True, err=True)) if asking else None,
        pick=_pick if asking else None,
    )


def _pick(what: str, choices: list, default: str) -> str:
    con = output.err()
    ids = [c.id for c in choices]
    for i, c in enumerate(choices, 1):
        con.print(f"  {i:>2}) {c.id:<20} {c.label}", highlight=False)
    start = ids.index(default) + 1 if default in ids else 1
    while True:
        answer = typer.prompt(f"Choose a {what} (number or name)", default=str(start), err=True).strip()
        if answer.isdigit() and 1 <= int(answer) <= len(ids):
            return ids[int(answer) - 1]
        if answer in ids:
            return answer
        output.warn(f"'{answer}' is not one of the {len(ids)} choices")


@app.command(epilog="Examples:  sudo lightfold create --target demo --provider local .   ·   "
             "lightfold create --provider hetzner --region nbg1 --size cx22 .")
def create(
    path: PathArg = Path("."),
    target: TargetOpt = None,
    provider: ProviderOpt = None,
    network: NetworkOpt = None,
    region: RegionOpt = None,
    size: SizeOpt = None,
    image: ImageOpt = None,
    ip: IpOpt = None,
    user: UserOpt = None,
    ssh_key: SshKeyOpt = None,
    port: PortOpt = None,
    accept_new_host_key: AcceptKeyOpt = False,
    host_key: HostKeyOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the target's server (with --provider local: a sandbox machine on this Linux host; with
    digitalocean, vultr or hetzner: a cloud server, token from DIGITALOCEAN_TOKEN, VULTR_API_KEY or
    HCLOUD_TOKEN; with byos: your own server, registered after checking its host key and that lightfold
    can deploy to it). Rerunning it on an existing cloud server follows a changed IP address."""
    from lightfold import providers
    from lightfold.cli.options import interactive
    from lightfold.errors import UsageError
    from lightfold.providers import flags

    if not path.is_dir():
        raise UsageError(f"project directory {path} does not exist", "pass the path of your project")
    name = resolve_target(target, path)
    chosen = flags.provider_of(name, provider)
    if chosen is None:
        raise UsageError(f"target '{name}' has no provider yet", "pass --provider (e.g. --provider local)")
    confirm = (lambda q: typer.confirm(q, default=False, err=True)) if interactive() else None
    options = {"force": force, "progress": output.step,
               **flags.create_options(chosen, network=network, ip=ip, user=user, ssh_key=ssh_key, port=port,
                                      accept_new_host_key=accept_new_host_key, host_key=host_key,
                                      confirm=confirm, image=image),
               **cloud_options(chosen, name, region, size, image)}
    result = providers.get(chosen).create(name, path, **options)

    output.emit(result, as_json, lambda: render.show_create(name, result))


@app.command(epilog="Examples:  sudo lightfold destroy --target demo --yes   ·   "
             "lightfold destroy --target shop --yes --delete-storage")
def destroy(
    target: TargetOpt = None,
    yes: YesOpt = False,
    delete_storage: Annotated[bool, typer.Option("--delete-storage", help="With --yes: destroy the server even "
                                                 "though its persistent storage (lightfold.toml storage) holds files "
                                                 "or could not be read; they are deleted with it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Destroy the target's server and everything on it (the target's config is kept).

    Asks first, naming how much persistent storage goes with it; `--yes` alone refuses when the
    storage holds files (add `--delete-storage`). A byos server is only forgotten: nothing on it
    changes.
    """
    import sys

    from lightfold import providers
    from lightfold.errors import UsageError
    from lightfold.providers.flags import provider_of
    from lightfold.release import storage as stored

    name = resolve_target(target)
    chosen = provider_of(name, None) or "local"
    if not yes and not sys.stdin.isatty():
        raise UsageError(
            f"refusing to destroy '{name}' without confirmation (stdin is not a terminal)",
            "pass --yes to confirm",
        )
    provider = providers.get(chosen)
    storage = stored.read_storage(name) if chosen != "byos" and stored.may_hold_storage(name, provider) else None
    if yes and not delete_storage and (refused := stored.refusal(name, chosen, storage)):
        raise refused
    if not yes and not typer.confirm(stored.destroy_question(name, chosen, storage), default=False):
        raise typer.Exit(1)
    result = provider.destroy(name, progress=output.step)
    if storage is not None:
        result = {**result, "storage": storage.to_dict()}
    output.emit(result, as_json, lambda: render.show_destroy(name, result))


@app.command(epilog="Example:  sudo lightfold scale --target demo --servers 3")
def scale(
    servers: Annotated[int, typer.Option("--servers", "-n", help="How many app servers the target should have.",
                                         show_default=False)],
    target: TargetOpt = None,
    accept_new_host_key: AcceptKeyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the target on N app servers behind a load balancer (HAProxy on a server of its own).

    New servers are made like the first one (--provider local: sandbox machines), configured
    identically and given the live release (built once, shipped); byos: the addresses in
    provider_config.byos.hosts, the load balancer on provider_config.byos.lb_host (their host keys
    trusted like create's: pinned, known, or --accept-new-host-key). HAProxy health-checks them on
    the app's health path. A server being removed is drained from HAProxy first. The first
    server (the primary) is never removed. README: "More than one server".
    """
    from lightfold.release.scale import scale as run_scale

    name = resolve_target(target)
    result = run_scale(name, servers, accept_new_host_key=accept_new_host_key, report=output.reporter())
    output.emit(result, as_json, lambda: render.show_scale(result))


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
    openssh.require_client()
    argv = openssh.ssh_argv(pc.ip, pc.port, pc.username, pc.ssh_key, openssh.known_hosts_path(), command or None,
                            user_known_hosts=tc.provider == "byos")
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
    from lightfold.release.status import status as server_status

    info = server_status(resolve_target(target))
    output.emit(info, as_json, lambda: render.show_status(info))


@app.command()
def audit(
    target: TargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the target's server: firewall, exposed ports, SSH, updates, units, secret files, certificates.

    Every finding has a severity (high, medium, low, info) and a one-line fix. Exits 1 when a
    finding is high, else 0, so it can gate CI. `--json` has a stable schema (README: "audit").

    Example: lightfold audit --target myapp --json
    """
    from lightfold.release.audit import audit_target

    report = audit_target(resolve_target(target))
    output.emit(report.as_json(), as_json, lambda: render.show_audit(report.as_json()))
    if report.exit_status:
        raise typer.Exit(report.exit_status)
