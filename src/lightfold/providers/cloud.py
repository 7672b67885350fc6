"""What the three cloud providers (DigitalOcean, Vultr, Hetzner Cloud) have in common.

- The shapes every thin client returns (`Server`, `SshKey`, `Choice`) and the `CloudClient` protocol.
- `open_client(provider)`: the provider's client with its token from `lightfold.secrets`.
- Cheap defaults per provider, and `validate_spec` against the provider's own region/size/image
  lists (an unknown value gets an error listing the valid choices).
- The first-boot user data (cloud-init): who may log in, and a host key generated HERE, so the
  CLI pins it before the first connection instead of trusting whatever answers (no TOFU).
- `ensure_server`: create that is safe to retry (finds the server by its unique tag first).
- `destroy_server`: delete the server, and the SSH key lightfold uploaded once nothing uses it.
- `create_target` / `destroy_target` / `target_server_state`: what each provider module's
  `create`/`destroy`/`server_state` (the `lightfold.providers` interface) run.
- `recover_address`: find the server again (by id, else by tag) and follow a changed address
  (what `lightfold sync` runs for a cloud target); `offers`: regions/sizes for a prompt.

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
import importlib
import json
import re
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from lightfold import secrets, store
from lightfold.errors import LightfoldError
from lightfold.providers.http import LABELS, ProviderError, RetryPolicy

PROVIDERS = ("digitalocean", "vultr", "hetzner")
MANAGED_TAG = "lightfold"  # on every server lightfold creates, next to its unique create tag
KEY_NAME_PREFIX = "lightfold-"  # SSH keys lightfold uploads are named so; only those are ever deleted
CREATED_MARKER = "/etc/lightfold/created"
CREATE_TIMEOUT = 600.0  # until the server runs with an address
READY_TIMEOUT = 300.0  # until root can log in and cloud-init has finished
CREATE_POLL = 3.0  # seconds between looks at a starting server
OFF_GRACE = 60.0  # a starting server reported 'off' for this long has failed to boot

# Cheapest sensible machine per provider: 1-2 vCPU, 1-4 GB, Debian 12.
DEFAULTS: dict[str, dict[str, str]] = {
    "hetzner": {"region": "nbg1", "size": "cx22", "image": "debian-12"},
    "digitalocean": {"region": "nyc3", "size": "s-1vcpu-1gb", "image": "debian-12-x64"},
    "vultr": {"region": "ewr", "size": "vc2-1c-1gb", "image": "2136"},  # os_id 2136: Debian 12 x64
}


# ---- shapes shared by the clients

class Server(BaseModel):
    id: str
    name: str
    status: Literal["pending", "running", "off", "deleting", "unknown"]
    provider_status: str = Field(description="The provider's own word for the state")
    ipv4: str | None = None
    tags: list[str] = Field(default_factory=list)
    region: str | None = None
    size: str | None = None
    image: str | None = None


class SshKey(BaseModel):
    id: str
    name: str
    public_key: str
    fingerprint: str | None = None


class Choice(BaseModel):
    """One region, size or image offered by the provider (for prompts and validation)."""

    id: str
    label: str
    regions: list[str] | None = None  # for sizes: where this size is offered (None: unknown/everywhere)
    aliases: list[str] = Field(default_factory=list)  # other accepted spellings (e.g. a Vultr OS name)


class ServerSpec(BaseModel):
    region: str
    size: str
    image: str
    ssh_key_ids: list[str] = Field(default_factory=list)
    user_data: str | None = None


class CloudClient(Protocol):
    provider: str

    async def validate_token(self) -> str: ...
    async def list_ssh_keys(self) -> list[SshKey]: ...
    async def create_ssh_key(self, name: str, public_key: str) -> SshKey: ...
    async def delete_ssh_key(self, key_id: str) -> None: ...
    async def create_server(self, name: str, spec: ServerSpec, tags: list[str]) -> Server: ...
    async def get_server(self, server_id: str) -> Server | None: ...
    async def list_servers(self, tag: str | None = None) -> list[Server]: ...
    async def delete_server(self, server_id: str) -> None: ...
    async def list_regions(self) -> list[Choice]: ...
    async def list_sizes(self) -> list[Choice]: ...
    async def list_images(self) -> list[Choice]: ...
    async def close(self) -> None: ...


# ---- clients

_MODULES = {p: f"lightfold.providers.{p}" for p in PROVIDERS}
_CLASSES = {"digitalocean": "DigitalOceanClient", "vultr": "VultrClient", "hetzner": "HetznerClient"}


def open_client(
    provider: str,
    *,
    token: str | None = None,
    base: str | None = None,
    retry: RetryPolicy | None = None,
    poll: float = 1.0,
) -> Any:
    """The provider's client (use `async with`). The token comes from the provider's env var, the
    keyring or tokens.json unless given; a missing one is a one-line error naming the env var."""
    if provider not in _MODULES:
        raise LightfoldError(f"unknown cloud provider '{provider}'", f"use one of: {', '.join(PROVIDERS)}")
    if token is None:
        token, _source = secrets.get_token(provider)
    if not token:
        env = secrets.TOKEN_ENV[provider]
        raise LightfoldError(
            f"no {LABELS[provider]} API token",
            f"set {env}, or run `lightfold config set-token {provider}`",
        )
    cls = getattr(importlib.import_module(_MODULES[provider]), _CLASSES[provider])
    return cls(token, base=base, retry=retry, poll=poll)


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



# ---- a target's server: what `lightfold create/destroy/status` call (through each provider module)


Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    pass


def target_api(provider: str):
    """(create, recover_address, destroy, server_state) bound to one cloud provider: the
    module-level functions every provider module exposes (see providers/__init__.py)."""

    def create(target: str, project_path: Path | None = None, *, force: bool = False, progress: Progress = quiet,
               region: str | None = None, size: str | None = None, image: str | None = None) -> dict[str, Any]:
        return create_target(provider, target, project_path, force=force, progress=progress,
                             region=region, size=size, image=image)

    def recover(target: str, *, progress: Progress = quiet) -> dict[str, Any]:
        return recover_address(provider, target, progress=progress)

    def destroy(target: str, *, progress: Progress = quiet) -> dict[str, Any]:
        return destroy_target(provider, target, progress=progress)

    def server_state(target: str) -> str:
        return target_server_state(provider, target)

    return create, recover, destroy, server_state


def create_target(
    provider: str,
    target: str,
    project_path: Path | None = None,
    *,
    force: bool = False,
    progress: Progress = quiet,
    ready_check: bool = True,
    region: str | None = None,
    size: str | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """Create (or find again) the target's cloud server and record it: address, login and key in
    config.json, `created` in state, the host key pinned. Safe to rerun after any interruption:
    the create tag and the host key are stored before the provider is asked for anything.

    region/size/image: given values win over the target's config, which wins over `DEFAULTS`.
    A rerun on an existing server re-reads it and follows a changed address (see `recover_address`)."""
    from lightfold import config, state
    from lightfold.remote import openssh

    cfg = config.load()
    existing = cfg.targets.get(target)
    if existing and existing.provider not in (None, provider):
        raise LightfoldError(
            f"target '{target}' uses the {existing.provider} provider",
            f"choose another --target, or `lightfold config set provider {provider} --target {target}` first",
        )
    pc = (existing.provider_config.get(provider) if existing else None) or config.ProviderConfig()
    given = {"region": region, "size": size, "image": image}
    wanted = ServerSpec(**{f: given[f] or getattr(pc, f) or DEFAULTS[provider][f] for f in given})
    st = state.load(target)
    key_path = openssh.login_key()
    public_key = Path(f"{key_path}.pub").read_text().strip()

    async def provision() -> tuple[Server, bool]:
        async with open_client(provider) as client:
            if st.created and pc.server_id:
                current = await client.get_server(pc.server_id)
                if current is not None and not force:
                    return current, False
                if current is not None:
                    progress(f"removing the old server {current.name} ({current.id})")
                    await destroy_server(client, current.id)
                else:
                    progress(f"server {pc.server_id} is gone; creating a new one")
                _reset(target, pc.ip)
            account = await client.validate_token()
            progress(f"{LABELS[provider]}: token accepted ({account})")
            spec = await validate_spec(client, wanted)
            key, uploaded = await ensure_ssh_key(client, public_key)
            if uploaded:
                progress(f"uploaded SSH key {key.name}")
            tag = state.load(target).create_tag
            if not tag:
                tag = new_create_tag(target)
                state.update(target, lambda s: setattr(s, "create_tag", tag))
            host_key = load_or_create_host_key(target)
            spec = spec.model_copy(update={
                "ssh_key_ids": [key.id], "user_data": user_data(public_key, host_key, target, tag)})
            progress(f"creating {spec.size} in {spec.region} ({spec.image})")
            result = await ensure_server(client, target, tag, spec, timeout=CREATE_TIMEOUT, poll=CREATE_POLL)
            if not result.created:
                progress(f"found server {result.server.name} from an earlier create")
            return result.server, True

    t0 = time.monotonic()
    server, changed = asyncio.run(provision())
    if not changed:
        progress(f"server {server.name} already exists (use --force to recreate it)")
        summary = _target_summary(provider, target, server, changed=False)
        if server.ipv4 and server.ipv4 != pc.ip:
            _follow_address(provider, target, server, pc.ip)
            progress(f"its address changed from {pc.ip or '(none)'} to {server.ipv4}; re-pinned its host key")
            summary.update(address_changed=True, previous_ip=pc.ip)
        return summary
    openssh.pin(server.ipv4, 22, load_or_create_host_key(target).public_openssh)
    # What the server really is (the spec it was made from, spelled as the API reports it).
    spec = {k: v for k, v in (("region", server.region), ("size", server.size), ("image", server.image)) if v}
    config.record_server(target, provider, project_path, ip=server.ipv4, ssh_key=str(key_path), username="root",
                         port=22, server_id=server.id, **spec)
    if ready_check:
        _wait_ready(server, key_path, progress)
    state.update(target, lambda s: (setattr(s, "created", True), setattr(s, "provisioned_id", server.id)))
    progress(f"server {server.name} is up at {server.ipv4} in {time.monotonic() - t0:.1f}s")
    return _target_summary(provider, target, server, changed=True)


def recover_address(provider: str, target: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Find the target's server again at the provider and record its current address: by the
    server id in config, else by the create tag in state (a config that lost its id/IP). A changed
    address is written to provider_config.ip and the target's stored host key (the one its user
    data installed, kept under ~/.lightfold/host-keys/) is pinned for it; the old address is
    unpinned. Nothing is trusted on first use: without the stored host key this fails.

    Returns {"target", "provider", "server_id", "ip", "previous_ip", "changed", "found_by"}
    ("changed": the address or the server id differed from config; "found_by": "id" | "tag").
    Raises LightfoldError when the provider has no such server any more."""
    from lightfold import config, state

    tc = config.get_target(config.load(), target)
    pc = tc.provider_config.get(provider) or config.ProviderConfig()
    tag = state.load(target).create_tag
    label = LABELS[provider]

    async def look() -> tuple[Server | None, str]:
        async with open_client(provider) as client:
            server = await client.get_server(pc.server_id) if pc.server_id else None
            found_by = "id"
            if server is None and tag:
                server, found_by = await find_by_tag(client, tag), "tag"
            if server is not None and not (server.status == "running" and server.ipv4):
                progress(f"server {server.name} is '{server.provider_status}'; waiting for it to run")
                server = await wait_running(client, server.id, timeout=READY_TIMEOUT, poll=CREATE_POLL)
            return server, found_by

    server, found_by = asyncio.run(look())
    if server is None:
        where = f"id {pc.server_id}" if pc.server_id else "no server id recorded"
        raise LightfoldError(
            f"{label} has no server for '{target}' ({where}, tag {tag or 'unknown'})",
            f"create a new one: lightfold create --target {target} --provider {provider} --force",
        )
    changed = server.ipv4 != pc.ip or server.id != pc.server_id
    if changed:
        _follow_address(provider, target, server, pc.ip)
        progress(f"{target}: {label} server {server.id} is at {server.ipv4} (was {pc.ip or 'unknown'})")
    return {"target": target, "provider": provider, "server_id": server.id, "ip": server.ipv4,
            "previous_ip": pc.ip, "changed": changed, "found_by": found_by}


