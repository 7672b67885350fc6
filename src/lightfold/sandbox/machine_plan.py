"""What a sandbox machine is made of, as data: the files written into its overlay before it boots
(hostname, SSH keys, resolv.conf, the package-registry proxies and CAs) and the systemd-nspawn
command line that boots it. Pure: lightfold.sandbox.machine writes and runs them."""

from __future__ import annotations

import re

from lightfold.sandbox.image import HOSTS, FileSpec
from lightfold.sandbox.layout import Layout

CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def machine_files(
    lay: Layout,
    name: str,
    network_mode: str,
    authorized_keys: str,
    host_key: tuple[str, str],
    resolv_conf: str,
    extra_cas: dict[str, str],
) -> list[FileSpec]:
    """Everything written into a machine's overlay before it boots."""
    proxy_url = f"http://{lay.host_ip}:{lay.proxy_port}"  # apt's plain-HTTP Debian archive, cached
    tunnel_url = f"http://{lay.host_ip}:{lay.tunnel_port}"  # HTTPS registries (CONNECT)
    bundle = "/" + CA_BUNDLE
    files = [
        FileSpec("etc/hostname", f"{name}\n"),
        FileSpec("etc/hosts", HOSTS + f"127.0.1.1\t{name}\n{lay.host_ip}\tlightfold-host\n"),
        FileSpec("root/.ssh/authorized_keys", authorized_keys.rstrip("\n") + "\n", 0o600),
        FileSpec("etc/ssh/ssh_host_ed25519_key", host_key[0], 0o600),
        FileSpec("etc/ssh/ssh_host_ed25519_key.pub", host_key[1], 0o644),
        FileSpec("etc/resolv.conf", resolv_conf),
    ]
    if network_mode == "isolated":
        files += [
            FileSpec(
                "etc/apt/apt.conf.d/01lightfold-proxy",
                f'Acquire::http::Proxy "{proxy_url}";\nAcquire::https::Proxy "{tunnel_url}";\n',
            ),
            FileSpec("etc/pip.conf", f"[global]\nproxy = {tunnel_url}\ncert = {bundle}\n"),
            FileSpec("etc/npmrc", f"proxy={tunnel_url}\nhttps-proxy={tunnel_url}\ncafile={bundle}\n"),
        ]
    else:
        files += [
            FileSpec("etc/pip.conf", f"[global]\ncert = {bundle}\n"),
            FileSpec("etc/npmrc", f"cafile={bundle}\n"),
        ]
    for fname, pem in sorted(extra_cas.items()):
        files.append(FileSpec(f"usr/local/share/ca-certificates/lightfold-host-{fname}", pem))
    return files


def isolated_resolv_conf(lay: Layout) -> str:
    # Nothing answers DNS on the bridge, so a lookup fails at once instead of hanging.
    return f"nameserver {lay.host_ip}\noptions timeout:1 attempts:1\n"


def nat_resolv_conf(host_resolv: str, upstream_resolv: str | None) -> str:
    """The host's resolvers, unless they are loopback stubs (systemd-resolved), which a machine
    can't reach: then the stub's upstream list."""
    servers = re.findall(r"^\s*nameserver\s+(\S+)", host_resolv, re.M)
    if servers and all(s.startswith("127.") or s == "::1" for s in servers) and upstream_resolv:
        return upstream_resolv
    return host_resolv


def nspawn_argv(lay: Layout, name: str, has_systemd: bool) -> list[str]:
    argv = [
        "systemd-nspawn", "-D", str(lay.rootfs(name)), "-M", name, "-b",
        # No machined or D-Bus here: without both, nspawn fails "Failed to open system bus".
        "--register=no",
        "--console=read-only", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        f"--network-namespace-path=/run/netns/{lay.netns(name)}",
        # Its own netns: let the machine manage its firewall (nftables/ufw) like a VM.
        "--capability=CAP_NET_ADMIN",
        # A container engine (the dockerfile builder) must run inside, like on a VM; these cost
        # nothing when unused (shared/docs/docker-in-nspawn.md): runc needs keyctl and bpf...
        "--system-call-filter=@keyring bpf",
        # ...and overlay2 cannot stack on the machine's overlayfs root: a plain directory in the
        # machine's own dir (so destroy's rm -rf removes it with the rest).
        f"--bind={lay.machine_dir(name) / 'docker'}:/var/lib/docker",
    ]
    if not has_systemd:
        argv.insert(argv.index("--register=no") + 1, "--keep-unit")
    return argv


# Moves itself into the machine's own cgroups, then runs nspawn: without this every machine
# would land in the same /payload cgroup (nspawn --keep-unit uses its caller's cgroup). On a
# reboot inside the machine nspawn exits with 133 for its service manager to start it again
# (systemd-nspawn@.service's RestartForceExitStatus=133): this loop is that manager.
REBOOT_STATUS = 133
LAUNCHER = ('while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; '
            f'while :; do "$@"; rc=$?; [ "$rc" -eq {REBOOT_STATUS} ] || exit "$rc"; done')
