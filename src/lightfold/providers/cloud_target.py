"""A target's cloud server, as lightfold records it: what each cloud provider module's
`create`/`recover_address`/`destroy`/`server_state` (the `lightfold.providers.CloudProvider`
protocol) run, bound to the provider by `target_api`.

- `create_target`: create (or find again) the server and record its address, login and key in
  config.json, `created` in state, and pin its host key; waits until root logs in.
- `recover_address`: find the server again (by id, else by tag) and follow a changed address
  (what `lightfold sync` runs for a cloud target); `offers`: regions/sizes for a prompt.
- `destroy_target` / `target_server_state`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from lightfold import providers
from lightfold.errors import LightfoldError
from lightfold.providers import Progress, cloud, quiet
from lightfold.providers.cloud_client import Choice, Server, ServerSpec, open_client
from lightfold.providers.http import LABELS


def target_api(provider: str):
    """(create, recover_address, destroy, server_state) bound to one cloud provider: the
    module-level functions that make its module a `lightfold.providers.CloudProvider`."""

    def create(target: str, project_path: Path | None = None, *, force: bool = False, progress: Progress = quiet,
               region: str | None = None, size: str | None = None, image: str | None = None) -> dict[str, Any]:
        return create_target(provider, target, project_path, force=force, progress=progress,
                             region=region, size=size, image=image)

    def recover(target: str, *, progress: Progress = quiet) -> dict[str, Any]:
        return recover_address(provider, target, progress=progress)

    def destroy(target: str, *, progress: Progress = quiet) -> dict[str, Any]:
        return destroy_target(provider, target, progress=progress)

    def server_state(target: str) -> str:
        return target_server_state(provider, target)

    return create, recover, destroy, server_state


def create_target(
    provider: str,
    target: str,
    project_path: Path | None = None,
    *,
    force: bool = False,
    progress: Progress = quiet,
    ready_check: bool = True,
    region: str | None = None,
    size: str | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """Create (or find again) the target's cloud server and record it: address, login and key in
    config.json, `created` in state, the host key pinned. Safe to rerun after any interruption:
    the create tag and the host key are stored before the provider is asked for anything.

    region/size/image: given values win over the target's config, which wins over `cloud.DEFAULTS`.
    A rerun on an existing server re-reads it and follows a changed address (see `recover_address`)."""
    from lightfold import config, state
    from lightfold.remote import openssh

    cfg = config.load()
    existing = cfg.targets.get(target)
    providers.refuse_other_provider(target, existing, provider,
                                    f"`lightfold config set provider {provider} --target {target}`")
    pc = (existing.provider_config.get(provider) if existing else None) or config.ProviderConfig()
    given = {"region": region, "size": size, "image": image}
    wanted = ServerSpec(**{f: given[f] or getattr(pc, f) or cloud.DEFAULTS[provider][f] for f in given})
    st = state.load(target)
    key_path = openssh.login_key()
    public_key = Path(f"{key_path}.pub").read_text().strip()

    async def provision() -> tuple[Server, bool]:
        async with open_client(provider) as client:
            if st.created and pc.server_id:
                current = await client.get_server(pc.server_id)
                if current is not None and not force:
                    return current, False
                if current is not None:
                    progress(f"removing the old server {current.name} ({current.id})")
                    await cloud.destroy_server(client, current.id)
                else:
                    progress(f"server {pc.server_id} is gone; creating a new one")
                _reset(target, pc.ip)
            account = await client.validate_token()
            progress(f"{LABELS[provider]}: token accepted ({account})")
            spec = await cloud.validate_spec(client, wanted)
            key, uploaded = await cloud.ensure_ssh_key(client, public_key)
            if uploaded:
                progress(f"uploaded SSH key {key.name}")
            tag = state.load(target).create_tag
            if not tag:
                tag = cloud.new_create_tag(target)
                state.update(target, lambda s: setattr(s, "create_tag", tag))
            host_key = cloud.load_or_create_host_key(target)
            spec = spec.model_copy(update={
                "ssh_key_ids": [key.id], "user_data": cloud.user_data(public_key, host_key, target, tag)})
            progress(f"creating {spec.size} in {spec.region} ({spec.image})")
            result = await cloud.ensure_server(client, target, tag, spec, timeout=cloud.CREATE_TIMEOUT,
                                               poll=cloud.CREATE_POLL)
            if not result.created:
                progress(f"found server {result.server.name} from an earlier create")
            return result.server, True

    t0 = time.monotonic()
    server, changed = asyncio.run(provision())
    if not changed:
        progress(f"server {server.name} already exists (use --force to recreate it)")
        summary = _target_summary(provider, target, server, changed=False)
        if server.ipv4 and server.ipv4 != pc.ip:
            _follow_address(provider, target, server, pc.ip)
            progress(f"its address changed from {pc.ip or '(none)'} to {server.ipv4}; re-pinned its host key")
            summary.update(address_changed=True, previous_ip=pc.ip)
        if ready_check and server.ipv4 and not cloud.host_key_rotated(target):
            # Made by a lightfold before rotation, or a rotation was interrupted.
            wait_ready(target, server, key_path, progress)
        return summary
    cloud.load_or_create_host_key(target)
    openssh.pin(server.ipv4, 22, *cloud.trusted_host_keys(target))
    # What the server really is (the spec it was made from, spelled as the API reports it).
    spec = {k: v for k, v in (("region", server.region), ("size", server.size), ("image", server.image)) if v}
    config.record_server(target, provider, project_path, ip=server.ipv4, ssh_key=str(key_path), username="root",
                         port=22, server_id=server.id, **spec)
    if ready_check:
        wait_ready(target, server, key_path, progress)
    state.update(target, lambda s: (setattr(s, "created", True), setattr(s, "provisioned_id", server.id)))
    progress(f"server {server.name} is up at {server.ipv4} in {time.monotonic() - t0:.1f}s")
    return _target_summary(provider, target, server, changed=True)


def recover_address(provider: str, target: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Find the target's server again at the provider and record its current address: by the
    server id in config, else by the create tag in state (a config that lost its id/IP). A changed
    address is written to provider_config.ip and the target's stored host key (the one its user
    data installed, kept under ~/.lightfold/host-keys/) is pinned for it; the old address is
    unpinned. Nothing is trusted on first use: without the stored host key this fails.

    Returns {"target", "provider", "server_id", "ip", "previous_ip", "changed", "found_by"}
    ("changed": the address or the server id differed from config; "found_by": "id" | "tag").
    Raises LightfoldError when the provider has no such server any more."""
    from lightfold import config, state

    tc = config.get_target(config.load(), target)
    pc = tc.provider_config.get(provider) or config.ProviderConfig()
    tag = state.load(target).create_tag
    label = LABELS[provider]

    async def look() -> tuple[Server | None, str]:
        async with open_client(provider) as client:
            server = await client.get_server(pc.server_id) if pc.server_id else None
            found_by = "id"
            if server is None and tag:
                server, found_by = await cloud.find_by_tag(client, tag), "tag"
            if server is not None and not (server.status == "running" and server.ipv4):
                progress(f"server {server.name} is '{server.provider_status}'; waiting for it to run")
                server = await cloud.wait_running(client, server.id, timeout=cloud.READY_TIMEOUT,
                                                  poll=cloud.CREATE_POLL)
            return server, found_by

    server, found_by = asyncio.run(look())
    if server is None:
        where = f"id {pc.server_id}" if pc.server_id else "no server id recorded"
        raise LightfoldError(
            f"{label} has no server for '{target}' ({where}, tag {tag or 'unknown'})",
            f"create a new one: lightfold create --target {target} --provider {provider} --force",
        )
    changed = server.ipv4 != pc.ip or server.id != pc.server_id
    if changed:
        _follow_address(provider, target, server, pc.ip)
        progress(f"{target}: {label} server {server.id} is at {server.ipv4} (was {pc.ip or 'unknown'})")
    return {"target": target, "provider": provider, "server_id": server.id, "ip": server.ipv4,
            "previous_ip": pc.ip, "changed": changed, "found_by": found_by}


