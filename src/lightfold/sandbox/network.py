"""Host-only networking of sandbox machines: one bridge, a network namespace and veth per
machine, and for `nat` machines a default route plus an nftables MASQUERADE rule.

The command lists are pure (tested as text); `apply` runs them. Isolated machines get no default
route at all: anything but the bridge (other machines, the host, the registry proxy) fails at once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from lightfold.sandbox import host
from lightfold.sandbox.layout import Layout

NFT_TABLE = "lightfold"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def bridge_up_commands(lay: Layout) -> list[list[str]]:
    # A fixed MAC: by default a bridge takes the lowest MAC of its ports, so it would change as
    # machines come and go, and every machine's ARP entry for the host (the proxy) would go stale.
    return [
        ["ip", "link", "add", lay.bridge, "address", machine_mac(lay.host_ip), "type", "bridge"],
        ["ip", "addr", "add", f"{lay.host_ip}/{lay.prefixlen}", "dev", lay.bridge],
        ["ip", "link", "set", lay.bridge, "up"],
    ]


def machine_mac(ip: str) -> str:
    """A locally administered MAC derived from the address. A reused address keeps its MAC, so
    the host's and other machines' ARP caches are never stale (a stale entry stalls connections
    to the new machine for up to half a minute)."""
    octets = [int(o) for o in ip.split(".")]
    return "02:00:" + ":".join(f"{o:02x}" for o in octets)


def machine_up_commands(lay: Layout, name: str, ip: str, network: str) -> list[list[str]]:
    ns, veth = lay.netns(name), lay.veth(ip)
    cmds = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", machine_mac(ip), "netns", ns],
        ["ip", "link", "set", veth, "master", lay.bridge, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", ns, "addr", "add", f"{ip}/{lay.prefixlen}", "dev", "eth0"],
        ["ip", "-n", ns, "link", "set", "eth0", "up"],
    ]
    if network == "nat":
        cmds.append(["ip", "-n", ns, "route", "add", "default", "via", lay.host_ip])
    return cmds


def nat_rule_comment(name: str) -> str:
    return f"lf-{name}"


def nat_up_commands(lay: Layout, name: str, ip: str) -> list[list[str]]:
    """Masquerade this machine's traffic leaving by any interface but the bridge, and let it be
    forwarded (replies too) even where another table's forward policy is drop-by-default."""
    c = nat_rule_comment(name)
    t = ["nft", "add"]
    return [
        t + ["table", "ip", NFT_TABLE],
        t + ["chain", "ip", NFT_TABLE, "postrouting", "{ type nat hook postrouting priority srcnat; }"],
        t + ["chain", "ip", NFT_TABLE, "forward", "{ type filter hook forward priority filter; }"],
        t + ["rule", "ip", NFT_TABLE, "postrouting", "ip", "saddr", ip, "oifname", "!=", lay.bridge,
             "masquerade", "comment", f'"{c}"'],
        t + ["rule", "ip", NFT_TABLE, "forward", "iifname", lay.bridge, "ip", "saddr", ip, "accept",
             "comment", f'"{c}"'],
        t + ["rule", "ip", NFT_TABLE, "forward", "oifname", lay.bridge, "ip", "daddr", ip, "ct", "state",
             "established,related", "accept", "comment", f'"{c}"'],
    ]


_HANDLE = re.compile(r'comment "([^"]+)".*# handle (\d+)')


def nat_rule_handles(listing: str, name: str) -> list[tuple[str, int]]:
    """(chain, handle) of this machine's rules in `nft -a list table ip lightfold` output."""
    found, chain = [], None
    for line in listing.splitlines():
        m = re.match(r"\s*chain (\S+) \{", line)
        if m:
            chain = m.group(1)
            continue
        m = _HANDLE.search(line)
        if m and chain and m.group(1) == nat_rule_comment(name):
            found.append((chain, int(m.group(2))))
    return found


# ---- I/O

def apply(cmds: list[list[str]]) -> None:
    for argv in cmds:
        host.run(argv)


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_list() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def links() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def machine_up(lay: Layout, name: str, ip: str, mode: str, attempts: int = 4) -> None:
    """Set up the machine's netns and veth. Rarely (seen while other nspawn machines were booting
    on the host) a fresh /run/netns file is not yet usable and `ip -n` fails with EINVAL: start
    over rather than fail the create."""
    from lightfold.errors import LightfoldError

    for attempt in range(attempts):
        try:
            apply(machine_up_commands(lay, name, ip, mode))
            return
        except LightfoldError as e:
            if attempt == attempts - 1 or not any("network namespace" in d for d in e.details):
                raise
            machine_down(lay, name, ip)
            time.sleep(0.1 * (attempt + 1))


def bridge_up(lay: Layout) -> None:
    if not link_exists(lay.bridge):
        apply(bridge_up_commands(lay))
        return
    addrs = host.run(["ip", "-o", "-4", "addr", "show", "dev", lay.bridge]).stdout.decode()
    if f" {lay.host_ip}/{lay.prefixlen} " not in addrs:
        from lightfold.errors import LightfoldError

        raise LightfoldError(
            f"the bridge {lay.bridge} exists with another address than {lay.host_ip}/{lay.prefixlen}",
            "use the same LIGHTFOLD_SANDBOX_SUBNET for every lightfold run on this host, or destroy all "
            "local machines first",
        )
    mac = machine_mac(lay.host_ip)
    if Path("/sys/class/net", lay.bridge, "address").read_text().strip() != mac:  # made by an older lightfold
        host.run(["ip", "link", "set", lay.bridge, "address", mac])


def bridge_down(lay: Layout) -> None:
    if link_exists(lay.bridge):
        host.run(["ip", "link", "del", lay.bridge], check=False)


def machine_down(lay: Layout, name: str, ip: str | None) -> None:
    """Deleting the namespace destroys its eth0 and so the veth pair, once nothing runs inside."""
    if lay.netns(name) in netns_list():
        host.run(["ip", "netns", "del", lay.netns(name)], check=False)
    if ip:
        veth = lay.veth(ip)
        if link_exists(veth):
            host.run(["ip", "link", "del", veth], check=False)


def nat_table_listing() -> str | None:
    if host.which("nft") is None:
        return None
    proc = host.run(["nft", "-a", "list", "table", "ip", NFT_TABLE], check=False)
    return proc.stdout.decode() if proc.returncode == 0 else None


def nat_up(lay: Layout, name: str, ip: str) -> None:
    """Call under the allocation lock. Remembers ip_forward's first value so it can be restored."""
    saved = lay.run / "_ip_forward.orig"
    if not saved.exists():
        saved.write_text(IP_FORWARD.read_text())
    IP_FORWARD.write_text("1\n")
    apply(nat_up_commands(lay, name, ip))


def nat_down(lay: Layout, name: str) -> None:
    listing = nat_table_listing()
    if listing is None:
        return
    for chain, handle in nat_rule_handles(listing, name):
        host.run(["nft", "delete", "rule", "ip", NFT_TABLE, chain, "handle", str(handle)], check=False)


def nat_teardown(lay: Layout) -> None:
    """When the last machine is gone: drop the table and give ip_forward its old value back."""
    if nat_table_listing() is not None:
        host.run(["nft", "delete", "table", "ip", NFT_TABLE], check=False)
    saved = lay.run / "_ip_forward.orig"
    if saved.exists():
        IP_FORWARD.write_text(saved.read_text())
        saved.unlink()
