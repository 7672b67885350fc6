"""A stateful fake of the Hetzner Cloud API (v1) for what lightfold uses, on aiohttp.web.

Shapes follow https://docs.hetzner.cloud/reference/cloud: servers (status initializing →
running after the VM backend booted it; public_net.ipv4 null until then), asynchronous actions
(create_server / delete_server: running → success|error), ssh_keys (unique name and key: 409
uniqueness_error), locations / server_types / images, label selectors, page/per_page pagination
with meta.pagination, RateLimit-* headers, and errors as {"error": {"code", "message", "details"}}.

Run standalone: `python -m tests.fakes.hetzner --port 0` (prints the base URL).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tests.fakes.base import FakeCloud, Invalid, check_fields, main

LOCATIONS = [
    {"id": 1, "name": "fsn1", "city": "Falkenstein", "country": "DE", "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "city": "Nuremberg", "country": "DE", "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "city": "Helsinki", "country": "FI", "network_zone": "eu-central"},
    {"id": 4, "name": "ash", "city": "Ashburn, VA", "country": "US", "network_zone": "us-east"},
    {"id": 5, "name": "hil", "city": "Hillsboro, OR", "country": "US", "network_zone": "us-west"},
]
EU = ["fsn1", "nbg1", "hel1"]
SERVER_TYPES = [
    # (id, name, cores, memory GB, disk GB, architecture, deprecated, locations)
    (1, "cx11", 1, 2, 20, "x86", True, EU),
    (22, "cx22", 2, 4, 40, "x86", False, EU),
    (23, "cx32", 4, 8, 80, "x86", False, EU),
    (45, "cax11", 2, 4, 40, "arm", False, EU),
    (90, "cpx11", 2, 2, 40, "x86", False, EU + ["ash", "hil"]),
]
IMAGES = [
    (310557660, "debian-13", "Debian 13", "x86"),
    (310557661, "debian-13", "Debian 13", "arm"),
    (114690387, "debian-12", "Debian 12", "x86"),
    (114690389, "debian-12", "Debian 12", "arm"),
    (67794396, "debian-11", "Debian 11", "x86"),
    (161547269, "ubuntu-24.04", "Ubuntu 24.04", "x86"),
]
NAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9A-Z]([a-z0-9A-Z._-]*[a-z0-9A-Z])?)?$")
USER_DATA_MAX = 32 * 1024


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _server_type(t: tuple) -> dict:
    tid, name, cores, memory, disk, arch, deprecated, locs = t
    return {
        "id": tid, "name": name, "description": name.upper(), "cores": cores, "memory": memory, "disk": disk,
        "architecture": arch, "cpu_type": "shared", "storage_type": "local", "deprecated": deprecated,
        "deprecation": {"announced": "2024-06-06T06:00:00+00:00"} if deprecated else None,
        "prices": [{"location": loc, "price_hourly": {"net": "0.0060", "gross": "0.0071"},
                    "price_monthly": {"net": "3.7900", "gross": "4.5101"}} for loc in locs],
    }


def _image(i: tuple) -> dict:
    iid, name, desc, arch = i
    return {"id": iid, "type": "system", "status": "available", "name": name, "description": desc,
            "architecture": arch, "os_flavor": name.split("-")[0], "os_version": name.split("-")[1],
            "rapid_deploy": True, "labels": {}, "deprecated": None, "created": "2023-06-13T06:00:00+00:00"}


class FakeHetzner(FakeCloud):
    provider = "hetzner"
    prefix = "/v1"
    default_per_page = 25
    max_per_page = 50

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.actions: dict[int, dict] = {}

    # ---- shapes

    def error(self, status: int, code: str, message: str, headers: dict | None = None,
              details: dict | None = None) -> web.Response:
        body = {"error": {"code": code, "message": message, "details": details or {}}}
        return web.json_response(body, status=status, headers=headers)

    def fault_words(self, status: int) -> tuple[str, str]:
        return {
            401: ("unauthorized", "unable to authenticate"),
            403: ("forbidden", "insufficient permissions for this request"),
            404: ("not_found", "resource not found"),
            429: ("rate_limit_exceeded", "limit of 3600 requests per hour reached"),
            503: ("unavailable", "service temporarily unavailable"),
        }.get(status, ("server_error", "an internal error occurred"))

    def invalid(self, e: Invalid) -> web.Response:
        details = {"fields": [{"name": e.field, "messages": [e.message]}]} if e.field else {}
        return self.error(400, "invalid_input", f"invalid input in field '{e.field}'" if e.field else e.message,
                          details=details)

    def rate_headers(self) -> dict[str, str]:
        remaining = 3600 - min(3600, len(self.requests))
        return {"RateLimit-Limit": "3600", "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(int(time.time()) + 3600 - remaining)}

    def paginate(self, request: web.Request, key: str, items: list[dict]) -> web.Response:
        page, per_page = self.page_bounds(request)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        meta = {"pagination": {"page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
                               "next_page": page + 1 if page < last else None, "last_page": last,
                               "total_entries": len(items)}}
        return web.json_response({key: [self.public(i) for i in chunk], "meta": meta})

    def new_action(self, command: str, resource_id: int, resource_type: str = "server") -> dict:
        action = {"id": self.new_id(), "command": command, "status": "running", "progress": 0, "started": _now(),
                  "finished": None, "resources": [{"id": resource_id, "type": resource_type}], "error": None}
        self.actions[action["id"]] = action
        return action

    @staticmethod
    def finish(action: dict, ok: bool, message: str = "") -> None:
        action.update(status="success" if ok else "error", progress=100, finished=_now())
        if not ok:
            action["error"] = {"code": "action_failed", "message": message or "Action failed"}

    def mark_running(self, server: dict, ip: str) -> None:
        server["status"] = "running"
        server["public_net"]["ipv4"] = {"id": self.new_id(), "ip": ip, "blocked": False,
                                        "dns_ptr": f"static.{ip}.clients.your-server.de"}

    def server_ip(self, server: dict) -> str | None:
        return (server["public_net"]["ipv4"] or {}).get("ip")

    def mark_failed(self, server: dict, reason: str) -> None:
        server["status"] = "off"
        server["_boot_error"] = reason

    # ---- routes

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/servers", self.list_servers),
            web.post(f"{p}/servers", self.create_server),
            web.get(f"{p}/servers/{{id}}", self.get_server),
            web.delete(f"{p}/servers/{{id}}", self.delete_server),
            web.get(f"{p}/actions/{{id}}", self.get_action),
            web.get(f"{p}/ssh_keys", self.list_keys),
            web.post(f"{p}/ssh_keys", self.create_key),
            web.delete(f"{p}/ssh_keys/{{id}}", self.delete_key),
            web.get(f"{p}/locations", self.list_locations),
            web.get(f"{p}/server_types", self.list_server_types),
            web.get(f"{p}/images", self.list_images),
        ]

    def _server(self, request: web.Request) -> dict:
        server = self.servers.get(request.match_info["id"])
        if server is None:
            raise web.HTTPNotFound()
        return server

    async def list_servers(self, request: web.Request) -> web.Response:
        items = list(self.servers.values())
        if "label_selector" in request.query:
            items = [s for s in items if _selects(request.query["label_selector"], s["labels"])]
        if "name" in request.query:
            items = [s for s in items if s["name"] == request.query["name"]]
        return self.paginate(request, "servers", items)

    async def get_server(self, request: web.Request) -> web.Response:
        return web.json_response({"server": self.public(self._server(request))})

    async def create_server(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "server_type": ((str, int), True), "image": ((str, int), True),
            "location": (str, False), "datacenter": (str, False), "ssh_keys": (("list", (str, int)), False),
            "user_data": (str, False), "labels": (("map", str), False), "start_after_create": (bool, False),
            "automount": (bool, False), "networks": (("list", int), False), "volumes": (("list", int), False),
        })
        if not NAME.match(body["name"]):
            raise Invalid("name must be a valid hostname", "name")
        stype = next((_server_type(t) for t in SERVER_TYPES if body["server_type"] in (t[0], t[1])), None)
        if stype is None:
            raise Invalid(f"server type {body['server_type']!r} not found", "server_type")
        location = body.get("location") or "fsn1"
        loc = next((x for x in LOCATIONS if x["name"] == location), None)
        if loc is None:
            raise Invalid(f"location {location!r} not found", "location")
        image = next((_image(i) for i in IMAGES if body["image"] in (i[0], i[1]) and i[3] == stype["architecture"]),
                     None)
        if image is None:
            raise Invalid(f"image {body['image']!r} not found", "image")
        if location not in [pr["location"] for pr in stype["prices"]]:
            return self.error(412, "resource_unavailable", f"server type {stype['name']} unavailable in {location}")
        if len((body.get("user_data") or "").encode()) > USER_DATA_MAX:
            raise Invalid("user_data is longer than 32 KiB", "user_data")
        labels = body.get("labels") or {}
        if not all(LABEL_KEY.match(k.split("/")[-1]) for k in labels):
            raise Invalid("invalid label key", "labels")
        keys = []
        for ref in body.get("ssh_keys") or []:
            key = next((k for k in self.ssh_keys.values() if ref in (k["id"], k["name"], str(k["id"]))), None)
            if key is None:
                raise Invalid(f"ssh key {ref!r} not found", "ssh_keys")
            keys.append(key["public_key"])
        if any(s["name"] == body["name"] for s in self.servers.values()):
            return self.error(409, "uniqueness_error", "server name is already used",
                              details={"fields": [{"name": "name"}]})
        sid = self.new_id()
        server = {
            "id": sid, "name": body["name"], "status": "initializing", "created": _now(),
            "public_net": {"ipv4": None, "ipv6": None, "floating_ips": [], "firewalls": []},
            "private_net": [], "server_type": stype,
            "datacenter": {"id": loc["id"], "name": f"{location}-dc3", "location": loc},
            "image": image, "iso": None, "rescue_enabled": False, "locked": False, "backup_window": None,
            "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520,
            "protection": {"delete": False, "rebuild": False}, "labels": labels, "volumes": [],
            "load_balancers": [], "primary_disk_size": stype["disk"], "placement_group": None,
            "_user_data": body.get("user_data"), "_ssh_keys": keys,
        }
        self.servers[str(sid)] = server
        action = self.new_action("create_server", sid)
        start = self.new_action("start_server", sid)
        self.boot_later(server, body["name"], body.get("user_data"),
                        lambda ok: (self.finish(action, ok), self.finish(start, ok)), image=image["name"])
        await self.maybe_hang()
        return web.json_response({"server": self.public(server), "action": action, "next_actions": [start],
                                  "root_password": None}, status=201)

    async def delete_server(self, request: web.Request) -> web.Response:
        server = self._server(request)
        server["status"] = "deleting"
        action = self.new_action("delete_server", server["id"])

        def gone() -> None:
            self.servers.pop(str(server["id"]), None)
            self.finish(action, True)

        self.destroy_later(server, gone)
        return web.json_response({"action": action})

    async def get_action(self, request: web.Request) -> web.Response:
        action = self.actions.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        if action is None:
            raise web.HTTPNotFound()
        return web.json_response({"action": action})

    async def list_keys(self, request: web.Request) -> web.Response:
        items = list(self.ssh_keys.values())
        for field in ("name", "fingerprint"):
            if field in request.query:
                items = [k for k in items if k[field] == request.query[field]]
        return self.paginate(request, "ssh_keys", items)

    async def create_key(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "public_key": (str, True), "labels": (("map", str), False)})
        fingerprint = _fingerprint(body["public_key"])
        blob = body["public_key"].split()[:2]
        for k in self.ssh_keys.values():
            if k["name"] == body["name"] or k["public_key"].split()[:2] == blob:
                field = "name" if k["name"] == body["name"] else "public_key"
                return self.error(409, "uniqueness_error", "SSH key with the same fingerprint already exists"
                                  if field == "public_key" else "SSH key name is already used",
                                  details={"fields": [{"name": field}]})
        kid = self.new_id()
        key = {"id": kid, "name": body["name"], "fingerprint": fingerprint, "public_key": body["public_key"],
               "labels": body.get("labels") or {}, "created": _now()}
        self.ssh_keys[str(kid)] = key
        return web.json_response({"ssh_key": key}, status=201)

    async def delete_key(self, request: web.Request) -> web.Response:
        if self.ssh_keys.pop(request.match_info["id"], None) is None:
            raise web.HTTPNotFound()
        return web.Response(status=204)

    async def list_locations(self, request: web.Request) -> web.Response:
        return self.paginate(request, "locations", LOCATIONS)

    async def list_server_types(self, request: web.Request) -> web.Response:
        return self.paginate(request, "server_types", [_server_type(t) for t in SERVER_TYPES])

    async def list_images(self, request: web.Request) -> web.Response:
        items = [_image(i) for i in IMAGES]
        if "type" in request.query:
            items = [i for i in items if i["type"] == request.query["type"]]
        if "architecture" in request.query:
            items = [i for i in items if i["architecture"] == request.query["architecture"]]
        return self.paginate(request, "images", items)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as e:
        raise Invalid("request body is not valid JSON") from e


def _fingerprint(public_key: str) -> str:
    parts = public_key.split()
    try:
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
            raise ValueError
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as e:
        raise Invalid("invalid public key", "public_key") from e
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """Hetzner label selector subset: k, !k, k=v, k==v, k!=v, joined by commas (AND)."""
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            k, v = term.split("!=", 1)
            ok = labels.get(k) != v
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            ok = labels.get(k) == v
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


if __name__ == "__main__":
    main(FakeHetzner)
