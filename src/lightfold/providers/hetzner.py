"""Thin async client for the Hetzner Cloud API (v1): only what lightfold uses.

Endpoints: servers (create/get/list by label/delete), ssh_keys, actions, locations, server_types,
images; for `lightfold scale`: networks (one per target, found by its label; the primary joins it
by `attach_to_network`, new servers are created in it), load_balancers (create with services,
targets and the network; `add_target` / `remove_target` actions; each target's `health_status`
is the load balancer's own check) and certificates (`managed`: Hetzner obtains and renews it).
Tags are labels with an empty value (`{"lf-app-1a2b3c4d": ""}`), listed with
`label_selector=<tag>`. Auth: `Authorization: Bearer $HCLOUD_TOKEN`. Errors:
`{"error": {"code": "...", "message": "...", "details": {...}}}`. Pagination: `page`/`per_page`
(max 50) with `meta.pagination.next_page`. Rate limit: 429 `rate_limit_exceeded`, headers
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (Unix time).

Reference: https://docs.hetzner.cloud/reference/cloud (sections Servers, SSH Keys, Actions,
Locations, Server Types, Images, Networks, Load Balancers, Certificates; Errors, Pagination, Rate
Limiting, Label Selector).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from lightfold.providers import cloud_scale, cloud_target
from lightfold.providers.cloud_client import (
    Balancer,
    BalancerSpec,
    BaseClient,
    Choice,
    Network,
    Server,
    ServerSpec,
    SshKey,
)
from lightfold.providers.http import ApiClient, ProviderError, RetryPolicy, missing_ok

PROVIDER = "hetzner"
PER_PAGE = 50
ACTION_TIMEOUT = 300.0
BALANCER_TYPE = "lb11"
NETWORK_RANGE = "10.0.0.0/16"
SUBNET_RANGE = "10.0.0.0/24"
# Where each location's private networks live (a network's subnet names its zone).
NETWORK_ZONES = {"fsn1": "eu-central", "nbg1": "eu-central", "hel1": "eu-central", "ash": "us-east",
                 "hil": "us-west", "sin": "ap-southeast"}
HEALTH = {"interval": 3, "timeout": 2, "retries": 1}

_STATUS = {
    "initializing": "pending", "starting": "pending", "rebuilding": "pending", "migrating": "pending",
    "running": "running", "off": "off", "stopping": "off", "deleting": "deleting",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class HIPv4(_Model):
    ip: str


class HPublicNet(_Model):
    ipv4: HIPv4 | None = None


class HNamed(_Model):
    name: str


class HLocation(_Model):
    name: str
    city: str = ""
    country: str = ""


class HDatacenter(_Model):
    location: HLocation


class HServer(_Model):
    id: int
    name: str
    status: str
    public_net: HPublicNet = HPublicNet()
    labels: dict[str, str] = {}
    server_type: HNamed | None = None
    image: HNamed | None = None
    datacenter: HDatacenter | None = None

    def common(self) -> Server:
        return Server(
            id=str(self.id), name=self.name, status=_STATUS.get(self.status, "unknown"),
            provider_status=self.status,
            ipv4=self.public_net.ipv4.ip if self.public_net.ipv4 else None,
            tags=sorted(self.labels), region=self.datacenter.location.name if self.datacenter else None,
            size=self.server_type.name if self.server_type else None,
            image=self.image.name if self.image else None,
        )


class HPrivateNet(_Model):
    network: int
    ip: str = ""


class HServerRef(_Model):
    id: int


class HHealth(_Model):
    listen_port: int = 80
    status: str = "unknown"  # healthy | unhealthy | unknown


class HTarget(_Model):
    type: str
    server: HServerRef | None = None
    health_status: list[HHealth] = []


class HBalancerNet(_Model):
    ipv4: HIPv4 | None = None


class HBalancer(_Model):
    id: int
    name: str
    public_net: HBalancerNet = HBalancerNet()
    private_net: list[HPrivateNet] = []
    targets: list[HTarget] = []

    def common(self) -> Balancer:
        servers = [t for t in self.targets if t.type == "server" and t.server]
        ip = self.public_net.ipv4.ip if self.public_net.ipv4 else None
        return Balancer(
            id=str(self.id), name=self.name, status="active" if ip else "pending",
            provider_status="running" if ip else "initializing", ip=ip,
            private_ip=self.private_net[0].ip if self.private_net else None,
            target_ids=[str(t.server.id) for t in servers if t.server],
            health={str(t.server.id): bool(t.health_status) and all(h.status == "healthy" for h in t.health_status)
                    for t in servers if t.server},
        )


def balancer_request(spec: BalancerSpec) -> dict[str, Any]:
    """The body of POST /v1/load_balancers for `spec`: one HTTP service 80 -> 80 (with a
    certificate: HTTPS 443 ending at the load balancer -> 80, and its `redirect_http` answers :80
    with a redirect), health-checked over HTTP on the app's health path with its Host header, the
    servers as targets through the private network."""
    check = {"protocol": "http", "port": 80, **HEALTH,
             "http": {"domain": spec.health_host or "", "path": spec.health_path,
                      "status_codes": ["2??", "3??"], "tls": False}}
    service: dict[str, Any] = {"protocol": "http", "listen_port": 80, "destination_port": 80, "proxyprotocol": False,
                               "health_check": check}
    if spec.certificate_id:
        service.update(protocol="https", listen_port=443,
                       http={"certificates": [int(spec.certificate_id)], "redirect_http": True})
    body: dict[str, Any] = {
        "name": spec.name, "load_balancer_type": BALANCER_TYPE, "location": spec.region,
        "algorithm": {"type": "round_robin"}, "labels": {t: "" for t in spec.tags}, "public_interface": True,
        "services": [service],
        "targets": [{"type": "server", "server": {"id": int(i)}, "use_private_ip": bool(spec.network_id)}
                    for i in spec.target_ids],
    }
    if spec.network_id:
        body["network"] = int(spec.network_id)
    return body


class HSshKey(_Model):
    id: int
    name: str
    public_key: str
    fingerprint: str | None = None


class HActionError(_Model):
    code: str
    message: str


class HAction(_Model):
    id: int
    command: str = ""
    status: str  # running | success | error
    error: HActionError | None = None


class HPrice(_Model):
    location: str


class HServerType(_Model):
    name: str
    cores: int = 0
    memory: float = 0
    disk: int = 0
    deprecated: bool | None = None
    prices: list[HPrice] = []


class HImage(_Model):
    name: str | None = None
    description: str = ""
    architecture: str = "x86"


def read_error(status: int, body: Any) -> tuple[str, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return ("http_error", f"unexpected answer: {str(body)[:200]}")
    message = str(err.get("message") or "no message")
    fields = (err.get("details") or {}).get("fields") if isinstance(err.get("details"), dict) else None
    if fields:
        message += " (" + "; ".join(f"{f.get('name')}: {', '.join(f.get('messages', []))}" for f in fields) + ")"
    return str(err.get("code") or "error"), message


class HetznerClient(BaseClient):
    provider = PROVIDER

    def __init__(self, token: str, *, base: str | None = None, retry: RetryPolicy | None = None, poll: float = 1.0):
        super().__init__(ApiClient(PROVIDER, token, read_error, base=base, retry=retry), poll=poll)

    async def _all(self, path: str, key: str, params: dict | None = None) -> list[dict]:
        items: list[dict] = []
        page: int | None = 1
        while page:
            body = await self.api.get(path, {**(params or {}), "page": page, "per_page": PER_PAGE})
            items.extend(body.get(key) or [])
            page = ((body.get("meta") or {}).get("pagination") or {}).get("next_page")
        return items

    async def validate_token(self) -> str:
        """Hetzner has no account endpoint; a token that may list locations is a valid one."""
        await self.api.get("/locations", {"per_page": 1})
        return "Hetzner Cloud project"

    async def list_ssh_keys(self) -> list[SshKey]:
        keys = [HSshKey.model_validate(k) for k in await self._all("/ssh_keys", "ssh_keys")]
        return [SshKey(id=str(k.id), name=k.name, public_key=k.public_key, fingerprint=k.fingerprint) for k in keys]

    async def create_ssh_key(self, name: str, public_key: str) -> SshKey:
        body = await self.api.post("/ssh_keys", {"name": name, "public_key": public_key, "labels": {"lightfold": ""}})
        k = HSshKey.model_validate(body["ssh_key"])
        return SshKey(id=str(k.id), name=k.name, public_key=k.public_key, fingerprint=k.fingerprint)

    async def delete_ssh_key(self, key_id: str) -> None:
        await missing_ok(self.api.delete(f"/ssh_keys/{key_id}"))

    async def create_server(self, name: str, spec: ServerSpec, tags: list[str]) -> Server:
        body: dict[str, Any] = {
            "name": name,
            "server_type": spec.size,
            "image": spec.image,
            "location": spec.region,
            "ssh_keys": [int(k) if k.isdigit() else k for k in spec.ssh_key_ids],
            "labels": {t: "" for t in tags},
            "start_after_create": True,
        }
        if spec.user_data:
            body["user_data"] = spec.user_data
        if spec.network_id:
            body["networks"] = [int(spec.network_id)]
        answer = await self.api.post("/servers", body)
        return HServer.model_validate(answer["server"]).common()

    async def get_server(self, server_id: str) -> Server | None:
        body = await missing_ok(self.api.get(f"/servers/{server_id}"))
        return HServer.model_validate(body["server"]).common() if body else None

    async def list_servers(self, tag: str | None = None) -> list[Server]:
        params = {"label_selector": tag} if tag else None
        return [HServer.model_validate(s).common() for s in await self._all("/servers", "servers", params)]

    async def delete_server(self, server_id: str) -> None:
        """Deletes and waits for Hetzner's delete action to finish."""
        body = await missing_ok(self.api.delete(f"/servers/{server_id}"))
        if body and body.get("action"):
            await self.wait_action(HAction.model_validate(body["action"]).id)

    async def wait_action(self, action_id: int, timeout: float = ACTION_TIMEOUT) -> HAction:
        deadline = time.monotonic() + timeout
        while True:
            action = HAction.model_validate((await self.api.get(f"/actions/{action_id}"))["action"])
            if action.status == "success":
                return action
            if action.status == "error":
                err = action.error or HActionError(code="action_failed", message="the action failed")
                raise ProviderError(PROVIDER, 200, err.code, f"{action.command or 'action'} {action_id}: {err.message}")
            if time.monotonic() >= deadline:
                raise ProviderError(PROVIDER, 200, "action_timeout",
                                    f"{action.command or 'action'} {action_id} still running after {timeout:g}s")
            await asyncio.sleep(self.poll)

    async def list_regions(self) -> list[Choice]:
        locs = [HLocation.model_validate(x) for x in await self._all("/locations", "locations")]
        return [Choice(id=x.name, label=f"{x.city}, {x.country}".strip(", ")) for x in locs]

    async def list_sizes(self) -> list[Choice]:
        types = [HServerType.model_validate(x) for x in await self._all("/server_types", "server_types")]
        return [
            Choice(id=t.name, label=f"{t.cores} vCPU, {t.memory:g} GB RAM, {t.disk} GB disk",
                   regions=[p.location for p in t.prices])
            for t in types if not t.deprecated
        ]

    async def list_images(self) -> list[Choice]:
        images = [HImage.model_validate(x) for x in await self._all("/images", "images", {"type": "system"})]
        seen: dict[str, Choice] = {}
        for i in images:  # one entry per name: the same name exists for x86 and arm
            if i.name and i.name not in seen:
                seen[i.name] = Choice(id=i.name, label=i.description or i.name)
        return list(seen.values())

    # ---- private network and load balancer (`lightfold scale`)

    async def private_network(self, name: str, region: str, member_id: str, tag: str) -> Network:
        """The target's network (found by its label `tag`, else made in `region`'s zone), with the
        server `member_id` attached to it."""
        found = await self._all("/networks", "networks", {"label_selector": tag})
        if found:
            net = found[0]
        else:
            zone = NETWORK_ZONES.get(region, "eu-central")
            net = (await self.api.post("/networks", {
                "name": name, "ip_range": NETWORK_RANGE, "labels": {tag: ""},
                "subnets": [{"type": "cloud", "network_zone": zone, "ip_range": SUBNET_RANGE}]}))["network"]
        server = (await self.api.get(f"/servers/{member_id}"))["server"]
        if not any(int(p.get("network", 0)) == int(net["id"]) for p in server.get("private_net") or []):
            body = await self.api.post(f"/servers/{member_id}/actions/attach_to_network", {"network": int(net["id"])})
            await self.wait_action(HAction.model_validate(body["action"]).id)
        return Network(id=str(net["id"]), name=net["name"], ip_range=net["ip_range"])

    async def create_balancer(self, spec: BalancerSpec) -> Balancer:
        answer = await self.api.post("/load_balancers", balancer_request(spec))
        if answer.get("action"):
            await self.wait_action(HAction.model_validate(answer["action"]).id)
        return await self.get_balancer(str(answer["load_balancer"]["id"])) or HBalancer.model_validate(
            answer["load_balancer"]).common()

    async def get_balancer(self, balancer_id: str) -> Balancer | None:
        body = await missing_ok(self.api.get(f"/load_balancers/{balancer_id}"))
        return HBalancer.model_validate(body["load_balancer"]).common() if body else None

    async def find_balancer(self, name: str) -> Balancer | None:
        found = await self._all("/load_balancers", "load_balancers", {"name": name})
        return HBalancer.model_validate(found[0]).common() if found else None

    async def set_balancer_targets(self, balancer: Balancer, server_ids: list[str]) -> None:
        body = await self.api.get(f"/load_balancers/{balancer.id}")
        private = bool(body["load_balancer"].get("private_net"))
        for sid in [i for i in server_ids if i not in balancer.target_ids]:
            done = await self.api.post(f"/load_balancers/{balancer.id}/actions/add_target",
                                       {"type": "server", "server": {"id": int(sid)}, "use_private_ip": private})
            await self.wait_action(HAction.model_validate(done["action"]).id)
        for sid in [i for i in balancer.target_ids if i not in server_ids]:
            done = await self.api.post(f"/load_balancers/{balancer.id}/actions/remove_target",
                                       {"type": "server", "server": {"id": int(sid)}})
            await self.wait_action(HAction.model_validate(done["action"]).id)

    async def delete_balancer(self, balancer_id: str) -> None:
        await missing_ok(self.api.delete(f"/load_balancers/{balancer_id}"))

    async def managed_certificate(self, name: str, domain: str) -> str | None:
        """A certificate Hetzner obtains and renews for `domain` (its DNS must be at Hetzner), found
        again by name."""
        found = await self._all("/certificates", "certificates", {"name": name})
        if found:
            return str(found[0]["id"])
        body = await self.api.post("/certificates", {"name": name, "type": "managed", "domain_names": [domain]})
        return str(body["certificate"]["id"])


# ---- the provider as `lightfold create/destroy/status --provider hetzner` sees it (see providers/__init__.py)

CLIENT = HetznerClient
create, recover_address, destroy, server_state = cloud_target.target_api(PROVIDER)
(create_server, destroy_server, ensure_balancer, set_balancer_targets, wait_balancer_healthy, balancer_status,
 destroy_others) = cloud_scale.server_api(PROVIDER)
