"""One sandbox machine's life: allocate, boot, inspect, stop and wipe.

A machine is a copy-on-write overlay of the cached image, its own network namespace and address
on the bridge, and a detached `systemd-nspawn -b` (systemd as PID 1, real sshd). Everything about
it can be found again by name alone (runtime dir, machine dir, netns, cgroup, nspawn command
line), so `destroy` cleans up after a killed `create` or a crashed machine just as well.

What goes into a machine (its files, its nspawn command line) is pure data in
lightfold.sandbox.machine_plan.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from lightfold.errors import LightfoldError
from lightfold.sandbox import host, image, machine_plan, network, proxy, registries
from lightfold.sandbox.image import FileSpec
from lightfold.sandbox.layout import Layout, layout

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}", re.ASCII)
NETWORKS = ("isolated", "nat")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
STOP_TIMEOUT = 15
ALLOC_TIMEOUT = 120


@dataclass(frozen=True)
class Machine:
    name: str
    ip: str
    network: str
    owner: str
    host_key: str  # "ssh-ed25519 AAAA…" — pinned by the caller before anyone connects
    created_at: float


# ---- reading what exists

def info_path(lay: Layout, name: str) -> Path:
    return lay.runtime(name) / "machine.json"

# Where systemd-nspawn keeps each machine's mount propagation directory (host.ensure_temporary_fs).
PROPAGATE = Path("/run/systemd/nspawn/propagate")


def read_info(lay: Layout, name: str) -> dict | None:
    try:
        return json.loads(info_path(lay, name).read_text())
    except (OSError, ValueError):
        return None


def owner_of(lay: Layout, name: str) -> str | None:
    try:
        return (lay.machine_dir(name) / "owner").read_text().strip() or None
    except OSError:
        info = read_info(lay, name)
        return info.get("owner") if info else None


def _cgroup_dirs(lay: Layout, name: str) -> list[Path]:
    return [d for d in (r / lay.cgroup_subtree / name for r in host.cgroup_roots()) if d.is_dir()]


def nspawn_pids(lay: Layout, name: str | None = None) -> list[int]:
    """nspawn processes (or their launcher) running one of our machines, by command line."""
    marker = str(lay.rootfs(name)) if name else str(lay.machines) + "/"
    found = []
    for pid in host.pids():
        if host.comm(pid) not in ("systemd-nspawn", "sh"):
            continue
        args = host.cmdline(pid)
        if any(a == marker or (name is None and a.startswith(marker)) for a in args) and host.alive(pid):
            found.append(pid)
    return found


def nspawn_pid(lay: Layout, name: str) -> int | None:
    """The machine's systemd-nspawn process, else its launcher (machine_plan.LAUNCHER, which
    starts nspawn again after a reboot; nspawn.pid records it)."""
    try:
        pid = int((lay.runtime(name) / "nspawn.pid").read_text())
    except (OSError, ValueError):
        pid = None
    if pid and host.alive(pid) and host.comm(pid) == "systemd-nspawn" and str(lay.rootfs(name)) in host.cmdline(pid):
        return pid
    pids = sorted(nspawn_pids(lay, name), key=lambda p: host.comm(p) != "systemd-nspawn")
    return pids[0] if pids else None


def leader_pid(lay: Layout, name: str) -> int | None:
    """The machine's init as seen from the host: nspawn's child in another PID namespace."""
    pid = nspawn_pid(lay, name)
    if pid is None:
        return None
    try:
        own_ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
    for child in host.children(pid) or _children_by_scan(pid):
        try:
            if os.readlink(f"/proc/{child}/ns/pid") != own_ns and host.alive(child):
                return child
        except OSError:
            continue
    return None


def _children_by_scan(pid: int) -> list[int]:
    kids = []
    for p in host.pids():
        try:
            ppid = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(p)
    return kids


def traces(lay: Layout, name: str) -> list[str]:
    """Every host object that belongs to machine `name` (empty = it does not exist)."""
    found = []
    if lay.runtime(name).exists():
        found.append(f"runtime dir {lay.runtime(name)}")
    if lay.machine_dir(name).exists():
        found.append(f"machine dir {lay.machine_dir(name)}")
    found += [f"mount {m}" for m in host.mounts_under(lay.machine_dir(name))]
    if lay.netns(name) in network.netns_list():
        found.append(f"netns {lay.netns(name)}")
    found += [f"cgroup {d}" for d in _cgroup_dirs(lay, name)]
    found += [f"nspawn process {p}" for p in nspawn_pids(lay, name)]
    propagate = PROPAGATE / name
    if propagate.exists() and (found or lay.runtime(name).exists()):
        found.append(f"path {propagate}")
    return found


def state(lay: Layout, name: str) -> str:
    """running (init is up), stopped (traces but no machine), or missing."""
    if leader_pid(lay, name):
        return "running"
    return "stopped" if traces(lay, name) else "missing"


def names(lay: Layout) -> list[str]:
    """Every machine that has left any trace on the host, by whatever means it is found."""
    found: set[str] = set()
    for d in (lay.run, lay.machines):
        if d.is_dir():
            found |= {p.name for p in d.iterdir() if p.is_dir() and NAME.fullmatch(p.name)}
    found |= {n[3:] for n in network.netns_list() if n.startswith("lf-")}
    for root in host.cgroup_roots():
        sub = root / lay.cgroup_subtree
        if sub.is_dir():
            found |= {p.name for p in sub.iterdir() if p.is_dir()}
    for pid in nspawn_pids(lay):
        for arg in host.cmdline(pid):
            if arg.startswith(str(lay.machines) + "/") and arg.endswith("/rootfs"):
                found.add(Path(arg).parent.name)
    return sorted(n for n in found if NAME.fullmatch(n))


def leftovers(lay: Layout | None = None) -> list[str]:
    """Everything lightfold's sandbox has on this host besides the image and the apt cache."""
    lay = lay or layout()
    left = []
    for name in names(lay):
        left += [f"{name}: {t}" for t in traces(lay, name)] or [f"{name}: (found by name)"]
    left += [f"nspawn process {p}" for p in nspawn_pids(lay)]
    left += [f"mount {m}" for m in host.mounts_under(lay.machines)]
    left += [f"netns {n}" for n in network.netns_list() if n.startswith("lf-")]
    left += [f"link {n}" for n in network.links() if n == lay.bridge or re.fullmatch(r"lfv\d+", n)]
    left += [f"cgroup {r / lay.cgroup_subtree}" for r in host.cgroup_roots() if (r / lay.cgroup_subtree).exists()]
    left += [f"proxy process {p}" for p in proxy.daemon_pids(lay)]
    if network.nat_table_listing() is not None:
        left.append(f"nft table ip {network.NFT_TABLE}")
    if lay.run.is_dir():
        left += [f"path {p}" for p in lay.run.iterdir() if p.name != lay.alloc_lock.name + ".lock"]
    return sorted(set(left))


