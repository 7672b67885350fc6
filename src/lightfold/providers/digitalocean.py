"""Thin async client for the DigitalOcean API (v2): only what lightfold uses.

Endpoints: account (token check), account/keys, droplets (create/get/list by `tag_name`/delete),
actions, regions, sizes, images (`type=distribution`); for `lightfold scale`: vpcs (the primary
droplet's VPC is the target's private network: every droplet and the load balancer go in it),
load_balancers (create 202 with status `new` and no `ip`; `active` with its `ip` later;
POST/DELETE .../droplets with `droplet_ids` add and remove backends) and certificates
(`lets_encrypt`, the managed certificate of the target's domain). Auth: `Authorization: Bearer
$DIGITALOCEAN_TOKEN`. Errors: `{"id": "unauthorized", "message": "...", "request_id": "..."}`.
Create answers 202 with the droplet in status `new` and no addresses yet; `networks.v4` fills in
when it becomes `active`. Pagination: `page`/`per_page` (max 200), `links.pages.next` (absolute
URL) and `meta.total`. Rate limit: 429 `too_many_requests` with `Retry-After` (seconds) and
`ratelimit-limit`/`ratelimit-remaining`/`ratelimit-reset` (Unix time) headers.

References: https://docs.digitalocean.com/reference/api/intro (requests, pagination, rate limits,
errors); https://docs.digitalocean.com/reference/api/digitalocean/ (Droplets, SSH Keys, Actions,
Regions, Sizes, Images); https://docs.digitalocean.com/reference/pydo/reference/droplets/create ;
https://docs.digitalocean.com/notes/2023/api-rate-limit (Retry-After on 429);
https://docs.digitalocean.com/reference/api/digitalocean/#tag/Load-Balancers , #tag/VPCs ,
#tag/Certificates .
"""

from __future__ import annotations

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

PROVIDER = "digitalocean"
PER_PAGE = 200

_STATUS = {"new": "pending", "active": "running", "off": "off", "archive": "deleting"}
_LB_STATUS = {"new": "pending", "active": "active", "errored": "error"}
HEALTH = {"check_interval_seconds": 3, "response_timeout_seconds": 3, "healthy_threshold": 2,
          "unhealthy_threshold": 2}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DNetwork(_Model):
    ip_address: str
    type: str  # public | private


class DNetworks(_Model):
    v4: list[DNetwork] = []


class DSlugged(_Model):
    slug: str | None = None


class DDroplet(_Model):
    id: int
    name: str
    status: str
    networks: DNetworks = DNetworks()
    tags: list[str] = []
    region: DSlugged | None = None
    size_slug: str | None = None
    image: DSlugged | None = None
    vpc_uuid: str | None = None

    def common(self) -> Server:
        public = [n.ip_address for n in self.networks.v4 if n.type == "public"]
        return Server(
            id=str(self.id), name=self.name, status=_STATUS.get(self.status, "unknown"),
            provider_status=self.status, ipv4=public[0] if public else None, tags=self.tags,
            region=self.region.slug if self.region else None, size=self.size_slug,
            image=self.image.slug if self.image else None,
        )


class DBalancer(_Model):
    id: str
    name: str
    ip: str = ""
    status: str
    droplet_ids: list[int] = []

    def common(self) -> Balancer:
        return Balancer(id=self.id, name=self.name, status=_LB_STATUS.get(self.status, "unknown"),
                        provider_status=self.status, ip=self.ip or None,
                        target_ids=[str(d) for d in self.droplet_ids])


class DVpc(_Model):
    id: str
    name: str
    ip_range: str