def _follow_address(provider: str, target: str, server: Server, old_ip: str | None) -> None:
    """Record the server's current address and id, and move the pin to it (stored host key only)."""
    from lightfold import config, state
    from lightfold.remote import openssh

    raw = store.read_json(host_key_path(target))
    public = raw.get("public") if isinstance(raw, dict) else None
    if not public:
        raise LightfoldError(
            f"no stored host key for '{target}', so its server at {server.ipv4} cannot be verified",
            f"recreate it: lightfold create --target {target} --provider {provider} --force",
        )
    if old_ip and old_ip != server.ipv4:
        openssh.unpin(old_ip, 22)
    openssh.pin(server.ipv4, 22, public)

    def change(cfg: config.Config) -> None:
        tc = cfg.targets[target]
        pc = tc.provider_config.get(provider) or config.ProviderConfig()
        pc.ip, pc.server_id = server.ipv4, server.id
        tc.provider_config = {**tc.provider_config, provider: pc}

    config.update(change)
    state.update(target, lambda s: setattr(s, "provisioned_id", server.id))


async def offers(provider: str) -> dict[str, list[Choice]]:
    """The provider's regions and sizes (for an interactive choice): {"regions": [...], "sizes": [...]}."""
    async with open_client(provider) as client:
        regions, sizes = await asyncio.gather(client.list_regions(), client.list_sizes())
    return {"regions": regions, "sizes": sizes}


