"""`lightfold create/destroy --provider <cloud>` end to end against a fake API (loopback VM
backend, so the SSH readiness step is left to the e2e suite with real sandbox machines)."""

from __future__ import annotations

import asyncio

import pytest
from tests.fakes import fake_class

from lightfold import config, state
from lightfold.errors import LightfoldError
from lightfold.providers import cloud, cloud_client, cloud_target
from lightfold.providers.http import BASE_URL_ENV
from lightfold.remote import openssh
from lightfold.secrets import TOKEN_ENV

TOKEN = "tok-SECRET-target-0123"


@pytest.fixture(params=["hetzner", "digitalocean", "vultr"])
def env(request, cloud_home, tmp_path, monkeypatch):
    provider = request.param
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # lightfold generates its own login key
    monkeypatch.setattr(cloud, "CREATE_POLL", 0.05)
    with fake_class(provider)(tokens=(TOKEN,), boot_delay=0.05) as fake:
        monkeypatch.setenv(TOKEN_ENV[provider], TOKEN)
        monkeypatch.setenv(BASE_URL_ENV[provider], fake.base_url)
        yield provider, fake


def test_create_records_pins_and_is_idempotent_then_destroy_cleans_up(env, tmp_path):
    provider, fake = env
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert made["changed"] and made["ip"].startswith("127.0.0.")

    pc = config.load().targets["shop"].provider_config[provider]
    assert (pc.ip, pc.server_id, pc.username) == (made["ip"], made["server_id"], "root")
    assert pc.region == cloud.DEFAULTS[provider]["region"]
    st = state.load("shop")
    assert st.created and st.create_tag and st.provisioned_id == made["server_id"]
    host_key = cloud.load_or_create_host_key("shop").public_openssh
    assert f"{made['ip']} {host_key}" in openssh.known_hosts_path().read_text()  # pinned before first contact
    booted = cloud.read_user_data(fake.vm.machines["shop"]["user_data"])
    assert booted["ssh_keys"]["ed25519_public"] == host_key
    assert cloud_target.target_server_state(provider, "shop") == "running"

    again = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert not again["changed"] and again["server_id"] == made["server_id"]
    assert len(fake.servers) == 1

    gone = cloud_target.destroy_target(provider, "shop")
    assert gone["destroyed"] and gone["ssh_key_deleted"]
    assert fake.servers == {} and fake.ssh_keys == {}
    assert made["ip"] not in openssh.known_hosts_path().read_text()
    assert not state.load("shop").created
    assert config.load().targets["shop"].provider_config[provider].ip is None
    assert cloud_target.target_server_state(provider, "shop") == "missing"
    assert not cloud_target.destroy_target(provider, "shop")["destroyed"]


def test_create_after_the_server_vanished_makes_a_new_one(env, tmp_path):
    provider, fake = env
    first = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    async def delete_in_console():
        async with cloud_client.open_client(provider) as c:
            await c.delete_server(first["server_id"])

    asyncio.run(delete_in_console())
    second = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert second["changed"] and second["server_id"] != first["server_id"]
    assert len(fake.servers) == 1


def test_bad_token_stops_create_before_anything_is_recorded(env, tmp_path, monkeypatch):
    provider, _fake = env
    monkeypatch.setenv(TOKEN_ENV[provider], "nope")
    with pytest.raises(LightfoldError) as e:
        cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    assert TOKEN_ENV[provider] in str(e.value)
    assert "shop" not in config.load().targets


def test_create_interrupted_after_the_api_call_resumes_without_a_second_server(env, tmp_path):
    """What a crash right after the create call leaves behind: the tag and host key stored, a
    server carrying the tag, nothing recorded as created. The rerun adopts that server."""
    provider, fake = env
    tag = cloud.new_create_tag("shop")
    state.update("shop", lambda s: setattr(s, "create_tag", tag))
    host_key = cloud.load_or_create_host_key("shop")

    async def first_attempt():
        async with cloud_client.open_client(provider) as c:
            await c.create_server("shop", cloud_client.ServerSpec(**cloud.DEFAULTS[provider]), [cloud.MANAGED_TAG, tag])

    asyncio.run(first_attempt())
    steps: list[str] = []
    made = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False, progress=steps.append)
    assert len(fake.servers) == 1 and made["server_id"] in fake.servers
    assert any("from an earlier create" in s for s in steps)
    assert f"{made['ip']} {host_key.public_openssh}" in openssh.known_hosts_path().read_text()


def test_force_replaces_the_server(env, tmp_path):
    provider, fake = env
    first = cloud_target.create_target(provider, "shop", tmp_path, ready_check=False)
    second = cloud_target.create_target(provider, "shop", tmp_path, force=True, ready_check=False)
    assert second["changed"] and second["server_id"] != first["server_id"]
    assert list(fake.servers) == [second["server_id"]]
