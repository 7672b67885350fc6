"""A Python newer than the server's: the version requests, the decision, configure's steps and the
build's interpreter (lightfold.server.pyversion)."""

from __future__ import annotations

import re
import shlex

import pytest
from tests.unit.server.serverkit import Det, bash_syntax_ok

from lightfold.config import DeployConfig
from lightfold.errors import LightfoldError
from lightfold.release import facts
from lightfold.server import pyversion
from lightfold.server.build import lockfiles, user_build_script
from lightfold.server.plan import EnsurePackages, Run
from lightfold.server.runtime import runtime_step

BOOKWORM = {"version": (3, 11, 2), "os": "debian", "codename": "bookworm"}
TRIXIE = {"version": (3, 13, 5), "os": "debian", "codename": "trixie"}
NOBLE = {"version": (3, 12, 3), "os": "ubuntu", "codename": "noble"}


def py(version: str | None, source: str = ".python-version", pm: str = "uv") -> Det:
    return Det(framework="fastapi", language="python", runtime="python", runtime_version=version,
               package_manager=pm, install="uv sync --frozen --no-dev", build=None, start="uvicorn main:app",
               runtime_version_source=source)


@pytest.mark.parametrize("spec, ok", [
    ("3.11", True), ("3.11.9", True), ("3.12", False), (">=3.10", True), (">=3.12", False),
    (">=3.10,<3.14", True), (">=3.8, <3.11", False), ("~=3.11", True), ("~=3.12", False),
    ("~=3.11.1", True), ("~=3.11.3", False), ("==3.11.*", True), ("==3.12.*", False), ("^3.11", True),
    ("^3.12", False), ("~3.11", True), ("<3.12", True), (">3.11", True), (">3.11.2", False),
    ("!=3.11.*", False), (">=3.12 || >=3.8", True), ("*", True), ("", True), ("python-3.11.4", True),
    ("cpython@3.13", False), ("3", True),
])
def test_requests_as_projects_write_them(spec, ok):
    assert pyversion.satisfies((3, 11, 2), spec) is ok


def test_the_python3_fact_parses_version_and_os():
    out = 'python3=3.11.2\nID=debian\nVERSION_CODENAME=bookworm\n'
    assert pyversion.parse_python3(out) == BOOKWORM
    assert pyversion.parse_python3("ID=ubuntu\n") == {"version": None, "os": "ubuntu", "codename": None}
    fact = facts.python3()
    assert fact.name == "python3" and "sys.version_info" in fact.command and "/etc/os-release" in fact.command


@pytest.mark.parametrize("spec", [None, "3.11", ">=3.9", "~=3.10"])
def test_the_servers_python3_is_kept_when_it_satisfies(spec):
    assert pyversion.python_need(py(spec), BOOKWORM) is None


@pytest.mark.parametrize("spec", ["3.13", "3.13.1", ">=3.12", ">=3.12,<3.14", "^3.12", "==3.13.*"])
def test_a_newer_request_on_debian_12_builds_trixies_python(spec):
    need = pyversion.python_need(py(spec), BOOKWORM)
    assert need == pyversion.PythonNeed("3.13", "trixie")
    assert need.interpreter == "/opt/lightfold/python-3.13/bin/python3.13"


def test_a_server_whose_python3_is_new_enough_builds_nothing():
    assert pyversion.python_need(py("3.13"), TRIXIE) is None
    assert pyversion.python_need(py(">=3.12"), NOBLE) is None
    assert pyversion.python_need(Det(runtime="node", runtime_version="22"), BOOKWORM) is None


