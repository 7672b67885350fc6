"""The `local` provider: the target's server is a sandbox machine on this host (see
lightfold.sandbox), created and recorded exactly as a cloud server would be — address, login and
key in config.json, `created` in state, the host key pinned before the first connection, and
/etc/lightfold/created written on the machine."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lightfold import config, providers, state, store
from lightfold.agent.layout import CREATED_MARKER
from lightfold.errors import LightfoldError
from lightfold.providers import Progress, quiet
from lightfold.remote import openssh
from lightfold.sandbox import layout as sandbox_layout
from lightfold.sandbox import machine

NAME = "local"
BOOT_TIMEOUT = 90

def owner() -> str:
    """Which lightfold home a machine belongs to (machine names are global to the host)."""
    return str(store.home().expanduser().resolve())


def server_state(target: str) -> str:
    return machine.state(sandbox_layout.layout(), target)


def _check_owner(target: str) -> None:
    lay = sandbox_layout.layout()
    who = machine.owner_of(lay, target)
    if who and who != owner():
        raise LightfoldError(
            f"the local machine '{target}' belongs to another lightfold home ({who})",
            f"run the command with LIGHTFOLD_HOME={who}, or choose another --target",
        )


def create(
    target: str,
    project_path: Path | None = None,
    *,
    force: bool = False,
    network: str | None = None,
    image: str | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Create the target's machine (a no-op when it already runs, unless `force`). `image`: the OS
    it boots (lightfold.sandbox.image.IMAGES: debian-13, the default, or debian-12), kept in the
    target's config like a cloud server's image."""
    from lightfold.sandbox.image import DEFAULT_IMAGE, suite_of

    cfg = config.load()
    existing = cfg.targets.get(target)
    providers.refuse_other_provider(target, existing, NAME, f"`lightfold config set provider local --target {target}`")
    old = existing.provider_config.get(NAME) if existing else None
    requested = network
    network = network or (old.network if old else None) or "isolated"
    requested_image = image
    image = image or (old.image if old else None) or DEFAULT_IMAGE
    suite = suite_of(image)
    lay = sandbox_layout.layout()
    st = state.load(target)
    current = machine.state(lay, target)

    if st.created and current == "running" and not force:
        pc = existing.provider_config[NAME] if existing and NAME in existing.provider_config else None
        if requested and pc and pc.network and requested != pc.network:
            raise LightfoldError(
                f"machine '{target}' already runs with the {pc.network} network",
                f"add --force to recreate it with --network {requested} (everything on it is lost)",
            )
        if requested_image and pc and requested_image != (pc.image or DEFAULT_IMAGE):
            raise LightfoldError(
                f"machine '{target}' already runs {pc.image or DEFAULT_IMAGE}",
                f"add --force to recreate it with --image {requested_image} (everything on it is lost)",
            )
        progress(f"machine '{target}' already exists and is running (use --force to recreate it)")
        return _summary(target, pc.ip if pc else None, network, (pc.image if pc else None) or DEFAULT_IMAGE,
                        changed=False)
    if current != "missing":
        _check_owner(target)
        if force or st.created:
            progress(f"removing the old machine '{target}'")
            _forget(target)
        else:
            raise LightfoldError(
                f"a local machine named '{target}' is left over from an interrupted create",
                f"recreate it with `lightfold create --target {target} --provider local --force`, "
                f"or remove it with `lightfold destroy --target {target} --yes`",
            )
    elif st.created:
        progress(f"machine '{target}' is gone (host rebooted?); creating it again")

    key = openssh.login_key()
    pub = Path(f"{key}.pub").read_text()
    t0 = time.monotonic()
    progress(f"creating machine '{target}' ({image}, {network} network)")
    m = machine.create(target, network, pub, owner(), progress, suite=suite)
    try:
        openssh.pin(m.ip, 22, m.host_key)
        config.record_server(target, NAME, project_path, ip=m.ip, ssh_key=str(key), username="root", port=22,
                             server_id=target, network=network, image=image)
        _wait_ready(m, key, progress)
        state.update(target, lambda s: _mark_created(s, target))
    except BaseException:
        machine.destroy(target)
        openssh.unpin(m.ip, 22)
        raise
    progress(f"machine '{target}' is up at {m.ip} in {time.monotonic() - t0:.1f}s")
    return _summary(target, m.ip, network, image, changed=True)


def _mark_created(s: state.TargetState, target: str) -> None:
    s.created = True
    s.provisioned_id = target


def _summary(target: str, ip: str | None, network: str, image: str, *, changed: bool) -> dict[str, Any]:
    return {"target": target, "provider": NAME, "ip": ip, "ssh_user": "root", "network": network,
            "image": image, "server_id": target, "changed": changed}


