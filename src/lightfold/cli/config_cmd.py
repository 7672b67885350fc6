"""`lightfold config`: show, set and unset target settings, manage provider tokens, and export a
server's pinned host key (for a CI secret)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import output, render
from lightfold.cli.app import app
from lightfold.cli.options import JsonOpt, PathArg, TargetOpt, resolve_target
from lightfold.names import CLOUD_PROVIDERS

config_app = typer.Typer(
    help="Show and change target settings and provider tokens (secrets are never printed).",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")

ProviderArg = Annotated[str, typer.Argument(help=f"One of {', '.join(CLOUD_PROVIDERS)}.")]


@config_app.command("show")
def show(target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Print the configuration (env values and tokens redacted).

    Example: lightfold config show --target myapp --json
    """
    from lightfold import config, secrets

    cfg = config.load()
    data = config.redacted(cfg)
    if target is not None:
        config.get_target(cfg, resolve_target(target))
        data["targets"] = {target: data["targets"][target]}
    tokens = {p: secrets.get_token(p)[1] for p in secrets.TOKEN_ENV}
    data["tokens"] = {p: {"set": src != "none", "source": src} for p, src in tokens.items()}
    data["path"] = str(config.config_path())

    output.emit(data, as_json, lambda: render.show_config(data))


@config_app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="Dotted key inside the target, e.g. deploy.port.")],
    value: Annotated[str | None, typer.Argument(
        help="The value (numbers and true/false are converted). Left out: read from a hidden prompt, or "
             "from stdin when piped (keeps secrets out of shell history and argv).", show_default=False)] = None,
    path: PathArg = Path("."),
    target: TargetOpt = None,
) -> None:
    """Set a target value; creates the target when it does not exist.

    Examples: lightfold config set deploy.port 3000 --target myapp ·
    lightfold config set deploy.env_vars.NODE_ENV production --target myapp ·
    lightfold config set deploy.env_vars.API_KEY --target myapp < api-key.txt
    """
    from lightfold import config

    name = resolve_target(target, path)
    if value is None:
        value = value_from_stdin(key)
    config.update(lambda cfg: config.set_value(cfg, name, key, value, project_path=path))
    shown = "(value hidden)" if key.startswith("deploy.env_vars.") else value
    output.ok(f"{name}: {key} = {shown}")


def value_from_stdin(key: str) -> str:
    """A hidden prompt on a terminal; else all of stdin, less one trailing newline (so
    `echo "$X" |` and a file both give the value, and multi-line values survive)."""
    if sys.stdin.isatty():
        return typer.prompt(key, hide_input=True)
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


@config_app.command("unset")
def unset(
    key: Annotated[str, typer.Argument(help="Dotted key inside the target, e.g. deploy.env_vars.DEBUG.")],
    path: PathArg = Path("."),
    target: TargetOpt = None,
) -> None:
    """Remove a target value (back to its default).

    Example: lightfold config unset deploy.env_vars.DEBUG --target myapp
    """
    from lightfold import config

    name = resolve_target(target, path)
    removed: list[bool] = []
    config.update(lambda cfg: removed.append(config.unset_value(cfg, name, key)))
    if removed[0]:
        output.ok(f"{name}: {key} removed")
    else:
        output.note(f"{name}: {key} was not set")


@config_app.command("set-token")
def set_token(provider: ProviderArg) -> None:
    """Store a provider API token (read from a hidden prompt, or from stdin when piped).

    Example: echo "$TOKEN" | lightfold config set-token hetzner
    """
    from lightfold import secrets

    secrets.TOKEN_ENV.get(provider) or secrets.get_token(provider)  # validates the name
    token = typer.prompt(f"{provider} API token", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
    where = secrets.set_token(provider, token)
    output.ok(f"{provider} token stored in {where}")


@config_app.command("unset-token")
def unset_token(provider: ProviderArg) -> None:
    """Forget a stored provider token.

    Example: lightfold config unset-token hetzner
    """
    from lightfold import secrets

    if secrets.unset_token(provider):
        output.ok(f"{provider} token removed")
    else:
        output.note(f"no stored {provider} token")


@config_app.command("export-host-key")
def export_host_key(target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Print the host key lightfold pinned for the target's server (public; for a CI secret).

    A CI job passes it back as LIGHTFOLD_HOST_KEY (or --host-key) to `lightfold create --provider
    byos`, which then trusts that key only.
    Example: lightfold config export-host-key --target myapp | gh secret set LIGHTFOLD_HOST_KEY
    """
    from lightfold import config
    from lightfold.errors import LightfoldError
    from lightfold.remote import openssh, user_ssh

    name = resolve_target(target)
    server = config.get_target(config.load(), name).server()
    if not server.ip:
        raise LightfoldError(f"target '{name}' has no server yet", f"create it first: lightfold create --target {name}")
    keys = user_ssh.read_known_keys([openssh.known_hosts_path()], server.ip, server.port).keys
    if not keys:
        raise LightfoldError(
            f"no host key is pinned for {server.ip} (target '{name}') in {openssh.known_hosts_path()}",
            f"register the server from a machine that trusts it: lightfold create --target {name}",
        )
    from lightfold import remote

    data = {"target": name, "ip": server.ip, "port": server.port, "keys": keys,
            "fingerprints": [remote.fingerprint(k) for k in keys]}

    output.emit(data, as_json, lambda: render.show_host_keys(data))
