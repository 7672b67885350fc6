"""A full disk (issue 18) on its own sandbox machine: /srv is a small tmpfs mounted before the first
deploy (the machine's own /srv lies on the host's disk, which a test must never fill), then filled
with `fallocate` before an upload and during a build. Each push fails with an error naming the
space and the fix, the live release keeps serving, and once space is freed the next plain deploy
works with nothing left behind."""

from __future__ import annotations

import os

import pytest
from tests.faults.faults import (
    Watched,
    assert_next_deploy_works,
    assert_nothing_left,
    assert_truthful,
    deploy,
    install_app,
    probe,
    served,
    set_version,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SRV_SIZE_MB = 96
BALLAST = "/srv/ballast"


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    sb.exec(f"mount -t tmpfs -o size={SRV_SIZE_MB}m,mode=755 lightfold-test-srv /srv")
    install_app(sb, "v1")
    deploy(sb)
    assert served(sb)[0] == "v1"
    return sb


def free_bytes(sb) -> int:
    return int(sb.exec("df -B1 --output=avail /srv | tail -1").stdout)


def fill(sb, leave: int) -> None:
    """Fill /srv up to `leave` bytes free."""
    sb.exec(f"fallocate -l {max(0, free_bytes(sb) - leave)} {BALLAST}")


def unfill(sb) -> None:
    sb.exec(f"rm -f {BALLAST}")


def test_disk_full_before_upload_names_the_space_and_the_fix(app):
    sb = app
    before = served(sb)
    (sb.project / "ballast.bin").write_bytes(os.urandom(8 * 2**20))
    set_version(sb, "v2-full")
    fill(sb, 2 * 2**20)
    try:
        with probe(sb) as p:
            r = sb.lightfold("deploy", "--target", sb.target, check=False, timeout=300)
        assert r.returncode == 1, r.stderr
        assert "disk" in r.stderr and "MB" in r.stderr, r.stderr
        assert served(sb) == before
        assert p.result.failed == 0, p.result.summary()
    finally:
        unfill(sb)
        (sb.project / "ballast.bin").unlink()
    assert_truthful(sb, before[0])
    assert_nothing_left(sb)
    assert_next_deploy_works(sb, "v2")


def test_disk_full_during_the_build_names_the_space_and_the_fix(app):
    sb = app
    before = served(sb)
    manifest = sb.project / "lightfold.toml"
    text = manifest.read_text()
    manifest.write_text(text + 'build = "sleep 3; head -c 20000000 /dev/zero > built.bin"\n')
    set_version(sb, "v3-full")
    try:
        with probe(sb) as p:
            run = Watched(sb, "deploy", "--target", sb.target)
            run.wait_for("sleep 3")  # the build's first step is running
            fill(sb, 2 * 2**20)
            code, _, err = run.finish(timeout=300)
        assert code == 1, err
        assert "space" in err and "MB" in err, err
        assert served(sb) == before
        assert p.result.failed == 0, p.result.summary()
    finally:
        unfill(sb)
        manifest.write_text(text)
    assert_truthful(sb, before[0])
    assert_nothing_left(sb)
    assert_next_deploy_works(sb, "v3")


def test_disk_full_during_the_switch_leaves_one_truthful_outcome(app):
    """/srv fills up completely while the new slot boots (the switch still has to write its
    intent, the journal, nginx's upstream and the result): the deploy either finishes or fails,
    and whichever it says is what nginx serves; nothing half-switched is left once space is back."""
    sb = app
    before = served(sb)
    set_version(sb, "v4-full", boot_delay=3)
    try:
        with probe(sb) as p:
            run = Watched(sb, "deploy", "--target", sb.target)
            run.wait_for("starting 2")  # the agent: "starting <release> in slot ..."
            fill(sb, 0)
            code, _, err = run.finish(timeout=300)
            serving = served(sb)
        assert p.result.failed == 0, p.result.summary()
        if code == 0:
            assert serving[0] == "v4-full", (serving, err)
        else:
            assert serving == before, (serving, err)
            assert "space" in err or "No space left" in err, err
    finally:
        unfill(sb)
    assert_truthful(sb, serving[0])
    assert_nothing_left(sb, stale_lock_ok=True)
    assert_next_deploy_works(sb, "v4")
