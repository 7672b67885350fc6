"""Reboots and a skewed clock (issue 18) on a sandbox machine of their own, with the same four
checks as test_matrix.py.

A sandbox machine reboots like a VM: systemd-nspawn exits 133 on `systemctl reboot` and
lightfold.sandbox's launcher starts it again, on a tmpfs propagation directory (nspawn refuses to
clean up one on a disk file system).

A machine shares the host's kernel clock, so its skewed clock is libfaketime (/etc/ld.so.preload)
in every process it starts from then on: sshd, nginx, the agent, the app. Two things keep that
faithful to a server whose whole clock is off. CLOCK_MONOTONIC is left alone
(FAKETIME_DONT_FAKE_MONOTONIC): a real skew never moves it, and a shifted one made every
absolute-deadline sleep last the skew (an earlier version hung under -5h). systemd itself (PID 1)
cannot be skewed, so its clients (systemd-run, systemctl, journalctl: FAKETIME_SKIP_CMDS) keep its
time, as they would on a real server (faked, a `systemd-run --wait` never saw its unit end). What
stays real and is not faithful: timestamps the kernel keeps (file mtimes) and those of systemd and
journald."""

from __future__ import annotations

import calendar
import json
import time

import pytest
from tests.faults.faults import (
    Watched,
    assert_next_deploy_works,
    assert_nothing_left,
    assert_truthful,
    deployed_v1,
    probe,
    reboot,
    served,
    set_version,
    status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
FAKETIME_ENV = "FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_SKIP_CMDS=systemd-run,systemctl,journalctl"


@pytest.fixture(scope="module")
def app(shared_sandbox):
    return deployed_v1(shared_sandbox)


def test_reboot_idle_brings_the_live_slot_back(app):
    sb = app
    before = served(sb)
    took = reboot(sb)
    assert served(sb) == before, took
    assert_truthful(sb, before[0])
    assert_nothing_left(sb)
    with probe(sb) as p:
        time.sleep(2)
    assert p.result.failed == 0, p.result.summary()
    assert_next_deploy_works(sb, "v8")


def test_reboot_mid_switch_boots_the_last_good_release(app):
    """A reboot while the new slot boots: the machine comes back serving the old release, and the
    next deploy replaces the dead deploy's lock and marks its release failed."""
    sb = app
    before = served(sb)
    set_version(sb, "v9-rebooted", boot_delay=3)
    run = Watched(sb, "deploy", "--target", sb.target)
    run.wait_for("starting 2")
    reboot(sb)
    code, _, err = run.finish(timeout=180)
    assert code == 1, err
    assert served(sb) == before
    with probe(sb) as p:
        rid = assert_next_deploy_works(sb, "v9")
    assert p.result.failed == 0, p.result.summary()
    states = {r["id"]: r["status"] for r in status(sb)["releases"]}
    assert states[rid] == "live" and "building" not in states.values(), states


def test_clock_skewed_by_hours(app):
    """The server's clock runs hours ahead of the laptop's, then hours behind: deploys, the lock
    and status still work, and the journal keeps the server's time (the agent's clock, not the
    laptop's, stamps a release's creation and activation)."""
    sb = app
    have = sb.exec("apt-get install -y -q libfaketime >/dev/null 2>&1 || "
                   "(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libfaketime >/dev/null 2>&1)",
                   check=False, timeout=300)
    lib = sb.exec("ls /usr/lib/*/faketime/libfaketime.so.1", check=False).stdout.strip()
    if have.returncode != 0 or not lib:
        pytest.fail(f"libfaketime could not be installed on the machine: {have.stdout}{have.stderr}")
    try:
        for skew, hours, version in (("+5h", 5, "v7-ahead"), ("-5h", -5, "v7-behind")):
            # Services get the settings from the manager, SSH sessions from /etc/environment.
            sb.exec(f"systemctl set-environment {FAKETIME_ENV} && printf '%s\\n' {FAKETIME_ENV} >> /etc/environment"
                    f" && echo {skew} > /etc/faketimerc && echo {lib} > /etc/ld.so.preload")
            server_now = float(sb.exec("date +%s").stdout)
            assert abs(server_now - time.time() - hours * 3600) < 300, server_now
            sb.exec("systemctl restart ssh nginx")
            with probe(sb) as p:
                rid = assert_next_deploy_works(sb, version)
            assert p.result.failed == 0, p.result.summary()
            assert status(sb)["lock"] is None
            entry = next(e for e in journal(sb) if e["id"] == rid)
            for key in ("created_at", "activated_at"):  # the server's clock, within the deploy's minute or so
                assert abs(epoch(entry[key]) - time.time() - hours * 3600) < 300, (key, entry, skew)
    finally:
        sb.exec("rm -f /etc/ld.so.preload /etc/faketimerc;"
                " systemctl unset-environment FAKETIME_DONT_FAKE_MONOTONIC FAKETIME_SKIP_CMDS;"
                " sed -i '/^FAKETIME_/d' /etc/environment; systemctl restart ssh nginx",
                check=False)
    assert_next_deploy_works(sb, "v7")


def journal(sb) -> list[dict]:
    """The release journal on the server (`/srv/<app>/.lightfold/releases.json`)."""
    return json.loads(sb.exec(f"cat /srv/{sb.target}/.lightfold/releases.json").stdout)


def epoch(iso: str) -> float:
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
