"""`configure`, `push` and `deploy`: the steps that put an app on a server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import fastpath, output, render
from lightfold.cli.app import app
from lightfold.cli.options import (
    ForceOpt,
    ImageOpt,
    JsonOpt,
    LockWaitOpt,
    PathArg,
    RegionOpt,
    SizeOpt,
    TargetOpt,
    WaitOpt,
    resolve_target,
    wait_for_outcome,
)
from lightfold.names import PROVIDERS

BuilderOpt = Annotated[
    str | None,
    typer.Option("--builder", help="native, nixpacks or dockerfile (saved in the target's config; default: "
                 "chosen automatically — see `lightfold detect --explain`).", show_default=False),
]


BatchOpt = Annotated[
    int,
    typer.Option("--batch", min=1, help="A target on more than one server: how many servers switch at a time "
                 "(each by its own health gate; a failure puts the switched ones back).", show_default="1"),
]


@app.command("configure")
def configure_cmd(
    path: PathArg = Path("."), target: TargetOpt = None, force: ForceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Install the runtime, nginx, the agent and the app's units on the target's server.

    Skips when the server already has exactly this configuration. A target on several servers:
    every one of them, the primary first.
    Example: lightfold configure --target myapp
    """
    from lightfold.release import configure as step
    from lightfold.release import target as targets

    t = targets.load(resolve_target(target, path))
    detection = t.detect()
    results = step.configure_servers(t, detection, force=force, report=output.reporter())
    output.emit(render.configure_servers_json(t.name, results), as_json,
                lambda: render.show_configure_servers(t.name, results))


@app.command("push")
def push_cmd(
    path: PathArg = Path("."), target: TargetOpt = None, force: ForceOpt = False,
    lock_wait: LockWaitOpt = 0, builder: BuilderOpt = None, wait: WaitOpt = None, batch: BatchOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Ship the project as a new release; traffic moves only after it is healthy.

    Skips when the live release has the same code, env and settings.
    Example: lightfold push --target myapp
    """
    name = resolve_target(target, path)
    if not (force or builder) and fastpath.skip("push", name, None, None, as_json):
        return
    from lightfold import config
    from lightfold.release import target as targets

    if builder is not None:
        config.set_builder(name, path, builder)
    t = targets.load(name)
    fastpath.push_and_render(t, force=force, lock_wait=lock_wait, wait=wait_for_outcome(wait, as_json),
                             as_json=as_json, batch=batch)


ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", show_default=False, help="Where the server runs when it must be created: "
                 f"{', '.join(PROVIDERS)} (default: the target's provider)."),
]


@app.command("deploy")
def deploy_cmd(
    path: PathArg = Path("."), target: TargetOpt = None, provider: ProviderOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Rerun configure and push even if done "
                                        "(never recreates the server).")] = False,
    region: RegionOpt = None, size: SizeOpt = None, image: ImageOpt = None,
    lock_wait: LockWaitOpt = 0, builder: BuilderOpt = None, wait: WaitOpt = None, batch: BatchOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Detect → create → configure → push, skipping every step that is already done.

    Examples: lightfold deploy --provider local · lightfold deploy --provider hetzner --region nbg1 ·
    lightfold deploy ./web --target web-prod
    """
    name = resolve_target(target, path)
    if not (force or builder or region or size or image) and fastpath.skip("deploy", name, path, provider, as_json):
        return
    from lightfold import config, state
    from lightfold.cli.server_cmds import cloud_options
    from lightfold.providers.flags import create_options as create_options_of
    from lightfold.providers.flags import provider_of
    from lightfold.release import deploy as chain

    if builder is not None:
        config.set_builder(name, path, builder)
    chosen = provider_of(name, provider)
    create_options = cloud_options(chosen, name, region, size, image, creating=not state.load(name).created) if (
        chosen) else {}
    if chosen == "local":  # --image is the sandbox machine's OS there
        create_options |= {k: v for k, v in create_options_of(chosen, image=image).items() if v is not None}
    result = chain.deploy(path, name, provider=provider, force=force, lock_wait=lock_wait, report=output.reporter(),
                          create_options=create_options, wait=wait_for_outcome(wait, as_json), batch=batch)
    output.emit(render.deploy_json(name, result), as_json, lambda: render.show_deploy(result))
