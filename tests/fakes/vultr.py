"""A stateful fake of the Vultr API (v2) for what lightfold uses, on aiohttp.web.

Shapes follow https://www.vultr.com/api/ : instances (202 on create with status `pending` and
main_ip "0.0.0.0"; once the VM backend booted it: `active`/`running` with its IP and
server_status `installingbooting`, then `ok`), base64 user_data, ssh-keys, account, regions /
plans / os, `tag` filter, cursor pagination (per_page, meta.links.next, meta.total), 429 without a
wait header, and errors as {"error": "...", "status": N} (400 for a bad request body). For
`lightfold scale`: vpcs (a subnet chosen when none is given: the sandbox machines' range), an
instance's vpcs (attach at create by `attach_vpc`, or `vpcs/attach`; its VPC address is its
sandbox machine's), load-balancers (202 with status `pending` and ipv4 ""; `active` with the
address of its HAProxy machine once that carries traffic, see base.py; PATCH `instances` with
the complete list attaches and detaches to match).

Run standalone: `python -m tests.fakes.vultr --port 0` (prints the base URL).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tests.fakes.base import FakeCloud, Invalid, check_fields, main

REGIONS = [
    ("ewr", "New Jersey", "US", "North America"), ("ord", "Chicago", "US", "North America"),
    ("lax", "Los Angeles", "US", "North America"), ("ams", "Amsterdam", "NL", "Europe"),
    ("fra", "Frankfurt", "DE", "Europe"), ("sgp", "Singapore", "SG", "Asia"),
]
ALL = [r[0] for r in REGIONS]
PLANS = [
    # id, vcpus, ram MB, disk GB, $/month, locations
    ("vc2-1c-0.5gb", 1, 512, 10, 2.5, ["ewr", "ord"]),
    ("vc2-1c-1gb", 1, 1024, 25, 5, ALL),
    ("vc2-1c-2gb", 1, 2048, 55, 10, ALL),
    ("vhf-1c-1gb", 1, 1024, 32, 6, ["ewr", "ams", "fra"]),
]
OS = [
    (2625, "Debian 13 x64 (trixie)", "x64", "debian"),
    (2136, "Debian 12 x64 (bookworm)", "x64", "debian"),
    (477, "Debian 11 x64 (bullseye)", "x64", "debian"),
    (2284, "Ubuntu 24.04 LTS x64", "x64", "ubuntu"),
]
PAGE_CURSOR = "next__"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class FakeVultr(FakeCloud):
    provider = "vultr"
    prefix = "/v2"
    default_per_page = 100
    max_per_page = 500

    # ---- shapes

    def error(self, status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
        return web.json_response({"error": message, "status": status}, status=status, headers=headers)

    def fault_words(self, status: int) -> tuple[str, str]:
        return {
            401: ("unauthorized", "Invalid API token."),
            403: ("forbidden", "Unauthorized IP address."),
            404: ("not_found", "Not found."),
            429: ("rate_limited", "Rate limit reached - please try your request again later."),
        }.get(status, ("server_error", "Internal server error."))

    def invalid(self, e: Invalid) -> web.Response:
        return self.error(400, "bad_request", e.message)

    def paginate(self, request: web.Request, key: str, items: list[dict]) -> web.Response:
        _page, per_page = self.page_bounds(request)
        cursor = request.query.get("cursor") or ""
        try:
            start = int(base64.b64decode(cursor).decode().removeprefix(PAGE_CURSOR)) if cursor else 0
        except (ValueError, binascii.Error) as e:
            raise Invalid("Invalid cursor.") from e

        def at(offset: int) -> str:
            return base64.b64encode(f"{PAGE_CURSOR}{offset}".encode()).decode()

        chunk = items[start:start + per_page]
        links = {"next": at(start + per_page) if start + per_page < len(items) else "",
                 "prev": at(max(0, start - per_page)) if start > 0 else ""}
        return web.json_response({key: [self.public(i) for i in chunk],
                                  "meta": {"total": len(items), "links": links}})

    def mark_running(self, server: dict, ip: str) -> None:
        server.update(status="active", power_status="running", server_status="installingbooting", main_ip=ip,
                      netmask_v4="255.255.254.0", gateway_v4=ip.rsplit(".", 1)[0] + ".1")

        async def settle() -> None:
            await asyncio.sleep(self.boot_delay / 2)
            if server.get("status") == "active":
                server["server_status"] = "ok"

        self.spawn(settle())

    def server_ip(self, server: dict) -> str | None:
        return None if server["main_ip"] == "0.0.0.0" else server["main_ip"]

    def mark_failed(self, server: dict, reason: str) -> None:
        server.update(status="active", power_status="stopped", server_status="none", _boot_error=reason)

    # ---- routes

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/account", self.account),
            web.get(f"{p}/ssh-keys", self.list_keys),
            web.post(f"{p}/ssh-keys", self.create_key),
            web.delete(f"{p}/ssh-keys/{{id}}", self.delete_key),
            web.get(f"{p}/instances", self.list_instances),
            web.post(f"{p}/instances", self.create_instance),
            web.get(f"{p}/instances/{{id}}", self.get_instance),
            web.delete(f"{p}/instances/{{id}}", self.delete_instance),
            web.get(f"{p}/regions", self.list_regions),
            web.get(f"{p}/plans", self.list_plans),
            web.get(f"{p}/os", self.list_os),
            web.get(f"{p}/vpcs", self.list_vpcs),
            web.post(f"{p}/vpcs", self.create_vpc),
            web.get(f"{p}/instances/{{id}}/vpcs", self.instance_vpcs),
            web.post(f"{p}/instances/{{id}}/vpcs/attach", self.attach_vpc),
            web.get(f"{p}/load-balancers", self.list_lbs),
            web.post(f"{p}/load-balancers", self.create_lb),
            web.get(f"{p}/load-balancers/{{id}}", self.get_lb),
            web.patch(f"{p}/load-balancers/{{id}}", self.update_lb),
            web.delete(f"{p}/load-balancers/{{id}}", self.delete_lb),
        ]

    async def account(self, request: web.Request) -> web.Response:
        return web.json_response({"account": {
            "name": "Example Account", "email": "admin@example.com", "acls": ["manage_users", "subscriptions"],
            "balance": -5519.11, "pending_charges": 57.03, "last_payment_date": "2020-10-10T01:56:20+00:00",
            "last_payment_amount": -1}})

    async def list_keys(self, request: web.Request) -> web.Response:
        return self.paginate(request, "ssh_keys", list(self.ssh_keys.values()))

    async def create_key(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {"name": (str, True), "ssh_key": (str, True)})
        parts = body["ssh_key"].split()
        try:
            if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
                raise ValueError
            base64.b64decode(parts[1], validate=True)
        except (ValueError, binascii.Error) as e:
            raise Invalid("Invalid SSH key.") from e
        key = {"id": str(uuid.uuid4()), "date_created": _now(), "name": body["name"], "ssh_key": body["ssh_key"]}
        self.ssh_keys[key["id"]] = key
        return web.json_response({"ssh_key": key}, status=201)

    async def delete_key(self, request: web.Request) -> web.Response:
        if self.ssh_keys.pop(request.match_info["id"], None) is None:
            raise web.HTTPNotFound()
        return web.Response(status=204)

    def _instance(self, request: web.Request) -> dict:
        inst = self.servers.get(request.match_info["id"])
        if inst is None:
            raise web.HTTPNotFound()
        return inst

    async def list_instances(self, request: web.Request) -> web.Response:
        items = list(self.servers.values())
        for field in ("label", "region", "main_ip"):
            if field in request.query:
                items = [i for i in items if i[field] == request.query[field]]
        if "tag" in request.query:
            items = [i for i in items if request.query["tag"] in i["tags"]]
        return self.paginate(request, "instances", items)

    async def get_instance(self, request: web.Request) -> web.Response:
        return web.json_response({"instance": self.public(self._instance(request))})

    async def create_instance(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "region": (str, True), "plan": (str, True), "os_id": (int, False), "iso_id": (str, False),
            "snapshot_id": (str, False), "app_id": (int, False), "image_id": (str, False), "label": (str, False),
            "hostname": (str, False), "sshkey_id": (("list", str), False), "user_data": (str, False),
            "tags": (("list", str), False), "backups": (str, False), "enable_ipv6": (bool, False),
            "activation_email": (bool, False), "disable_public_ipv4": (bool, False),
            "attach_vpc": (("list", str), False),
        })
        for vid in body.get("attach_vpc") or []:
            if vid not in self.networks or self.networks[vid]["region"] != body["region"]:
                raise Invalid(f"Invalid VPC: {vid}")
        if not any(body.get(f) for f in ("os_id", "iso_id", "snapshot_id", "app_id", "image_id")):
            raise Invalid("Invalid OS. One of os_id, iso_id, snapshot_id, app_id or image_id is required.")
        if body["region"] not in ALL:
            raise Invalid("Invalid region.")
        plan = next((p for p in PLANS if p[0] == body["plan"]), None)
        if plan is None:
            raise Invalid("Invalid plan.")
        if body["region"] not in plan[5]:
            raise Invalid("Plan is not available in the selected region.")
        os_ = next((o for o in OS if o[0] == body.get("os_id")), None)
        if os_ is None:
            raise Invalid("Invalid os_id.")
        if body.get("backups") not in (None, "enabled", "disabled"):
            raise Invalid("Invalid backups option.")
        user_data = None
        if body.get("user_data"):
            try:
                user_data = base64.b64decode(body["user_data"], validate=True).decode()
            except (ValueError, binascii.Error, UnicodeDecodeError) as e:
                raise Invalid("user_data must be base64 encoded.") from e
        keys = []
        for kid in body.get("sshkey_id") or []:
            if kid not in self.ssh_keys:
                raise Invalid(f"Invalid SSH key: {kid}")
            keys.append(self.ssh_keys[kid]["ssh_key"])
        iid = str(uuid.uuid4())
        label = body.get("label") or ""
        inst = {
            "id": iid, "os": os_[1], "ram": plan[2], "disk": plan[3], "main_ip": "0.0.0.0", "vcpu_count": plan[1],
            "region": body["region"], "plan": plan[0], "date_created": _now(), "status": "pending",
            "allowed_bandwidth": 1000, "netmask_v4": "", "gateway_v4": "0.0.0.0", "power_status": "stopped",
            "server_status": "none", "v6_network": "", "v6_main_ip": "", "v6_network_size": 0, "label": label,
            "internal_ip": "", "kvm": "", "hostname": body.get("hostname") or label or f"vultr-guest-{iid[:8]}",
            "tags": list(dict.fromkeys(body.get("tags") or [])), "os_id": os_[0], "app_id": 0, "image_id": "",
            "firewall_group_id": "", "features": [], "user_scheme": "root",
            "_user_data": user_data, "_ssh_keys": keys, "_vpcs": list(body.get("attach_vpc") or []),
        }
        self.servers[iid] = inst
        self.boot_later(inst, inst["hostname"], user_data, image=os_[1])
        await self.maybe_hang()
        return web.json_response({"instance": self.public(inst) | {"default_password": "v5{Fkv" + iid[:6]}},
                                 status=202)

    async def delete_instance(self, request: web.Request) -> web.Response:
        inst = self._instance(request)
        del self.servers[inst["id"]]
        self.destroy_later(inst)
        return web.Response(status=204)

    async def list_regions(self, request: web.Request) -> web.Response:
        items = [{"id": r, "city": c, "country": n, "continent": k, "options": ["ddos_protection"]}
                 for r, c, n, k in REGIONS]
        return self.paginate(request, "regions", items)

    async def list_plans(self, request: web.Request) -> web.Response:
        items = [{"id": p, "vcpu_count": v, "ram": r, "disk": d, "disk_count": 1, "bandwidth": 1024,
                  "monthly_cost": c, "type": p.split("-")[0], "locations": locs} for p, v, r, d, c, locs in PLANS]
        return self.paginate(request, "plans", items)

    async def list_os(self, request: web.Request) -> web.Response:
        items = [{"id": i, "name": n, "arch": a, "family": f} for i, n, a, f in OS]
        return self.paginate(request, "os", items)

    # ---- VPCs and load balancers

    async def list_vpcs(self, request: web.Request) -> web.Response:
        return self.paginate(request, "vpcs", list(self.networks.values()))

    async def create_vpc(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "region": (str, True), "description": (str, False), "v4_subnet": (str, False),
            "v4_subnet_mask": (int, False)})
        if body["region"] not in ALL:
            raise Invalid("Invalid region.")
        subnet, mask = self.private_range.split("/")
        vpc = {"id": str(uuid.uuid4()), "date_created": _now(), "region": body["region"],
               "description": body.get("description") or "", "v4_subnet": body.get("v4_subnet") or subnet,
               "v4_subnet_mask": body.get("v4_subnet_mask") or int(mask)}
        self.networks[vpc["id"]] = vpc
        return web.json_response({"vpc": vpc}, status=201)

    async def instance_vpcs(self, request: web.Request) -> web.Response:
        inst = self._instance(request)
        items = [{"id": vid, "mac_address": "5a:00:04:cb:3f:7f", "ip_address": self.server_ip(inst) or ""}
                 for vid in inst["_vpcs"]]
        return self.paginate(request, "vpcs", items)

    async def attach_vpc(self, request: web.Request) -> web.Response:
        inst = self._instance(request)
        body = check_fields(await _json(request), {"vpc_id": (str, True)})
        vpc = self.networks.get(body["vpc_id"])
        if vpc is None or vpc["region"] != inst["region"]:
            raise Invalid("Invalid VPC.")
        if body["vpc_id"] not in inst["_vpcs"]:
            inst["_vpcs"].append(body["vpc_id"])
        return web.Response(status=204)

    def balancer_backends(self, balancer: dict) -> list[tuple[str, str]]:
        vpc = balancer["generic_info"]["vpc"]
        found = []
        for iid in balancer["instances"]:
            inst = self.servers.get(iid)
            if inst and self.server_ip(inst) and (not vpc or vpc in inst["_vpcs"]):
                found.append((f"s{iid}", self.server_ip(inst)))
        return found

    def balancer_check(self, balancer: dict) -> tuple[str, str | None]:
        return balancer["health_check"].get("path") or "/", None

    def balancer_running(self, balancer: dict, ip: str) -> None:
        balancer.update(status="active", ipv4=ip)

    def balancer_failed(self, balancer: dict) -> None:
        balancer["status"] = "failed"

    def _lb(self, request: web.Request) -> dict:
        balancer = self.balancers.get(request.match_info["id"])
        if balancer is None:
            raise web.HTTPNotFound()
        return balancer

    async def list_lbs(self, request: web.Request) -> web.Response:
        return self.paginate(request, "load_balancers", list(self.balancers.values()))

    async def get_lb(self, request: web.Request) -> web.Response:
        return web.json_response({"load_balancer": self.public(self._lb(request))})

    def _instances(self, ids: list[str]) -> list[str]:
        for iid in ids:
            if iid not in self.servers:
                raise Invalid(f"Invalid instance: {iid}")
        return list(dict.fromkeys(ids))

    async def create_lb(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "region": (str, True), "label": (str, False), "balancing_algorithm": (str, False),
            "ssl_redirect": (bool, False), "http2": (bool, False), "nodes": (int, False),
            "proxy_protocol": (bool, False), "health_check": (dict, False),
            "forwarding_rules": (("list", dict), False), "sticky_session": (dict, False), "ssl": (dict, False),
            "instances": (("list", str), False), "firewall_rules": (("list", dict), False), "vpc": (str, False),
            "auto_ssl": (dict, False)})
        if body["region"] not in ALL:
            raise Invalid("Invalid region.")
        rules = []
        for rule in body.get("forwarding_rules") or []:
            check_fields(rule, {"frontend_protocol": (str, True), "frontend_port": (int, True),
                                "backend_protocol": (str, True), "backend_port": (int, True)})
            rules.append({"id": uuid.uuid4().hex[:16], **rule})
        if body.get("ssl_redirect") and not (body.get("ssl") or body.get("auto_ssl")):
            raise Invalid("ssl_redirect needs an HTTPS rule and a certificate (ssl or auto_ssl).")
        if body.get("auto_ssl"):
            check_fields(body["auto_ssl"], {"domain_zone": (str, True), "domain_sub": (str, False)})
        vpc = body.get("vpc") or ""
        if vpc and (vpc not in self.networks or self.networks[vpc]["region"] != body["region"]):
            raise Invalid("Invalid VPC.")
        check = {"protocol": "http", "port": 80, "path": "/", "check_interval": 15, "response_timeout": 5,
                 "unhealthy_threshold": 5, "healthy_threshold": 5, **(body.get("health_check") or {})}
        balancer = {
            "id": str(uuid.uuid4()), "date_created": _now(), "region": body["region"],
            "label": body.get("label") or "", "status": "pending", "ipv4": "", "ipv6": "",
            "generic_info": {"balancing_algorithm": body.get("balancing_algorithm") or "roundrobin",
                             "ssl_redirect": bool(body.get("ssl_redirect")), "http2": bool(body.get("http2")),
                             "proxy_protocol": bool(body.get("proxy_protocol")),
                             "sticky_sessions": body.get("sticky_session") or {"cookie_name": ""}, "vpc": vpc},
            "health_check": check, "has_ssl": bool(body.get("ssl") or body.get("auto_ssl")),
            "nodes": body.get("nodes") or 1, "forwarding_rules": rules, "firewall_rules": [],
            "instances": self._instances(body.get("instances") or []),
        }
        self.balancers[balancer["id"]] = balancer
        self.balancer_up_later(balancer)
        await self.maybe_hang()
        return web.json_response({"load_balancer": self.public(balancer)}, status=202)

    async def update_lb(self, request: web.Request) -> web.Response:
        balancer = self._lb(request)
        body = check_fields(await _json(request), {"instances": (("list", str), False), "label": (str, False),
                                                   "health_check": (dict, False)})
        if "instances" in body:
            balancer["instances"] = self._instances(body["instances"])
        if body.get("label"):
            balancer["label"] = body["label"]
        if body.get("health_check"):
            balancer["health_check"].update(body["health_check"])
        await self.apply_balancer(balancer)
        return web.Response(status=204)

    async def delete_lb(self, request: web.Request) -> web.Response:
        balancer = self._lb(request)
        del self.balancers[balancer["id"]]
        self.destroy_balancer_later(balancer)
        return web.Response(status=204)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as e:
        raise Invalid("Invalid JSON.") from e


if __name__ == "__main__":
    main(FakeVultr)
