"""Work on a cloud account through a `CloudClient` (lightfold.providers.cloud_client), the same for
DigitalOcean, Vultr and Hetzner Cloud.

- Cheap defaults per provider, and `validate_spec` against the provider's own region/size/image
  lists (an unknown value gets an error listing the valid choices).
- The SSH key lightfold uploads (found again by its key blob, named `lightfold-…`).
- The first-boot user data (cloud-init): who may log in, and a host key generated HERE, so the
  CLI pins it before the first connection instead of trusting whatever answers (no TOFU).
- `ensure_server`: create that is safe to retry (finds the server by its unique tag first).
- `destroy_server`: delete the server, and the SSH key lightfold uploaded once nothing uses it.

What a target's server is (recorded in config and state) is lightfold.providers.cloud_target.

A create is resumable: the unique create tag (state) and the host key pair (0600 under
~/.lightfold/host-keys/, until the server is destroyed) are stored before the provider is asked,
so a rerun after a crash finds the server by its tag and pins the key that server really has.

Login: the user's key goes to root (`disable_root: false`), matching `username: root` in the
target config; configure may add a sudo user later. The provider's own SSH key mechanism puts the
same key on root too, so either path alone is enough to get in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets as pysecrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lightfold import store
from lightfold.agent.layout import CREATED_MARKER
from lightfold.errors import LightfoldError
from lightfold.providers.cloud_client import Choice, CloudClient, Server, ServerSpec, SshKey
from lightfold.providers.http import LABELS, ProviderError

MANAGED_TAG = "lightfold"  # on every server lightfold creates, next to its unique create tag
KEY_NAME_PREFIX = "lightfold-"  # SSH keys lightfold uploads are named so; only those are ever deleted
CREATE_TIMEOUT = 600.0  # until the server runs with an address
READY_TIMEOUT = 300.0  # until root can log in and cloud-init has finished
CREATE_POLL = 3.0  # seconds between looks at a starting server
OFF_GRACE = 60.0  # a starting server reported 'off' for this long has failed to boot

# Cheapest sensible machine per provider: 1-2 vCPU, 1-4 GB, Debian 13. Vultr's image is named as
# its /v2/os list names it ("Debian 13 x64 (trixie)" is found as debian-13-x64, lightfold.providers.vultr).
DEFAULTS: dict[str, dict[str, str]] = {
    "hetzner": {"region": "nbg1", "size": "cx22", "image": "debian-13"},
    "digitalocean": {"region": "nyc3", "size": "s-1vcpu-1gb", "image": "debian-13-x64"},
    "vultr": {"region": "ewr", "size": "vc2-1c-1gb", "image": "debian-13-x64"},
}


# ---- SSH keys

def key_blob(public_key: str) -> tuple[str, str]:
    """(type, base64 blob) of an OpenSSH public key line; the comment does not identify a key."""
    parts = public_key.split()
    if len(parts) < 2:
        raise LightfoldError("that is not an OpenSSH public key", "pass the .pub file's contents")
    return parts[0], parts[1]


def md5_fingerprint(public_key: str) -> str:
    """The aa:bb:... MD5 fingerprint DigitalOcean and Hetzner use to name a key."""
    digest = hashlib.md5(base64.b64decode(key_blob(public_key)[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def key_name(public_key: str) -> str:
    return KEY_NAME_PREFIX + md5_fingerprint(public_key).replace(":", "")[:12]


async def ensure_ssh_key(client: CloudClient, public_key: str) -> tuple[SshKey, bool]:
    """The account's copy of this public key, uploading it if missing. (key, created_now)."""
    wanted = key_blob(public_key)
    for key in await client.list_ssh_keys():
        if key_blob(key.public_key) == wanted:
            return key, False
    return await client.create_ssh_key(key_name(public_key), " ".join(wanted)), True


# ---- host key and first-boot user data

@dataclass(frozen=True)
class HostKey:
    private_openssh: str
    public_openssh: str  # "ssh-ed25519 AAAA…" — what to pin in known_hosts

    def __repr__(self) -> str:
        return f"HostKey({self.public_openssh!r})"


def generate_host_key() -> HostKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return HostKey(private, public.decode())


def host_key_path(target: str) -> Path:
    return store.home() / "host-keys" / f"{target}.json"


def load_or_create_host_key(target: str) -> HostKey:
    """The target's host key, kept (0600) from before the create call until the server is gone:
    a create retried after a crash must pin the key the first attempt put into user data."""
    path = host_key_path(target)
    with store.lock(path):
        raw = store.read_json(path)
        if isinstance(raw, dict) and raw.get("private") and raw.get("public"):
            return HostKey(raw["private"], raw["public"])
        key = generate_host_key()
        store.write_json(path, {"version": 1, "private": key.private_openssh, "public": key.public_openssh},
                         mode=store.PRIVATE)
        return key


