"""A stateful fake of the DigitalOcean API (v2) for what lightfold uses, on aiohttp.web.

Shapes follow https://docs.digitalocean.com/reference/api/ : droplets (202 on create with status
`new` and empty networks; `active` with a public v4 network once the VM backend booted it),
asynchronous actions (in-progress → completed|errored, linked from the create answer), account and
account/keys (a key already on the account: 422), regions / sizes / images, `tag_name` filter,
page/per_page pagination with links.pages (absolute URLs) and meta.total, ratelimit-* headers,
Retry-After on 429, and errors as {"id", "message", "request_id"}. For `lightfold scale`: vpcs (one
default VPC per region, every droplet in it unless created with `vpc_uuid`; its range is the sandbox
machines'), load_balancers (202 with status `new` and `ip` ""; `active` with the address of its
HAProxy machine once that carries traffic, see base.py; droplets added and removed with
POST/DELETE .../droplets; `droplet_ids` and `tag` exclusive) and certificates (`lets_encrypt`:
state `pending`, then `verified`).

Run standalone: `python -m tests.fakes.digitalocean --port 0` (prints the base URL).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tests.fakes.base import FakeCloud, Invalid, check_fields, main

ALL = ["nyc1", "nyc3", "sfo3", "ams3", "fra1", "lon1", "sgp1"]
REGIONS = [
    ("nyc1", "New York 1"), ("nyc3", "New York 3"), ("sfo3", "San Francisco 3"), ("ams3", "Amsterdam 3"),
    ("fra1", "Frankfurt 1"), ("lon1", "London 1"), ("sgp1", "Singapore 1"),
]
SIZES = [
    # slug, vcpus, memory MB, disk GB, $/month, regions
    ("s-1vcpu-512mb-10gb", 1, 512, 10, 4, ["nyc1", "sfo3", "fra1"]),
    ("s-1vcpu-1gb", 1, 1024, 25, 6, ALL),
    ("s-1vcpu-2gb", 1, 2048, 50, 12, ALL),
    ("s-2vcpu-2gb", 2, 2048, 60, 18, ALL),
    ("s-2vcpu-4gb", 2, 4096, 80, 24, ALL),
]
IMAGES = [
    (150000004, "debian-13-x64", "Debian", "13 x64"),
    (150000001, "debian-12-x64", "Debian", "12 x64"),
    (150000002, "debian-11-x64", "Debian", "11 x64"),
    (150000003, "ubuntu-24-04-x64", "Ubuntu", "24.04 (LTS) x64"),
]
HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$")
TAG = re.compile(r"^[a-zA-Z0-9_:-]{1,255}$")
USER_DATA_MAX = 64 * 1024


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _region(slug: str) -> dict:
    name = dict(REGIONS)[slug]
    return {"slug": slug, "name": name, "available": True, "features": ["backups", "ipv6", "metadata"],
            "sizes": [s[0] for s in SIZES if slug in s[5]]}


def _size(s: tuple) -> dict:
    slug, vcpus, memory, disk, price, regions = s
    return {"slug": slug, "vcpus": vcpus, "memory": memory, "disk": disk, "transfer": 1.0,
            "price_monthly": price, "price_hourly": round(price / 730, 5), "regions": regions,
            "available": True, "description": "Basic"}


def _image(i: tuple) -> dict:
    iid, slug, dist, name = i
    return {"id": iid, "name": name, "distribution": dist, "slug": slug, "public": True, "regions": ALL,
            "type": "base", "min_disk_size": 15, "size_gigabytes": 2.36, "status": "available",
            "created_at": "2023-06-14T00:00:00Z", "description": f"{dist} {name}"}


class FakeDigitalOcean(FakeCloud):
    provider = "digitalocean"
    prefix = "/v2"
    default_per_page = 20
    max_per_page = 200

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.actions: dict[int, dict] = {}

    def default_vpc(self, region: str) -> dict:
        vpc = next((v for v in self.networks.values() if v["region"] == region and v["default"]), None)
        if vpc is None:
            vid = str(uuid.uuid4())
            vpc = {"id": vid, "urn": f"do:vpc:{vid}", "name": f"default-{region}", "description": "",
                   "region": region, "ip_range": self.private_range, "default": True, "created_at": _now()}
            self.networks[vid] = vpc
        return vpc

    # ---- shapes

    def error(self, status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
        body = {"id": code, "message": message, "request_id": str(uuid.uuid4())}
        return web.json_response(body, status=status, headers=headers)

    def fault_words(self, status: int) -> tuple[str, str]:
        return {
            401: ("unauthorized", "Unable to authenticate you"),
            403: ("forbidden", "You do not have access for the attempted action."),
            404: ("not_found", "The resource you were accessing could not be found."),
            429: ("too_many_requests", "API Rate limit exceeded."),
        }.get(status, ("server_error", "Unexpected server-side error"))

    def invalid(self, e: Invalid) -> web.Response:
        return self.error(422, "unprocessable_entity", e.message)

    def rate_headers(self) -> dict[str, str]:
        remaining = 5000 - min(5000, len(self.requests))
        return {"ratelimit-limit": "5000", "ratelimit-remaining": str(remaining),
                "ratelimit-reset": str(int(time.time()) + 60)}

    def paginate(self, request: web.Request, key: str, items: list[dict]) -> web.Response:
        page, per_page = self.page_bounds(request)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def url(n: int) -> str:
            return str(request.url.update_query({"page": str(n), "per_page": str(per_page)}))

        pages: dict[str, str] = {}
        if page > 1:
            pages |= {"first": url(1), "prev": url(page - 1)}
        if page < last:
            pages |= {"next": url(page + 1), "last": url(last)}
        return web.json_response({key: [self.public(i) for i in chunk], "links": {"pages": pages},
                                  "meta": {"total": len(items)}})

    def new_action(self, kind: str, droplet: dict) -> dict:
        action = {"id": self.new_id(), "status": "in-progress", "type": kind, "started_at": _now(),
                  "completed_at": None, "resource_id": droplet["id"], "resource_type": "droplet",
                  "region": droplet["region"], "region_slug": droplet["region"]["slug"]}
        self.actions[action["id"]] = action
        return action

    @staticmethod
    def finish(action: dict, ok: bool) -> None:
        action.update(status="completed" if ok else "errored", completed_at=_now())

    def mark_running(self, server: dict, ip: str) -> None:
        server["status"] = "active"
        server["networks"]["v4"] = [  # the private address (in its VPC) is the sandbox machine's
            {"ip_address": ip, "netmask": "255.255.255.0", "gateway": "", "type": "private"},
            {"ip_address": ip, "netmask": "255.255.255.0", "gateway": ip.rsplit(".", 1)[0] + ".1", "type": "public"},
        ]

    def server_ip(self, server: dict) -> str | None:
        return next((n["ip_address"] for n in server["networks"]["v4"] if n["type"] == "public"), None)

    def mark_failed(self, server: dict, reason: str) -> None:
        server["status"] = "off"
        server["_boot_error"] = reason

    # ---- routes

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/account", self.account),
            web.get(f"{p}/account/keys", self.list_keys),
            web.post(f"{p}/account/keys", self.create_key),
            web.get(f"{p}/account/keys/{{id}}", self.get_key),
            web.delete(f"{p}/account/keys/{{id}}", self.delete_key),
            web.get(f"{p}/droplets", self.list_droplets),
            web.post(f"{p}/droplets", self.create_droplet),
            web.get(f"{p}/droplets/{{id}}", self.get_droplet),
            web.delete(f"{p}/droplets/{{id}}", self.delete_droplet),
            web.get(f"{p}/actions/{{id}}", self.get_action),
            web.get(f"{p}/regions", self.list_regions),
            web.get(f"{p}/sizes", self.list_sizes),
            web.get(f"{p}/images", self.list_images),
            web.get(f"{p}/vpcs", self.list_vpcs),
            web.get(f"{p}/vpcs/{{id}}", self.get_vpc),
            web.get(f"{p}/load_balancers", self.list_lbs),
            web.post(f"{p}/load_balancers", self.create_lb),
            web.get(f"{p}/load_balancers/{{id}}", self.get_lb),
            web.delete(f"{p}/load_balancers/{{id}}", self.delete_lb),
            web.post(f"{p}/load_balancers/{{id}}/droplets", self.add_lb_droplets),
            web.delete(f"{p}/load_balancers/{{id}}/droplets", self.remove_lb_droplets),
            web.get(f"{p}/certificates", self.list_certificates),
            web.post(f"{p}/certificates", self.create_certificate),
        ]

    async def account(self, request: web.Request) -> web.Response:
        return web.json_response({"account": {
            "droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 10, "email": "sammy@example.com",
            "name": "Sammy", "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef", "email_verified": True,
            "status": "active", "status_message": "", "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece",
                                                                "name": "My Team"}}})

    def _key(self, ref: str) -> dict:
        key = next((k for k in self.ssh_keys.values() if ref in (str(k["id"]), k["fingerprint"])), None)
        if key is None:
            raise web.HTTPNotFound()
        return key

    async def list_keys(self, request: web.Request) -> web.Response:
        return self.paginate(request, "ssh_keys", list(self.ssh_keys.values()))

    async def get_key(self, request: web.Request) -> web.Response:
        return web.json_response({"ssh_key": self._key(request.match_info["id"])})

    async def create_key(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {"name": (str, True), "public_key": (str, True)})
        fingerprint = _fingerprint(body["public_key"])
        if any(k["fingerprint"] == fingerprint for k in self.ssh_keys.values()):
            raise Invalid("SSH Key is already in use on your account")
        kid = self.new_id()
        key = {"id": kid, "fingerprint": fingerprint, "public_key": body["public_key"], "name": body["name"]}
        self.ssh_keys[str(kid)] = key
        return web.json_response({"ssh_key": key}, status=201)

    async def delete_key(self, request: web.Request) -> web.Response:
        key = self._key(request.match_info["id"])
        del self.ssh_keys[str(key["id"])]
        return web.Response(status=204)

    def _droplet(self, request: web.Request) -> dict:
        droplet = self.servers.get(request.match_info["id"])
        if droplet is None:
            raise web.HTTPNotFound()
        return droplet

    async def list_droplets(self, request: web.Request) -> web.Response:
        items = list(self.servers.values())
        if "tag_name" in request.query:
            items = [d for d in items if request.query["tag_name"] in d["tags"]]
        return self.paginate(request, "droplets", items)

    async def get_droplet(self, request: web.Request) -> web.Response:
        return web.json_response({"droplet": self.public(self._droplet(request))})

    async def create_droplet(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "size": (str, True), "image": ((str, int), True), "region": (str, False),
            "ssh_keys": (("list", (str, int)), False), "user_data": (str, False), "tags": (("list", str), False),
            "ipv6": (bool, False), "monitoring": (bool, False), "backups": (bool, False), "vpc_uuid": (str, False),
            "with_droplet_agent": (bool, False),
        })
        if not HOSTNAME.match(body["name"]):
            raise Invalid("Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
        region = body.get("region") or "nyc3"
        if region not in dict(REGIONS):
            raise Invalid(f"Region is not available: {region}")
        size = next((_size(s) for s in SIZES if s[0] == body["size"]), None)
        if size is None:
            raise Invalid(f"Size is not available: {body['size']}")
        if region not in size["regions"]:
            raise Invalid(f"Size is not available in this region: {body['size']} in {region}")
        image = next((_image(i) for i in IMAGES if body["image"] in (i[0], i[1])), None)
        if image is None:
            raise Invalid(f"You specified an invalid image for Droplet creation: {body['image']}")
        if len((body.get("user_data") or "").encode()) > USER_DATA_MAX:
            raise Invalid("User data must be 64 KiB or less")
        bad_tags = [t for t in body.get("tags") or [] if not TAG.match(t)]
        if bad_tags:
            raise Invalid("Tag names may only contain letters, numbers, colons, dashes, and underscores: "
                          + bad_tags[0])
        keys = []
        for ref in body.get("ssh_keys") or []:
            key = next((k for k in self.ssh_keys.values() if str(ref) in (str(k["id"]), k["fingerprint"])), None)
            if key is None:
                raise Invalid(f"SSH key {ref} is not a valid key on this account")
            keys.append(key["public_key"])
        if body.get("vpc_uuid"):
            vpc = self.networks.get(body["vpc_uuid"])
            if vpc is None or vpc["region"] != region:
                raise Invalid(f"VPC {body['vpc_uuid']} is not in region {region}")
        else:
            vpc = self.default_vpc(region)
        did = self.new_id()
        droplet = {
            "id": did, "name": body["name"], "memory": size["memory"], "vcpus": size["vcpus"], "disk": size["disk"],
            "locked": False, "status": "new", "kernel": None, "created_at": _now(), "features": [],
            "backup_ids": [], "next_backup_window": None, "snapshot_ids": [], "image": image, "volume_ids": [],
            "size": size, "size_slug": size["slug"], "networks": {"v4": [], "v6": []}, "region": _region(region),
            "tags": list(dict.fromkeys(body.get("tags") or [])), "vpc_uuid": vpc["id"],
            "_user_data": body.get("user_data"), "_ssh_keys": keys,
        }
        self.servers[str(did)] = droplet
        action = self.new_action("create", droplet)
        self.boot_later(droplet, body["name"], body.get("user_data"), lambda ok: self.finish(action, ok),
                        image=image["slug"])
        await self.maybe_hang()
        href = f"{request.url.origin()}{self.prefix}/actions/{action['id']}"
        return web.json_response({"droplet": self.public(droplet),
                                  "links": {"actions": [{"id": action["id"], "rel": "create", "href": href}]}},
                                 status=202)

    async def delete_droplet(self, request: web.Request) -> web.Response:
        droplet = self._droplet(request)
        del self.servers[str(droplet["id"])]
        action = self.new_action("destroy", droplet)
        self.destroy_later(droplet, lambda: self.finish(action, True))
        return web.Response(status=204)

    async def get_action(self, request: web.Request) -> web.Response:
        ref = request.match_info["id"]
        action = self.actions.get(int(ref)) if ref.isdigit() else None
        if action is None:
            raise web.HTTPNotFound()
        return web.json_response({"action": action})

    async def list_regions(self, request: web.Request) -> web.Response:
        return self.paginate(request, "regions", [_region(slug) for slug, _ in REGIONS])

    async def list_sizes(self, request: web.Request) -> web.Response:
        return self.paginate(request, "sizes", [_size(s) for s in SIZES])

    async def list_images(self, request: web.Request) -> web.Response:
        items = [_image(i) for i in IMAGES]
        if request.query.get("type") not in (None, "distribution"):
            items = []
        return self.paginate(request, "images", items)

    # ---- VPCs, load balancers, certificates

    async def list_vpcs(self, request: web.Request) -> web.Response:
        return self.paginate(request, "vpcs", list(self.networks.values()))

    async def get_vpc(self, request: web.Request) -> web.Response:
        vpc = self.networks.get(request.match_info["id"])
        if vpc is None:
            raise web.HTTPNotFound()
        return web.json_response({"vpc": vpc})

    def balancer_backends(self, balancer: dict) -> list[tuple[str, str]]:
        found = []
        for did in balancer["droplet_ids"]:
            droplet = self.servers.get(str(did))
            private = next((n["ip_address"] for n in (droplet or {}).get("networks", {}).get("v4", [])
                            if n["type"] == "private"), None)
            if private:
                found.append((f"s{did}", private))
        return found

    def balancer_check(self, balancer: dict) -> tuple[str, str | None]:
        check = balancer["health_check"]
        return (check.get("path") or "/") if check["protocol"] in ("http", "https") else "/", None

    def balancer_running(self, balancer: dict, ip: str) -> None:
        balancer.update(status="active", ip=ip)

    def balancer_failed(self, balancer: dict) -> None:
        balancer["status"] = "errored"

    def _lb(self, request: web.Request) -> dict:
        balancer = self.balancers.get(request.match_info["id"])
        if balancer is None:
            raise web.HTTPNotFound()
        return balancer

    async def list_lbs(self, request: web.Request) -> web.Response:
        return self.paginate(request, "load_balancers", list(self.balancers.values()))

    async def get_lb(self, request: web.Request) -> web.Response:
        return web.json_response({"load_balancer": self.public(self._lb(request))})

    async def create_lb(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "region": (str, True), "forwarding_rules": (("list", dict), True),
            "health_check": (dict, False), "droplet_ids": (("list", int), False), "tag": (str, False),
            "redirect_http_to_https": (bool, False), "vpc_uuid": (str, False), "size_unit": (int, False),
            "algorithm": (str, False), "enable_proxy_protocol": (bool, False), "sticky_sessions": (dict, False),
        })
        if body["region"] not in dict(REGIONS):
            raise Invalid(f"Region is not available: {body['region']}")
        if body.get("droplet_ids") and body.get("tag"):
            raise Invalid("droplet_ids and tag are mutually exclusive")
        rules = []
        for rule in body["forwarding_rules"]:
            check_fields(rule, {"entry_protocol": (str, True), "entry_port": (int, True),
                                "target_protocol": (str, True), "target_port": (int, True),
                                "certificate_id": (str, False), "tls_passthrough": (bool, False)})
            if rule["entry_protocol"] not in ("http", "https", "http2", "http3", "tcp", "udp"):
                raise Invalid(f"invalid entry_protocol {rule['entry_protocol']}")
            if rule["entry_protocol"] == "https" and not (rule.get("certificate_id") or rule.get("tls_passthrough")):
                raise Invalid("an https forwarding rule needs a certificate_id or tls_passthrough")
            if rule.get("certificate_id") and not any(c["id"] == rule["certificate_id"]
                                                      for c in self.certificates.values()):
                raise Invalid(f"certificate {rule['certificate_id']} not found")
            rules.append({"certificate_id": "", "tls_passthrough": False, **rule})
        for did in body.get("droplet_ids") or []:
            if str(did) not in self.servers:
                raise Invalid(f"droplet {did} not found")
        vpc = self.networks.get(body["vpc_uuid"]) if body.get("vpc_uuid") else self.default_vpc(body["region"])
        if vpc is None:
            raise Invalid(f"VPC {body['vpc_uuid']} not found")
        check = {"protocol": "http", "port": 80, "path": "/", "check_interval_seconds": 10,
                 "response_timeout_seconds": 5, "healthy_threshold": 5, "unhealthy_threshold": 3,
                 **(body.get("health_check") or {})}
        lid = str(uuid.uuid4())
        balancer = {
            "id": lid, "name": body["name"], "ip": "", "ipv6": "", "size_unit": body.get("size_unit") or 1,
            "size": "lb-small", "algorithm": body.get("algorithm") or "round_robin", "status": "new",
            "created_at": _now(), "forwarding_rules": rules, "health_check": check,
            "sticky_sessions": body.get("sticky_sessions") or {"type": "none"}, "region": _region(body["region"]),
            "tag": body.get("tag") or "", "droplet_ids": list(body.get("droplet_ids") or []),
            "redirect_http_to_https": bool(body.get("redirect_http_to_https")),
            "enable_proxy_protocol": bool(body.get("enable_proxy_protocol")), "enable_backend_keepalive": False,
            "vpc_uuid": vpc["id"], "disable_lets_encrypt_dns_records": False, "project_id": "",
        }
        self.balancers[lid] = balancer
        self.balancer_up_later(balancer)
        await self.maybe_hang()
        return web.json_response({"load_balancer": self.public(balancer)}, status=202)

    async def _lb_droplets(self, request: web.Request, add: bool) -> web.Response:
        balancer = self._lb(request)
        body = check_fields(await _json(request), {"droplet_ids": (("list", int), True)})
        if balancer["tag"]:
            raise Invalid("droplets of a load balancer using a tag cannot be changed one by one")
        for did in body["droplet_ids"]:
            if add and str(did) not in self.servers:
                raise Invalid(f"droplet {did} not found")
        ids = balancer["droplet_ids"]
        balancer["droplet_ids"] = (ids + [d for d in body["droplet_ids"] if d not in ids] if add
                                   else [d for d in ids if d not in body["droplet_ids"]])
        await self.apply_balancer(balancer)
        return web.Response(status=204)

    async def add_lb_droplets(self, request: web.Request) -> web.Response:
        return await self._lb_droplets(request, True)

    async def remove_lb_droplets(self, request: web.Request) -> web.Response:
        return await self._lb_droplets(request, False)

    async def delete_lb(self, request: web.Request) -> web.Response:
        balancer = self._lb(request)
        del self.balancers[balancer["id"]]
        self.destroy_balancer_later(balancer)
        return web.Response(status=204)

    async def list_certificates(self, request: web.Request) -> web.Response:
        return self.paginate(request, "certificates", list(self.certificates.values()))

    async def create_certificate(self, request: web.Request) -> web.Response:
        body = check_fields(await _json(request), {
            "name": (str, True), "type": (str, False), "dns_names": (("list", str), False),
            "private_key": (str, False), "leaf_certificate": (str, False), "certificate_chain": (str, False)})
        kind = body.get("type") or "custom"
        if kind == "lets_encrypt" and not body.get("dns_names"):
            raise Invalid("dns_names is required for a lets_encrypt certificate")
        if any(c["name"] == body["name"] for c in self.certificates.values()):
            raise Invalid("a certificate with this name already exists")
        cid = str(uuid.uuid4())
        cert = {"id": cid, "name": body["name"], "not_after": "2027-03-08T00:00:00Z",
                "sha1_fingerprint": hashlib.sha1(cid.encode(), usedforsecurity=False).hexdigest(),
                "created_at": _now(), "dns_names": body.get("dns_names") or [], "state": "pending", "type": kind}
        self.certificates[cid] = cert
        return web.json_response({"certificate": cert}, status=201)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as e:
        raise Invalid("The request body is not valid JSON") from e


def _fingerprint(public_key: str) -> str:
    parts = public_key.split()
    try:
        if len(parts) < 2:
            raise ValueError
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as e:
        raise Invalid("Key invalid, key should be of the format `type key [comment]`") from e
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


if __name__ == "__main__":
    main(FakeDigitalOcean)