# ---- create

def _alloc_lock(lay: Layout):
    from filelock import FileLock

    lay.run.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lay.alloc_lock) + ".lock", timeout=ALLOC_TIMEOUT)


def _used_ips(lay: Layout) -> set[str]:
    used = set()
    if lay.run.is_dir():
        for d in lay.run.iterdir():
            info = read_info(lay, d.name) if d.is_dir() else None
            if info and info.get("ip"):
                used.add(info["ip"])
    return used


def _generate_host_key(lay: Layout, name: str) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(dir=lay.run, prefix=f".{name}-key.") as d:
        key = Path(d, "key")
        host.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(key)])
        return key.read_text(), Path(d, "key.pub").read_text()


def _host_cas() -> dict[str, str]:
    """The host's own extra CAs (e.g. a TLS-intercepting egress proxy), so pip/npm inside trust
    what the host trusts."""
    cas = {}
    if HOST_CA_DIR.is_dir():
        for crt in sorted(HOST_CA_DIR.rglob("*.crt")):
            cas[crt.name] = crt.read_text()
    return cas


def _write_files(root: Path, files: list[FileSpec]) -> None:
    for spec in files:
        p = root / spec.path
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink():
            p.unlink()
        p.write_text(spec.content)
        p.chmod(spec.mode)
    cas = [f.content for f in files if f.path.startswith("usr/local/share/ca-certificates/")]
    if cas:  # what update-ca-certificates would do, without running anything in the image
        bundle = root / machine_plan.CA_BUNDLE
        bundle.write_text(bundle.read_text() + "".join(c if c.endswith("\n") else c + "\n" for c in cas))
    npmrc = root / "usr/etc/npmrc"  # where a NodeSource node (prefix /usr) looks for it
    npmrc.parent.mkdir(parents=True, exist_ok=True)
    if not npmrc.exists():
        npmrc.symlink_to("/etc/npmrc")


