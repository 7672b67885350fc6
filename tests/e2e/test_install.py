"""lightfold as users install it: the wheel and sdist `uv build` makes, a fresh venv holding only
the wheel, and the GitHub Actions workflow in examples/ci replayed step by step in an empty home.

One sandbox machine for the module. The "laptop" installs the wheel with `uv venv` + `uv pip
install`, creates the machine with it and deploys the Flask example; then the CI job (the
workflow's own `run:` steps, with its secrets and variables filled in) installs the same wheel
with `uv tool install`, registers the server trusting only the exported host key, and deploys a
new commit. A second job whose LIGHTFOLD_HOST_KEY is another key stops at the register step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.e2e.apps import get, git, install_example, set_python_message
from tests.e2e.conftest import Sandbox, new_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
# What the workflow's `uses:` steps give a runner, which the replay provides itself.
ACTIONS = {
    "actions/checkout": "the job runs in a checkout of the project",
    "astral-sh/setup-uv": "uv, and uv's tool directory (~/.local/bin) on PATH",
}
STEPS = ["Install lightfold", "Write the SSH key (0600)", "Register the server (trusts only LIGHTFOLD_HOST_KEY)",
         "Deploy", "Status"]  # the workflow's `run:` steps, by name
EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.([A-Z0-9_]+)\s*\}\}")


# How this host reaches the package registries (proxies, CA bundles, index settings): kept, as a
# runner has its own; uv's directory settings are not, so its tools and venvs go under the new HOME.
NETWORK_SETTING = re.compile(r"(?i)^(.*_proxy|ssl_cert_file|ssl_cert_dir|.*_ca_bundle|pip_.*|uv_.*)$")
UV_DIRECTORIES = {"UV_TOOL_DIR", "UV_TOOL_BIN_DIR", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON_INSTALL_DIR", "UV_CACHE_DIR"}


def plain_env(home: Path, *extra_path: str) -> dict[str, str]:
    """A login's environment with nothing of this checkout or its venv: HOME, a system PATH, this
    host's registry settings, and uv's package cache (a runner restores it too), no Python downloads
    (only registries are reachable)."""
    uv = shutil.which("uv")
    assert uv, "uv is not installed (scripts/bootstrap.sh installs it)"
    cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
    path = [*extra_path, os.path.dirname(uv), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
            "/sbin", "/bin"]
    network = {k: v for k, v in os.environ.items() if NETWORK_SETTING.match(k) and k not in UV_DIRECTORIES}
    return {**network, "HOME": str(home), "PATH": ":".join(dict.fromkeys(path)), "LANG": "C.UTF-8",
            "UV_CACHE_DIR": cache, "UV_PYTHON_DOWNLOADS": "never"}


def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The wheel and sdist, built now from this tree as CI builds them."""
    out = tmp_path_factory.mktemp("dist")
    run(["uv", "build", "--out-dir", str(out), str(REPO)], {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}, REPO)
    (wheel,) = out.glob("lightfold-*.whl")
    (sdist,) = out.glob("lightfold-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def package_files() -> set[str]:
    """Every file of the lightfold package in this tree (the agent and templates whatever their shape)."""
    src = REPO / "src"
    tracked = git(REPO, "ls-files", "src/lightfold").split()
    untracked = git(REPO, "ls-files", "--others", "--exclude-standard", "src/lightfold").split()
    return {str(Path(f).relative_to("src")) for f in tracked + untracked if (src.parent / f).is_file()}


def test_wheel_and_sdist_hold_the_whole_package_with_agent_and_templates(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        in_wheel = {n for n in whl.namelist() if n.startswith("lightfold/")}
        entry_points = whl.read(next(n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt")))
    expected = package_files()
    assert {"lightfold/agent/protocol.py", "lightfold/server/templates/site.conf.j2"} <= expected
    assert in_wheel == expected
    assert b"lightfold = lightfold.cli:main" in entry_points
    listing = subprocess.run(["tar", "tzf", str(dist["sdist"])], capture_output=True, text=True, check=True).stdout
    root = dist["sdist"].name.removesuffix(".tar.gz")
    assert {f"{root}/src/{f}" for f in expected} <= set(listing.split())


def test_uv_tool_install_from_the_git_repository(tmp_path):
    from lightfold import __version__

    home = tmp_path / "home"
    home.mkdir()
    env = plain_env(home, str(home / ".local" / "bin"))
    run(["uv", "tool", "install", "-q", f"git+file://{REPO}"], env, tmp_path)  # its committed HEAD
    version = run([str(home / ".local" / "bin" / "lightfold"), "--version"], env, tmp_path).stdout
    assert version.startswith(f"lightfold {__version__} (agent protocol ")


@dataclass
class Laptop:
    """A user's machine with lightfold installed from the wheel alone (no checkout on any path)."""

    env: dict[str, str]
    venv: Path
    project: Path
    sandbox: Sandbox
    deployed: dict | None = None  # what its first `lightfold deploy --json` printed

    def lightfold(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return run([str(self.venv / "bin" / "lightfold"), *args], self.env, self.project, timeout)


@pytest.fixture(scope="module")
def laptop(sandbox_host, dist, tmp_path_factory):
    """The wheel in a fresh venv; its lightfold creates a sandbox machine and deploys the Flask example."""
    sb = new_sandbox(tmp_path_factory.mktemp("laptop"), prefix="w")
    env = {**plain_env(Path(sb.env["HOME"])), **{k: v for k, v in sb.env.items() if k.startswith("LIGHTFOLD_")}}
    venv = sb.root / "venv"
    run(["uv", "venv", "-q", str(venv)], env, sb.root)
    run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(dist["wheel"])], env, sb.root)
    install_example(sb.project, "python-flask")
    user = Laptop(env, venv, sb.project, sb)
    try:
        user.lightfold("create", "--target", sb.target, "--provider", "local", str(sb.project))
        sb.ip = sb.config()["targets"][sb.target]["provider_config"]["local"]["ip"]
        user.deployed = json.loads(user.lightfold("deploy", "--target", sb.target, "--json", timeout=900).stdout)
        yield user
    finally:
        sb.destroy()


def test_the_wheel_alone_reports_its_versions_detects_and_deploys(laptop):
    from lightfold import __version__
    from lightfold.agent.protocol import PROTOCOL_VERSION

    where = run([str(laptop.venv / "bin" / "python"), "-c", "import lightfold; print(lightfold.__file__)"],
                laptop.env, laptop.project).stdout
    assert where.startswith(str(laptop.venv)) and str(REPO) not in where
    assert laptop.lightfold("--version").stdout == f"lightfold {__version__} (agent protocol {PROTOCOL_VERSION})\n"
    detected = json.loads(laptop.lightfold("detect", "--json").stdout)
    assert detected["framework"] == "flask"
    assert laptop.deployed["push"]["release"]
    status, body = get(laptop.sandbox.ip)
    assert status == 200 and b"hello from lightfold (python)" in body


# ---- the CI workflow, replayed

def load_workflow() -> dict:
    """examples/ci/github-actions.yml parsed (by the host's python3-yaml, which bootstrap installs)."""
    code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    return json.loads(run(["/usr/bin/python3", "-c", code, str(WORKFLOW)], dict(os.environ), REPO).stdout)


@dataclass
class StepRun:
    name: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def replay(context: dict[str, str], home: Path, workspace: Path) -> list[StepRun]:
    """Run the deploy job's `run:` steps as a runner would (bash -eo pipefail, job env then step env,
    ${{ secrets.X }} / ${{ vars.X }} filled in from `context`), stopping at the first failing step."""
    job = load_workflow()["jobs"]["deploy"]

    def fill(text: str) -> str:
        filled = EXPRESSION.sub(lambda m: context[m.group(2)], str(text))
        assert "${{" not in filled, f"the replay cannot evaluate: {text}"
        return filled

    base = {**plain_env(home, str(home / ".local" / "bin")), "CI": "true", "GITHUB_ACTIONS": "true",
            **{k: fill(v) for k, v in job.get("env", {}).items()}}
    done = []
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"].split("@")[0] in ACTIONS, f"the replay does not know {step['uses']}"
            continue
        env = {**base, **{k: fill(v) for k, v in step.get("env", {}).items()}}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", fill(step["run"])],
                              env=env, cwd=workspace, capture_output=True, text=True, timeout=900)
        done.append(StepRun(step.get("name", step["run"]), proc.returncode, proc.stdout, proc.stderr))
        if proc.returncode != 0:
            break
    return done


def checkout(laptop, root: Path) -> Path:
    """The runner's workspace: a clone of the project with one more commit (the push being deployed)."""
    workspace = root / "workspace"
    subprocess.run(["git", "clone", "-q", str(laptop.project), str(workspace)], check=True)
    set_python_message(workspace, "hello from CI")
    return workspace


def ci_context(laptop, dist, host_key: str) -> dict[str, str]:
    sb = laptop.sandbox
    key = Path(sb.config()["targets"][sb.target]["provider_config"]["local"]["ssh_key"]).read_text()
    return {"LIGHTFOLD_SSH_KEY": key, "LIGHTFOLD_HOST_KEY": host_key, "LIGHTFOLD_SERVER": sb.ip,
            "LIGHTFOLD_TARGET": sb.target, "LIGHTFOLD_PACKAGE": str(dist["wheel"])}


def test_ci_workflow_deploys_a_push_from_an_empty_home_with_the_exported_host_key(laptop, dist, tmp_path):
    exported = laptop.lightfold("config", "export-host-key", "--target", laptop.sandbox.target).stdout
    home = tmp_path / "runner-home"
    home.mkdir()
    context = ci_context(laptop, dist, exported)
    steps = replay(context, home, checkout(laptop, tmp_path))
    assert [(s.name, s.returncode) for s in steps] == [(name, 0) for name in STEPS], steps[-1].output
    assert (home / ".ssh" / "lightfold_deploy").stat().st_mode & 0o777 == 0o600
    assert json.loads(steps[2].stdout)["host_key_trust"] == "imported"
    deployed = json.loads((tmp_path / "workspace" / "deploy.json").read_text())
    assert deployed["push"]["release"] != laptop.deployed["push"]["release"]
    status, body = get(laptop.sandbox.ip)
    assert status == 200 and body == b"hello from CI\n"
    key_body = context["LIGHTFOLD_SSH_KEY"].strip().splitlines()[1]
    assert not any(key_body in s.output for s in steps)  # the private key is never printed


def test_ci_workflow_refuses_a_server_whose_host_key_is_not_the_exported_one(laptop, dist, tmp_path):
    before = get(laptop.sandbox.ip)
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    home = tmp_path / "runner-home"
    home.mkdir()
    steps = replay(ci_context(laptop, dist, other.with_suffix(".pub").read_text()), home,
                   checkout(laptop, tmp_path))
    assert [(s.name, s.returncode) for s in steps] == [(STEPS[0], 0), (STEPS[1], 0), (STEPS[2], 1)]
    refusal = steps[-1].output
    assert "is not the imported one" in refusal and "export-host-key" in refusal
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(other.with_suffix(".pub"))], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    assert fingerprint in refusal
    assert not (home / ".lightfold" / "known_hosts").exists()
    assert get(laptop.sandbox.ip) == before  # nothing was deployed
