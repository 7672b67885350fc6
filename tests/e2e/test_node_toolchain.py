"""Real Node toolchains on a sandbox machine (issue 12, classes 2-4), two apps on one machine:

- a pnpm app that declares `packageManager: pnpm@9.15.9` and depends on esbuild, whose postinstall
  replaces its JavaScript launcher with the native binary: with the declared pnpm the script runs
  (the newest pnpm would stop at "Ignored build scripts ... approve-builds"), and the app reports
  what it finds. Node 20 comes from the npm registry with its own npm, not Debian's 9.2.
- a yarn classic app whose yarn.lock was written by yarn itself on this host, so its `resolved`
  URLs name yarn's registry host: the isolated machine's tunnel must let it through.
- the pnpm app again, now declaring pnpm 10 (which skips unapproved build scripts) and approving
  esbuild in `pnpm.onlyBuiltDependencies`: the project's own approval is what lets it run.

Both lockfiles are made at test time with the package manager itself (through the host's npm),
from the registries this host reaches.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.e2e.apps import commit, get, git

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

PNPM = "9.15.9"
PNPM10 = "10.34.9"
ESBUILD = "0.28.2"

SERVER = """\
const fs = require("fs"), http = require("http"), path = require("path");
function facts() { %s }
http.createServer((req, res) => {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(facts()) + "\\n");
}).listen(Number(process.env.PORT || 3000));
"""

ESBUILD_FACTS = """
  const dir = path.dirname(require.resolve("esbuild/package.json"));
  const head = fs.readFileSync(path.join(dir, "bin/esbuild")).subarray(0, 4).toString("latin1");
  return { app: "pnpm", node: process.version, esbuild: require("esbuild").version,
           postinstall_ran: head === "\\x7fELF" };
"""

MS_FACTS = """
  return { app: "yarn", node: process.version, ms: require("ms")(90000) };
"""


def _write_app(project: Path, package: dict, facts: str) -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    (project / "server.js").write_text(SERVER % facts)
    (project / ".gitignore").write_text("node_modules/\n")


def _npm_exec(project: Path, package: str, *argv: str) -> None:
    """Run a package manager through the host's npm (the host needs no pnpm or yarn of its own)."""
    subprocess.run(["npm", "exec", "--yes", f"--package={package}", "--", *argv], cwd=project, check=True,
                   capture_output=True, text=True, timeout=300)


def pnpm_app(project: Path) -> None:
    _write_app(project, {
        "name": "lf-pnpm-app", "version": "1.0.0", "private": True, "packageManager": f"pnpm@{PNPM}",
        "engines": {"node": "20"}, "scripts": {"start": "node server.js"},
        "dependencies": {"esbuild": ESBUILD},
    }, ESBUILD_FACTS)
    _npm_exec(project, f"pnpm@{PNPM}", "pnpm", "install", "--lockfile-only")
    assert (project / "pnpm-lock.yaml").read_text().startswith("lockfileVersion: '9.0'")
    git(project, "init", "-q", "-b", "main")
    commit(project, "pnpm app")


def yarn_app(project: Path) -> str:
    _write_app(project, {
        "name": "lf-yarn-app", "version": "1.0.0", "private": True, "license": "MIT",
        "engines": {"node": "20"}, "scripts": {"start": "node server.js"}, "dependencies": {"ms": "2.1.3"},
    }, MS_FACTS)
    _npm_exec(project, "yarn@1", "yarn", "install", "--ignore-scripts", "--non-interactive")
    lock = (project / "yarn.lock").read_text()
    assert "# yarn lockfile v1" in lock
    resolved = next(line.split('"')[1] for line in lock.splitlines() if line.strip().startswith("resolved"))
    git(project, "init", "-q", "-b", "main")
    commit(project, "yarn app")
    return resolved


def _answer(sb, port: int) -> dict:
    out = sb.exec(f"curl -sS -m 10 http://127.0.0.1:{port}/").stdout
    return json.loads(out)


