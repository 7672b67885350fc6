"""lightfold.remote against a real machine: commands, uploads, streaming, the channel cap, and
connect failures that say what to do. Only loopback and our own machines are contacted."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from pathlib import Path

import pytest

from lightfold import remote
from lightfold.errors import LightfoldError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def conn_args(sb, known_hosts: Path | None = None, key: str | None = None):
    pc = sb.config()["targets"][sb.target]["provider_config"]["local"]
    return (pc["ip"], 22, "root", key or pc["ssh_key"], known_hosts or sb.home / "known_hosts")


def test_run_upload_and_stream(shared_sandbox):
    sb = shared_sandbox
    lines: list[tuple[str, str]] = []

    async def scenario():
        async with await remote.connect(*conn_args(sb)) as conn:
            ok = await conn.run("echo out; echo err >&2")
            failed = await conn.run("echo nope >&2; exit 3", check=False)
            echoed = await conn.run("cat", input=b"\x00binary\xff")
            await conn.run("for i in 1 2 3; do echo line$i; done", on_output=lambda s, line: lines.append((s, line)))
            with pytest.raises(LightfoldError) as e:
                await conn.run("echo broken >&2; exit 5")
            await conn.upload(b"secret=1\n", "/etc/lightfold/test.env", 0o600)
            await conn.upload(Path(__file__), "/root/deep/dir/copy.py")
            return ok, failed, echoed, e.value

    ok, failed, echoed, err = remote.run_sync(scenario())
    assert ok == (0, "out\n", "err\n")
    assert failed.exit_status == 3 and failed.stderr == "nope\n"
    assert echoed.stdout == "\x00binary\ufffd"
    assert lines == [("stdout", "line1"), ("stdout", "line2"), ("stdout", "line3")]
    assert "exit 5" in err.problem and err.details == ["broken"]
    assert sb.exec("stat -c '%a %U' /etc/lightfold/test.env").stdout.strip() == "600 root"
    assert sb.exec("cat /etc/lightfold/test.env").stdout == "secret=1\n"
    assert sb.exec("cat /root/deep/dir/copy.py").stdout == Path(__file__).read_text()
    assert sb.exec("ls -a /etc/lightfold | grep -c lightfold-upload || true").stdout.strip() == "0"


def test_a_run_can_return_at_a_line_and_leave_the_command_running(shared_sandbox):
    """`stop_when` (a detached agent op's early reply): the call returns at that line, the command
    goes on on the server after the connection closed, and the connection stays usable meanwhile."""
    sb = shared_sandbox
    sb.exec("rm -f /tmp/stop-when-done")

    async def scenario():
        async with await remote.connect(*conn_args(sb)) as conn:
            t0 = time.monotonic()
            # As a detached agent op runs (lightfold.agent.bundle.detached_command): in a transient unit.
            script = """echo first; echo '{"early": true}'; sleep 3; touch /tmp/stop-when-done"""
            res = await conn.run("systemd-run --unit=lf-stop-when-test --collect --wait --pipe --quiet sh -c "
                                 + shlex.quote(script), stop_when=lambda line: "early" in line)
            returned = time.monotonic() - t0
            after = await conn.run("echo still usable")
            return res, returned, after

    t0 = time.monotonic()
    res, returned, after = remote.run_sync(scenario())
    closed = time.monotonic() - t0
    assert res.exit_status == 0 and res.stdout == 'first\n{"early": true}\n'
    assert returned < 2 and closed < 2.5 and after.stdout == "still usable\n"
    assert sb.exec("test -e /tmp/stop-when-done && echo yes || echo no").stdout.strip() == "no"
    deadline = time.monotonic() + 10
    while sb.exec("test -e /tmp/stop-when-done && echo yes || echo no").stdout.strip() != "yes":
        assert time.monotonic() < deadline, "the command did not go on after the connection closed"
        time.sleep(0.3)


def test_at_most_ten_channels_run_at_once(shared_sandbox):
    sb = shared_sandbox

    async def scenario():
        async with await remote.connect(*conn_args(sb)) as conn:
            await conn.run("rm -rf /tmp/ch && mkdir /tmp/ch")
            # Each command records how many are running alongside it.
            cmd = "touch /tmp/ch/$$; ls /tmp/ch | wc -l; sleep 0.3; rm /tmp/ch/$$"
            return await asyncio.gather(*(conn.run(cmd) for _ in range(25)))

    t0 = time.monotonic()
    results = remote.run_sync(scenario())
    assert all(r.exit_status == 0 for r in results)
    assert max(int(r.stdout) for r in results) <= 10
    assert time.monotonic() - t0 >= 0.9  # 25 commands in three waves of at most ten


def test_changed_host_key_is_refused_showing_both_fingerprints(shared_sandbox, tmp_path):
    sb = shared_sandbox
    ip = conn_args(sb)[0]
    pinned = (sb.home / "known_hosts").read_text().split()
    impostor = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMVt0cTb1IhTK6cRbw+CXQnkH2WySmvbD6FZOeQiQn0"
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{ip} {impostor}\n")
    with pytest.raises(LightfoldError) as e:
        remote.run_sync(remote.connect(*conn_args(sb, known_hosts=kh)))
    assert remote.fingerprint(impostor) in e.value.problem
    assert remote.fingerprint(f"{pinned[1]} {pinned[2]}") in e.value.problem
    assert "ssh-keygen -R" in e.value.fix

    kh.write_text("")
    with pytest.raises(LightfoldError, match="not pinned"):
        remote.run_sync(remote.connect(*conn_args(sb, known_hosts=kh)))


def test_wrong_key_and_unreachable_host_are_clear_errors(shared_sandbox, tmp_path):
    import subprocess

    sb = shared_sandbox
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(LightfoldError, match="refused the SSH key") as e:
        remote.run_sync(remote.connect(*conn_args(sb, key=str(key))))
    assert str(key) in e.value.fix
    with pytest.raises(LightfoldError, match=r"cannot reach 127\.0\.0\.1:1 "):
        remote.run_sync(remote.connect("127.0.0.1", 1, "root", str(key), tmp_path / "kh", timeout=3))
    with pytest.raises(LightfoldError, match="does not exist"):
        remote.run_sync(remote.connect("127.0.0.1", 1, "root", str(tmp_path / "missing"), tmp_path / "kh"))


def test_status_reports_an_ssh_failure_instead_of_crashing(shared_sandbox):
    sb = shared_sandbox
    path = sb.home / "config.json"
    original = path.read_text()
    cfg = json.loads(original)
    cfg["targets"][sb.target]["provider_config"]["local"]["port"] = 2222  # nothing listens there
    path.write_text(json.dumps(cfg))
    try:
        info = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    finally:
        path.write_text(original)
    assert info["server_state"] == "running"
    assert info["ssh"].startswith(f"cannot reach {sb.ip}:2222")


def test_lightfold_ssh_refuses_a_host_key_that_is_not_the_pinned_one(shared_sandbox):
    sb = shared_sandbox
    kh = sb.home / "known_hosts"
    original = kh.read_text()
    kh.write_text(f"{sb.ip} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMVt0cTb1IhTK6cRbw+CXQnkH2WySmvbD6FZOeQiQn0\n")
    try:
        proc = sb.lightfold("ssh", "--target", sb.target, "--", "true", check=False)
    finally:
        kh.write_text(original)
    assert proc.returncode == 255 and "verification failed" in proc.stderr