def trusted_host_keys(target: str) -> list[str]:
    """The host keys to trust for the target's server: the one lightfold made on the server once
    it is there (the user-data key is then worthless), else the user-data key; plus a key being
    rotated in when an earlier rotation was interrupted."""
    raw = store.read_json(host_key_path(target))
    if not isinstance(raw, dict):
        return []
    keys = [raw["rotated"]] if raw.get("rotated") else [raw["public"]] if raw.get("public") else []
    return keys + ([raw["rotating"]] if raw.get("rotating") and raw["rotating"] not in keys else [])


def host_key_rotated(target: str) -> bool:
    raw = store.read_json(host_key_path(target))
    return isinstance(raw, dict) and bool(raw.get("rotated")) and not raw.get("rotating")


def record_rotation(target: str, *, rotating: str | None = None, rotated: str | None = None) -> None:
    """Remember a rotation in flight (`rotating`: the new key, before it goes live), or done
    (`rotated`). The user-data key stays recorded: a create retried by tag rebuilds the same
    user data."""
    path = host_key_path(target)
    with store.lock(path):
        raw = store.read_json(path)
        raw = dict(raw) if isinstance(raw, dict) else {"version": 1}
        raw.pop("rotating", None)
        if rotating:
            raw["rotating"] = rotating
        if rotated:
            raw["rotated"] = rotated
        store.write_json(path, raw, mode=store.PRIVATE)


def forget_host_key(target: str) -> None:
    host_key_path(target).unlink(missing_ok=True)


def user_data(authorized_key: str, host_key: HostKey, target: str, tag: str) -> str:
    """#cloud-config for the first boot. Written as JSON, which is valid YAML, so no YAML writer
    (or quoting bug) is involved and the fakes can read it back with `read_user_data`."""
    created = {"target": target, "tag": tag, "created_at": int(time.time()), "by": "lightfold"}
    config = {
        "disable_root": False,
        "ssh_pwauth": False,
        "ssh_authorized_keys": [authorized_key.strip()],
        # Only the key we generated: no other host key types, so the pinned one is what sshd offers.
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "ssh_keys": {"ed25519_private": host_key.private_openssh, "ed25519_public": host_key.public_openssh},
        "write_files": [
            {"path": CREATED_MARKER, "permissions": "0644", "owner": "root:root",
             "content": json.dumps(created) + "\n"},
        ],
    }
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def read_user_data(text: str) -> dict:
    """The cloud-config lightfold wrote (see `user_data`), as a dict."""
    if not text.startswith("#cloud-config"):
        raise ValueError("not a #cloud-config document")
    return json.loads(text.split("\n", 1)[1])


# ---- tags

def new_create_tag(target: str) -> str:
    """A tag unique to one create of one target. Store it in state BEFORE calling `ensure_server`.
    Fits every provider: DigitalOcean tags, Vultr tags and Hetzner label keys (<= 63 chars,
    letters, digits and '-')."""
    slug = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:40] or "target"
    return f"lf-{slug}-{pysecrets.token_hex(4)}"


def server_name(target: str) -> str:
    """A valid hostname for the target (all three providers want one)."""
    return re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:60] or "lightfold"


# ---- validation

async def validate_spec(client: CloudClient, spec: ServerSpec) -> ServerSpec:
    """The spec with each value checked against the provider's lists (and spelled as the API
    wants it). An unknown value is a one-line error listing the valid choices."""
    regions, sizes, images = await asyncio.gather(client.list_regions(), client.list_sizes(), client.list_images())
    label = LABELS[client.provider]
    region = _pick(regions, spec.region, f"{label} region", "--region")
    size = _pick(sizes, spec.size, f"{label} size", "--size")
    image = _pick(images, spec.image, f"{label} image", "--image")
    if size.regions is not None and region.id not in size.regions:
        there = [s.id for s in sizes if s.regions is None or region.id in s.regions]
        raise LightfoldError(
            f"{label} size '{size.id}' is not offered in region '{region.id}'",
            f"choose a --size offered there: {_some(there)}",
        )
    return spec.model_copy(update={"region": region.id, "size": size.id, "image": image.id})


def _pick(choices: list[Choice], value: str, what: str, flag: str) -> Choice:
    for c in choices:
        if value == c.id or value.lower() in (a.lower() for a in c.aliases):
            return c
    raise LightfoldError(f"unknown {what} '{value}'", f"use {flag} with one of: {_some([c.id for c in choices])}")


