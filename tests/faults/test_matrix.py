"""The fault matrix (issue 18) on one sandbox machine: a deploy broken mid-flight by a network
partition or a SIGKILLed agent, and files configure wrote changed by hand (test_reboot.py: reboots
and a skewed clock, on a machine of their own). Each scenario ends with the same four
checks (tests/faults/faults.py): the last good release kept serving, the next plain deploy works,
status tells the truth, nothing is left behind. The scenarios run in order on one machine, each
starting from the release the previous one left live."""

from __future__ import annotations

import json
import os
import time

import pytest
from tests.e2e.apps import commit
from tests.faults.faults import (
    Watched,
    assert_next_deploy_works,
    assert_nothing_left,
    assert_truthful,
    deployed_v1,
    partition,
    probe,
    served,
    set_version,
    settled,
    status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def app(shared_sandbox):
    return deployed_v1(shared_sandbox)


def test_partition_mid_upload_fails_the_push_and_the_next_deploy_replaces_its_lock(app):
    """The laptop's network goes away while the archive is on its way (no FIN, no RST): the CLI
    gives up on its own (SSH keepalives), the server's sshd drops the dead session, and the next
    plain deploy finds the lock stale and marks the half-uploaded release failed."""
    sb = app
    before = served(sb)
    (sb.project / "ballast.bin").write_bytes(os.urandom(16 * 2**20))
    set_version(sb, "v2-partitioned")
    with probe(sb) as p:
        run = Watched(sb, "deploy", "--target", sb.target)
        run.wait_for("uploading")
        with partition(sb):
            t = time.monotonic()
            code, _, err = run.finish(timeout=180)
            gave_up = time.monotonic() - t
        assert code == 1, err
        assert served(sb) == before
    assert p.result.failed == 0 and p.result.total > 20, p.result.summary()
    assert gave_up < 120, gave_up
    assert "ssh" in err.lower() or "connection" in err.lower(), err  # it names the lost connection
    # once the network is back the server drops the dead session, and its lock goes stale
    t = time.monotonic()
    s = settled(sb, timeout=60)
    assert s["live_release"] == before[1], (s, time.monotonic() - t)
    (sb.project / "ballast.bin").unlink()
    assert_next_deploy_works(sb, "v2")


def test_partition_mid_switch_the_switch_finishes_on_the_server(app):
    """A partition of a few seconds while the new slot boots: the detached switch goes on without
    the laptop, and once the network is back the push reports the outcome."""
    sb = app
    set_version(sb, "v3", boot_delay=3)
    with probe(sb) as p:
        run = Watched(sb, "deploy", "--target", sb.target)
        run.wait_for("starting 2")  # the agent: "starting <release> in slot ..."
        with partition(sb):
            time.sleep(12)
        code, _, err = run.finish(timeout=180)
        assert code == 0, err
        settled(sb)
    assert p.result.failed == 0, p.result.summary()
    assert_truthful(sb, "v3")
    assert_nothing_left(sb)
    assert_next_deploy_works(sb, "v4")


@pytest.mark.parametrize("when", ["healthy", "smoke window"])
def test_agent_unit_killed_mid_switch(app, when):
    """SIGKILL of the agent's transient unit (`lightfold-activate-<app>`) while the new slot boots
    (before traffic moved: the push fails) or in its smoke window (after: the push had already
    answered when traffic moved); whatever nginx serves is what status calls live, and the next
    status stops the slot the dead switch left running."""
    sb = app
    before = served(sb)
    version = f"v5-{when.split()[0]}"
    set_version(sb, version, boot_delay=2)
    with probe(sb) as p:
        run = Watched(sb, "deploy", "--target", sb.target)
        if when == "healthy":
            run.wait_for("starting 2")
        else:  # the push returns as soon as traffic moved: the smoke window (5 s) has just begun
            code, _, err = run.finish(timeout=180)
            assert code == 0, err
        sb.exec(f"systemctl kill --signal=KILL lightfold-activate-{sb.target}.service")
        if when == "healthy":
            code, _, err = run.finish(timeout=180)
            assert code == 1, err
        s = settled(sb)
    assert p.result.failed == 0, p.result.summary()
    now = served(sb)
    assert now == before if when == "healthy" else now[0] == version
    assert s["live_release"] == now[1], s
    assert_truthful(sb, now[0])
    assert_nothing_left(sb, stale_lock_ok=True)
    assert_next_deploy_works(sb, f"v6-{when.split()[0]}")


def test_a_file_configure_wrote_changed_by_hand_is_put_back_by_the_next_deploy(app):
    """nginx's site and the slots' unit edited on the server: the configure fingerprint still
    matches, yet the next deploy sees the change, puts both files back and says so."""
    sb = app
    site = f"/etc/nginx/sites-enabled/lightfold-{sb.target}.conf"
    unit = f"/etc/systemd/system/lightfold-{sb.target}@.service"
    wanted = sb.exec(f"sha256sum {site} {unit}").stdout
    sb.exec(f"echo '# edited by hand' >> {site} && echo '# edited by hand' >> {unit}")
    assert sorted(status(sb)["configure_drift"]) == sorted([site, unit])
    assert "changed on the server since configure" in sb.lightfold("status", "--target", sb.target).stdout
    set_version(sb, "v6-drift")
    with probe(sb) as p:
        r = sb.lightfold("deploy", "--target", sb.target, "--json", timeout=600)
    assert p.result.failed == 0, p.result.summary()
    assert "changed on the server since the last configure" in r.stderr and site in r.stderr, r.stderr
    assert unit in r.stderr and json.loads(r.stdout)["push"]["release"]
    assert sb.exec(f"sha256sum {site} {unit}").stdout == wanted
    assert status(sb)["configure_drift"] == []
    assert_truthful(sb, "v6-drift")
    assert_nothing_left(sb)


@pytest.mark.parametrize("address", ["::1", "0.0.0.0"])
def test_an_app_listening_on_another_address(app, address):
    """On every IPv4 address (0.0.0.0): it goes live. On IPv6 loopback only (Node's
    `listen(PORT, 'localhost')`): nginx cannot reach it, and the deploy says exactly that while the
    last good release keeps serving."""
    sb = app
    before = served(sb)
    listen = sb.project / "listen.txt"
    listen.write_text(address + "\n")
    set_version(sb, f"v11-{address}")
    try:
        with probe(sb) as p:
            # --wait: the deploy returns once the smoke window and the drain are over (and the lock free)
            r = sb.lightfold("deploy", "--target", sb.target, "--wait", check=False, timeout=300)
        assert p.result.failed == 0, p.result.summary()
        if address == "::1":
            assert r.returncode == 1, r.stderr
            assert "listens on [::1]:" in r.stderr and "only (IPv6 loopback)" in r.stderr, r.stderr
            assert served(sb) == before
        else:
            assert r.returncode == 0, r.stderr
            assert served(sb)[0] == f"v11-{address}"
    finally:
        listen.unlink()
        commit(sb.project, "127.0.0.1 again")
    assert_nothing_left(sb)
    assert_next_deploy_works(sb, "v11")


HEALTH_TIMEOUT = 4  # s: lightfold.toml's [health] timeout for the slow-boot scenario (kept short: a quick test)


def test_a_slow_boot_near_the_health_timeout(app):
    """A release that takes just under the health timeout to listen goes live without a failed
    request; one that takes just over fails, naming the timeout, the key and a longer value, and the
    last good release keeps serving."""
    sb = app
    toml = sb.project / "lightfold.toml"
    original = toml.read_text()
    toml.write_text(original + f'\n[health]\ntimeout = "{HEALTH_TIMEOUT}s"\n')
    try:
        set_version(sb, "v12-slow", boot_delay=HEALTH_TIMEOUT - 1.5)
        with probe(sb) as p:
            r = sb.lightfold("deploy", "--target", sb.target, "--wait", check=False, timeout=300)
        assert r.returncode == 0, r.stderr
        assert p.result.failed == 0, p.result.summary()
        before = served(sb)
        assert before[0] == "v12-slow"
        set_version(sb, "v12-too-slow", boot_delay=HEALTH_TIMEOUT + 2)
        with probe(sb) as p:
            r = sb.lightfold("deploy", "--target", sb.target, "--wait", check=False, timeout=300)
        assert p.result.failed == 0, p.result.summary()
        assert r.returncode == 1, r.stderr
        assert f"within the {HEALTH_TIMEOUT}s health timeout" in r.stderr, r.stderr
        assert "under [health] in lightfold.toml" in r.stderr and "deploy.health_timeout" in r.stderr, r.stderr
        assert served(sb) == before
        failed = [r for r in status(sb)["releases"] if r["status"] == "failed"]
        assert failed and failed[0]["id"] > before[1], failed  # the too-slow one, newest first
    finally:
        toml.write_text(original)
        commit(sb.project, "the default health timeout again")
    assert_truthful(sb, "v12-slow")
    assert_nothing_left(sb)
    assert_next_deploy_works(sb, "v12")
