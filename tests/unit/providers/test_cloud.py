"""Pure pieces of the cloud layer (user data, host keys, tags, wait headers) and the fakes' own
contract (provider error shapes, schema checks, actions, standalone mode)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from tests.fakes import fake_class

from lightfold.providers import cloud
from lightfold.providers.http import ApiClient, ProviderError, rate_limit_reset, retry_after

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "tok-SECRET-fedcba9876543210"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm4xJ6O4ZgZt0Fx2sTQ0ZuDZ8gZyv4h0ugbKc9mY2aP alice@laptop"


# ---- user data and host keys

def test_user_data_carries_login_key_host_key_and_marker():
    key = cloud.generate_host_key()
    text = cloud.user_data(PUBKEY, key, "shop", "lf-shop-12345678")
    assert text.startswith("#cloud-config\n")
    config = cloud.read_user_data(text)
    assert config["ssh_authorized_keys"] == [PUBKEY]
    assert config["disable_root"] is False and config["ssh_pwauth"] is False
    assert config["ssh_keys"] == {"ed25519_private": key.private_openssh, "ed25519_public": key.public_openssh}
    assert config["ssh_genkeytypes"] == []  # sshd offers only the pinned key
    marker = config["write_files"][0]
    assert marker["path"] == "/etc/lightfold/created"
    assert json.loads(marker["content"])["tag"] == "lf-shop-12345678"


def test_user_data_is_yaml_that_cloud_init_reads():
    """cloud-init parses user data with PyYAML; ours is JSON, which must load to the same thing."""
    python = shutil.which("python3")
    probe = subprocess.run([python or "python3", "-c", "import yaml"], capture_output=True) if python else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no python3 with PyYAML on this machine")
    text = cloud.user_data(PUBKEY, cloud.generate_host_key(), "shop", "lf-shop-12345678")
    out = subprocess.run(
        [python, "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"],
        input=text, capture_output=True, text=True, check=True,
    )
    assert json.loads(out.stdout) == cloud.read_user_data(text)


def test_host_key_pair_matches(tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = cloud.generate_host_key()
    private = serialization.load_ssh_private_key(key.private_openssh.encode(), password=None)
    derived = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert derived.decode() == key.public_openssh
    assert key.public_openssh.startswith("ssh-ed25519 ")
    assert key.private_openssh not in repr(key)
    if shutil.which("ssh-keygen"):  # sshd's own tools accept it
        path = tmp_path / "host"
        path.write_text(key.private_openssh)
        path.chmod(0o600)
        out = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.split()[:2] == key.public_openssh.split()[:2]


def test_host_key_is_kept_until_forgotten(cloud_home):
    first = cloud.load_or_create_host_key("shop")
    assert cloud.load_or_create_host_key("shop") == first  # a retried create pins the same key
    path = cloud.host_key_path("shop")
    assert path.stat().st_mode & 0o777 == 0o600
    cloud.forget_host_key("shop")
    assert cloud.load_or_create_host_key("shop") != first


def test_md5_fingerprint_matches_ssh_keygen(tmp_path):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen not installed")
    path = tmp_path / "k.pub"
    path.write_text(PUBKEY + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path)], capture_output=True, text=True,
                         check=True)
    assert f"MD5:{cloud.md5_fingerprint(PUBKEY)}" in out.stdout


# ---- names and tags

def test_create_tags_are_unique_and_fit_every_provider():
    tags = {cloud.new_create_tag("My Shop_v2.example.com" * 3) for _ in range(50)}
    assert len(tags) == 50
    for tag in tags:
        assert len(tag) <= 63
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", tag)  # Hetzner label key and DO tag


def test_server_name_is_a_hostname():
    assert cloud.server_name("My Shop_v2") == "my-shop-v2"
    assert re.fullmatch(r"[a-z0-9-]{1,63}", cloud.server_name("x" * 100))


# ---- wait headers

def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after({"Retry-After": "7"}) == 7
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480) == 5
    assert retry_after({}) is None
    assert retry_after({"Retry-After": "soon"}) is None


def test_rate_limit_reset_is_a_unix_time():
    assert rate_limit_reset({"RateLimit-Reset": "1000"}, now=990) == 10
    assert rate_limit_reset({"RateLimit-Reset": "1000"}, now=2000) == 0
    assert rate_limit_reset({}) is None


def test_links_outside_the_api_never_get_the_token():
    async def go():
        async with ApiClient("digitalocean", TOKEN, lambda s, b: ("x", "y"), base="http://127.0.0.1:9/v2") as api:
            await api.get("http://elsewhere.invalid/v2/droplets?page=2")

    with pytest.raises(ProviderError) as e:
        asyncio.run(go())
    assert e.value.code == "bad_link"


# ---- the fakes' contract

async def raw(fake, method, path, body=None, token=TOKEN):
    async with aiohttp.ClientSession() as s, s.request(
        method, fake.base_url + path, json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status, await r.json() if r.content_length != 0 else None, r.headers


@pytest.mark.parametrize("provider,path,shape", [
    ("hetzner", "/servers", {"error": {"code": "unauthorized", "message": "unable to authenticate",
                                       "details": {}}}),
    ("digitalocean", "/droplets", {"id": "unauthorized", "message": "Unable to authenticate you"}),
    ("vultr", "/instances", {"error": "Invalid API token.", "status": 401}),
])
def test_bad_token_gets_the_providers_error_shape(cloud_home, provider, path, shape):
    with fake_class(provider)(tokens=(TOKEN,)) as fake:
        status, body, _ = asyncio.run(raw(fake, "GET", path, token="nope"))
    body.pop("request_id", None)
    assert (status, body) == (401, shape)


def test_hetzner_fake_rejects_a_create_without_required_fields(cloud_home):
    with fake_class("hetzner")(tokens=(TOKEN,)) as fake:
        status, body, _ = asyncio.run(raw(fake, "POST", "/servers", {"server_type": "cx22", "image": "debian-12"}))
    assert status == 400
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["details"]["fields"][0]["name"] == "name"


def test_digitalocean_fake_rejects_wrong_types(cloud_home):
    with fake_class("digitalocean")(tokens=(TOKEN,)) as fake:
        status, body, _ = asyncio.run(raw(fake, "POST", "/droplets",
                                          {"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                                           "tags": "not-a-list"}))
    assert (status, body["id"]) == (422, "unprocessable_entity")
    assert "tags" in body["message"]


def test_vultr_fake_wants_base64_user_data(cloud_home):
    with fake_class("vultr")(tokens=(TOKEN,)) as fake:
        status, body, _ = asyncio.run(raw(fake, "POST", "/instances",
                                          {"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2136,
                                           "user_data": "#cloud-config\n{}"}))
    assert (status, body) == (400, {"error": "user_data must be base64 encoded.", "status": 400})


def test_hetzner_actions_run_asynchronously(cloud_home):
    with fake_class("hetzner")(tokens=(TOKEN,), boot_delay=0.1) as fake:
        async def go():
            _, made, headers = await raw(fake, "POST", "/servers", {"name": "web", "server_type": "cx22",
                                                                   "image": "debian-12", "location": "nbg1"})
            action = made["action"]
            await asyncio.sleep(0.3)
            _, later, _ = await raw(fake, "GET", f"/actions/{action['id']}")
            _, server, _ = await raw(fake, "GET", f"/servers/{made['server']['id']}")
            return made, action, later["action"], server["server"], headers

        made, action, later, server, headers = asyncio.run(go())
    assert made["server"]["status"] == "initializing" and made["server"]["public_net"]["ipv4"] is None
    assert (action["command"], action["status"]) == ("create_server", "running")
    assert later["status"] == "success"
    assert server["status"] == "running" and server["public_net"]["ipv4"]["ip"].startswith("127.0.0.")
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers)


def test_digitalocean_create_links_its_action(cloud_home):
    with fake_class("digitalocean")(tokens=(TOKEN,), boot_delay=0.1) as fake:
        async def go():
            status, made, _ = await raw(fake, "POST", "/droplets", {"name": "web", "size": "s-1vcpu-1gb",
                                                                    "image": "debian-12-x64", "region": "nyc3"})
            link = made["links"]["actions"][0]
            _, first, _ = await raw(fake, "GET", f"/actions/{link['id']}")
            await asyncio.sleep(0.3)
            _, later, _ = await raw(fake, "GET", f"/actions/{link['id']}")
            return status, made, link, first["action"], later["action"]

        status, made, link, first, later = asyncio.run(go())
    assert status == 202 and made["droplet"]["status"] == "new" and made["droplet"]["networks"]["v4"] == []
    assert link["rel"] == "create" and link["href"].endswith(f"/v2/actions/{link['id']}")
    assert (first["status"], later["status"]) == ("in-progress", "completed")


def test_vultr_cursor_pagination(cloud_home):
    with fake_class("vultr")(tokens=(TOKEN,), max_per_page=2) as fake:
        async def go():
            _, first, _ = await raw(fake, "GET", "/regions")
            _, second, _ = await raw(fake, "GET", f"/regions?cursor={first['meta']['links']['next']}")
            return first, second

        first, second = asyncio.run(go())
    assert first["meta"]["total"] == 6 and len(first["regions"]) == 2
    assert base64.b64decode(first["meta"]["links"]["next"])  # an opaque cursor
    assert second["regions"][0]["id"] not in {r["id"] for r in first["regions"]}


def test_fake_runs_standalone_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.hetzner", "--port", "0", "--token", TOKEN, "--boot-delay", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url), proc.stderr.read()

        async def go():
            async with aiohttp.ClientSession() as s, s.get(
                url + "/locations", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as r:
                return r.status, await r.json()

        status, body = asyncio.run(go())
        assert status == 200 and body["locations"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