def _some(ids: list[str], limit: int = 25) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" (and {len(ids) - limit} more)" if len(ids) > limit else "")


# ---- create, wait, destroy

class EnsureResult(BaseModel):
    server: Server
    created: bool  # False: a server with the tag already existed (an earlier, interrupted create)


async def find_by_tag(client: CloudClient, tag: str) -> Server | None:
    servers = [s for s in await client.list_servers(tag) if s.status != "deleting"]
    if len(servers) > 1:
        raise LightfoldError(
            f"{len(servers)} {LABELS[client.provider]} servers carry the tag '{tag}': "
            + ", ".join(f"{s.name} ({s.id})" for s in servers),
            "delete the extra ones in the provider's console, then run the command again",
        )
    return servers[0] if servers else None


async def ensure_server(
    client: CloudClient,
    target_name: str,
    tag: str,
    spec: ServerSpec,
    *,
    wait: bool = True,
    timeout: float = 600.0,
    poll: float = 3.0,
    create_attempts: int = 3,
) -> EnsureResult:
    """The target's server: found by `tag` (which the caller stored in state before this call),
    else created with that tag. A create whose answer was lost (timeout, dropped connection, 5xx)
    is never simply repeated: the tag is looked up again first, so a retry — here or in a later
    run after a crash — cannot make a second server. With `wait`, returns once it is running with
    a public IPv4."""
    created = False
    server = await find_by_tag(client, tag)
    attempt = 0
    while server is None:
        attempt += 1
        try:
            server = await client.create_server(server_name(target_name), spec, [MANAGED_TAG, tag])
            created = True
        except ProviderError as e:
            if not e.ambiguous or attempt >= create_attempts:
                raise
            server = await _find_after_lost_answer(client, tag, poll)
            created = server is not None
    if wait:
        server = await wait_running(client, server.id, timeout=timeout, poll=poll)
    return EnsureResult(server=server, created=created)


async def _find_after_lost_answer(client: CloudClient, tag: str, poll: float) -> Server | None:
    # A listing can trail a create by a moment; look twice before deciding it never happened.
    for i in range(2):
        found = await find_by_tag(client, tag)
        if found is not None:
            return found
        if i == 0:
            await asyncio.sleep(min(poll, 2.0))
    return None


async def wait_running(client: CloudClient, server_id: str, *, timeout: float = 600.0, poll: float = 3.0) -> Server:
    deadline = time.monotonic() + timeout
    label = LABELS[client.provider]
    off_since: float | None = None
    while True:
        server = await client.get_server(server_id)
        if server is None:
            raise LightfoldError(
                f"{label} server {server_id} disappeared while starting",
                "run the command again to create a new one",
            )
        if server.status == "running" and server.ipv4:
            return server
        # A new server that stays off did not boot (it will not start by itself).
        off_since = (off_since or time.monotonic()) if server.status == "off" else None
        if off_since is not None and time.monotonic() - off_since > OFF_GRACE:
            raise LightfoldError(
                f"{label} server {server.name} ({server_id}) stopped while starting ('{server.provider_status}')",
                "look at its console in the provider's panel; `lightfold destroy` removes it",
            )
        if time.monotonic() >= deadline:
            raise LightfoldError(
                f"{label} server {server.name} ({server_id}) is still '{server.provider_status}' "
                f"after {timeout:g}s",
                "run the command again to keep waiting, or check the server in the provider's console",
            )
        await asyncio.sleep(poll)


async def destroy_server(client: CloudClient, server_id: str, public_key: str | None = None) -> dict[str, Any]:
    """Delete the server (already gone is fine). With `public_key`: also delete the account's copy
    of that key if lightfold uploaded it (named lightfold-…) and no other lightfold server is
    left that might have been created with it."""
    done: dict[str, Any] = {"server_deleted": False, "ssh_key_deleted": False}
    if await client.get_server(server_id) is not None:
        await client.delete_server(server_id)
        done["server_deleted"] = True
    if public_key:
        wanted = key_blob(public_key)
        ours = [k for k in await client.list_ssh_keys()
                if key_blob(k.public_key) == wanted and k.name.startswith(KEY_NAME_PREFIX)]
        others = [s for s in await client.list_servers(MANAGED_TAG) if s.id != server_id and s.status != "deleting"]
        if ours and not others:
            for key in ours:
                await client.delete_ssh_key(key.id)
            done["ssh_key_deleted"] = True
    return done