def balancer_request(spec: BalancerSpec) -> dict[str, Any]:
    """The body of POST /v2/load_balancers for `spec`: HTTP 80 -> the droplets' 80; with a
    certificate, HTTPS 443 ending at the load balancer -> 80, and HTTP redirected to HTTPS. (DO's
    health check sends no Host header of one's choosing: the path only.)"""
    rules: list[dict[str, Any]] = [{"entry_protocol": "http", "entry_port": 80, "target_protocol": "http",
                                    "target_port": 80}]
    if spec.certificate_id:
        rules.append({"entry_protocol": "https", "entry_port": 443, "target_protocol": "http", "target_port": 80,
                      "certificate_id": spec.certificate_id, "tls_passthrough": False})
    body: dict[str, Any] = {
        "name": spec.name, "region": spec.region, "size_unit": 1, "algorithm": "round_robin",
        "forwarding_rules": rules,
        "health_check": {"protocol": "http", "port": 80, "path": spec.health_path, **HEALTH},
        "redirect_http_to_https": bool(spec.certificate_id),
        "droplet_ids": [int(i) for i in spec.target_ids],
    }
    if spec.network_id:
        body["vpc_uuid"] = spec.network_id
    return body


class DKey(_Model):
    id: int
    name: str
    public_key: str
    fingerprint: str | None = None

    def common(self) -> SshKey:
        return SshKey(id=str(self.id), name=self.name, public_key=self.public_key, fingerprint=self.fingerprint)


class DRegion(_Model):
    slug: str
    name: str = ""
    available: bool = True


class DSize(_Model):
    slug: str
    vcpus: int = 0
    memory: int = 0
    disk: int = 0
    price_monthly: float = 0
    regions: list[str] = []
    available: bool = True


class DImage(_Model):
    slug: str | None = None
    distribution: str = ""
    name: str = ""


def read_error(status: int, body: Any) -> tuple[str, str]:
    if isinstance(body, dict) and "message" in body:
        return str(body.get("id") or "error"), str(body["message"])
    return ("http_error", f"unexpected answer: {str(body)[:200]}")


