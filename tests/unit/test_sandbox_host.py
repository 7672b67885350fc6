"""The host side of sandbox machines that needs no machine: file system types and the tmpfs a
machine's reboot needs (lightfold.sandbox.host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lightfold.sandbox import host


def test_fs_type_names_the_mount_that_holds_a_path():
    assert host.fs_type(Path("/proc/self/status")) == "proc"
    assert host.fs_type(Path("/")) != ""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_a_plain_directory_gets_a_tmpfs_once_and_a_directory_with_entries_is_left_alone(tmp_path: Path):
    plain, busy = tmp_path / "propagate", tmp_path / "busy"
    (busy / "a-machine").mkdir(parents=True)
    code = ("from pathlib import Path; from lightfold.sandbox import host;"
            f"p, b = Path({str(plain)!r}), Path({str(busy)!r});"
            "print(host.fs_type(p) != 'tmpfs', host.ensure_temporary_fs(p), host.fs_type(p),"
            " host.ensure_temporary_fs(p), host.ensure_temporary_fs(b), (b / 'a-machine').is_dir())")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    out = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "tmpfs", "True", "False", "True"]
    assert host.fs_type(plain) != "tmpfs"  # the mount stayed in the test's own namespace


def test_the_launcher_starts_nspawn_again_after_a_reboot_and_passes_any_other_status(tmp_path: Path):
    from lightfold.sandbox import machine_plan

    runs, pidfile = tmp_path / "runs", tmp_path / "pid"
    # exits 133 (a reboot) twice, then 7 (a poweroff would be 0): three runs, status 7
    fake = f'echo run >> {runs}; [ "$(wc -l < {runs})" -ge 3 ] && exit 7; exit 133'
    out = subprocess.run(["sh", "-c", machine_plan.LAUNCHER, "lightfold-nspawn", str(pidfile), "--", "sh", "-c", fake],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 7, out.stderr
    assert runs.read_text().count("run") == 3 and pidfile.read_text().strip().isdigit()
