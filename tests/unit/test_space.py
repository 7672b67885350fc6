"""Disk space for a push (lightfold.release.space): checked before the upload, named when the
server runs out during the upload or the build."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from lightfold.errors import LightfoldError
from lightfold.release import space
from lightfold.release.scripts import PlanRun


def test_a_release_that_does_not_fit_stops_before_the_upload_naming_both_figures_and_the_fix():
    with pytest.raises(LightfoldError) as e:
        space.check_before_upload("shop", 30 * space.MB, 8 * space.MB)
    assert "/srv has 30 MB free" in e.value.problem and "needs about 58 MB" in e.value.problem
    assert "8.0 MB of files" in e.value.problem and "nothing was uploaded" in e.value.problem
    assert "lightfold ssh --target shop -- du" in e.value.fix and "live release keeps serving" in e.value.fix


def test_enough_space_or_an_unknown_figure_passes():
    space.check_before_upload("shop", 59 * space.MB, 8 * space.MB)
    space.check_before_upload("shop", None, 10**12)


def test_release_bytes_sums_the_shipped_files_and_skips_vanished_ones(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 24)
    assert space.release_bytes(tmp_path, ["a", "d/b", "gone"]) == 1024


class Conn:
    def __init__(self, df: str = "     Avail\n1234567\n"):
        self.df, self.ran = df, []

    async def run(self, cmd, check=True, timeout=None, **_):
        self.ran.append(cmd)
        return SimpleNamespace(stdout=self.df, exit_status=0)


def test_a_full_disk_in_the_upload_is_named_with_what_is_free_now():
    conn, err = Conn(), LightfoldError("`upload and unpack the release` failed (exit 2)")
    lines = ["tar: ./ballast.bin: Wrote only 4096 of 10240 bytes", "tar: ./x: Cannot write: No space left on device"]
    with pytest.raises(LightfoldError) as e:
        asyncio.run(space.raise_if_out_of_space(conn, "shop", "upload", err, lines))
    assert e.value.problem == ("the server ran out of disk space during the upload: No space left on device "
                               "(1.2 MB free on /srv now)")
    assert e.value.details == lines and conn.ran == ["df -B1 --output=avail /srv"]
    asyncio.run(space.raise_if_out_of_space(conn, "shop", "upload", err, ["tar: unexpected EOF"]))  # not full


def test_a_build_that_runs_out_of_space_says_so_instead_of_just_its_exit_status(monkeypatch):
    from lightfold.release import push, scripts

    async def run_plan(*_a, **_k):
        return PlanRun(1, "", "", {"build": "build", "command": "make", "exit": 1, "status": "failed",
                                   "output": ["head: error writing 'built.bin': No space left on device"]})

    monkeypatch.setattr(scripts, "run_plan", run_plan)
    target = SimpleNamespace(name="shop")
    with pytest.raises(LightfoldError) as e:
        asyncio.run(push._run_build(Conn("Avail\n0\n"), target, "", lambda *_: None, "20260101000000"))
    assert e.value.problem.startswith("the server ran out of disk space during the build")
    assert "(0.0 MB free on /srv now)" in e.value.problem and "du -xhd1" in e.value.fix
