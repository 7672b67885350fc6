"""Real sandbox machines for end-to-end tests (`--provider local`, systemd-nspawn).

    def test_something(sandbox):            # a fresh machine, destroyed after the test
        sandbox.lightfold("status", "--json")     # the CLI as a subprocess, in the test's env
        sandbox.exec("systemctl is-active ssh")   # inside the machine without SSH (nsenter)

    def test_other(shared_sandbox): ...     # one machine for the whole module (faster)
    def test_many(machine_factory): a, b = machine_factory(), machine_factory(network="nat")
    def test_old(machine_factory): machine_factory(image="debian-12")   # Debian 12 (default: 13)

LIGHTFOLD_TEST_IMAGE=debian-12 runs every machine of the session on that image instead of the default.

Each machine has its own LIGHTFOLD_HOME and HOME under the test's tmp dir, so the user's real files
are never touched, and a unique target name, so parallel workers (pytest-xdist) never collide.
Teardown always runs `lightfold destroy`, and falls back to the library when the CLI fails. The
session-end check in tests/conftest.py fails the run if anything is left over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LIGHTFOLD = str(Path(sys.executable).with_name("lightfold"))
CLI_TIMEOUT = 150  # below the tests' own timeouts, so a hang shows which command it was


def sandbox_unavailable() -> str | None:
    """Why sandbox machines can't run here (None = they can)."""
    if not sys.platform.startswith("linux"):
        return "sandbox machines need Linux"
    if os.geteuid() != 0:
        return "sandbox machines need root"
    from lightfold.sandbox import host

    missing = host.missing_packages(host.BASE_TOOLS | host.ISOLATED_TOOLS)
    return f"missing host packages: {' '.join(missing)} (run scripts/bootstrap.sh)" if missing else None


def isolated_env(root: Path) -> dict[str, str]:
    """Environment of a lightfold process that sees only `root`: its own LIGHTFOLD_HOME and HOME."""
    home, lf_home = root / "home", root / "lightfold-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTFOLD_", "SSH_AUTH_SOCK"))}
    env.update(
        HOME=str(home), LIGHTFOLD_HOME=str(lf_home), LIGHTFOLD_NO_KEYRING="1", COLUMNS="200",
        XDG_CACHE_HOME=str(root / "cache"), LIGHTFOLD_NO_HELP_CACHE="1",
    )
    for var in ("LIGHTFOLD_SANDBOX_SUBNET", "LIGHTFOLD_DEBIAN_MIRROR"):  # the host's sandbox settings
        if var in os.environ:
            env[var] = os.environ[var]
    return env


@dataclass
class Sandbox:
    """A target whose server is a running sandbox machine."""

    target: str
    root: Path
    env: dict[str, str]
    project: Path
    ip: str | None = None
    network: str = "isolated"
    image: str | None = None  # --image of `create` (None: lightfold's default)
    created: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        """This target's LIGHTFOLD_HOME."""
        return Path(self.env["LIGHTFOLD_HOME"])

    @property
    def user_home(self) -> Path:
        return Path(self.env["HOME"])

    def lightfold(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = CLI_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the `lightfold` CLI as a subprocess with this target's environment."""
        proc = subprocess.run(
            [LIGHTFOLD, *args], capture_output=True, text=True, cwd=self.project, input=input,
            env={**self.env, **(env or {})}, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"lightfold {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        """Start the `lightfold` CLI without waiting (e.g. to kill it halfway)."""
        return subprocess.Popen([LIGHTFOLD, *args], cwd=self.project, env=self.env, **kwargs)

    def exec(
        self, command: str | list[str], check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the machine as root without SSH (nsenter into its init)."""
        from lightfold.sandbox import machine

        argv = ["sh", "-c", command] if isinstance(command, str) else command
        proc = subprocess.run(
            machine.exec_argv(self.target, argv), capture_output=True, text=True, input=input, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"in {self.target}: {argv} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc

    def config(self) -> dict:
        return json.loads((self.home / "config.json").read_text())

    def create(self, *extra: str) -> subprocess.CompletedProcess[str]:
        proc = self.lightfold(
            "create", "--target", self.target, "--provider", "local", "--network", self.network,
            *(("--image", self.image) if self.image else ()), *extra, str(self.project),
        )
        self.ip = self.config()["targets"][self.target]["provider_config"]["local"]["ip"]
        return proc

    def destroy(self) -> None:
        """Remove the machine; the library is the fallback if the CLI can't (the test then fails
        at the session-end leftover check only if even that didn't work)."""
        proc = self.lightfold("destroy", "--target", self.target, "--yes", "--delete-storage", check=False,
                              timeout=120)
        if proc.returncode != 0:
            from lightfold.sandbox import machine

            machine.destroy(self.target)
            raise AssertionError(f"lightfold destroy failed: {proc.stderr}")


def new_sandbox(root: Path, network: str = "isolated", prefix: str = "t", image: str | None = None) -> Sandbox:
    target = f"{prefix}-{uuid.uuid4().hex[:10]}"
    project = root / "project"
    project.mkdir(parents=True, exist_ok=True)
    return Sandbox(target=target, root=root, env=isolated_env(root), project=project, network=network,
                   image=image or os.environ.get("LIGHTFOLD_TEST_IMAGE") or None)


@pytest.fixture(scope="session")
def sandbox_host() -> None:
    reason = sandbox_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def machine_factory(sandbox_host, tmp_path) -> Iterator:
    """Call it to get a freshly created machine (each in its own homes); all are destroyed after."""
    made: list[Sandbox] = []

    def make(network: str = "isolated", create: bool = True, image: str | None = None) -> Sandbox:
        sb = new_sandbox(tmp_path / f"m{len(made)}", network, image=image)
        made.append(sb)
        if create:
            sb.create()
        return sb

    yield make
    errors = []
    for sb in made:
        try:
            sb.destroy()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, errors


@pytest.fixture
def fresh_env(tmp_path):
    """Another user's environment: `fresh_env("name")` -> env with its own LIGHTFOLD_HOME and HOME."""
    return lambda name: isolated_env(tmp_path / name)


@pytest.fixture
def sandbox(machine_factory) -> Sandbox:
    """A fresh machine for one test (isolated network)."""
    return machine_factory()


@contextlib.contextmanager
def created(sb: Sandbox) -> Iterator[Sandbox]:
    """`sb`'s machine, created, and destroyed however the block ends."""
    try:
        sb.create()
        yield sb
    finally:
        sb.destroy()


@pytest.fixture(scope="module")
def shared_sandbox(sandbox_host, tmp_path_factory) -> Iterator[Sandbox]:
    """One machine shared by every test of a module: tests must not depend on each other's changes."""
    with created(new_sandbox(tmp_path_factory.mktemp("shared"), prefix="s")) as sb:
        yield sb


@pytest.fixture(scope="session")
def ssh_client() -> str:
    path = shutil.which("ssh")
    if not path:
        pytest.skip("openssh-client is not installed")
    return path
