"""Managed load balancers and private networks (`lightfold scale` on a cloud provider): each
provider's request body as text, and each thin client against its stateful fake (load balancers
on loopback: configured, never carrying traffic; the e2e tests run the HAProxy ones)."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.unit.providers.test_clients import PUBKEY, client, spec

from lightfold.providers import cloud, cloud_scale
from lightfold.providers import digitalocean as do
from lightfold.providers import hetzner as hz
from lightfold.providers import vultr as vu
from lightfold.providers.cloud_client import BalancerSpec
from lightfold.server.firewall import ruleset


def lb_spec(**over) -> BalancerSpec:
    return BalancerSpec(**({"name": "lf-shop-1a2b3c4d-lb", "region": "nbg1",
                            "tags": ["lightfold", "lf-shop-1a2b3c4d-lb"], "health_path": "/healthz",
                            "health_host": "shop.example.com", "network_id": "42",
                            "target_ids": ["7", "8"]} | over))


def test_digitalocean_balancer_body():
    body = do.balancer_request(lb_spec(network_id="5a4981aa-9653-4bd1-bef5-d6bff52042e4"))
    assert json.dumps(body, sort_keys=True) == json.dumps({
        "name": "lf-shop-1a2b3c4d-lb", "region": "nbg1", "size_unit": 1, "algorithm": "round_robin",
        "forwarding_rules": [{"entry_protocol": "http", "entry_port": 80, "target_protocol": "http",
                              "target_port": 80}],
        "health_check": {"protocol": "http", "port": 80, "path": "/healthz", "check_interval_seconds": 3,
                         "response_timeout_seconds": 3, "healthy_threshold": 2, "unhealthy_threshold": 2},
        "redirect_http_to_https": False, "droplet_ids": [7, 8],
        "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4"}, sort_keys=True)


def test_digitalocean_tls_ends_at_the_balancer_with_its_certificate():
    body = do.balancer_request(lb_spec(certificate_id="892071a0-bb95-49bc-8021-3afd67a210bf"))
    assert body["forwarding_rules"][1] == {
        "entry_protocol": "https", "entry_port": 443, "target_protocol": "http", "target_port": 80,
        "certificate_id": "892071a0-bb95-49bc-8021-3afd67a210bf", "tls_passthrough": False}
    assert body["redirect_http_to_https"] is True


def test_hetzner_balancer_body():
    body = hz.balancer_request(lb_spec())
    assert json.dumps(body, sort_keys=True) == json.dumps({
        "name": "lf-shop-1a2b3c4d-lb", "load_balancer_type": "lb11", "location": "nbg1",
        "algorithm": {"type": "round_robin"}, "labels": {"lightfold": "", "lf-shop-1a2b3c4d-lb": ""},
        "public_interface": True, "network": 42,
        "services": [{"protocol": "http", "listen_port": 80, "destination_port": 80, "proxyprotocol": False,
                      "health_check": {"protocol": "http", "port": 80, "interval": 3, "timeout": 2, "retries": 1,
                                       "http": {"domain": "shop.example.com", "path": "/healthz",
                                                "status_codes": ["2??", "3??"], "tls": False}}}],
        "targets": [{"type": "server", "server": {"id": 7}, "use_private_ip": True},
                    {"type": "server", "server": {"id": 8}, "use_private_ip": True}]}, sort_keys=True)


def test_hetzner_tls_ends_at_the_balancer_and_http_is_redirected():
    (service,) = hz.balancer_request(lb_spec(certificate_id="897"))["services"]
    assert (service["protocol"], service["listen_port"], service["destination_port"]) == ("https", 443, 80)
    assert service["http"] == {"certificates": [897], "redirect_http": True}


def test_vultr_balancer_body():
    body = vu.balancer_request(lb_spec(network_id="cb676a46-66fd-4dfb-b839-443f2e6c0b60", target_ids=["a-1"]))
    assert json.dumps(body, sort_keys=True) == json.dumps({
        "region": "nbg1", "label": "lf-shop-1a2b3c4d-lb", "balancing_algorithm": "roundrobin",
        "forwarding_rules": [{"frontend_protocol": "http", "frontend_port": 80, "backend_protocol": "http",
                              "backend_port": 80}],
        "health_check": {"protocol": "http", "port": 80, "path": "/healthz", "check_interval": 3,
                         "response_timeout": 2, "healthy_threshold": 2, "unhealthy_threshold": 2},
        "instances": ["a-1"], "vpc": "cb676a46-66fd-4dfb-b839-443f2e6c0b60"}, sort_keys=True)


def test_vultr_tls_by_its_automatic_certificate_for_the_domain():
    body = vu.balancer_request(lb_spec(domain="shop.example.com"))
    assert body["auto_ssl"] == {"domain_zone": "example.com", "domain_sub": "shop"} and body["ssl_redirect"] is True
    assert body["forwarding_rules"][1] == {"frontend_protocol": "https", "frontend_port": 443,
                                           "backend_protocol": "http", "backend_port": 80}


def test_server_tags_derive_from_the_create_tag():
    assert cloud_scale.server_tag("lf-shop-1a2b3c4d", "shop", "shop") == "lf-shop-1a2b3c4d"
    assert cloud_scale.server_tag("lf-shop-1a2b3c4d", "shop", "shop-3") == "lf-shop-1a2b3c4d-3"
    assert cloud_scale.balancer_name("lf-shop-1a2b3c4d") == "lf-shop-1a2b3c4d-lb"


def test_the_firewall_takes_web_traffic_from_a_private_network():
    text = ruleset(22, (), web_from="10.108.0.0/20")
    assert "ip saddr 10.108.0.0/20 tcp dport { 80, 443 } accept" in text
    with pytest.raises(ValueError):
        ruleset(22, (), web_from="10.0.0.0/8; drop")


# ---- each client against its fake

@pytest.mark.parametrize("provider", ["hetzner", "digitalocean", "vultr"])
def test_balancer_in_the_private_network_found_again_with_its_targets(provider, cloud_home):
    from tests.fakes import fake_class

    tag = cloud.new_create_tag("shop")
    name = cloud_scale.balancer_name(tag)
    region = cloud.DEFAULTS[provider]["region"]
    with fake_class(provider)(tokens=("tok-SECRET-0123456789abcdef",), boot_delay=0.05) as fake:
        async def go():
            async with client(provider, fake) as c:
                key, _ = await cloud.ensure_ssh_key(c, PUBKEY)
                s = (await cloud.validate_spec(c, spec(provider))).model_copy(update={"ssh_key_ids": [key.id]})
                first = (await cloud.ensure_server(c, "shop", tag, s, timeout=10, poll=0.05)).server
                network = await c.private_network(name, region, first.id, tag)
                again = await c.private_network(name, region, first.id, tag)  # found, not made twice
                assert again.id == network.id
                second = (await cloud.ensure_server(c, "shop-2", f"{tag}-2", s.model_copy(
                    update={"network_id": network.id}), timeout=10, poll=0.05)).server
                made = await c.create_balancer(BalancerSpec(
                    name=name, region=region, tags=[cloud.MANAGED_TAG, name], health_path="/up",
                    network_id=network.id, target_ids=[first.id]))
                active = await cloud_scale._wait_active(c, made.id, timeout=10)
                found = await c.find_balancer(name)
                await c.set_balancer_targets(active, [first.id, second.id])
                both = await c.get_balancer(made.id)
                await c.set_balancer_targets(both, [first.id])
                one = await c.get_balancer(made.id)
                (given,) = [dict(b) for b in fake.vm.balancers.values()]  # what the fake's HAProxy got last
                await c.delete_balancer(made.id)
                return made, active, found, both, one, network, first, second, given

        made, active, found, both, one, network, first, second, balancer = asyncio.run(go())
    assert made.ip is None or provider == "hetzner"  # DO and Vultr give the address later
    assert active.status == "active" and active.ip and found.id == made.id
    assert set(both.target_ids) == {first.id, second.id} and one.target_ids == [first.id]
    assert [b for b, _ in balancer["backends"]] == [f"s{first.id}"] and balancer["health_path"] == "/up"
    if provider == "hetzner":  # it reports its own checks, and its address in the network
        assert both.health == {first.id: True, second.id: True} and active.private_ip
    else:
        assert both.health is None
    assert network.ip_range


@pytest.mark.parametrize("provider", ["hetzner", "digitalocean", "vultr"])
def test_a_balancer_create_whose_answer_is_lost_is_found_not_made_twice(provider, cloud_home):
    from tests.fakes import fake_class
    from tests.unit.providers.test_clients import post_control

    region = cloud.DEFAULTS[provider]["region"]
    path = {"hetzner": "/v1/load_balancers", "digitalocean": "/v2/load_balancers",
            "vultr": "/v2/load-balancers"}[provider]
    with fake_class(provider)(tokens=("tok-SECRET-0123456789abcdef",), boot_delay=0.05) as fake:
        async def go():
            await post_control(fake, {"status": 500, "count": 1, "method": "POST", "path": path})
            async with client(provider, fake) as c:  # refused: looked up by name, then made
                first = await cloud_scale._create_balancer(c, BalancerSpec(name="lf-a-1-lb", region=region))
            await post_control(fake, {"timeout_after_create": True, "hang": 3})
            async with client(provider, fake) as c:  # made, its answer lost: found by name
                second = await cloud_scale._create_balancer(c, BalancerSpec(name="lf-b-2-lb", region=region))
            return first, second

        first, second = asyncio.run(go())
        names = sorted(b.get("name") or b.get("label") for b in fake.balancers.values())
    assert names == ["lf-a-1-lb", "lf-b-2-lb"] and first.name == "lf-a-1-lb" and second.name == "lf-b-2-lb"
