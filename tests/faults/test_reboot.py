"""Reboots and a skewed clock (issue 18) on a sandbox machine of their own, with the same four
checks as test_matrix.py.

Not in the default run yet (LIGHTFOLD_FAULTS=all runs them): on their first run a deploy under a
clock skewed with libfaketime hung until its 600 s timeout; and a sandbox machine cannot reboot:
on `systemctl reboot` systemd-nspawn 252 exits with "Attempted to remove disk file system under
/run/systemd/nspawn/propagate/<name>, and we can't allow that" instead of booting it again (a
sandbox limitation to fix in lightfold.sandbox, e.g. relaunching the machine, before these can run).
The hang is probably the method, not lightfold:
libfaketime shifts CLOCK_MONOTONIC too, and Python 3.11+ sleeps with clock_nanosleep(TIMER_ABSTIME)
on it, so a faked process's first sleep may last the skew (FAKETIME_DONT_FAKE_MONOTONIC=1 in every
process's environment would rule that out). Not verified yet."""

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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900), unproven]
KEEP_MONOTONIC = "FAKETIME_DONT_FAKE_MONOTONIC=1"


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
            # Services get the flag from the manager, SSH sessions from /etc/environment (pam_env).
            sb.exec(f"systemctl set-environment {KEEP_MONOTONIC} && echo {KEEP_MONOTONIC} >> /etc/environment"
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
        sb.exec("rm -f /etc/ld.so.preload /etc/faketimerc; systemctl unset-environment FAKETIME_DONT_FAKE_MONOTONIC;"
                " sed -i '/^FAKETIME_DONT_FAKE_MONOTONIC=/d' /etc/environment; systemctl restart ssh nginx",
                check=False)
    assert_next_deploy_works(sb, "v7")