def destroy_target(provider: str, target: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Delete the target's server (found by id, else by its create tag), the SSH key lightfold
    uploaded if nothing else uses it, and what lightfold recorded; keep the config entry."""
    from lightfold import config, state
    from lightfold.remote import openssh

    tc = config.load().targets.get(target)
    pc = (tc.provider_config.get(provider) if tc else None) or config.ProviderConfig()
    st = state.load(target)
    key_path = openssh.login_key()
    public_key = Path(f"{key_path}.pub").read_text().strip() if Path(f"{key_path}.pub").exists() else None

    async def delete() -> tuple[Server | None, dict[str, Any]]:
        async with open_client(provider) as client:
            server = await client.get_server(pc.server_id) if pc.server_id else None
            if server is None and st.create_tag:
                server = await find_by_tag(client, st.create_tag)
            if server is None:
                return None, {"server_deleted": False, "ssh_key_deleted": False}
            progress(f"deleting server {server.name} ({server.id})")
            return server, await destroy_server(client, server.id, public_key)

    server, done = asyncio.run(delete())
    _reset(target, pc.ip)
    if server is None:
        progress(f"'{target}' has no {LABELS[provider]} server; nothing to destroy")
    return {"target": target, "provider": provider, "destroyed": server is not None,
            "server_id": server.id if server else None, **done}


def target_server_state(provider: str, target: str) -> str:
    """'running' | 'stopped' | 'missing' | 'unknown' (also when the API cannot be asked)."""
    from lightfold import config

    tc = config.load().targets.get(target)
    pc = tc.provider_config.get(provider) if tc else None
    if not pc or not pc.server_id:
        return "missing"

    async def look() -> str:
        async with open_client(provider) as client:
            server = await client.get_server(pc.server_id)
        if server is None:
            return "missing"
        return {"running": "running", "off": "stopped"}.get(server.status, "unknown")

    try:
        return asyncio.run(look())
    except LightfoldError:
        return "unknown"


def _target_summary(provider: str, target: str, server: Server, *, changed: bool) -> dict[str, Any]:
    return {"target": target, "provider": provider, "ip": server.ipv4, "ssh_user": "root",
            "server_id": server.id, "region": server.region, "size": server.size, "image": server.image,
            "changed": changed}


def _reset(target: str, ip: str | None) -> None:
    """Forget a server that is gone: its pinned key, host key, state, address and id."""
    from lightfold import config, state
    from lightfold.remote import openssh

    if ip:
        openssh.unpin(ip, 22)
    forget_host_key(target)
    state.remove(target)

    def drop(cfg: config.Config) -> None:
        tc = cfg.targets.get(target)
        if tc and tc.provider in tc.provider_config:
            pc = tc.provider_config[tc.provider]
            pc.ip, pc.server_id = None, None
            tc.provider_config = {**tc.provider_config, tc.provider: pc}

    config.update(drop)


def _wait_ready(server: Server, key: Path, progress: Progress) -> None:
    """Until root logs in with the pinned host key and cloud-init (when present) has finished."""
    from lightfold import remote
    from lightfold.remote import openssh

    deadline = time.monotonic() + READY_TIMEOUT
    progress(f"waiting for SSH on {server.ipv4}")

    async def ready() -> None:
        from lightfold.remote.connection import connect_when_up

        conn = await connect_when_up(server.ipv4, 22, "root", key, openssh.known_hosts_path(),
                                     deadline=deadline, interval=2)
        async with conn:
            left = max(5, int(deadline - time.monotonic()))
            await conn.run(f"if command -v cloud-init >/dev/null; then timeout {left} cloud-init status --wait; fi",
                           check=False, timeout=left + 5)

    remote.run_sync(ready())


class BaseClient:
    """What the three thin clients share besides the HTTP layer: lifetime and polling."""

    provider: str

    def __init__(self, api: Any, *, poll: float = 1.0):
        self.api = api
        self.poll = poll  # seconds between looks at an asynchronous provider action

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api.base!r})"

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.api.close()
