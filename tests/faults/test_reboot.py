"""Reboots and a skewed clock (issue 18) on a sandbox machine of their own, with the same four
checks as test_matrix.py.

A sandbox machine reboots like a VM: systemd-nspawn exits 133 on `systemctl reboot` and
lightfold.sandbox's launcher starts it again, on a tmpfs propagation directory (nspawn refuses to
clean up one on a disk file system). Both reboot scenarios are in the default run.

The skewed clock is not yet (LIGHTFOLD_FAULTS=all runs it): a machine shares the host's kernel
clock, so the skew is libfaketime in every process started after it is set, and systemd (PID 1)
keeps the real time. Faking CLOCK_MONOTONIC as well made sleeps last the skew; with
FAKETIME_DONT_FAKE_MONOTONIC=1 a faked `systemd-run --wait` still never returned after its unit
had ended (seen 2026-12-08): the method, not lightfold, until shown otherwise."""

from __future__ import annotations

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
    unproven,
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


@unproven
def test_clock_skewed_by_hours(app):
    """The server's clock runs hours ahead of the laptop's (libfaketime for every process the
    machine starts from now on): deploys, the lock and status still work; then hours behind."""
    sb = app
    have = sb.exec("apt-get install -y -q libfaketime >/dev/null 2>&1 || "
                   "(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libfaketime >/dev/null 2>&1)",
                   check=False, timeout=300)
    lib = sb.exec("ls /usr/lib/*/faketime/libfaketime.so.1", check=False).stdout.strip()
    if have.returncode != 0 or not lib:
        pytest.fail(f"libfaketime could not be installed on the machine: {have.stdout}{have.stderr}")
    try:
        for skew, version in (("+5h", "v7-ahead"), ("-5h", "v7-behind")):
            # Only the wall clock: libfaketime shifts CLOCK_MONOTONIC too unless told not to, and an
            # absolute-deadline sleep on a shifted monotonic clock lasts the skew (a hung deploy).
            # systemd itself (PID 1) cannot be skewed (the machine shares the host's kernel clock),
            # so its clients stay on its time: a faked `systemd-run --wait` never saw its unit end.
            # Services get the settings from the manager, SSH sessions from /etc/environment.
            sb.exec(f"systemctl set-environment {FAKETIME_ENV} && printf '%s\\n' {FAKETIME_ENV} >> /etc/environment"
                    f" && echo {skew} > /etc/faketimerc && echo {lib} > /etc/ld.so.preload")
            server_now = float(sb.exec("date +%s").stdout)
            assert abs(server_now - time.time()) > 4 * 3600, server_now
            sb.exec("systemctl restart ssh nginx")
            with probe(sb) as p:
                rid = assert_next_deploy_works(sb, version)
            assert p.result.failed == 0, p.result.summary()
            assert status(sb)["lock"] is None
            assert rid in {r["id"] for r in status(sb)["releases"]}
    finally:
        sb.exec("rm -f /etc/ld.so.preload /etc/faketimerc;"
                " systemctl unset-environment FAKETIME_DONT_FAKE_MONOTONIC FAKETIME_SKIP_CMDS;"
                " sed -i '/^FAKETIME_/d' /etc/environment; systemctl restart ssh nginx",
                check=False)
    assert_next_deploy_works(sb, "v7")