def _wait_ready(m: machine.Machine, key: Path, progress: Progress) -> None:
    """Until root can log in over SSH and systemd has finished booting, then mark the machine as
    created the way a cloud provider's first-boot step would."""

    from lightfold import remote

    deadline = time.monotonic() + BOOT_TIMEOUT
    machine.wait_for_ssh_port(m.name, m.ip, deadline)

    def still_booting() -> None:
        if machine.nspawn_pid(sandbox_layout.layout(), m.name) is None:
            machine.wait_for_ssh_port(m.name, m.ip, deadline)  # raises with the boot log

    async def ready() -> None:
        from lightfold.remote.connection import connect_when_up

        conn = await connect_when_up(m.ip, 22, "root", key, openssh.known_hosts_path(),
                                     deadline=deadline, interval=0.1, on_retry=still_booting)
        async with conn:
            left = max(5, int(deadline - time.monotonic()))
            res = await conn.run(f"timeout {left} systemctl is-system-running --wait", check=False,
                                 timeout=left + 5)
            boot = res.stdout.strip()
            if boot != "running":
                failed = await conn.run("systemctl --failed --no-legend --plain", check=False)
                progress(f"machine '{m.name}' booted {boot or 'with errors'}; failed units: "
                         f"{failed.stdout.strip() or 'none listed'}")
            marker = {"target": m.name, "provider": NAME, "created_at": int(m.created_at), "network": m.network}
            await conn.upload(json.dumps(marker) + "\n", CREATED_MARKER, 0o644)

    remote.run_sync(ready())


def _forget(target: str) -> list[str]:
    """Remove the machine and what lightfold recorded about it (not the target's config entry)."""
    lay = sandbox_layout.layout()
    info = machine.read_info(lay, target) or {}
    found = machine.destroy(target)
    cfg = config.load()
    tc = cfg.targets.get(target)
    ips = {info.get("ip")}
    if tc and NAME in tc.provider_config:
        ips.add(tc.provider_config[NAME].ip)
    for ip in ips - {None}:
        openssh.unpin(ip, 22)
    state.remove(target)
    if tc and NAME in tc.provider_config:
        def drop(c: config.Config) -> None:
            t = c.targets.get(target)
            if t and NAME in t.provider_config:
                pc = t.provider_config[NAME]
                pc.ip = None
                pc.server_id = None
                t.provider_config = {**t.provider_config, NAME: pc}

        config.update(drop)
    return found


def create_server(target: str, name: str, *, progress: Progress = quiet, accept_new_host_key: bool = False) -> str:
    """Another machine of `target` (`lightfold scale`: an app server or the load balancer's),
    made like the target's own (its network, image and login key); its address. A machine left
    over by an interrupted scale is made again."""
    from lightfold.sandbox.image import DEFAULT_IMAGE, suite_of

    pc = config.get_target(config.load(), target).provider_config.get(NAME) or config.ProviderConfig()
    lay = sandbox_layout.layout()
    if machine.state(lay, name) != "missing":
        _check_owner(name)
        progress(f"removing the left-over machine '{name}'")
        destroy_server(target, name)
    key = openssh.login_key()
    m = machine.create(name, pc.network or "isolated", Path(f"{key}.pub").read_text(), owner(), progress,
                       suite=suite_of(pc.image or DEFAULT_IMAGE))
    try:
        openssh.pin(m.ip, 22, m.host_key)
        _wait_ready(m, key, progress)
    except BaseException:
        destroy_server(target, name)
        raise
    return m.ip


def destroy_server(target: str, name: str, ip: str | None = None) -> bool:
    """Remove one machine of a target made by `create_server` (and its pinned host key)."""
    info = machine.read_info(sandbox_layout.layout(), name) or {}
    found = machine.destroy(name)
    if info.get("ip"):
        openssh.unpin(info["ip"], 22)
    return bool(found)


def destroy(target: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Stop and remove the target's machine and every trace of it; keep its config entry. A target
    on more than one server loses every one of them, and its load balancer."""
    from lightfold.sandbox import host

    host.require_host(tools={"ip": "iproute2"})
    _check_owner(target)
    t0 = time.monotonic()
    st = state.load(target)
    others = [s.name for s in st.servers if s.name != target] + ([st.load_balancer.name] if st.load_balancer else [])
    for name in others:
        if destroy_server(target, name):
            progress(f"machine '{name}' destroyed")
    found = _forget(target)
    if found:
        progress(f"machine '{target}' destroyed in {time.monotonic() - t0:.1f}s")
    else:
        progress(f"no machine named '{target}' exists; nothing to destroy")
    return {"target": target, "provider": NAME, "destroyed": bool(found), "found": found}
