"""A cloud target on more than one server (`lightfold scale` on digitalocean, hetzner, vultr): its
other servers, its private network and its managed load balancer, through the provider's API.

- The other servers (`create_server` / `destroy_server`, what `lightfold.release.scale` asks of
  every provider) are made like the target's own: same region, size, image and login key, their
  own host key generated here and pinned before the first connection, created in the target's
  private network. Each carries a tag derived from the target's create tag (already in state
  before any call) and its name, `<create tag>-2`: a retried or interrupted create finds it
  instead of making a second one.
- The private network (DigitalOcean: the primary droplet's VPC; Hetzner: a network of the
  target's own; Vultr: a VPC of the target's own) holds every server and the load balancer; the
  app servers' firewall takes web traffic from it only (Hetzner: from the load balancer's own
  address in it).
- The load balancer (`ensure_balancer`, `set_targets`, `wait_healthy`, `balancer_status`) is the
  provider's managed one, named `<create tag>-lb` (found again by that name), health-checked on
  the app's health path, the servers as its targets; TLS, when the target has a domain, ends at
  the load balancer with the provider's managed certificate (README, "More than one server").
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from lightfold.errors import LightfoldError
from lightfold.providers import Progress, cloud, quiet
from lightfold.providers.cloud_client import Balancer, BalancerSpec, Network, Server, ServerSpec, open_client
from lightfold.providers.http import LABELS, ProviderError

BALANCER_TIMEOUT = 300.0  # until a new load balancer is active with an address
HEALTHY_TIMEOUT = 120.0  # until its checks see every server healthy
POLL = 1.0


def server_tag(create_tag: str, target: str, name: str) -> str:
    """The tag of the target's server `name` (`shop-2` -> `<create tag>-2`); the primary's is the create tag."""
    return create_tag if name == target else f"{create_tag}-{name.removeprefix(target + '-')}"


def balancer_name(create_tag: str) -> str:
    return f"{create_tag}-lb"


def server_api(provider: str):
    """(create_server, destroy_server, ensure_balancer, set_targets, wait_healthy, balancer_status,
    destroy_all) bound to one cloud provider (`lightfold.release.scale` calls them)."""

    def create_server(target: str, name: str, *, progress: Progress = quiet, accept_new_host_key: bool = False) -> str:
        return _create_server(provider, target, name, progress)

    def destroy_server(target: str, name: str, ip: str | None = None) -> bool:
        return _destroy_server(provider, target, name, ip)

    def ensure(target: str, servers: list[Any], *, health_path: str, health_host: str | None,
               domain: str | None = None, progress: Progress = quiet) -> Any:
        return ensure_balancer(provider, target, servers, health_path=health_path, health_host=health_host,
                               domain=domain, progress=progress)

    def targets(target: str, servers: list[Any]) -> None:
        set_targets(provider, target, servers)

    def healthy(target: str, servers: list[Any]) -> bool:
        return wait_healthy(provider, target, servers)

    def status(target: str) -> dict[str, Any]:
        return balancer_status(provider, target)

    def destroy_all(target: str, progress: Progress = quiet) -> None:
        destroy_others(provider, target, progress)

    return create_server, destroy_server, ensure, targets, healthy, status, destroy_all


# ---- the other servers


def _target_config(provider: str, target: str) -> tuple[Any, Any, str]:
    """(the target's config, its provider_config, its create tag)."""
    from lightfold import config, state

    tc = config.get_target(config.load(), target)
    pc = tc.provider_config.get(provider) or config.ProviderConfig()
    tag = state.load(target).create_tag
    if not tag or not pc.server_id:
        raise LightfoldError(f"target '{target}' has no {LABELS[provider]} server recorded",
                             f"run `lightfold deploy --target {target}` first")
    return tc, pc, tag


def _create_server(provider: str, target: str, name: str, progress: Progress) -> str:
    from lightfold import state
    from lightfold.providers import cloud_target
    from lightfold.remote import openssh

    _tc, pc, create_tag = _target_config(provider, target)
    lb = state.load(target).load_balancer
    key_path = openssh.login_key()
    public_key = Path(f"{key_path}.pub").read_text().strip()
    tag = server_tag(create_tag, target, name)
    host_key = cloud.load_or_create_host_key(name)

    async def provision() -> Server:
        async with open_client(provider) as client:
            key, _ = await cloud.ensure_ssh_key(client, public_key)
            spec = ServerSpec(region=pc.region, size=pc.size, image=pc.image, ssh_key_ids=[key.id],
                              user_data=cloud.user_data(public_key, host_key, name, tag),
                              network_id=lb.network_id if lb else None)
            progress(f"creating {name} ({spec.size} in {spec.region})")
            result = await cloud.ensure_server(client, name, tag, spec, timeout=cloud.CREATE_TIMEOUT,
                                               poll=cloud.CREATE_POLL)
            if not result.created:
                progress(f"found server {result.server.name} from an earlier create")
            return result.server

    server = asyncio.run(provision())
    openssh.pin(server.ipv4, 22, *cloud.trusted_host_keys(name))
    cloud_target.wait_ready(name, server, key_path, progress)
    return server.ipv4 or ""


def _destroy_server(provider: str, target: str, name: str, ip: str | None) -> bool:
    from lightfold import state
    from lightfold.remote import openssh

    tag = server_tag(state.load(target).create_tag or "", target, name)

    async def delete() -> bool:
        async with open_client(provider) as client:
            server = await cloud.find_by_tag(client, tag)
            if server is None:
                return False
            await cloud.destroy_server(client, server.id)
            return True

    found = asyncio.run(delete())
    if ip:
        openssh.unpin(ip, 22)
    cloud.forget_host_key(name)
    return found


async def _server_ids(client: Any, create_tag: str, target: str, names: list[str]) -> list[str]:
    """The provider's ids of the target's servers `names` (found by their tags)."""
    ids = []
    for name in names:
        server = await cloud.find_by_tag(client, server_tag(create_tag, target, name))
        if server is None:
            raise LightfoldError(f"{LABELS[client.provider]} has no server {name} of '{target}'",
                                 f"run `lightfold scale --target {target}` again")
        ids.append(server.id)
    return ids


# ---- the private network and the load balancer


def ensure_balancer(provider: str, target: str, servers: list[Any], *, health_path: str,
                    health_host: str | None, domain: str | None = None, progress: Progress = quiet) -> Any:
    """The target's private network (the primary joins it) and its load balancer (found by name,
    else created with `servers` as targets), active with an address: a `state.LoadBalancer`."""
    from lightfold import state

    tc, pc, create_tag = _target_config(provider, target)
    name = balancer_name(create_tag)

    async def go() -> tuple[Balancer, Network, str | None]:
        async with open_client(provider) as client:
            network = await client.private_network(name, pc.region, pc.server_id, create_tag)
            progress(f"private network {network.name} ({network.ip_range})")
            found = await client.find_balancer(name)
            certificate = None
            if found is None:
                if domain:
                    certificate = await client.managed_certificate(f"{create_tag}-cert", domain)
                ids = await _server_ids(client, create_tag, target, [s.name for s in servers])
                spec = BalancerSpec(name=name, region=pc.region, tags=[cloud.MANAGED_TAG, name],
                                    health_path=health_path, health_host=health_host, network_id=network.id,
                                    target_ids=ids, certificate_id=certificate, domain=domain)
                progress(f"creating the {LABELS[provider]} load balancer {name}")
                found = await _create_balancer(client, spec)
            balancer = await _wait_active(client, found.id)
            return balancer, network, certificate

    balancer, network, _cert = asyncio.run(go())
    web_from = balancer.private_ip or network.ip_range
    return state.LoadBalancer(kind=provider, name=balancer.name, ip=balancer.ip or "", id=balancer.id,
                              network_id=network.id, web_from=web_from)


async def _create_balancer(client: Any, spec: BalancerSpec) -> Balancer:
    """Created once: a create whose answer was lost is looked up by name before another try."""
    for attempt in range(3):
        try:
            return await client.create_balancer(spec)
        except ProviderError as e:
            if not e.ambiguous or attempt == 2:
                raise
            await asyncio.sleep(POLL)
            found = await client.find_balancer(spec.name)
            if found is not None:
                return found
    raise AssertionError("unreachable")


async def _wait_active(client: Any, balancer_id: str, timeout: float = BALANCER_TIMEOUT) -> Balancer:
    deadline = time.monotonic() + timeout
    while True:
        balancer = await client.get_balancer(balancer_id)
        if balancer is None:
            raise LightfoldError(f"the {LABELS[client.provider]} load balancer {balancer_id} disappeared",
                                 "run `lightfold scale` again to create a new one")
        if balancer.status == "active" and balancer.ip:
            return balancer
        if balancer.status == "error":
            raise LightfoldError(f"the {LABELS[client.provider]} load balancer {balancer.name} failed "
                                 f"('{balancer.provider_status}')", "look at it in the provider's console")
        if time.monotonic() > deadline:
            raise LightfoldError(f"the {LABELS[client.provider]} load balancer {balancer.name} is still "
                                 f"'{balancer.provider_status}' after {timeout:g}s", "run `lightfold scale` again")
        await asyncio.sleep(POLL)


def _balancer_id(target: str) -> str:
    from lightfold import state

    lb = state.load(target).load_balancer
    if lb is None or not lb.id:
        raise LightfoldError(f"target '{target}' has no load balancer", f"run `lightfold scale --target {target}`")
    return lb.id


def set_targets(provider: str, target: str, servers: list[Any]) -> None:
    """The load balancer's targets become exactly `servers` (a server left out gets no new
    requests from then on)."""
    _tc, _pc, create_tag = _target_config(provider, target)
    balancer_id = _balancer_id(target)

    async def go() -> None:
        async with open_client(provider) as client:
            ids = await _server_ids(client, create_tag, target, [s.name for s in servers])
            balancer = await _wait_active(client, balancer_id)
            await client.set_balancer_targets(balancer, ids)
            await _wait_active(client, balancer_id)

    asyncio.run(go())


def wait_healthy(provider: str, target: str, servers: list[Any], timeout: float = HEALTHY_TIMEOUT) -> bool:
    """Until the load balancer's own checks see every server of `servers` healthy (a provider whose
    API does not report them: until it is active with them as targets). Whether its checks were
    seen (False: the API does not report them; each server passed its own health gate)."""
    _tc, _pc, create_tag = _target_config(provider, target)
    balancer_id = _balancer_id(target)
    t0 = time.monotonic()

    async def go() -> bool:
        async with open_client(provider) as client:
            ids = set(await _server_ids(client, create_tag, target, [s.name for s in servers]))
            while True:
                balancer = await _wait_active(client, balancer_id)
                if ids <= set(balancer.target_ids) and (
                        balancer.health is None or all(balancer.health.get(i) for i in ids)):
                    return balancer.health is not None
                if time.monotonic() - t0 > timeout:
                    raise LightfoldError(f"the {LABELS[provider]} load balancer does not see every server healthy "
                                         f"after {timeout:.0f}s", f"check `lightfold status --target {target}`")
                await asyncio.sleep(POLL)

    return asyncio.run(go())


def balancer_status(provider: str, target: str) -> dict[str, Any]:
    """`status`'s load_balancer for a cloud one, from the provider's API: {kind, name, ip, id,
    status, healthy_backends (None when the API does not report the backends' health),
    backends [{name, status}]}."""
    from lightfold import state

    st = state.load(target)
    lb = st.load_balancer
    assert lb is not None

    async def go() -> tuple[Balancer | None, dict[str, str]]:
        async with open_client(provider) as client:
            balancer = await client.get_balancer(lb.id) if lb.id else None
            names = {}
            for s in st.servers:
                found = await cloud.find_by_tag(client, server_tag(st.create_tag or "", target, s.name))
                if found is not None:
                    names[found.id] = s.name
            return balancer, names

    info: dict[str, Any] = {"kind": provider, "name": lb.name, "ip": lb.ip, "id": lb.id, "status": None,
                            "healthy_backends": None, "backends": [], "error": None}
    try:
        balancer, names = asyncio.run(go())
    except LightfoldError as e:
        info["error"] = e.problem
        return info
    if balancer is None:
        info["error"] = f"{LABELS[provider]} has no load balancer {lb.id}"
        return info
    info.update(ip=balancer.ip, status=balancer.provider_status)
    health = balancer.health
    info["backends"] = [{"name": names.get(i, i), "id": i,
                         "status": None if health is None else "UP" if health.get(i) else "DOWN"}
                        for i in balancer.target_ids]
    if health is not None:
        info["healthy_backends"] = sum(1 for i in balancer.target_ids if health.get(i))
    return info


def destroy_others(provider: str, target: str, progress: Progress = quiet) -> None:
    """The load balancer and every server of the target but the primary (`lightfold destroy`)."""
    from lightfold import state

    st = state.load(target)
    if st.load_balancer and st.load_balancer.id:
        balancer_id = st.load_balancer.id

        async def delete() -> None:
            async with open_client(provider) as client:
                await client.delete_balancer(balancer_id)

        asyncio.run(delete())
        progress(f"deleted the load balancer {st.load_balancer.name}")
    for server in st.servers:
        if server.role != "primary" and _destroy_server(provider, target, server.name, server.ip):
            progress(f"deleted server {server.name}")