def create(
    name: str,
    network_mode: str,
    authorized_keys: str,
    owner: str,
    progress: Callable[[str], None] = lambda _m: None,
    *,
    host_key: tuple[str, str] | None = None,
    extra_files: list[FileSpec] | None = None,
    suite: str = image.SUITE,
) -> Machine:
    """Boot a new machine (returns once nspawn runs; see `wait_for_ssh_port`). On any failure,
    including Ctrl-C, everything made so far is removed again.

    `owner` names who may destroy it (a LIGHTFOLD_HOME; tests use a path in their temp dir so the
    session-end check finds leaks). `host_key` (private, public) replaces the generated one and
    `extra_files` are written before boot — e.g. what cloud-init would apply on a cloud VM. `suite`:
    the Debian suite of the image it boots (lightfold.sandbox.image.IMAGES)."""
    if not NAME.fullmatch(name):
        raise LightfoldError(f"invalid machine name '{name}'", "use lowercase letters, digits and '-'")
    if network_mode not in NETWORKS:
        raise LightfoldError(f"unknown network mode '{network_mode}'", "use --network isolated or --network nat")
    host.require_host(network_mode)
    lay = layout()
    reg = registries.discover(https=False)
    img = image.ensure(lay, reg, progress, suite)

    with _alloc_lock(lay):
        existing = traces(lay, name)
        if existing:
            raise NameTaken(name, owner_of(lay, name), existing)
        free = [ip for ip in lay.candidate_ips() if ip not in _used_ips(lay)]
        if not free:
            raise LightfoldError(
                f"no free address left in {lay.subnet} for another machine",
                "destroy a machine you no longer need, or set LIGHTFOLD_SANDBOX_SUBNET to a larger range",
            )
        ip = free[0]
        machine = Machine(name, ip, network_mode, owner, "", time.time())
        try:
            lay.runtime(name).mkdir(parents=True)
            info = asdict(machine) | {"image": str(img), "suite": suite, "netns": lay.netns(name), "veth": lay.veth(ip)}
            info_path(lay, name).write_text(json.dumps(info, indent=2))
            lay.machine_dir(name).mkdir(parents=True)
            (lay.machine_dir(name) / "owner").write_text(owner + "\n")
            network.bridge_up(lay)
            if network_mode == "isolated" and not proxy.running(lay):
                proxy.up(lay, registries.discover())
            if network_mode == "nat":
                network.nat_up(lay, name, ip)
            host.raise_inotify_limit()
            host.ensure_temporary_fs(PROPAGATE)  # so a machine can reboot
        except BaseException:
            _destroy_locked(lay, name)
            raise

    try:
        host_key = host_key or _generate_host_key(lay, name)
        network.machine_up(lay, name, ip, network_mode)
        _mount_overlay(lay, name, img)
        if network_mode == "isolated":
            resolv = machine_plan.isolated_resolv_conf(lay)
        else:
            upstream = Path("/run/systemd/resolve/resolv.conf")
            resolv = machine_plan.nat_resolv_conf(
                Path("/etc/resolv.conf").read_text(), upstream.read_text() if upstream.exists() else None
            )
        files = machine_plan.machine_files(lay, name, network_mode, authorized_keys, host_key, resolv,
                                           _host_cas())
        files += extra_files or []
        _write_files(lay.rootfs(name), files)
        _launch(lay, name)
    except BaseException:
        destroy(name)
        raise
    return Machine(name, ip, network_mode, owner, " ".join(host_key[1].split()[:2]), machine.created_at)


