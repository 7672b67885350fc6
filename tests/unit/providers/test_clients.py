"""Each thin client against its stateful fake: what `lightfold create/destroy` relies on."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest
from tests.fakes import fake_class

from lightfold.errors import LightfoldError
from lightfold.providers import cloud, cloud_client
from lightfold.providers.cloud_client import ServerSpec
from lightfold.providers.http import ProviderError, RetryPolicy
from lightfold.secrets import TOKEN_ENV

PROVIDERS = ["hetzner", "digitalocean", "vultr"]
TOKEN = "tok-SECRET-0123456789abcdef"
# Tiny waits: a retried request costs milliseconds, not seconds (a Retry-After still wins).
FAST = RetryPolicy(attempts=5, backoff=0.01, max_delay=5.0, timeout=2.0)

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm4xJ6O4ZgZt0Fx2sTQ0ZuDZ8gZyv4h0ugbKc9mY2aP alice@laptop"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqk1uUVg7nJ8S7S2Hh6c1qfO8Qx6c0S0m9x3b2pQy4Z bob@desk"


@pytest.fixture(params=PROVIDERS)
def provider(request) -> str:
    return request.param


@pytest.fixture
def fake(provider, cloud_home):
    """The provider's fake API on 127.0.0.1:<random port>; servers boot (on loopback) after 0.05 s."""
    with fake_class(provider)(tokens=(TOKEN,), boot_delay=0.05) as f:
        yield f


def run(coro):
    return asyncio.run(coro)


def client(provider, fake, token=TOKEN, retry=FAST):
    return cloud_client.open_client(provider, token=token, base=fake.base_url, retry=retry, poll=0.05)


def spec(provider, **over) -> ServerSpec:
    return ServerSpec(**(cloud.DEFAULTS[provider] | over))


async def post_control(fake, body):
    root = fake.base_url.rsplit("/", 1)[0]
    async with aiohttp.ClientSession() as s, s.post(f"{root}/__fault", json=body) as r:
        assert r.status == 200


# ---- token

