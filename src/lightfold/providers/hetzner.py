"""Thin async client for the Hetzner Cloud API (v1): only what lightfold uses.

Endpoints: servers (create/get/list by label/delete), ssh_keys, actions, locations, server_types,
images. Tags are labels with an empty value (`{"lf-app-1a2b3c4d": ""}`), listed with
`label_selector=<tag>`. Auth: `Authorization: Bearer $HCLOUD_TOKEN`. Errors:
`{"error": {"code": "...", "message": "...", "details": {...}}}`. Pagination: `page`/`per_page`
(max 50) with `meta.pagination.next_page`. Rate limit: 429 `rate_limit_exceeded`, headers
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (Unix time).

Reference: https://docs.hetzner.cloud/reference/cloud (sections Servers, SSH Keys, Actions,
Locations, Server Types, Images; Errors, Pagination, Rate Limiting, Label Selector).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from lightfold.providers import cloud_target
from lightfold.providers.cloud_client import BaseClient, Choice, Server, ServerSpec, SshKey
from lightfold.providers.http import ApiClient, ProviderError, RetryPolicy, missing_ok

PROVIDER = "hetzner"
PER_PAGE = 50
ACTION_TIMEOUT = 300.0

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



# ---- the provider as `lightfold create/destroy/status --provider hetzner` sees it (see providers/__init__.py)

CLIENT = HetznerClient
create, recover_address, destroy, server_state = cloud_target.target_api(PROVIDER)