class DigitalOceanClient(BaseClient):
    provider = PROVIDER

    def __init__(self, token: str, *, base: str | None = None, retry: RetryPolicy | None = None, poll: float = 1.0):
        super().__init__(ApiClient(PROVIDER, token, read_error, base=base, retry=retry), poll=poll)

    async def _all(self, path: str, key: str, params: dict | None = None) -> list[dict]:
        items: list[dict] = []
        body = await self.api.get(path, {**(params or {}), "page": 1, "per_page": PER_PAGE})
        while True:
            items.extend(body.get(key) or [])
            nxt = ((body.get("links") or {}).get("pages") or {}).get("next")
            if not nxt:
                return items
            body = await self.api.get(nxt)

    async def validate_token(self) -> str:
        account = (await self.api.get("/account"))["account"]
        return str(account.get("email") or account.get("uuid") or "DigitalOcean account")

    async def list_ssh_keys(self) -> list[SshKey]:
        return [DKey.model_validate(k).common() for k in await self._all("/account/keys", "ssh_keys")]

    async def create_ssh_key(self, name: str, public_key: str) -> SshKey:
        body = await self.api.post("/account/keys", {"name": name, "public_key": public_key})
        return DKey.model_validate(body["ssh_key"]).common()

    async def delete_ssh_key(self, key_id: str) -> None:
        await missing_ok(self.api.delete(f"/account/keys/{key_id}"))

    async def create_server(self, name: str, spec: ServerSpec, tags: list[str]) -> Server:
        body: dict[str, Any] = {
            "name": name,
            "region": spec.region,
            "size": spec.size,
            "image": spec.image,
            "ssh_keys": [int(k) if k.isdigit() else k for k in spec.ssh_key_ids],
            "tags": tags,
            "ipv6": False,
            "monitoring": False,
        }
        if spec.user_data:
            body["user_data"] = spec.user_data
        if spec.network_id:
            body["vpc_uuid"] = spec.network_id
        answer = await self.api.post("/droplets", body)
        return DDroplet.model_validate(answer["droplet"]).common()

    async def get_server(self, server_id: str) -> Server | None:
        body = await missing_ok(self.api.get(f"/droplets/{server_id}"))
        return DDroplet.model_validate(body["droplet"]).common() if body else None

    async def list_servers(self, tag: str | None = None) -> list[Server]:
        params = {"tag_name": tag} if tag else None
        return [DDroplet.model_validate(d).common() for d in await self._all("/droplets", "droplets", params)]

    async def delete_server(self, server_id: str) -> None:
        await missing_ok(self.api.delete(f"/droplets/{server_id}"))

    async def list_regions(self) -> list[Choice]:
        regions = [DRegion.model_validate(r) for r in await self._all("/regions", "regions")]
        return [Choice(id=r.slug, label=r.name) for r in regions if r.available]

    async def list_sizes(self) -> list[Choice]:
        sizes = [DSize.model_validate(s) for s in await self._all("/sizes", "sizes")]
        return [
            Choice(id=s.slug, label=f"{s.vcpus} vCPU, {s.memory / 1024:g} GB RAM, {s.disk} GB disk, "
                                    f"${s.price_monthly:g}/mo", regions=s.regions)
            for s in sizes if s.available
        ]

    async def list_images(self) -> list[Choice]:
        images = [DImage.model_validate(i) for i in await self._all("/images", "images", {"type": "distribution"})]
        return [Choice(id=i.slug, label=f"{i.distribution} {i.name}".strip()) for i in images if i.slug]

    # ---- private network and load balancer (`lightfold scale`)

    async def private_network(self, name: str, region: str, member_id: str, tag: str) -> Network:
        """The VPC the primary droplet is in (every droplet is in one: the region's default VPC
        unless it was made in another); the new droplets and the load balancer join it."""
        droplet = DDroplet.model_validate((await self.api.get(f"/droplets/{member_id}"))["droplet"])
        if not droplet.vpc_uuid:
            raise ProviderError(PROVIDER, 200, "no_vpc", f"droplet {member_id} reports no VPC")
        vpc = DVpc.model_validate((await self.api.get(f"/vpcs/{droplet.vpc_uuid}"))["vpc"])
        return Network(id=vpc.id, name=vpc.name, ip_range=vpc.ip_range)

    async def create_balancer(self, spec: BalancerSpec) -> Balancer:
        answer = await self.api.post("/load_balancers", balancer_request(spec))
        return DBalancer.model_validate(answer["load_balancer"]).common()

    async def get_balancer(self, balancer_id: str) -> Balancer | None:
        body = await missing_ok(self.api.get(f"/load_balancers/{balancer_id}"))
        return DBalancer.model_validate(body["load_balancer"]).common() if body else None

    async def find_balancer(self, name: str) -> Balancer | None:
        found = [DBalancer.model_validate(b).common() for b in await self._all("/load_balancers", "load_balancers")]
        return next((b for b in found if b.name == name), None)

    async def set_balancer_targets(self, balancer: Balancer, server_ids: list[str]) -> None:
        add = [int(i) for i in server_ids if i not in balancer.target_ids]
        drop = [int(i) for i in balancer.target_ids if i not in server_ids]
        if add:
            await self.api.request("POST", f"/load_balancers/{balancer.id}/droplets", json={"droplet_ids": add},
                                   idempotent=True)
        if drop:
            await self.api.request("DELETE", f"/load_balancers/{balancer.id}/droplets", json={"droplet_ids": drop})

    async def delete_balancer(self, balancer_id: str) -> None:
        await missing_ok(self.api.delete(f"/load_balancers/{balancer_id}"))

    async def managed_certificate(self, name: str, domain: str) -> str | None:
        """A Let's Encrypt certificate DigitalOcean makes and renews for `domain` (whose DNS it
        must host), found again by name."""
        for cert in await self._all("/certificates", "certificates"):
            if cert.get("name") == name:
                return str(cert["id"])
        body = await self.api.post("/certificates", {"name": name, "type": "lets_encrypt", "dns_names": [domain]})
        return str(body["certificate"]["id"])


# ---- the provider as `lightfold create/destroy/status --provider digitalocean` sees it (see providers/__init__.py)

CLIENT = DigitalOceanClient
create, recover_address, destroy, server_state = cloud_target.target_api(PROVIDER)
(create_server, destroy_server, ensure_balancer, set_balancer_targets, wait_balancer_healthy, balancer_status,
 destroy_others) = cloud_scale.server_api(PROVIDER)