def _follow_address(provider: str, target: str, server: Server, old_ip: str | None) -> None:
    """Record the server's current address and id, and move the pin to it (stored host key only)."""
    from lightfold import config, state
    from lightfold.remote import openssh

    keys = cloud.trusted_host_keys(target)
    if not keys:
        raise LightfoldError(
            f"no stored host key for '{target}', so its server at {server.ipv4} cannot be verified",
            f"recreate it: lightfold create --target {target} --provider {provider} --force",
        )
    if old_ip and old_ip != server.ipv4:
        openssh.unpin(old_ip, 22)
    openssh.pin(server.ipv4, 22, *keys)

    def change(cfg: config.Config) -> None:
        tc = cfg.targets[target]
        pc = tc.provider_config.get(provider) or config.ProviderConfig()
        pc.ip, pc.server_id = server.ipv4, server.id
        tc.provider_config = {**tc.provider_config, provider: pc}

    config.update(change)
    state.update(target, lambda s: setattr(s, "provisioned_id", server.id))


async def offers(provider: str) -> dict[str, list[Choice]]:
    """The provider's regions and sizes (for an interactive choice): {"regions": [...], "sizes": [...]}."""
    async with open_client(provider) as client:
        regions, sizes = await asyncio.gather(client.list_regions(), client.list_sizes())
    return {"regions": regions, "sizes": sizes}


