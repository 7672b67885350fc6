"""`lightfold create/ssh/status/destroy --provider local` against real sandbox machines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lightfold.sandbox import layout, machine

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def host_traces(name: str, ip: str | None) -> list[str]:
    """Everything of machine `name` visible on the host, checked independently of `traces()`."""
    lay = layout.layout()
    left = machine.traces(lay, name)
    mounts = Path("/proc/self/mounts").read_text()
    if f"/machines/{name}/" in mounts:
        left.append("mount")
    if ip and os.path.exists(f"/sys/class/net/{lay.veth(ip)}"):
        left.append(f"veth {lay.veth(ip)}")
    if os.path.exists(f"/run/netns/lf-{name}"):
        left.append("netns")
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    if f"/machines/{name}/rootfs" in ps:
        left.append("nspawn process")
    return left


def test_create_gives_a_running_machine_reachable_with_pinned_key(sandbox):
    out = sandbox.lightfold("ssh", "--target", sandbox.target, "--", "systemctl", "is-system-running")
    assert out.stdout.strip() == "running"

    pc = sandbox.config()["targets"][sandbox.target]["provider_config"]["local"]
    assert pc["username"] == "root" and pc["server_id"] == sandbox.target and pc["network"] == "isolated"
    assert sandbox.config()["targets"][sandbox.target]["project_path"] == str(sandbox.project.resolve())
    # No key of the user's: lightfold made its own pair in its home.
    assert pc["ssh_key"] == str(sandbox.home / "ssh" / "id_ed25519")
    state = json.loads((sandbox.home / "state" / f"{sandbox.target}.json").read_text())
    assert state["created"] is True

    # The key pinned at birth is the machine's own, generated for it.
    pinned = (sandbox.home / "known_hosts").read_text().split()
    served = sandbox.exec("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
    assert pinned[0] == pc["ip"] and pinned[1:3] == served[:2]
    assert json.loads(sandbox.exec("cat /etc/lightfold/created").stdout)["target"] == sandbox.target
    # Like a fresh cloud image: key-only sshd, no nginx, empty apt lists, no apt timers.
    sshd = sandbox.exec("sshd -T").stdout
    assert "passwordauthentication no" in sshd and "permitrootlogin without-password" in sshd
    assert sandbox.exec("command -v nginx", check=False).returncode != 0
    assert sandbox.exec("ls /var/lib/apt/lists | grep -v -e partial -e lock || true").stdout == ""
    assert sandbox.exec("systemctl is-enabled apt-daily.timer", check=False).stdout.strip() == "masked"

    # A command's exit status comes back through `lightfold ssh`.
    assert sandbox.lightfold("ssh", "--target", sandbox.target, "--", "exit", "7", check=False).returncode == 7

    again = sandbox.lightfold("create", "--target", sandbox.target, "--provider", "local")
    assert "already exists" in again.stderr

    status = json.loads(sandbox.lightfold("status", "--target", sandbox.target, "--json").stdout)
    assert status["provider"] == "local" and status["ip"] == pc["ip"]
    assert status["server_state"] == "running" and status["ssh"] == "reachable"


def _os_release(sb) -> dict[str, str]:
    lines = sb.exec("cat /etc/os-release").stdout.splitlines()
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in lines)}


@pytest.mark.parametrize(("image", "codename", "python"), [(None, "trixie", "3.13"), ("debian-12", "bookworm", "3.11")])
def test_the_image_is_debian_13_by_default_and_12_on_request(machine_factory, image, codename, python):
    sb = machine_factory(image=image)
    if image is None and sb.image:  # LIGHTFOLD_TEST_IMAGE chose for the whole session
        pytest.skip(f"the session runs {sb.image}")
    assert _os_release(sb)["VERSION_CODENAME"] == codename
    assert sb.config()["targets"][sb.target]["provider_config"]["local"]["image"] == (image or "debian-13")
    assert sb.exec("python3 --version").stdout.split()[1].startswith(python + ".")
    # Key-only sshd logs in, and apt works through the sandbox's proxy (the host's mirror).
    assert sb.lightfold("ssh", "--target", sb.target, "--", "true").returncode == 0
    apt = sb.exec("apt-get update -q && apt-get install -y -q --no-install-recommends hello && hello", timeout=300)
    assert "Hello, world!" in apt.stdout
    # The other image cannot replace a running machine's without --force (everything would go).
    other = "debian-12" if image is None else "debian-13"
    refused = sb.lightfold("create", "--target", sb.target, "--provider", "local", "--image", other, check=False)
    assert refused.returncode == 1 and f"--force to recreate it with --image {other}" in refused.stderr


def test_two_machines_get_their_own_addresses_and_reach_each_other(machine_factory):
    a, b = machine_factory(), machine_factory()
    assert a.ip != b.ip
    for src, dst in ((a, b), (b, a)):
        banner = src.exec(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{dst.ip}/22; head -c 7 <&3'").stdout
        assert banner == "SSH-2.0"
    assert a.exec("hostname").stdout.strip() == a.target


def test_destroy_leaves_no_trace(machine_factory):
    sb = machine_factory()
    assert host_traces(sb.target, sb.ip)
    refused = sb.lightfold("destroy", "--target", sb.target, check=False, input="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert machine.state(layout.layout(), sb.target) == "running"

    sb.lightfold("destroy", "--target", sb.target, "--yes")
    assert host_traces(sb.target, sb.ip) == []
    lay = layout.layout()
    assert not any(r.joinpath(lay.cgroup_subtree, sb.target).exists() for r in machine.host.cgroup_roots())
    assert not lay.runtime(sb.target).exists() and not lay.machine_dir(sb.target).exists()
    tc = sb.config()["targets"][sb.target]
    assert "ip" not in tc["provider_config"]["local"] and tc["provider"] == "local"
    assert not (sb.home / "state" / f"{sb.target}.json").exists()
    assert sb.ip not in (sb.home / "known_hosts").read_text()
    status = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert status["server_state"] == "missing"
    # Destroying again is harmless.
    assert "nothing to do" in sb.lightfold("destroy", "--target", sb.target, "--yes").stderr


def test_killed_create_is_cleaned_up_by_destroy(machine_factory):
    sb = machine_factory(create=False)
    log = sb.root / "create.log"
    with open(log, "wb") as out:
        proc = sb.popen("create", "--target", sb.target, "--provider", "local", stdout=out, stderr=out)
    lay = layout.layout()
    deadline = time.monotonic() + 60
    while machine.nspawn_pid(lay, sb.target) is None:  # kill it while the machine boots
        assert proc.poll() is None, f"create ended before the machine booted: {log.read_text()}"
        assert time.monotonic() < deadline, f"no machine after 60s: {log.read_text()}"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    info = machine.read_info(lay, sb.target)
    assert info and machine.traces(lay, sb.target)

    done = sb.lightfold("destroy", "--target", sb.target, "--yes")
    assert host_traces(sb.target, info["ip"]) == [], done.stderr


def test_force_recreates_a_fresh_machine_with_a_new_host_key(sandbox):
    sandbox.exec("touch /root/from-before")
    old_key = (sandbox.home / "known_hosts").read_text()
    sandbox.lightfold("create", "--target", sandbox.target, "--provider", "local", "--force")
    assert sandbox.exec("test -e /root/from-before", check=False).returncode == 1
    assert (sandbox.home / "known_hosts").read_text() != old_key
    out = sandbox.lightfold("ssh", "--target", sandbox.target, "--", "systemctl", "is-system-running")
    assert out.stdout.strip() == "running"


def test_a_name_taken_by_another_home_is_refused_and_left_alone(sandbox, fresh_env):
    other = fresh_env("other")
    proc = sandbox.lightfold("create", "--target", sandbox.target, "--provider", "local", check=False, env=other)
    assert proc.returncode == 1
    assert "belongs to another lightfold home" in proc.stderr and str(sandbox.home) in proc.stderr
    proc = sandbox.lightfold("destroy", "--target", sandbox.target, "--yes", check=False, env=other)
    assert proc.returncode == 1 and "another lightfold home" in proc.stderr
    assert machine.state(layout.layout(), sandbox.target) == "running"


def test_a_failed_image_build_is_a_clear_error_and_leaves_nothing(machine_factory):
    sb = machine_factory(create=False)
    lay = layout.layout()
    before = sorted(p.name for p in lay.images.iterdir())
    # A mirror on a closed loopback port: a different recipe, so a new image build that must fail.
    proc = sb.lightfold("create", "--target", sb.target, "--provider", "local", check=False,
                        env={"LIGHTFOLD_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"})
    assert proc.returncode == 1
    assert "building the machine image failed" in proc.stderr and "LIGHTFOLD_DEBIAN_MIRROR" in proc.stderr
    assert sorted(p.name for p in lay.images.iterdir()) == before
    assert machine.traces(lay, sb.target) == []
    assert not (sb.home / "config.json").exists()  # nothing recorded for a machine that never was


def test_a_crashed_machine_shows_as_stopped_and_destroy_cleans_it(machine_factory):
    sb = machine_factory()
    lay = layout.layout()
    init = machine.leader_pid(lay, sb.target)
    os.kill(machine.nspawn_pid(lay, sb.target), signal.SIGKILL)  # nspawn dies; its init lives on
    deadline = time.monotonic() + 10
    while machine.nspawn_pid(lay, sb.target) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert machine.host.alive(init)

    status = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert status["server_state"] == "stopped" and status["ssh"] == "server is stopped"
    refused = sb.lightfold("ssh", "--target", sb.target, "--", "true", check=False)
    assert refused.returncode == 1 and "is stopped" in refused.stderr and "--force" in refused.stderr

    sb.lightfold("destroy", "--target", sb.target, "--yes")
    assert host_traces(sb.target, sb.ip) == []
    assert not machine.host.alive(init)


def test_library_create_takes_a_given_host_key_and_files_before_boot(sandbox_host, tmp_path):
    """What a fake cloud's VM backend needs: the host key lightfold pinned, cloud-init's files."""
    from lightfold.sandbox.image import FileSpec

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")], check=True)
    key = ((tmp_path / "hk").read_text(), (tmp_path / "hk.pub").read_text())
    name = f"t-{os.urandom(5).hex()}"
    m = machine.create(name, "isolated", "ssh-ed25519 AAAA test", str(tmp_path),
                       host_key=key, extra_files=[FileSpec("etc/lightfold/created", "cloud\n", 0o644)])
    try:
        assert m.host_key == " ".join(key[1].split()[:2])
        machine.wait_for_ssh_port(name, m.ip, time.monotonic() + 60)
        out = subprocess.run(machine.exec_argv(name, ["cat", "/etc/lightfold/created",
                                                      "/etc/ssh/ssh_host_ed25519_key.pub"]),
                             capture_output=True, text=True, check=True).stdout
        assert out.startswith("cloud\n") and key[1].split()[1] in out
    finally:
        machine.destroy(name)
    assert machine.traces(layout.layout(), name) == []