class NameTaken(LightfoldError):
    def __init__(self, name: str, owner: str | None, found: list[str]):
        self.name, self.owner = name, owner
        where = f" (created from LIGHTFOLD_HOME={owner})" if owner else ""
        super().__init__(
            f"a local machine named '{name}' already exists{where}",
            f"choose another --target, or remove it first with `lightfold destroy --target {name} --yes`",
            details=found[:6],
        )


def _mount_overlay(lay: Layout, name: str, img: Path) -> None:
    d = lay.machine_dir(name)
    for sub in ("upper", "work", "rootfs", "docker"):
        (d / sub).mkdir(exist_ok=True)
    host.run([
        "mount", "-t", "overlay", f"lightfold-{name}",
        "-o", f"lowerdir={img},upperdir={d / 'upper'},workdir={d / 'work'}", str(lay.rootfs(name)),
    ])


def _launch(lay: Layout, name: str) -> None:
    procs = []
    if not host.host_has_systemd():
        for cg in (r / lay.cgroup_subtree / name for r in host.cgroup_roots()):
            cg.mkdir(parents=True, exist_ok=True)
            procs.append(str(cg / "cgroup.procs"))
    nspawn = machine_plan.nspawn_argv(lay, name, host.host_has_systemd())
    argv = ["sh", "-c", machine_plan.LAUNCHER, "lightfold-nspawn", *procs, "--", *nspawn]
    # A pure cgroup v2 view inside, like a stock Debian 12 host.
    # /proc/sys/net writable: dockerd turns on ip_forward in the machine's own netns.
    env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1", SYSTEMD_NSPAWN_API_VFS_WRITABLE="network")
    with open(lay.runtime(name) / "console.log", "wb") as console:
        # New session: the machine outlives the CLI and never gets the terminal's signals.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, close_fds=True,
        )
    (lay.runtime(name) / "nspawn.pid").write_text(f"{proc.pid}\n")
    proc.returncode = 0  # never waited for: it belongs to PID 1 once we exit


def console_tail(lay: Layout, name: str, lines: int = 15) -> list[str]:
    try:
        text = (lay.runtime(name) / "console.log").read_text(errors="replace")
    except OSError:
        return []
    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()[-lines:]]


def wait_for_ssh_port(name: str, ip: str, deadline: float, port: int = 22) -> None:
    """Until sshd accepts TCP connections; fails at once, with the boot log, if nspawn died."""
    lay = layout()
    while True:
        if nspawn_pid(lay, name) is None:
            raise LightfoldError(
                f"machine '{name}' stopped while booting",
                f"see the boot log above; remove it with `lightfold destroy --target {name} --yes`",
                details=console_tail(lay, name),
            )
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LightfoldError(
                f"machine '{name}' did not open SSH on {ip}:{port} in time",
                f"see its boot log in {lay.runtime(name)}/console.log",
                details=console_tail(lay, name),
            )
        time.sleep(0.05)


def exec_argv(name: str, cmd: list[str]) -> list[str]:
    """Run `cmd` inside a running machine without SSH (for tests and debugging)."""
    lay = layout()
    pid = leader_pid(lay, name)
    if pid is None:
        raise LightfoldError(f"machine '{name}' is not running", f"check `lightfold status --target {name}`")
    return [
        "nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-C", "--",
        "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/root", "LANG=C.UTF-8", *cmd,
    ]


