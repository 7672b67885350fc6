"""Stateful fake cloud provider APIs (the only fakes the test suite allows): see base.py."""

from __future__ import annotations


def fake_class(provider: str):
    """The fake API class for a provider name ('hetzner', 'digitalocean', 'vultr')."""
    from tests.fakes.digitalocean import FakeDigitalOcean
    from tests.fakes.hetzner import FakeHetzner
    from tests.fakes.vultr import FakeVultr

    return {"hetzner": FakeHetzner, "digitalocean": FakeDigitalOcean, "vultr": FakeVultr}[provider]
