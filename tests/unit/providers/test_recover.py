"""Following a cloud server whose address changed (`recover_address`, and a `create` rerun), and
the fakes' control endpoints used for it (loopback VM backend: no machine boots)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from tests.fakes import fake_class

from lightfold import config, state
from lightfold.errors import LightfoldError
from lightfold.providers import cloud, cloud_target
from lightfold.providers.http import BASE_URL_ENV
from lightfold.remote import openssh
from lightfold.secrets import TOKEN_ENV

TOKEN = "tok-SECRET-recover-0123"


@pytest.fixture(params=["hetzner", "digitalocean", "vultr"])
def env(request, cloud_home, tmp_path, monkeypatch):
    provider = request.param
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cloud, "CREATE_POLL", 0.05)
    with fake_class(provider)(tokens=(TOKEN,), boot_delay=0.05) as fake:
        monkeypatch.setenv(TOKEN_ENV[provider], TOKEN)
        monkeypatch.setenv(BASE_URL_ENV[provider], fake.base_url)
        yield provider, fake


def control(fake, path: str, body: dict) -> dict:
    origin = fake.base_url.rsplit("/", 1)[0]
    req = urllib.request.Request(origin + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def pinned(ip: str) -> bool:
    path = openssh.known_hosts_path()
    return path.exists() and any(line.split()[0] == ip for line in path.read_text().splitlines() if line.split())


def test_recover_follows_a_moved_server_and_moves_the_pin(env, tmp_path):
    provider, fake = env
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert cloud_target.recover_address(provider, "shop")["changed"] is False

    moved = control(fake, "/__move", {"id": made["server_id"]})
    assert moved["old_ip"] == made["ip"] and moved["ip"] != made["ip"]
    got = cloud_target.recover_address(provider, "shop")
    assert got == {"target": "shop", "provider": provider, "server_id": made["server_id"], "ip": moved["ip"],
                   "previous_ip": made["ip"], "changed": True, "found_by": "id"}
    assert config.load().targets["shop"].provider_config[provider].ip == moved["ip"]
    host_key = cloud.load_or_create_host_key("shop").public_openssh
    assert f"{moved['ip']} {host_key}" in openssh.known_hosts_path().read_text()
    assert not pinned(made["ip"])


def test_recover_by_tag_when_config_lost_the_server(env, tmp_path):
    provider, fake = env
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)

    def forget(cfg):
        pc = cfg.targets["shop"].provider_config[provider]
        pc.ip, pc.server_id = None, None

    config.update(forget)
    got = cloud_target.recover_address(provider, "shop")
    assert (got["ip"], got["server_id"], got["found_by"], got["changed"]) == (
        made["ip"], made["server_id"], "tag", True)
    assert config.load().targets["shop"].provider_config[provider].server_id == made["server_id"]
    assert len(fake.servers) == 1


def test_create_rerun_notices_a_changed_address(env, tmp_path):
    provider, fake = env
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    moved = control(fake, "/__move", {"id": made["server_id"]})
    again = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert not again["changed"] and again["address_changed"] and again["ip"] == moved["ip"]
    assert again["previous_ip"] == made["ip"]
    assert config.load().targets["shop"].provider_config[provider].ip == moved["ip"]
    assert pinned(moved["ip"]) and not pinned(made["ip"])
    assert len(fake.servers) == 1


def test_recover_without_a_server_or_host_key_fails_clearly(env, tmp_path):
    provider, fake = env
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    control(fake, "/__move", {"id": made["server_id"]})
    cloud.forget_host_key("shop")
    with pytest.raises(LightfoldError, match="no stored host key"):
        cloud_target.recover_address(provider, "shop")
    assert config.load().targets["shop"].provider_config[provider].ip == made["ip"]  # nothing recorded

    fake.call(lambda: fake.servers.clear())
    with pytest.raises(LightfoldError, match="has no server for 'shop'") as e:
        cloud_target.recover_address(provider, "shop")
    assert "lightfold create --target shop" in e.value.fix
    assert state.load("shop").create_tag


def test_create_takes_region_size_image_over_config_and_records_them(env, tmp_path):
    provider, _fake = env
    pick = {"hetzner": ("fsn1", "cpx11", "debian-12"), "digitalocean": ("fra1", "s-1vcpu-2gb", "debian-12-x64"),
            "vultr": ("ams", "vc2-1c-2gb", "2136")}[provider]
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False,
                               region=pick[0], size=pick[1], image=pick[2])
    assert (made["region"], made["size"], made["image"]) == pick
    pc = config.load().targets["shop"].provider_config[provider]
    assert (pc.region, pc.size, pc.image) == pick


def test_a_fault_filtered_by_method_and_path_hits_only_those_requests(env, tmp_path):
    provider, fake = env
    create_path = {"hetzner": "/v1/servers", "digitalocean": "/v2/droplets", "vultr": "/v2/instances"}[provider]
    control(fake, "/__fault", {"status": 500, "count": 1, "method": "POST", "path": create_path})
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert made["changed"] and len(fake.servers) == 1
    posts = [r for r in fake.requests if r == ("POST", create_path)]
    assert len(posts) == 2  # the refused one and the retry after looking up the tag
