"""Thin async client for the Vultr API (v2): only what lightfold uses.

Endpoints: account (token check), ssh-keys, instances (create/get/list by `tag`/delete), regions,
plans, os; for `lightfold scale`: vpcs (one per target, found by its description; the primary
joins it by `vpcs/attach`, new instances are created with `attach_vpc`) and load-balancers (create
202 with status `pending` and no `ipv4`; `active` with its address later; PATCH `instances` with
the complete list of backends; TLS by `auto_ssl`, Vultr's automatic certificate).
Auth: `Authorization: Bearer $VULTR_API_KEY`. Errors: `{"error": "...", "status": 401}`.
Create answers 202 with `status: pending` and `main_ip: "0.0.0.0"`; the address and
`server_status: ok` come later. `user_data` must be base64. The image is an `os_id`, looked up
by name in /v2/os: the OS's name ("Debian 13 x64 (trixie)") or its slug (`os_slug`: debian-13-x64,
as DigitalOcean spells its images) is accepted too and mapped to its id. Pagination: `per_page` (max 500)
and a `cursor`, the next one in `meta.links.next` ("" on the last page). Rate limit: 429 (no
documented wait header, so the client backs off on its own).

References: https://www.vultr.com/api/ (Instances, SSH Keys, Account, Regions, Plans, Operating
Systems; Pagination, Rate Limit); https://docs.vultr.com/reference/vultr-cli/instance/list
(per_page default 100, max 500); https://www.vultr.com/api/#tag/load-balancer , #tag/vpcs .
"""

from __future__ import annotations

import base64
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from lightfold.errors import LightfoldError
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
from lightfold.providers.http import ApiClient, RetryPolicy, missing_ok

PROVIDER = "vultr"
PER_PAGE = 500
NO_IP = "0.0.0.0"
HEALTH = {"check_interval": 3, "response_timeout": 2, "healthy_threshold": 2, "unhealthy_threshold": 2}
_LB_STATUS = {"pending": "pending", "active": "active", "failed": "error"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class VInstance(_Model):
    id: str
    label: str = ""
    status: str  # pending | active | suspended | resizing
    power_status: str = ""  # running | stopped
    server_status: str = ""  # none | locked | installingbooting | ok
    main_ip: str = NO_IP
    tags: list[str] = []
    region: str | None = None
    plan: str | None = None
    os_id: int | None = None

    def common(self) -> Server:
        if self.status == "pending":
            status = "pending"
        elif self.status == "active" and self.power_status == "stopped":
            status = "off"
        elif self.status == "active":  # running, but reachable only once the install finished
            status = "running" if self.server_status in ("ok", "") else "pending"
        else:
            status = "unknown"
        shown = "/".join(s for s in (self.status, self.power_status, self.server_status) if s)
        return Server(
            id=self.id, name=self.label, status=status, provider_status=shown,
            ipv4=self.main_ip if self.main_ip and self.main_ip != NO_IP else None, tags=self.tags,
            region=self.region, size=self.plan, image=str(self.os_id) if self.os_id is not None else None,
        )


class VBalancer(_Model):
    id: str
    label: str = ""
    status: str
    ipv4: str = ""
    instances: list[str] = []

    def common(self) -> Balancer:
        return Balancer(id=self.id, name=self.label, status=_LB_STATUS.get(self.status, "unknown"),
                        provider_status=self.status, ip=self.ipv4 if self.ipv4 and self.ipv4 != NO_IP else None,
                        target_ids=list(self.instances))


def balancer_request(spec: BalancerSpec) -> dict[str, Any]:
    """The body of POST /v2/load-balancers for `spec`: HTTP 80 -> the instances' 80; with the
    target's domain, HTTPS 443 ending at the load balancer (Vultr's automatic certificate, the
    domain's zone at Vultr DNS) -> 80 and `ssl_redirect`. Vultr's health check takes a path only."""
    rules: list[dict[str, Any]] = [{"frontend_protocol": "http", "frontend_port": 80, "backend_protocol": "http",
                                    "backend_port": 80}]
    body: dict[str, Any] = {
        "region": spec.region, "label": spec.name, "balancing_algorithm": "roundrobin",
        "forwarding_rules": rules,
        "health_check": {"protocol": "http", "port": 80, "path": spec.health_path, **HEALTH},
        "instances": list(spec.target_ids),
    }
    if spec.domain:
        labels = spec.domain.split(".")
        auto: dict[str, str] = {"domain_zone": ".".join(labels[-2:])}
        if len(labels) > 2:
            auto["domain_sub"] = ".".join(labels[:-2])
        rules.append({"frontend_protocol": "https", "frontend_port": 443, "backend_protocol": "http",
                      "backend_port": 80})
        body.update(ssl_redirect=True, auto_ssl=auto)
    if spec.network_id:
        body["vpc"] = spec.network_id
    return body


class VKey(_Model):
    id: str
    name: str
    ssh_key: str

    def common(self) -> SshKey:
        return SshKey(id=self.id, name=self.name, public_key=self.ssh_key)


class VRegion(_Model):
    id: str
    city: str = ""
    country: str = ""


class VPlan(_Model):
    id: str
    vcpu_count: int = 0
    ram: int = 0
    disk: int = 0
    monthly_cost: float = 0
    locations: list[str] = []


class VOs(_Model):
    id: int
    name: str
    family: str = ""


def os_slug(name: str) -> str:
    """'debian-13-x64' from 'Debian 13 x64 (trixie)': lower case, no parenthesis, '-' for spaces."""
    return re.sub(r"[^a-z0-9.]+", "-", re.sub(r"\(.*?\)", "", name.lower())).strip("-")


def read_error(status: int, body: Any) -> tuple[str, str]:
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}
    code = codes.get(status, "server_error" if status >= 500 else "error")
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return code, body["error"] or "no message"
    return code, f"unexpected answer: {str(body)[:200]}"