# ---- destroy

def destroy(name: str) -> list[str]:
    """Stop machine `name` and remove every trace of it; the bridge, proxy and NAT table go too
    when it was the last machine. Safe to repeat, and works on half-created or crashed machines.
    Returns what was found."""
    lay = layout()
    found = traces(lay, name)
    _stop(lay, name)
    _wipe(lay, name)
    with _alloc_lock(lay):
        _destroy_locked(lay, name)
    return found


def _destroy_locked(lay: Layout, name: str) -> None:
    _stop(lay, name)
    _wipe(lay, name)
    subprocess.run(["rm", "-rf", str(lay.runtime(name))], check=False)
    _release_shared_locked(lay)


def wait_idle() -> None:
    """Return once no create or destroy holds the allocation lock (leak checks call this first, so
    a destroy still running in another thread or process is judged after it finished)."""
    with _alloc_lock(layout()):
        pass


def release_shared() -> None:
    """Take down the bridge, proxy and NAT table if no machine is left (e.g. after a crash)."""
    lay = layout()
    with _alloc_lock(lay):
        _release_shared_locked(lay)


def _release_shared_locked(lay: Layout) -> None:
    if not names(lay):
        proxy.down(lay)
        network.nat_teardown(lay)
        network.bridge_down(lay)


def _stop(lay: Layout, name: str) -> None:
    pid = nspawn_pid(lay, name)
    if pid:
        # Everything in the machine is discarded, so a clean poweroff buys nothing and can take
        # seconds once services run: nspawn's first SIGTERM asks systemd to power off, the second
        # makes nspawn kill the machine at once (and still clean up after itself).
        _signal(pid, signal.SIGTERM)
        time.sleep(0.05)
        _signal(pid, signal.SIGTERM)
        if not _wait_dead(pid, STOP_TIMEOUT):
            _signal(pid, signal.SIGKILL)
            _wait_dead(pid, 3)
    for p in nspawn_pids(lay, name):
        _signal(p, signal.SIGKILL)
    # If nspawn itself was SIGKILLed its init lives on, reparented to PID 1: kill the cgroup.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = _cgroup_pids(lay, name)
        if not left:
            break
        for p in left:
            _signal(p, signal.SIGKILL)
        time.sleep(0.05)


def _cgroup_pids(lay: Layout, name: str) -> set[int]:
    found = set()
    for d in _cgroup_dirs(lay, name):
        for procs in d.rglob("cgroup.procs"):
            try:
                found |= {int(p) for p in procs.read_text().split() if host.alive(int(p))}
            except OSError:
                continue
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_dead(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while host.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _wipe(lay: Layout, name: str) -> None:
    info = read_info(lay, name) or {}
    rootfs = lay.rootfs(name)
    for mnt in sorted(host.mounts_under(lay.machine_dir(name)), key=len, reverse=True):
        if host.run(["umount", mnt], check=False).returncode != 0:
            time.sleep(0.3)
            if host.run(["umount", mnt], check=False).returncode != 0:
                host.run(["umount", "-l", mnt], check=False)
    if host.mounts_under(lay.machine_dir(name)):
        raise LightfoldError(f"could not unmount {rootfs}", "check `findmnt` for what holds it, then retry destroy")
    # --one-file-system: never follow into anything still mounted below.
    subprocess.run(["rm", "-rf", "--one-file-system", str(lay.machine_dir(name))], check=False)
    if lay.machines.is_dir():
        for lock in lay.machine_dir(name).parent.glob(f".#{name}*.lck"):
            lock.unlink(missing_ok=True)
    network.machine_down(lay, name, info.get("ip"))
    if network.nat_table_listing() is not None:
        network.nat_down(lay, name)
    for d in _cgroup_dirs(lay, name):
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(sub)
        _rmdir(d)
        _rmdir(d.parent)  # the lightfold/ subtree, once empty
    subprocess.run(["rm", "-rf", str(PROPAGATE / name)], check=False)


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