def test_good_token_is_accepted(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            return await c.validate_token()

    assert run(go())


def test_bad_token_is_one_line_naming_the_env_var(provider, fake):
    bad = "WRONG-token-that-must-not-leak"

    async def go():
        async with client(provider, fake, token=bad) as c:
            await c.validate_token()

    with pytest.raises(ProviderError) as e:
        run(go())
    msg = str(e.value)
    assert e.value.status == 401
    assert TOKEN_ENV[provider] in msg
    assert bad not in msg and "\n" not in msg


def test_missing_token_names_the_env_var(provider, cloud_home):
    with pytest.raises(LightfoldError) as e:
        cloud_client.open_client(provider)
    assert TOKEN_ENV[provider] in str(e.value)


def test_token_comes_from_the_provider_env_var(provider, fake, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV[provider], TOKEN)

    async def go():
        async with cloud_client.open_client(provider, base=fake.base_url, retry=FAST) as c:
            return await c.validate_token()

    assert run(go())


def test_base_url_comes_from_the_env_var(provider, fake, monkeypatch):
    from lightfold.providers.http import BASE_URL_ENV

    monkeypatch.setenv(BASE_URL_ENV[provider], fake.base_url)

    async def go():
        async with cloud_client.open_client(provider, token=TOKEN, retry=FAST) as c:
            return await c.validate_token()

    assert run(go())
    assert fake.requests  # the fake, not the real API, answered


# ---- SSH keys

def test_ssh_key_upload_is_idempotent(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            first, created1 = await cloud.ensure_ssh_key(c, PUBKEY)
            # Same key, different comment: still the same key.
            second, created2 = await cloud.ensure_ssh_key(c, PUBKEY.rsplit(" ", 1)[0] + " alice@other")
            return first, created1, second, created2

    first, created1, second, created2 = run(go())
    assert (created1, created2) == (True, False)
    assert first.id == second.id
    assert first.name.startswith(cloud.KEY_NAME_PREFIX)
    assert len(fake.ssh_keys) == 1


# ---- create, wait, list, delete

def test_create_then_wait_until_running_with_an_ip(provider, fake):
    host_key = cloud.generate_host_key()
    tag = cloud.new_create_tag("my-app")

    async def go():
        async with client(provider, fake) as c:
            key, _ = await cloud.ensure_ssh_key(c, PUBKEY)
            s = await cloud.validate_spec(c, spec(provider))
            s = s.model_copy(update={"ssh_key_ids": [key.id],
                                     "user_data": cloud.user_data(PUBKEY, host_key, "my-app", tag)})
            fresh = await c.create_server(cloud.server_name("my-app"), s, [cloud.MANAGED_TAG, tag])
            ready = await cloud.wait_running(c, fresh.id, timeout=10, poll=0.05)
            return fresh, ready

    fresh, ready = run(go())
    assert fresh.status == "pending" and fresh.ipv4 is None  # the address comes late
    assert ready.status == "running" and ready.ipv4.startswith("127.0.0.")
    assert set(ready.tags) >= {cloud.MANAGED_TAG, tag}
    booted = fake.vm.machines["my-app"]
    assert booted["ip"] == ready.ipv4
    # The machine boots the OS the server was made with, as the provider names it (Debian 13).
    assert {"hetzner": "debian-13", "digitalocean": "debian-13-x64",
            "vultr": "Debian 13 x64 (trixie)"}[provider] == booted["image"]
    config = cloud.read_user_data(booted["user_data"])  # what the machine got on first boot
    assert config["ssh_keys"]["ed25519_public"] == host_key.public_openssh
    assert config["ssh_authorized_keys"] == [PUBKEY]
    assert config["write_files"][0]["path"] == "/etc/lightfold/created"
    stored = fake.servers[ready.id]
    assert [k.split()[:2] for k in stored["_ssh_keys"]] == [PUBKEY.split()[:2]]  # the key went in by id


def test_list_by_tag_finds_only_that_server(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            a = await cloud.ensure_server(c, "app-a", "lf-app-a-00000001", spec(provider), wait=False)
            b = await cloud.ensure_server(c, "app-b", "lf-app-b-00000002", spec(provider), wait=False)
            return a, b, await c.list_servers("lf-app-a-00000001"), await c.list_servers(cloud.MANAGED_TAG)

    a, b, only_a, managed = run(go())
    assert [s.id for s in only_a] == [a.server.id]
    assert {s.id for s in managed} == {a.server.id, b.server.id}


def test_ensure_server_twice_finds_the_first(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            first = await cloud.ensure_server(c, "app", "lf-app-0000000a", spec(provider), poll=0.05)
            again = await cloud.ensure_server(c, "app", "lf-app-0000000a", spec(provider), poll=0.05)
            return first, again

    first, again = run(go())
    assert first.created and not again.created
    assert first.server.id == again.server.id and again.server.ipv4
    assert len(fake.servers) == 1


def test_destroy_deletes_server_machine_and_our_key(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            key, _ = await cloud.ensure_ssh_key(c, PUBKEY)
            await c.create_ssh_key("laptop", OTHER_KEY)  # the user's own key: never touched
            s = spec(provider, ssh_key_ids=[key.id])
            made = await cloud.ensure_server(c, "gone", "lf-gone-0000000b", s, poll=0.05)
            done = await cloud.destroy_server(c, made.server.id, PUBKEY)
            again = await cloud.destroy_server(c, made.server.id, PUBKEY)
            return done, again, await c.get_server(made.server.id)

    done, again, after = run(go())
    assert done == {"server_deleted": True, "ssh_key_deleted": True}
    assert again == {"server_deleted": False, "ssh_key_deleted": False}
    assert after is None
    assert [k["name"] for k in fake.ssh_keys.values()] == ["laptop"]
    deadline = time.monotonic() + 5
    while fake.vm.machines and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.vm.machines == {}


def test_key_is_kept_while_another_lightfold_server_exists(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            key, _ = await cloud.ensure_ssh_key(c, PUBKEY)
            s = spec(provider, ssh_key_ids=[key.id])
            one = await cloud.ensure_server(c, "one", "lf-one-0000000c", s, wait=False)
            await cloud.ensure_server(c, "two", "lf-two-0000000d", s, wait=False)
            return await cloud.destroy_server(c, one.server.id, PUBKEY)

    assert run(go()) == {"server_deleted": True, "ssh_key_deleted": False}
    assert len(fake.ssh_keys) == 1


def test_pagination_over_several_pages(provider, cloud_home):
    with fake_class(provider)(tokens=(TOKEN,), boot_delay=0.05, max_per_page=2) as fake:
        async def go():
            async with client(provider, fake) as c:
                for i in range(5):
                    await c.create_server(f"page-{i}", spec(provider), [cloud.MANAGED_TAG, f"lf-page-{i}"])
                before = len(fake.requests)
                servers = await c.list_servers(cloud.MANAGED_TAG)
                return servers, fake.requests[before:]

        servers, calls = run(go())
    assert sorted(s.name for s in servers) == [f"page-{i}" for i in range(5)]
    assert len(calls) == 3  # 2 + 2 + 1


# ---- rate limits, server errors, timeouts

@pytest.mark.parametrize("provider", ["hetzner", "digitalocean"])
def test_429_waits_as_long_as_retry_after_says(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            await post_control(fake, {"status": 429, "count": 1, "retry_after": 1})
            started = time.monotonic()
            servers = await c.list_servers()
            return servers, time.monotonic() - started

    servers, took = run(go())
    assert servers == []
    assert took >= 0.95  # the client's own backoff is 10 ms: only Retry-After explains a second


def test_429_burst_is_ridden_out(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            await post_control(fake, {"status": 429, "count": 3, "retry_after": 0})
            return await c.validate_token()

    assert run(go())
    assert len(fake.requests) == 4


def test_fake_rate_limit_answers_429_with_retry_after(cloud_home):
    with fake_class("hetzner")(tokens=(TOKEN,), rate_limit=2, rate_window=1.0) as fake:
        async def go():
            async with client("hetzner", fake) as c:
                started = time.monotonic()
                for _ in range(3):
                    await c.validate_token()
                return time.monotonic() - started

        took = run(go())
    assert took >= 0.5  # the third call was refused once and waited for the window
    assert len(fake.requests) == 4


def test_too_long_retry_after_is_reported_not_waited_out(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            await post_control(fake, {"status": 429, "count": 1, "retry_after": 3600})
            await c.validate_token()

    started = time.monotonic()
    with pytest.raises(ProviderError) as e:
        run(go())
    assert time.monotonic() - started < 2
    assert e.value.status == 429 and "wait" in str(e.value)


def test_500_burst_is_ridden_out(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            await post_control(fake, {"status": 500, "count": 3})
            return await c.list_servers()

    assert run(go()) == []
    assert len(fake.requests) == 4


def test_500_that_never_ends_is_reported(provider, fake):
    async def go():
        async with client(provider, fake, retry=RetryPolicy(attempts=3, backoff=0.01, timeout=2)) as c:
            await post_control(fake, {"status": 500, "count": 10})
            await c.list_servers()

    with pytest.raises(ProviderError) as e:
        run(go())
    assert e.value.status == 500 and "\n" not in str(e.value)


def test_500_on_create_is_not_repeated_blindly(provider, fake):
    """A failed POST is not retried by the HTTP layer; ensure_server looks the tag up, finds
    nothing (this 500 came before anything was made) and creates exactly once."""
    async def go():
        async with client(provider, fake) as c:
            s = await cloud.validate_spec(c, spec(provider))
            await post_control(fake, {"status": 500, "count": 1})
            return await cloud.ensure_server(c, "flaky", "lf-flaky-0000000e", s, poll=0.05)

    result = run(go())
    assert result.created and result.server.ipv4
    assert len(fake.servers) == 1


def test_timeout_after_create_then_retry_makes_exactly_one_server(provider, fake):
    slow = RetryPolicy(attempts=3, backoff=0.01, timeout=0.3)
    tag = "lf-crash-0000000f"

    async def interrupted():
        async with client(provider, fake, retry=slow) as c:
            await post_control(fake, {"timeout_after_create": True, "hang": 5})
            # create_attempts=1: as if the CLI died right after sending the create.
            await cloud.ensure_server(c, "crash", tag, spec(provider), create_attempts=1, poll=0.05)

    with pytest.raises(ProviderError) as e:
        run(interrupted())
    assert e.value.code == "timeout" and e.value.ambiguous

    async def rerun():
        async with client(provider, fake, retry=slow) as c:
            return await cloud.ensure_server(c, "crash", tag, spec(provider), poll=0.05)

    result = run(rerun())
    assert not result.created and result.server.ipv4
    assert len(fake.servers) == 1


def test_timeout_after_create_is_recovered_within_one_call(provider, fake):
    slow = RetryPolicy(attempts=3, backoff=0.01, timeout=0.3)

    async def go():
        async with client(provider, fake, retry=slow) as c:
            await post_control(fake, {"timeout_after_create": True, "hang": 5})
            return await cloud.ensure_server(c, "lost", "lf-lost-00000010", spec(provider), poll=0.05)

    result = run(go())
    assert result.created and result.server.ipv4
    assert len(fake.servers) == 1
    assert sum(1 for m, p in fake.requests if m == "POST") == 1


# ---- validation

def test_defaults_are_valid(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            return await cloud.validate_spec(c, spec(provider))

    assert run(go()).size == cloud.DEFAULTS[provider]["size"]


@pytest.mark.parametrize("field,flag", [("region", "--region"), ("size", "--size"), ("image", "--image")])
def test_unknown_value_lists_the_valid_choices(provider, fake, field, flag):
    async def go():
        async with client(provider, fake) as c:
            await cloud.validate_spec(c, spec(provider, **{field: "nowhere-9"}))

    with pytest.raises(LightfoldError) as e:
        run(go())
    msg = str(e.value)
    assert "'nowhere-9'" in msg and flag in msg
    # the valid choices are listed (Vultr's by os_id: 2625 is what debian-13-x64 names in its list)
    assert ("2625" if (provider, field) == ("vultr", "image") else cloud.DEFAULTS[provider][field]) in msg


def test_the_default_image_is_debian_13_by_the_providers_own_list(provider, fake):
    async def go():
        async with client(provider, fake) as c:
            return await cloud.validate_spec(c, spec(provider)), await c.list_images()

    checked, images = run(go())
    label = next(i.label for i in images if i.id == checked.image)
    assert "Debian" in label and "13" in label


def test_size_not_offered_in_region_is_refused(provider, fake):
    combos = {"hetzner": ("ash", "cx22"), "digitalocean": ("lon1", "s-1vcpu-512mb-10gb"),
              "vultr": ("sgp", "vhf-1c-1gb")}
    region, size = combos[provider]

    async def go():
        async with client(provider, fake) as c:
            await cloud.validate_spec(c, spec(provider, region=region, size=size))

    with pytest.raises(LightfoldError) as e:
        run(go())
    assert f"'{size}' is not offered in region '{region}'" in str(e.value)


def test_vultr_image_may_be_given_by_name(cloud_home):
    with fake_class("vultr")(tokens=(TOKEN,)) as fake:
        async def go():
            async with client("vultr", fake) as c:
                return await cloud.validate_spec(c, spec("vultr", image="Debian 12 x64 (bookworm)"))

        assert run(go()).image == "2136"


# ---- secrets

def test_token_never_in_logs_or_errors(provider, fake, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []

    async def go():
        async with client(provider, fake, retry=RetryPolicy(attempts=2, backoff=0.01, timeout=0.3)) as c:
            errors.append(repr(c))
            await c.validate_token()
            await post_control(fake, {"status": 500, "count": 5})
            try:
                await c.list_servers()
            except ProviderError as e:
                errors.append(str(e))
            await post_control(fake, {"timeout_after_create": True, "hang": 3})
            try:
                await cloud.ensure_server(c, "x", "lf-x-00000011", spec(provider), create_attempts=1, wait=False)
            except ProviderError as e:
                errors.append(str(e))
        async with client(provider, fake, token=TOKEN + "-bad") as c:
            try:
                await c.validate_token()
            except ProviderError as e:
                errors.append(str(e))

    run(go())
    assert len(errors) == 4
    assert "->" in caplog.text  # requests were logged...
    for text in [caplog.text, *errors]:
        assert TOKEN not in text  # ...but never the token


def test_server_that_fails_to_boot_is_reported_not_waited_for(provider, cloud_home, monkeypatch):
    class Broken:
        def boot(self, name, user_data):
            raise RuntimeError("no space left on device")

        def destroy(self, name):
            pass

    monkeypatch.setattr(cloud, "OFF_GRACE", 0.2)
    with fake_class(provider)(tokens=(TOKEN,), boot_delay=0.01, vm_backend=Broken()) as fake:
        async def go():
            async with client(provider, fake) as c:
                await cloud.ensure_server(c, "dud", "lf-dud-00000012", spec(provider), timeout=10, poll=0.05)

        started = time.monotonic()
        with pytest.raises(LightfoldError) as e:
            run(go())
    assert "stopped while starting" in str(e.value)
    assert time.monotonic() - started < 5


def test_unreachable_api_is_one_line_naming_the_address(provider, cloud_home):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go():
        async with cloud_client.open_client(provider, token=TOKEN, base=f"http://127.0.0.1:{port}/v1",
                                     retry=RetryPolicy(attempts=2, backoff=0.01, timeout=1)) as c:
            await c.create_server("x", spec(provider), ["lightfold"])

    with pytest.raises(ProviderError) as e:
        run(go())
    assert f"127.0.0.1:{port}" in str(e.value) and not e.value.ambiguous  # nothing was sent, so nothing made
    assert TOKEN not in str(e.value)