class VultrClient(BaseClient):
    provider = PROVIDER

    def __init__(self, token: str, *, base: str | None = None, retry: RetryPolicy | None = None, poll: float = 1.0):
        super().__init__(ApiClient(PROVIDER, token, read_error, base=base, retry=retry), poll=poll)

    async def _all(self, path: str, key: str, params: dict | None = None) -> list[dict]:
        items: list[dict] = []
        cursor: str | None = None
        while True:
            body = await self.api.get(path, {**(params or {}), "per_page": PER_PAGE, "cursor": cursor})
            items.extend(body.get(key) or [])
            cursor = ((body.get("meta") or {}).get("links") or {}).get("next") or None
            if not cursor:
                return items

    async def validate_token(self) -> str:
        account = (await self.api.get("/account"))["account"]
        return str(account.get("email") or account.get("name") or "Vultr account")

    async def list_ssh_keys(self) -> list[SshKey]:
        return [VKey.model_validate(k).common() for k in await self._all("/ssh-keys", "ssh_keys")]

    async def create_ssh_key(self, name: str, public_key: str) -> SshKey:
        body = await self.api.post("/ssh-keys", {"name": name, "ssh_key": public_key})
        return VKey.model_validate(body["ssh_key"]).common()

    async def delete_ssh_key(self, key_id: str) -> None:
        await missing_ok(self.api.delete(f"/ssh-keys/{key_id}"))

    async def create_server(self, name: str, spec: ServerSpec, tags: list[str]) -> Server:
        body: dict[str, Any] = {
            "region": spec.region,
            "plan": spec.size,
            "os_id": await self.os_id(spec.image or ""),
            "label": name,
            "hostname": name,
            "sshkey_id": spec.ssh_key_ids,
            "tags": tags,
            "backups": "disabled",
            "enable_ipv6": False,
            "activation_email": False,
        }
        if spec.user_data:
            body["user_data"] = base64.b64encode(spec.user_data.encode()).decode()
        if spec.network_id:
            body["attach_vpc"] = [spec.network_id]
        answer = await self.api.post("/instances", body)
        return VInstance.model_validate(answer["instance"]).common()

    async def get_server(self, server_id: str) -> Server | None:
        body = await missing_ok(self.api.get(f"/instances/{server_id}"))
        return VInstance.model_validate(body["instance"]).common() if body else None

    async def list_servers(self, tag: str | None = None) -> list[Server]:
        params = {"tag": tag} if tag else None
        return [VInstance.model_validate(i).common() for i in await self._all("/instances", "instances", params)]

    async def delete_server(self, server_id: str) -> None:
        await missing_ok(self.api.delete(f"/instances/{server_id}"))

    async def list_regions(self) -> list[Choice]:
        regions = [VRegion.model_validate(r) for r in await self._all("/regions", "regions")]
        return [Choice(id=r.id, label=f"{r.city}, {r.country}".strip(", ")) for r in regions]

    async def list_sizes(self) -> list[Choice]:
        plans = [VPlan.model_validate(p) for p in await self._all("/plans", "plans")]
        return [
            Choice(id=p.id, label=f"{p.vcpu_count} vCPU, {p.ram} MB RAM, {p.disk} GB disk, ${p.monthly_cost:g}/mo",
                   regions=p.locations)
            for p in plans
        ]

    async def list_images(self) -> list[Choice]:
        systems = [VOs.model_validate(o) for o in await self._all("/os", "os")]
        return [Choice(id=str(o.id), label=o.name, aliases=[o.name, os_slug(o.name)]) for o in systems]

    async def os_id(self, image: str) -> int:
        """The os_id of `image`: an id as is, else the OS that name or slug names in /v2/os."""
        if image.isdigit():
            return int(image)
        for choice in await self.list_images():
            if image.lower() in (a.lower() for a in choice.aliases):
                return int(choice.id)
        raise LightfoldError(f"unknown Vultr image '{image}'", "use --image with an id or name from Vultr's OS list")

    # ---- private network and load balancer (`lightfold scale`)

    async def private_network(self, name: str, region: str, member_id: str, tag: str) -> Network:
        """The target's VPC (found by its description `tag`, else made in `region`), with the
        instance `member_id` attached to it."""
        vpc = next((v for v in await self._all("/vpcs", "vpcs") if v.get("description") == tag), None)
        if vpc is None:
            # no v4_subnet: Vultr picks a free private range for it
            vpc = (await self.api.post("/vpcs", {"region": region, "description": tag}))["vpc"]
        attached = await self._all(f"/instances/{member_id}/vpcs", "vpcs")
        if not any(v.get("id") == vpc["id"] for v in attached):
            await self.api.request("POST", f"/instances/{member_id}/vpcs/attach", json={"vpc_id": vpc["id"]},
                                   idempotent=True)
        return Network(id=vpc["id"], name=vpc.get("description") or name,
                       ip_range=f"{vpc['v4_subnet']}/{vpc['v4_subnet_mask']}")

    async def create_balancer(self, spec: BalancerSpec) -> Balancer:
        answer = await self.api.post("/load-balancers", balancer_request(spec))
        return VBalancer.model_validate(answer["load_balancer"]).common()

    async def get_balancer(self, balancer_id: str) -> Balancer | None:
        body = await missing_ok(self.api.get(f"/load-balancers/{balancer_id}"))
        return VBalancer.model_validate(body["load_balancer"]).common() if body else None

    async def find_balancer(self, name: str) -> Balancer | None:
        found = [VBalancer.model_validate(b).common() for b in await self._all("/load-balancers", "load_balancers")]
        return next((b for b in found if b.name == name), None)

    async def set_balancer_targets(self, balancer: Balancer, server_ids: list[str]) -> None:
        """PATCH with the complete list: Vultr attaches and detaches to match it."""
        await self.api.request("PATCH", f"/load-balancers/{balancer.id}", json={"instances": list(server_ids)},
                               idempotent=True)

    async def delete_balancer(self, balancer_id: str) -> None:
        await missing_ok(self.api.delete(f"/load-balancers/{balancer_id}"))

    async def managed_certificate(self, name: str, domain: str) -> str | None:
        """None: Vultr's automatic certificate is asked for in the load balancer's create (`auto_ssl`)."""
        return None


# ---- the provider as `lightfold create/destroy/status --provider vultr` sees it (see providers/__init__.py)

CLIENT = VultrClient
create, recover_address, destroy, server_state = cloud_target.target_api(PROVIDER)
(create_server, destroy_server, ensure_balancer, set_balancer_targets, wait_balancer_healthy, balancer_status,
 destroy_others) = cloud_scale.server_api(PROVIDER)