def destroy_target(provider: str, target: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Delete the target's server (found by id, else by its create tag), the SSH key lightfold
    uploaded if nothing else uses it, and what lightfold recorded; keep the config entry."""
    from lightfold import config, state
    from lightfold.remote import openssh

    tc = config.load().targets.get(target)
    pc = (tc.provider_config.get(provider) if tc else None) or config.ProviderConfig()
    st = state.load(target)
    key_path = openssh.login_key()
    public_key = Path(f"{key_path}.pub").read_text().strip() if Path(f"{key_path}.pub").exists() else None
    if st.multi:  # `lightfold scale` made more: its load balancer and other servers go first
        from lightfold.providers import cloud_scale

        cloud_scale.destroy_others(provider, target, progress)

    async def delete() -> tuple[Server | None, dict[str, Any]]:
        async with open_client(provider) as client:
            server = await client.get_server(pc.server_id) if pc.server_id else None
            if server is None and st.create_tag:
                server = await cloud.find_by_tag(client, st.create_tag)
            if server is None:
                return None, {"server_deleted": False, "ssh_key_deleted": False}
            progress(f"deleting server {server.name} ({server.id})")
            return server, await cloud.destroy_server(client, server.id, public_key)

    server, done = asyncio.run(delete())
    _reset(target, pc.ip)
    if server is None:
        progress(f"'{target}' has no {LABELS[provider]} server; nothing to destroy")
    return {"target": target, "provider": provider, "destroyed": server is not None,
            "server_id": server.id if server else None, **done}


def target_server_state(provider: str, target: str) -> str:
    """'running' | 'stopped' | 'missing' | 'unknown' (also when the API cannot be asked)."""
    from lightfold import config

    tc = config.load().targets.get(target)
    pc = tc.provider_config.get(provider) if tc else None
    if not pc or not pc.server_id:
        return "missing"

    async def look() -> str:
        async with open_client(provider) as client:
            server = await client.get_server(pc.server_id)
        if server is None:
            return "missing"
        return {"running": "running", "off": "stopped"}.get(server.status, "unknown")

    try:
        return asyncio.run(look())
    except LightfoldError:
        return "unknown"


def _target_summary(provider: str, target: str, server: Server, *, changed: bool) -> dict[str, Any]:
    return {"target": target, "provider": provider, "ip": server.ipv4, "ssh_user": "root",
            "server_id": server.id, "region": server.region, "size": server.size, "image": server.image,
            "changed": changed}


def _reset(target: str, ip: str | None) -> None:
    """Forget a server that is gone: its pinned key, host key, state, address and id."""
    from lightfold import config, state
    from lightfold.remote import openssh

    if ip:
        openssh.unpin(ip, 22)
    cloud.forget_host_key(target)
    state.remove(target)

    def drop(cfg: config.Config) -> None:
        tc = cfg.targets.get(target)
        if tc and tc.provider in tc.provider_config:
            pc = tc.provider_config[tc.provider]
            pc.ip, pc.server_id = None, None
            tc.provider_config = {**tc.provider_config, tc.provider: pc}

    config.update(drop)


def wait_ready(target: str, server: Server, key: Path, progress: Progress) -> None:
    """Until root logs in with the pinned host key and cloud-init (when present) has finished;
    then the host key from user data is replaced (`_rotate_host_key`)."""
    from lightfold import remote
    from lightfold.remote import openssh

    deadline = time.monotonic() + cloud.READY_TIMEOUT
    progress(f"waiting for SSH on {server.ipv4}")

    async def ready() -> None:
        from lightfold.remote.connection import connect_when_up

        conn = await connect_when_up(server.ipv4, 22, "root", key, openssh.known_hosts_path(),
                                     deadline=deadline, interval=2)
        async with conn:
            left = max(5, int(deadline - time.monotonic()))
            await conn.run(f"if command -v cloud-init >/dev/null; then timeout {left} cloud-init status --wait; fi",
                           check=False, timeout=left + 5)
            await _rotate_host_key(conn, target, server, key, progress)

    remote.run_sync(ready())


ROTATION_CONFIRM_SECONDS = 20


async def _rotate_host_key(conn: Any, target: str, server: Server, key: Path, progress: Progress) -> None:
    """The server's host key came through user data, which its metadata service keeps handing to
    any process on it: replace it with one made on the server, read back over this authenticated
    connection, and pin only that. The new key is confirmed over a second connection before the
    old one is dropped; if that fails, the old key goes back and the error says so."""
    from lightfold.remote import openssh
    from lightfold.remote.connection import connect_when_up
    from lightfold.server import hardening

    before = cloud.trusted_host_keys(target)
    new = hardening.rotated_public_key((await conn.run(hardening.rotate_generate(), timeout=60)).stdout)
    cloud.record_rotation(target, rotating=new)  # an interruption from here on trusts both
    openssh.pin(server.ipv4, 22, *before, new)
    await conn.run(hardening.rotate_install(), timeout=60)
    openssh.pin(server.ipv4, 22, new)
    try:
        # sshd's reload re-executes its listener: a connect in that moment is refused.
        check = await connect_when_up(server.ipv4, 22, "root", key, openssh.known_hosts_path(),
                                      deadline=time.monotonic() + ROTATION_CONFIRM_SECONDS, interval=0.5)
        async with check:
            await check.run("true", timeout=30)
    except LightfoldError as e:
        await conn.run(hardening.rotate_restore(), timeout=60, check=False)
        openssh.pin(server.ipv4, 22, *before)
        cloud.record_rotation(target)
        raise LightfoldError(
            f"the new host key of {server.ipv4} could not be confirmed over a new connection ({e.problem}); "
            "the server has its old key again",
            f"run `lightfold create --target {target}` again to retry the rotation") from e
    await conn.run(hardening.rotate_finish(), timeout=30, check=False)
    cloud.record_rotation(target, rotated=new)
    progress("replaced the host key from user data with one made on the server, and pinned it")
