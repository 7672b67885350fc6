"""Where servers come from: the `Provider` protocol each provider module implements, and
`get(name)` for a name of the one list (`lightfold.names.PROVIDERS`, `CLOUD_PROVIDERS`).

A provider is a module (`local`, `byos`, and one per cloud: `digitalocean`, `vultr`, `hetzner`)
whose functions are the protocol below; the cloud modules bind theirs with
`cloud_target.target_api`. This package's own import stays cheap (standard library only).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from lightfold.errors import LightfoldError
from lightfold.names import CLOUD_PROVIDERS, PROVIDERS

if TYPE_CHECKING:
    from lightfold.config import TargetConfig

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    pass


@runtime_checkable
class Provider(Protocol):
    """What `create`, `destroy`, `status` and `deploy` ask of every provider."""

    def create(self, target: str, project_path: Path | None = None, *, force: bool = False,
               progress: Progress = quiet, **options: Any) -> dict[str, Any]:
        """Make (or find again) the target's server and record it in config and state; a JSON-ready
        summary with at least target, provider, ip and changed. `options`: the provider's own
        flags, as `lightfold.providers.flags.create_options` returns them."""
        ...

    def destroy(self, target: str, *, progress: Progress = quiet) -> dict[str, Any]:
        """Remove the server (byos: forget it) and what lightfold recorded; keep the config entry."""
        ...

    def server_state(self, target: str) -> str:
        """'running' | 'stopped' | 'missing' | 'unknown'."""
        ...


@runtime_checkable
class CloudProvider(Provider, Protocol):
    """A provider with an API that can find the server again (by id, else by its create tag)."""

    def recover_address(self, target: str, *, progress: Progress = quiet) -> dict[str, Any]: ...


def get(name: str) -> Provider:
    """The provider `name`, or a clear error when there is no such provider."""
    if name not in PROVIDERS:
        raise LightfoldError(f"unknown provider '{name}'", f"use one of: {', '.join(PROVIDERS)}")
    return cast(Provider, importlib.import_module(f"lightfold.providers.{name}"))


def get_cloud(name: str) -> CloudProvider:
    if name not in CLOUD_PROVIDERS:
        raise LightfoldError(f"unknown cloud provider '{name}'", f"use one of: {', '.join(CLOUD_PROVIDERS)}")
    return cast(CloudProvider, get(name))


def refuse_other_provider(target: str, existing: TargetConfig | None, name: str, before: str) -> None:
    """A target belongs to one provider: creating it with another one is refused, naming what to
    run first (`before`)."""
    if existing and existing.provider not in (None, name):
        raise LightfoldError(f"target '{target}' uses the {existing.provider} provider",
                             f"choose another --target, or {before} first")