@pytest.mark.parametrize("spec, server, words", [
    ("3.12", BOOKWORM, ["Python 3.12 (.python-version)", "python3 is 3.11.2", "only Python 3.13",
                        "change .python-version"]),
    (">=3.14", BOOKWORM, ["Python >=3.14 (.python-version)", "--image", "Dockerfile"]),
    ("3.13", NOBLE, ["python3 is 3.12.3", "on Debian servers"]),
    ("3.12", TRIXIE, ["Python 3.12 (.python-version)", "python3 is 3.13.5 and lightfold builds no newer Python",
                      "change .python-version to admit Python 3.13.5, or", "--image"]),
    (">=3.14", TRIXIE, ["python3 is 3.13.5", "no newer Python", "(`--image`)"]),
    ("3.11", TRIXIE, ["Python 3.11 (.python-version)", "python3 is 3.11 (--image debian-12 has 3.11)"]),
])
def test_a_version_that_cannot_be_had_is_one_clear_error(spec, server, words):
    with pytest.raises(LightfoldError) as e:
        pyversion.python_need(py(spec), server)
    text = f"{e.value.problem} {e.value.fix}"
    for w in words:
        assert w in text


def test_the_error_names_a_pyproject_source():
    with pytest.raises(LightfoldError, match=re.escape("(pyproject.toml requires-python)")):
        pyversion.python_need(py(">=3.15", "pyproject.toml requires-python"), BOOKWORM)


def test_on_debian_13_a_project_asking_for_3_13_gets_the_system_python_and_no_build():
    for spec in ("3.13", ">=3.12", "==3.13.*", "^3.12"):
        actions = runtime_step(py(spec), TRIXIE).actions
        assert not any(isinstance(a, Run) and "python-3" in a.command for a in actions), spec
        assert pyversion.BUILD_PACKAGES not in [getattr(a, "names", None) for a in actions]


def test_configure_builds_it_after_the_runtime_packages_and_only_once():
    actions = runtime_step(py("3.13"), BOOKWORM).actions
    assert isinstance(actions[0], EnsurePackages) and "python3-venv" in actions[0].names
    assert actions[1] == EnsurePackages(pyversion.BUILD_PACKAGES)
    build = actions[2]
    assert isinstance(build, Run) and build.label == "python 3.13 (built from Debian trixie's source)"
    prefix = "/opt/lightfold/python-3.13"
    assert build.unless == f"test -f {prefix}/.complete && test -x {prefix}/bin/python3.13"
    kept = runtime_step(py("3.11"), BOOKWORM).actions
    assert [a for a in kept if isinstance(a, Run) and "python-3" in a.command] == []


def test_the_build_command_takes_the_archive_from_the_servers_own_apt_sources():
    cmd = pyversion.build_command(pyversion.PythonNeed("3.13", "trixie"))
    script = shlex.split(cmd)[2]
    bash_syntax_ok(script)
    # No host of ours: the URI is the one the server's apt sources give for its own codename.
    assert "apt-get indextargets --format '$(REPO_URI) $(RELEASE)'" in script and "$VERSION_CODENAME" in script
    assert not re.search(r"https?://", script)
    assert "Suites: trixie" in script and f"Signed-By: {pyversion.DEBIAN_KEYRING}" in script
    assert "Dir::Etc::SourceList=/dev/null" in script  # the server's own sources.list is left alone
    assert "source --download-only python3.13" in script
    assert "./configure -q --prefix=/opt/lightfold/python-3.13" in script
    assert script.index("import ssl, sqlite3") < script.index("touch /opt/lightfold/python-3.13/.complete")


def test_the_build_makes_the_venv_with_the_built_python_when_it_is_there():
    script = user_build_script("shop", py("3.13"), DeployConfig(), "20260101120001")
    interp = "/opt/lightfold/python-3.13/bin/python3.13"
    assert f"if [ -x {interp} ]; then LF_PYTHON={interp}; fi" in script
    assert "$LF_PYTHON -m venv --without-pip '$DEPS/.venv'" in script
    plain = user_build_script("shop", py(">=3.9"), DeployConfig(), "20260101120001")
    assert "/opt/lightfold/python-" not in plain
    # Not buildable: the build does not guess (configure has said why already).
    assert "/opt/lightfold/python-" not in user_build_script("shop", py("3.12"), DeployConfig(), "20260101120001")


def test_a_changed_version_file_is_a_new_venv():
    assert {".python-version", "runtime.txt"} <= set(lockfiles(py("3.13")))
