"""Where sandbox machines live on the host and what their host-side objects are called.

Every name carries a `lf` prefix of its own, so lightfold's machines never collide with other
nspawn set-ups on the same host (the team's shell testbed uses `tb*` and 10.213.7.0/24).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from lightfold.errors import LightfoldError

SUBNET_ENV = "LIGHTFOLD_SANDBOX_SUBNET"
DEFAULT_SUBNET = "10.231.0.0/24"
# The first addresses after the host's are left free for helpers a test may add later.
FIRST_HOST_OFFSET = 10


@dataclass(frozen=True)
class Layout:
    subnet: ipaddress.IPv4Network
    machines: Path = Path("/var/lib/lightfold/machines")
    run: Path = Path("/run/lightfold")
    apt_cache: Path = Path("/var/cache/lightfold/apt")
    bridge: str = "lfbr0"
    proxy_port: int = 3151  # apt-cacher-ng: the Debian archive over plain HTTP, cached
    tunnel_port: int = 3152  # CONNECT tunnels to the HTTPS registries only (tunnel.py)
    cgroup_subtree: str = "lightfold"

    @property
    def host_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen

    @property
    def images(self) -> Path:
        # '_' can't start a machine name, so the image directory never collides with a machine.
        return self.machines / "_images"

    def machine_dir(self, name: str) -> Path:
        return self.machines / name

    def rootfs(self, name: str) -> Path:
        return self.machines / name / "rootfs"

    def runtime(self, name: str) -> Path:
        return self.run / name

    @property
    def proxy_dir(self) -> Path:
        return self.run / "_proxy"

    @property
    def alloc_lock(self) -> Path:
        return self.run / "_alloc"

    def netns(self, name: str) -> str:
        return f"lf-{name}"

    def veth(self, ip: str) -> str:
        # Host side of the pair; interface names are limited to 15 characters, so use the offset.
        return f"lfv{int(ipaddress.IPv4Address(ip)) - int(self.subnet.network_address)}"

    def candidate_ips(self) -> list[str]:
        hosts = list(self.subnet.hosts())
        return [str(ip) for ip in hosts[FIRST_HOST_OFFSET - 1 :]]


def layout() -> Layout:
    raw = os.environ.get(SUBNET_ENV, DEFAULT_SUBNET)
    try:
        net = ipaddress.IPv4Network(raw, strict=True)
    except ValueError as e:
        raise LightfoldError(
            f"{SUBNET_ENV}={raw!r} is not an IPv4 network ({e})", "use a private range such as 10.231.0.0/24"
        ) from None
    if not net.is_private or net.prefixlen > 28 or net.prefixlen < 16:
        raise LightfoldError(
            f"{SUBNET_ENV}={raw} must be a private IPv4 network between /16 and /28",
            "use a private range such as 10.231.0.0/24",
        )
    return Layout(subnet=net)
