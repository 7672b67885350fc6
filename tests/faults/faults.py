"""What every fault scenario shares: the app (tests/faults/app: stdlib Python, answers
"<version> <release id>"), deploys watched line by line so a fault lands at a known step, the
faults themselves (a partition made on the host, a reboot), and the four checks each scenario
ends with:

    1. the last good release kept serving (a Probe: 0 failed requests, unless the fault is the
       server going down)
    2. the next plain `lightfold deploy` succeeds, with no manual step in between
    3. `status --json` tells the truth (the release nginx serves is the live one, no switch, no
       lock, nothing "building")
    4. nothing is left behind: the deploy lock, switch intent, upload/temp files under
       /srv/<app>, transient agent units, a running idle slot
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.apps import commit, get, git

from lightfold.probe import Probe

APP = Path(__file__).parent / "app"

# Scenarios written but not yet seen passing on a sandbox machine stay out of the default run:
# deselected, not skipped (tests/faults/conftest.py), and LIGHTFOLD_FAULTS=all runs them.
unproven = pytest.mark.faults_unproven


def probe(sb) -> Probe:
    """The availability probe every scenario runs on the app's address."""
    return Probe(f"http://{sb.ip}/", rate=20, expect_status=200)


def deployed_v1(sb):
    """The module's machine with the app's v1 deployed and answering (what each scenario starts from)."""
    install_app(sb, "v1")
    deploy(sb)
    assert served(sb)[0] == "v1"
    return sb


def install_app(sb, version: str = "v1") -> None:
    shutil.copytree(APP, sb.project, dirs_exist_ok=True)
    (sb.project / "version.txt").write_text(version + "\n")
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, version)


def set_version(sb, version: str, boot_delay: float = 0) -> None:
    """The next release answers `version`, after waiting `boot_delay` s before it listens."""
    (sb.project / "version.txt").write_text(version + "\n")
    delay = sb.project / "boot_delay.txt"
    if boot_delay:
        delay.write_text(f"{boot_delay}\n")
    else:
        delay.unlink(missing_ok=True)
    commit(sb.project, version)


def served(sb) -> tuple[str, str]:
    """(version, release id) of whatever nginx answers with."""
    status, body = get(sb.ip)
    assert status == 200, (status, body)
    version, rid = body.decode().split()
    return version, rid


def status(sb) -> dict:
    return json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)


def deploy(sb, *extra: str) -> dict:
    return json.loads(sb.lightfold("deploy", "--target", sb.target, "--json", *extra, timeout=600).stdout)


class Watched:
    """A CLI command whose stderr is read as it comes, to strike at a given step."""

    def __init__(self, sb, *args: str):
        self.proc = sb.popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._out.append(self.proc.stdout.read()), daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # EOF
            self._cond.notify_all()

    def wait_for(self, marker: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(marker in line for line in self.lines):
                left = deadline - time.monotonic()
                assert left > 0 and "" not in self.lines, f"no {marker!r} in:\n{self.text}"
                self._cond.wait(left)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.1)
        return code, "".join(self._out), self.text


@contextlib.contextmanager
def partition(sb) -> Iterator[None]:
    """Drop every SSH packet between this host and the machine, both ways, without a FIN or RST:
    the deploying laptop's network is gone, while the server's users (HTTP) still reach it, so the
    probe still measures the server. Only this machine's address; the table is ours alone and is
    deleted however the block ends."""
    table = f"lf_fault_{uuid.uuid4().hex[:8]}"
    nft = ["nft", "-f", "-"]
    rules = (f"table inet {table} {{\n"
             f"  chain in {{ type filter hook input priority -300; ip saddr {sb.ip} tcp sport 22 drop; }}\n"
             f"  chain out {{ type filter hook output priority -300; ip daddr {sb.ip} tcp dport 22 drop; }}\n"
             "}\n")
    subprocess.run(nft, input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=True)


def reboot(sb, timeout: float = 120) -> float:
    """`systemctl reboot` inside the machine (systemd-nspawn boots it again in place); returns the
    seconds until nginx answers again."""
    from lightfold.sandbox import layout, machine

    lay = layout.layout()
    before = machine.leader_pid(lay, sb.target)
    t = time.monotonic()
    sb.exec("systemctl reboot", check=False)
    deadline = t + timeout
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"{sb.target} did not come back within {timeout}s (nspawn "
                                 f"{machine.nspawn_pid(lay, sb.target)}, init {machine.leader_pid(lay, sb.target)}):\n"
                                 + "\n".join(machine.console_tail(lay, sb.target, 30)))
        leader = machine.leader_pid(lay, sb.target)
        if leader and leader != before:
            with contextlib.suppress(OSError):
                if get(sb.ip, timeout=1)[0] == 200:
                    return time.monotonic() - t
        time.sleep(0.3)


def settled(sb, timeout: float = 90) -> dict:
    """`status --json` once the server has no switch in progress and no deploy lock but a stale
    one (a dead deploy's, which the next deploy replaces)."""
    deadline = time.monotonic() + timeout
    while True:
        s = status(sb)
        if not s["switch_in_progress"] and (s["lock"] is None or s["lock"]["stale"]):
            return s
        assert time.monotonic() < deadline, s
        time.sleep(0.5)


def assert_truthful(sb, version: str) -> dict:
    """Check 3: status names the release nginx serves, healthy, with nothing in between."""
    s = settled(sb)
    got, rid = served(sb)
    assert got == version, (got, version)
    assert s["live_release"] == rid and s["health_now"]["ok"] is True, s
    states = {r["id"]: r["status"] for r in s["releases"]}
    assert [r for r, st in states.items() if st == "live"] == [rid], states
    assert "building" not in states.values(), states
    return s


def assert_nothing_left(sb, stale_lock_ok: bool = False) -> None:
    """Check 4: no lock (`stale_lock_ok`: but a stale one, before the next deploy), no switch
    intent, no upload or temp files, no transient agent unit, and only the live slot running."""
    app = f"/srv/{sb.target}"
    lock = status(sb)["lock"]
    assert lock is None or (stale_lock_ok and lock["stale"]), lock
    left = sb.exec(
        f"ls -d {app}/.lightfold/switch.json 2>/dev/null;"
        f" find {app} \\( -path {app}/deps -o -path {app}/cache -o -path {app}/storage \\) -prune -o"
        " \\( -name '.lightfold-upload.*' -o -name 'upload-*.tar.gz' -o -name '*.tmp' -o -name '*.new' \\) -print",
        check=False).stdout.split()
    assert not left, left
    units = sb.exec("systemctl list-units --all --plain --no-legend 'lightfold-activate-*' 'lightfold-rollback-*'"
                    f" 'lightfold-cleanup-*' 'lightfold-{sb.target}.run-*'").stdout.strip()
    assert not units, units
    s = status(sb)
    running = sb.exec(f"systemctl list-units --state=active --plain --no-legend 'lightfold-{sb.target}@*'").stdout
    assert [line.split()[0] for line in running.splitlines()] == [f"lightfold-{sb.target}@{s['slot']}.service"], running


def assert_next_deploy_works(sb, version: str) -> str:
    """Check 2: a plain deploy of a new version goes live; returns its release id."""
    set_version(sb, version)
    data = deploy(sb)
    rid = data["push"]["release"]
    assert served(sb) == (version, rid)
    assert_truthful(sb, version)
    assert_nothing_left(sb)
    return rid
