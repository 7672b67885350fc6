"""Which `create`/`deploy` flags apply to which provider, checked before anything is created, and
the keywords of the provider's `create()` they make.

- `create_options`: --network and --image (local), --ip/--user/--ssh-key/--port/--accept-new-host-key/--host-key
  (byos); a flag given to a provider it does not apply to is a usage error naming the flag.
- `cloud_options`: --region/--size/--image (cloud providers only), the API token (found by
  `cloud_client.api_token`, asked for once when the caller can ask) and, when the caller can
  pick, a choice of region and size where neither the flags nor the target's config give one.

Asking is the CLI's part: it passes `ask_token(prompt) -> str` and `pick(what, choices, default)
-> id` only on a terminal; without them nothing is asked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from lightfold.errors import UsageError
from lightfold.names import CLOUD_PROVIDERS
from lightfold.providers import Progress, quiet

NETWORKS = ("isolated", "nat")
# lightfold.sandbox.image.IMAGES' names (that module is Linux-only; tests check the two agree).
LOCAL_IMAGES = ("debian-13", "debian-12")
HOST_KEY_ENV = "LIGHTFOLD_HOST_KEY"

Pick = Callable[[str, list, str], str]


def provider_of(target: str, given: str | None) -> str | None:
    """The provider a command works with: the --provider flag, else the target's (None: neither)."""
    from lightfold import config

    existing = config.load().targets.get(target)
    return given or (existing.provider if existing else None)


def create_options(provider: str, *, network: str | None = None, ip: str | None = None, user: str | None = None,
                   ssh_key: str | None = None, port: int | None = None, accept_new_host_key: bool = False,
                   host_key: str | None = None, confirm: Callable[[str], bool] | None = None,
                   image: str | None = None) -> dict[str, Any]:
    """The local or byos keywords of `create()` (none for a cloud provider). byos trusts exactly
    `host_key` when it is given, else the one in $LIGHTFOLD_HOST_KEY (a CI job's secret)."""
    if network is not None and network not in NETWORKS:
        raise UsageError(f"invalid --network '{network}'", "use --network isolated or --network nat")
    if network is not None and provider != "local":
        raise UsageError("--network applies only to --provider local", "drop --network")
    byos_flags = {"--ip": ip, "--user": user, "--ssh-key": ssh_key, "--port": port,
                  "--accept-new-host-key": accept_new_host_key or None, "--host-key": host_key}
    given = [flag for flag, value in byos_flags.items() if value is not None]
    if given and provider != "byos":
        raise UsageError(f"{given[0]} applies only to --provider byos", f"drop {given[0]}")
    if provider == "local":
        if image is not None and image not in LOCAL_IMAGES:
            raise UsageError(f"unknown local image '{image}'", f"use --image with one of: {', '.join(LOCAL_IMAGES)}")
        return {"network": network, "image": image}
    if provider == "byos":
        return {"ip": ip, "user": user, "ssh_key": ssh_key, "port": port, "accept_new_host_key": accept_new_host_key,
                "host_key": host_key if host_key is not None else os.environ.get(HOST_KEY_ENV), "confirm": confirm}
    return {}


def cloud_options(provider: str, name: str, region: str | None, size: str | None, image: str | None, *,
                  creating: bool = True, ask_token: Callable[[str], str] | None = None, pick: Pick | None = None,
                  progress: Progress = quiet) -> dict[str, Any]:
    """The cloud keywords of `create()`: the flags given, completed by `pick` where neither they nor
    the target's config choose a region or size. With `creating` (the server does not exist yet),
    a missing API token is asked for (`ask_token`) or is a one-line error naming the env var."""
    given = {k: v for k, v in {"region": region, "size": size, "image": image}.items() if v is not None}
    if provider == "local":
        given.pop("image", None)  # create_options' (a sandbox machine's OS)
    if provider not in CLOUD_PROVIDERS:
        if given:
            flags = ", ".join(f"--{k}" for k in given)
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{flags} {verb} only to cloud providers", f"drop {flags} for --provider {provider}")
        return {}
    if not creating:
        return given
    from lightfold import config
    from lightfold.providers import cloud_client

    cloud_client.api_token(provider, ask_token, progress)
    existing = config.load().targets.get(name)
    pc = existing.provider_config.get(provider) if existing else None
    need = [f for f in ("region", "size") if f not in given and not (pc and getattr(pc, f))]
    if need and pick is not None:
        given |= choose(provider, given.get("region") or (pc.region if pc else None), need, pick)
    return given


def choose(provider: str, region: str | None, need: list[str], pick: Pick) -> dict[str, str]:
    """Region and size picked from the provider's offers (sizes offered in the chosen region only);
    the provider's default is the suggested answer."""
    import asyncio

    from lightfold.providers import cloud, cloud_target

    offers = asyncio.run(cloud_target.offers(provider))
    default = cloud.DEFAULTS[provider]
    chosen: dict[str, str] = {}
    if "region" in need:
        region = chosen["region"] = pick("region", offers["regions"], default["region"])
    if "size" in need:
        sizes = [c for c in offers["sizes"] if c.regions is None or region is None or region in c.regions]
        chosen["size"] = pick("size", sizes, default["size"])
    return chosen