def test_pnpm_with_build_scripts_and_yarn_classic_deploy_on_one_isolated_machine(shared_sandbox):
    sb = shared_sandbox
    pnpm_app(sb.project)
    detected = json.loads(sb.lightfold("detect", "--json", str(sb.project)).stdout)
    assert (detected["package_manager"], detected["package_manager_version"]) == ("pnpm", PNPM)

    first = json.loads(sb.lightfold("deploy", "--target", sb.target, "--json", timeout=1100).stdout)
    assert first["push"]["build"] == "full"
    status, body = get(sb.ip)
    facts = json.loads(body)
    assert status == 200 and facts["app"] == "pnpm" and facts["esbuild"] == ESBUILD
    assert facts["node"].startswith("v20.")
    assert facts["postinstall_ran"] is True, "esbuild's postinstall did not run"
    build_log = sb.lightfold("logs", "--target", sb.target, "--build").stdout
    assert "Ignored build scripts" not in build_log and "approve-builds" not in build_log
    # the declared pnpm, in its versioned directory; node 20 with the npm its release ships with
    assert sb.exec(f"/opt/lightfold/pm/pnpm-{PNPM}/bin/pnpm --version").stdout.strip() == PNPM
    npm = sb.exec("PATH=/opt/lightfold/node-20/bin:$PATH; command -v npm; npm --version").stdout.split()
    assert npm[0] == "/opt/lightfold/node-20/bin/npm" and not npm[1].startswith("9.")
    changelog = sb.exec("cat /opt/lightfold/node-20/lib/node_modules/node/node_modules/node-*/CHANGELOG.md").stdout
    assert f"upgrade npm to {npm[1]}" in changelog

    # A second app on the same machine: yarn classic, its lockfile naming yarn's registry host.
    other = f"{sb.target}-y"[:31]
    project = sb.root / "yarn-app"
    resolved = yarn_app(project)
    local = sb.config()["targets"][sb.target]["provider_config"]["local"]
    sb.lightfold("create", "--target", other, "--provider", "byos", "--ip", local["ip"],
                 "--ssh-key", local["ssh_key"], str(project))
    yarn = json.loads(sb.lightfold("deploy", "--target", other, "--json", str(project), timeout=1100).stdout)
    assert yarn["push"]["build"] == "full"
    port = json.loads(sb.lightfold("status", "--target", other, "--json").stdout)["port"]
    facts = _answer(sb, port)
    assert facts == {"app": "yarn", "node": facts["node"], "ms": "2m"} and facts["node"].startswith("v20.")
    host = resolved.split("/")[2]
    yarn_log = sb.lightfold("logs", "--target", other, "--build").stdout
    assert "yarn install --frozen-lockfile" in yarn_log or "yarn install" in yarn_log
    assert sb.exec("ls /opt/lightfold/pm").stdout.split() == sorted([f"pnpm-{PNPM}", "yarn-1"])
    print(f"yarn.lock resolved host: {host}")

    # pnpm 10 runs a dependency's build script only when the project approves it.
    package = json.loads((sb.project / "package.json").read_text())
    package |= {"packageManager": f"pnpm@{PNPM10}", "pnpm": {"onlyBuiltDependencies": ["esbuild"]}}
    (sb.project / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    _npm_exec(sb.project, f"pnpm@{PNPM10}", "pnpm", "install", "--lockfile-only")
    commit(sb.project, "pnpm 10, esbuild approved")
    again = json.loads(sb.lightfold("deploy", "--target", sb.target, "--json", timeout=1100).stdout)
    assert again["push"]["build"] == "full"
    facts = _answer(sb, json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)["port"])
    assert facts["app"] == "pnpm", facts
    print(f"the machine's address answers after the redeploy: {get(sb.ip)}")
    assert facts["postinstall_ran"] is True, "pnpm 10 ignored the project's approval of esbuild"
    assert sb.exec(f"/opt/lightfold/pm/pnpm-{PNPM10}/bin/pnpm --version").stdout.strip() == PNPM10
