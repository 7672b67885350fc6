"""Every provider implements the `Provider` protocol (the cloud ones `CloudProvider`), the provider
list is written once, and the flag rules of `create`/`deploy` name the flag that does not apply."""

from __future__ import annotations

import inspect

import pytest

from lightfold import providers, secrets
from lightfold.errors import LightfoldError, UsageError
from lightfold.names import CLOUD_PROVIDERS, PROVIDERS
from lightfold.providers import cloud, flags, http


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_provider_implements_the_protocol(name):
    provider = providers.get(name)
    assert isinstance(provider, providers.Provider)
    assert isinstance(provider, providers.CloudProvider) == (name in CLOUD_PROVIDERS)
    for method in ("create", "destroy"):
        params = inspect.signature(getattr(provider, method)).parameters
        assert "progress" in params and params["progress"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(provider.create).parameters)[:3] == ["target", "project_path", "force"]


def test_an_unknown_provider_is_one_line_listing_the_known_ones():
    with pytest.raises(LightfoldError) as e:
        providers.get("aws")
    assert e.value.problem == "unknown provider 'aws'" and ", ".join(PROVIDERS) in e.value.fix
    with pytest.raises(LightfoldError):
        providers.get_cloud("byos")


def test_each_cloud_table_covers_exactly_the_cloud_providers():
    for table in (secrets.TOKEN_ENV, http.LABELS, http.DEFAULT_BASE_URLS, http.BASE_URL_ENV, cloud.DEFAULTS):
        assert sorted(table) == sorted(CLOUD_PROVIDERS)


@pytest.mark.parametrize(("provider", "flag", "options"), [
    ("byos", "--network", {"network": "nat"}),
    ("hetzner", "--network", {"network": "isolated"}),
    ("local", "--ip", {"ip": "10.0.0.1"}),
    ("vultr", "--accept-new-host-key", {"accept_new_host_key": True}),
])
def test_a_flag_for_another_provider_is_a_usage_error_naming_it(provider, flag, options):
    with pytest.raises(UsageError) as e:
        flags.create_options(provider, **options)
    assert e.value.problem.startswith(f"{flag} applies only to") and flag in e.value.fix


def test_create_options_are_the_providers_own_keywords():
    assert flags.create_options("local", network="nat") == {"network": "nat", "image": None}
    assert flags.create_options("local", image="debian-12")["image"] == "debian-12"
    with pytest.raises(UsageError, match="unknown local image 'debian-11'") as e:
        flags.create_options("local", image="debian-11")
    assert "debian-13, debian-12" in e.value.fix
    assert flags.cloud_options("local", "web", None, None, "debian-12") == {}  # create_options' flag there
    assert flags.create_options("byos", ip="h", port=2222)["port"] == 2222
    assert flags.create_options("hetzner") == {}
    with pytest.raises(UsageError, match="invalid --network 'open'"):
        flags.create_options("local", network="open")
    assert flags.cloud_options("local", "web", None, None, None) == {}
    assert flags.cloud_options("hetzner", "web", "nbg1", None, None, creating=False) == {"region": "nbg1"}
