"""A stateful fake of the Hetzner Cloud API (v1) for what lightfold uses, on aiohttp.web.

Shapes follow https://docs.hetzner.cloud/reference/cloud: servers (status initializing →
running after the VM backend booted it; public_net.ipv4 null until then), asynchronous actions
(create_server / delete_server: running → success|error), ssh_keys (unique name and key: 409
uniqueness_error), locations / server_types / images, label selectors, page/per_page pagination
with meta.pagination, RateLimit-* headers, and errors as {"error": {"code", "message", "details"}}.
For `lightfold scale`: networks (a server joins by `networks` at create or the
`attach_to_network` action; its private_net address is its sandbox machine's), load_balancers
(create: 201 with a `create_load_balancer` action that succeeds once its HAProxy machine carries
traffic, see base.py; `add_target` / `remove_target` actions; each target's `health_status` is
HAProxy's check; private_net holds the machine's address, the source of its requests) and
certificates (`managed`: issuance pending).

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
        for net in server["private_net"]:
            net["ip"] = ip

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
            web.post(f"{p}/servers/{{id}}/actions/attach_to_network", self.attach_to_network),
            web.get(f"{p}/networks", self.list_networks),
            web.post(f"{p}/networks", self.create_network),
            web.get(f"{p}/load_balancers", self.list_lbs),
            web.post(f"{p}/load_balancers", self.create_lb),
            web.get(f"{p}/load_balancers/{{id}}", self.get_lb),
            web.delete(f"{p}/load_balancers/{{id}}", self.delete_lb),
            web.post(f"{p}/load_balancers/{{id}}/actions/add_target", self.add_target),
            web.post(f"{p}/load_balancers/{{id}}/actions/remove_target", self.remove_target),
            web.get(f"{p}/certificates", self.list_certificates),
            web.post(f"{p}/certificates", self.create_certificate),
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
        for nid in body.get("networks") or []:
            if str(nid) not in self.networks:
                raise Invalid(f"network {nid} not found", "networks")
        sid = self.new_id()
        server = {
            "id": sid, "name": body["name"], "status": "initializing", "created": _now(),
            "public_net": {"ipv4": None, "ipv6": None, "floating_ips": [], "firewalls": []},
            "private_net": [{"network": nid, "ip": "", "alias_ips": [], "mac_address": "86:00:00:2a:7d:e0"}
                            for nid in body.get("networks") or []], "server_type": stype,
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

    # ---- networks, load balancers, certificates

    async def list_networks(self, request: web.Request) -> web.Response:
        items = list(self.networks.values())
        if "label_selector" in request.query:
            items = [n for n in items if _selects(request.query["label_selector"], n["labels"])]
        if "name" in request.query:
            items = [n for n in items if n["name"] == request.query["name"]]
        return self.paginate(request, "networks", items)

    async def create_network(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "ip_range": (str, True), "subnets": (("list", dict), False),
            "labels": (("map", str), False), "routes": (("list", dict), False),
            "expose_routes_to_vswitch": (bool, False)})
        if any(n["name"] == body["name"] for n in self.networks.values()):
            return self.error(409, "uniqueness_error", "network name is already used",
                              details={"fields": [{"name": "name"}]})
        subnets = []
        for sub in body.get("subnets") or []:
            check_fields(sub, {"type": (str, True), "network_zone": (str, True), "ip_range": (str, False)})
            subnets.append({"gateway": "10.0.0.1", "ip_range": sub.get("ip_range") or body["ip_range"], **sub})
        nid = self.new_id()
        net = {"id": nid, "name": body["name"], "ip_range": body["ip_range"], "subnets": subnets, "routes": [],
               "servers": [], "load_balancers": [], "protection": {"delete": False},
               "labels": body.get("labels") or {}, "created": _now(), "expose_routes_to_vswitch": False}
        self.networks[str(nid)] = net
        return web.json_response({"network": net}, status=201)

    async def attach_to_network(self, request: web.Request) -> web.Response:
        server = self._server(request)
        body = check_fields(await _json(request), {"network": (int, True), "ip": (str, False),
                                                   "alias_ips": (("list", str), False)})
        if str(body["network"]) not in self.networks:
            raise Invalid(f"network {body['network']} not found", "network")
        if any(p["network"] == body["network"] for p in server["private_net"]):
            return self.error(422, "server_already_attached", "server is already attached to this network")
        server["private_net"].append({"network": body["network"], "ip": self.server_ip(server) or "",
                                      "alias_ips": [], "mac_address": "86:00:00:2a:7d:e1"})
        action = self.new_action("attach_to_network", server["id"])
        self.finish(action, True)
        return web.json_response({"action": action}, status=201)

    def balancer_backends(self, balancer: dict) -> list[tuple[str, str]]:
        found = []
        for t in balancer["targets"]:
            server = self.servers.get(str(t["server"]["id"]))
            if server is None:
                continue
            ip = (next((p["ip"] for p in server["private_net"] if p["network"] in
                        [n["network"] for n in balancer["private_net"]]), None)
                  if t.get("use_private_ip") else self.server_ip(server))
            if ip:
                found.append((f"s{server['id']}", ip))
        return found

    def balancer_check(self, balancer: dict) -> tuple[str, str | None]:
        check = balancer["services"][0]["health_check"] if balancer["services"] else {}
        http = check.get("http") or {}
        return http.get("path") or "/", http.get("domain") or None

    def balancer_running(self, balancer: dict, ip: str) -> None:
        balancer["public_net"]["ipv4"] = {"ip": ip, "dns_ptr": f"static.{ip}.clients.your-server.de"}
        for net in balancer["private_net"]:
            net["ip"] = ip  # the machine's address is the source of the load balancer's requests

    def _lb(self, request: web.Request) -> dict:
        balancer = self.balancers.get(request.match_info["id"])
        if balancer is None:
            raise web.HTTPNotFound()
        return balancer

    async def _lb_view(self, balancer: dict) -> dict:
        """The record as the API shows it: each target's health_status from HAProxy's checks."""
        view = self.public(balancer)
        health = await self.balancer_health(balancer)
        view["targets"] = [{**t, "health_status": [
            {"listen_port": svc["listen_port"],
             "status": "unknown" if f"s{t['server']['id']}" not in health
             else "healthy" if health[f"s{t['server']['id']}"] else "unhealthy"}
            for svc in balancer["services"]]} for t in balancer["targets"]]
        return view

    async def list_lbs(self, request: web.Request) -> web.Response:
        items = list(self.balancers.values())
        if "name" in request.query:
            items = [b for b in items if b["name"] == request.query["name"]]
        if "label_selector" in request.query:
            items = [b for b in items if _selects(request.query["label_selector"], b["labels"])]
        page, per_page = self.page_bounds(request)
        chunk = items[(page - 1) * per_page: page * per_page]
        last = max(1, -(-len(items) // per_page))
        meta = {"pagination": {"page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
                               "next_page": page + 1 if page < last else None, "last_page": last,
                               "total_entries": len(items)}}
        return web.json_response({"load_balancers": [await self._lb_view(b) for b in chunk], "meta": meta})

    async def get_lb(self, request: web.Request) -> web.Response:
        return web.json_response({"load_balancer": await self._lb_view(self._lb(request))})

    def _target(self, body: dict) -> dict:
        check_fields(body, {"type": (str, True), "server": (dict, False), "use_private_ip": (bool, False),
                            "label_selector": (dict, False), "ip": (dict, False)})
        if body["type"] != "server":
            raise Invalid("only server targets are supported here", "type")
        sid = (body.get("server") or {}).get("id")
        if not isinstance(sid, int) or str(sid) not in self.servers:
            raise Invalid(f"server {sid!r} not found", "server")
        return {"type": "server", "server": {"id": sid}, "use_private_ip": bool(body.get("use_private_ip"))}

    def _check_private(self, balancer: dict, target: dict) -> None:
        if not target["use_private_ip"]:
            return
        server = self.servers[str(target["server"]["id"])]
        if not {p["network"] for p in server["private_net"]} & {n["network"] for n in balancer["private_net"]}:
            raise Invalid("server and load balancer are not in the same network", "use_private_ip")

    async def create_lb(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "load_balancer_type": ((str, int), True), "location": (str, False),
            "network_zone": (str, False), "algorithm": (dict, False), "labels": (("map", str), False),
            "network": (int, False), "public_interface": (bool, False), "services": (("list", dict), False),
            "targets": (("list", dict), False)})
        if not NAME.match(body["name"]):
            raise Invalid("name must be a valid hostname", "name")
        if any(b["name"] == body["name"] for b in self.balancers.values()):
            return self.error(409, "uniqueness_error", "load balancer name is already used",
                              details={"fields": [{"name": "name"}]})
        if body["load_balancer_type"] not in ("lb11", "lb21", "lb31", 1, 2, 3):
            raise Invalid(f"load balancer type {body['load_balancer_type']!r} not found", "load_balancer_type")
        location = body.get("location") or "fsn1"
        loc = next((x for x in LOCATIONS if x["name"] == location), None)
        if loc is None:
            raise Invalid(f"location {location!r} not found", "location")
        if body.get("network") is not None and str(body["network"]) not in self.networks:
            raise Invalid(f"network {body['network']} not found", "network")
        services = []
        for svc in body.get("services") or []:
            check_fields(svc, {"protocol": (str, True), "listen_port": (int, False), "destination_port": (int, False),
                               "proxyprotocol": (bool, True), "health_check": (dict, False), "http": (dict, False)})
            if svc["protocol"] not in ("tcp", "http", "https"):
                raise Invalid("protocol must be tcp, http or https", "services")
            if svc["protocol"] == "https":
                certs = (svc.get("http") or {}).get("certificates") or []
                if not certs or any(str(c) not in self.certificates for c in certs):
                    raise Invalid("an https service needs existing certificates", "services")
            check = svc.get("health_check") or {"protocol": "tcp", "port": svc.get("destination_port") or 80,
                                                "interval": 15, "timeout": 10, "retries": 3}
            check_fields(check, {"protocol": (str, True), "port": (int, True), "interval": (int, True),
                                 "timeout": (int, True), "retries": (int, True), "http": (dict, False)})
            services.append({"listen_port": 80, "destination_port": 80, "http": None, **svc, "health_check": check})
        balancer = {
            "id": self.new_id(), "name": body["name"], "created": _now(),
            "public_net": {"enabled": body.get("public_interface", True), "ipv4": None, "ipv6": None},
            "private_net": [{"network": body["network"], "ip": ""}] if body.get("network") is not None else [],
            "location": loc, "load_balancer_type": {"name": str(body["load_balancer_type"])},
            "protection": {"delete": False}, "labels": body.get("labels") or {},
            "algorithm": body.get("algorithm") or {"type": "round_robin"}, "services": services, "targets": [],
            "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520,
        }
        for t in body.get("targets") or []:
            target = self._target(t)
            self._check_private(balancer, target)
            balancer["targets"].append(target)
        self.balancers[str(balancer["id"])] = balancer
        action = self.new_action("create_load_balancer", balancer["id"], "load_balancer")
        self.balancer_up_later(balancer, lambda ok: self.finish(action, ok))
        await self.maybe_hang()
        return web.json_response({"load_balancer": self.public(balancer), "action": action}, status=201)

    async def _change_target(self, request: web.Request, add: bool) -> web.Response:
        balancer = self._lb(request)
        target = self._target(await _json(request))
        present = [t for t in balancer["targets"] if t["server"]["id"] == target["server"]["id"]]
        if add and present:
            return self.error(422, "target_already_defined", "target is already defined")
        if not add and not present:
            return self.error(422, "load_balancer_target_not_found", "target not found")
        if add:
            self._check_private(balancer, target)
            balancer["targets"].append(target)
        else:
            balancer["targets"].remove(present[0])
        action = self.new_action("add_target" if add else "remove_target", balancer["id"], "load_balancer")
        await self.apply_balancer(balancer)
        self.finish(action, True)
        return web.json_response({"action": action}, status=201)

    async def add_target(self, request: web.Request) -> web.Response:
        return await self._change_target(request, True)

    async def remove_target(self, request: web.Request) -> web.Response:
        return await self._change_target(request, False)

    async def delete_lb(self, request: web.Request) -> web.Response:
        balancer = self._lb(request)
        del self.balancers[str(balancer["id"])]
        self.destroy_balancer_later(balancer)
        return web.Response(status=204)

    async def list_certificates(self, request: web.Request) -> web.Response:
        items = list(self.certificates.values())
        if "name" in request.query:
            items = [c for c in items if c["name"] == request.query["name"]]
        return self.paginate(request, "certificates", items)

    async def create_certificate(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "type": (str, False), "domain_names": (("list", str), False),
            "certificate": (str, False), "private_key": (str, False), "labels": (("map", str), False)})
        if (body.get("type") or "uploaded") == "managed" and not body.get("domain_names"):
            raise Invalid("domain_names is required for a managed certificate", "domain_names")
        cid = self.new_id()
        cert = {"id": cid, "name": body["name"], "type": body.get("type") or "uploaded",
                "domain_names": body.get("domain_names") or [], "labels": body.get("labels") or {},
                "created": _now(), "certificate": None, "not_valid_before": None, "not_valid_after": None,
                "fingerprint": None, "status": {"issuance": "pending", "renewal": "unavailable", "error": None},
                "used_by": []}
        self.certificates[str(cid)] = cert
        action = self.new_action("create_certificate", cid, "certificate")
        self.finish(action, True)
        return web.json_response({"certificate": cert, "action": action}, status=201)


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
