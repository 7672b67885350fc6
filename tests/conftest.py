"""Shared fixtures: every test gets its own LIGHTFOLD_HOME so the user's files are never touched."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import pytest

LIGHTFOLD_BIN = str(Path(sys.executable).with_name("lightfold"))


@pytest.fixture
def lf_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "lightfold-home"
    monkeypatch.setenv("LIGHTFOLD_HOME", str(home))
    monkeypatch.setenv("LIGHTFOLD_NO_KEYRING", "1")
    for var in ("DIGITALOCEAN_TOKEN", "VULTR_API_KEY", "HCLOUD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def cli(lf_home, tmp_path):
    """Run the installed `lightfold` executable as a user would; returns CompletedProcess."""
    import subprocess

    def run(*args: str, input: str | None = None, cwd: Path | None = None, env: dict | None = None):
        full_env = {**os.environ, "LIGHTFOLD_HOME": str(lf_home), "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [LIGHTFOLD_BIN, *args], input=input, capture_output=True, text=True,
            cwd=cwd or tmp_path, env=full_env, timeout=60,
        )

    return run


# ---- tests outside the default run -------------------------------------------------------------
# Deselected (never skipped) unless their variable is "all": the default suite stays within its
# time budget, and every one of them has a command in README.md.
OPT_IN = {
    "realworld_full": "LIGHTFOLD_REALWORLD",  # every real-world app, not only the default three
    "faults_unproven": "LIGHTFOLD_FAULTS",  # a fault scenario not yet seen passing
    "scale_full": "LIGHTFOLD_SCALE",  # three local app servers behind HAProxy (about 6 minutes)
}


def pytest_collection_modifyitems(config, items) -> None:
    out = [i for i in items
           if any(i.get_closest_marker(m) and os.environ.get(var) != "all" for m, var in OPT_IN.items())]
    if out:
        config.hook.pytest_deselected(items=out)
        items[:] = [i for i in items if i not in out]


# ---- sandbox machines: the run fails if any is left over ------------------------------------
# Here rather than in tests/e2e/conftest.py because under pytest-xdist only this file is loaded by
# the controller, the one process that finishes after every worker has torn its machines down.

_sandbox_tmp: str | None = None


def _sandbox_checkable() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


def pytest_sessionstart(session) -> None:
    global _sandbox_tmp
    if hasattr(session.config, "workerinput") or not _sandbox_checkable():
        return
    # Machines are ours when their owner (a LIGHTFOLD_HOME) lies in this run's temp dir; xdist
    # workers' temp dirs are inside it. Other runs' and the user's machines are never touched.
    _sandbox_tmp = str(session.config._tmp_path_factory.getbasetemp().resolve()) + "/"


def pytest_sessionfinish(session, exitstatus) -> None:
    if _sandbox_tmp is None:
        return
    from lightfold.sandbox import layout, machine

    lay = layout.layout()
    machine.wait_idle()
    ours = [n for n in machine.names(lay) if (machine.owner_of(lay, n) or "").startswith(_sandbox_tmp)]
    left = [f"{n}: {t}" for n in ours for t in machine.traces(lay, n)]
    if not machine.names(lay):  # no machine of anyone's: the shared bridge/proxy must be gone too
        # ...but an image build in progress (another run's, under its own lock) is not a leftover.
        building = f"mount {lay.images}/"
        left += [x for x in machine.leftovers(lay) if not (x.startswith(building) and ".tmp." in x)]
    if not left:
        return
    for name in ours:
        machine.destroy(name)
    machine.release_shared()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        lines = ["sandbox leftovers after the test run (now removed):", *(f"  {x}" for x in left)]
        reporter.write_line("\n".join(lines), red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---- the real-world suite's table (tests/realworld): rows come in the reports' user_properties,
# which xdist sends to the controller, so the table is printed once, for every worker.

_RW_COLUMNS = ("app", "framework", "pm", "result", "configure", "install", "build", "boot", "overhead", "push",
               "redeploy", "redeploy_overhead", "redeploy_install")


def _cell(value) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def pytest_terminal_summary(terminalreporter) -> None:
    rows = [dict(v) for reports in terminalreporter.stats.values() for r in reports
            if getattr(r, "when", None) == "call" for k, v in getattr(r, "user_properties", ()) if k == "realworld"]
    if not rows:
        return
    rows.sort(key=lambda r: r["app"])
    table = [_RW_COLUMNS] + [tuple(_cell(r.get(c))[:48] for c in _RW_COLUMNS) for r in rows]  # reasons below
    widths = [max(len(line[i]) for line in table) for i in range(len(_RW_COLUMNS))]
    terminalreporter.section("real-world apps: seconds of the first deploy (install: venv + install; build: build +"
                             " release command; overhead: until traffic moved, less install, build and boot) and"
                             " of a one-file redeploy (until traffic moved; its overhead; what its install did)")
    for line in table:
        terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    medians = []
    for key, what in (("overhead", "first deploy"), ("redeploy_overhead", "one-file redeploy")):
        got = sorted(r[key] for r in rows if r.get(key) is not None)
        if got:
            medians.append(f"{what} {statistics.median(got):.1f} s (max {got[-1]:.1f} s, {len(got)} apps)")
    if medians:
        terminalreporter.write_line("median overhead: " + "; ".join(medians))
    for r in rows:
        if r["result"] != "live":
            terminalreporter.write_line(f"{r['app']}: {r['result']}")
        if r.get("note"):
            terminalreporter.write_line(f"{r['app']}: {r['note']}")
