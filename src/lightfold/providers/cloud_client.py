"""The interface of the three thin cloud clients (`digitalocean`, `vultr`, `hetzner`): the shapes
they return (`Server`, `SshKey`, `Choice`), the `CloudClient` protocol and `BaseClient`, and
`open_client(provider)` with its API token found by `api_token()`.

`api_token()` is the one token lookup: the provider's env var, the keyring or tokens.json
(`lightfold.secrets`); on a terminal the caller may ask for it once, and it is stored 0600.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from lightfold import providers, secrets
from lightfold.errors import LightfoldError
from lightfold.providers.http import LABELS, RetryPolicy


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
    network_id: str | None = None  # the private network (VPC) to create the server in


class Network(BaseModel):
    """A private network of the provider (DigitalOcean and Vultr: a VPC; Hetzner: a network)."""

    id: str
    name: str
    ip_range: str  # CIDR, e.g. 10.0.0.0/16


class BalancerSpec(BaseModel):
    """What lightfold asks of a provider's managed load balancer (`lightfold scale`): HTTP on :80
    to the servers' nginx on :80, health-checked on the app's health path; with `certificate_id`
    (the provider's managed certificate for the target's domain) HTTPS on :443 too, TLS ending at
    the load balancer, and HTTP redirected to HTTPS."""

    name: str  # unique: the target's create tag + "-lb", so a retried create finds it
    region: str
    tags: list[str] = Field(default_factory=list)
    health_path: str = "/"
    health_host: str | None = None
    network_id: str | None = None
    target_ids: list[str] = Field(default_factory=list)
    certificate_id: str | None = None
    domain: str | None = None  # Vultr's automatic certificate is asked for in the create itself


class Balancer(BaseModel):
    id: str
    name: str
    status: Literal["pending", "active", "error", "unknown"]
    provider_status: str
    ip: str | None = None  # public IPv4, once assigned
    private_ip: str | None = None  # its address in the private network (Hetzner reports it)
    target_ids: list[str] = Field(default_factory=list)
    # server id -> healthy, as the provider's own checks see it; None: the API does not say
    health: dict[str, bool] | None = None


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
    # private networks and managed load balancers (`lightfold scale`, lightfold.providers.cloud_lb)
    async def private_network(self, name: str, region: str, member_id: str, tag: str) -> Network: ...
    async def create_balancer(self, spec: BalancerSpec) -> Balancer: ...
    async def get_balancer(self, balancer_id: str) -> Balancer | None: ...
    async def find_balancer(self, name: str) -> Balancer | None: ...
    async def set_balancer_targets(self, balancer: Balancer, server_ids: list[str]) -> None: ...
    async def delete_balancer(self, balancer_id: str) -> None: ...
    async def managed_certificate(self, name: str, domain: str) -> str | None: ...


def api_token(provider: str, ask: Callable[[str], str] | None = None,
          progress: providers.Progress = providers.quiet) -> str:
    """The provider's API token. When none is stored and `ask(prompt)` is given (a terminal), the
    answer is stored (0600 file or keyring) and used; otherwise a missing token is a one-line error
    naming the env var."""
    found, _source = secrets.get_token(provider)
    if found:
        return found
    label, env = LABELS[provider], secrets.TOKEN_ENV[provider]
    if ask is None:
        raise LightfoldError(f"no {label} API token", f"set {env}, or run `lightfold config set-token {provider}`")
    answer = ask(f"{label} API token (input hidden; or set {env})")
    progress(f"stored the {label} token in {secrets.set_token(provider, answer)}")
    return answer


def open_client(
    provider: str,
    *,
    token: str | None = None,
    base: str | None = None,
    retry: RetryPolicy | None = None,
    poll: float = 1.0,
) -> Any:
    """The provider's client (use `async with`): the class its module names `CLIENT`. The token
    comes from `api_token()` unless given."""
    providers.get_cloud(provider)
    module = importlib.import_module(f"lightfold.providers.{provider}")
    return module.CLIENT(token if token is not None else api_token(provider), base=base, retry=retry, poll=poll)


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
