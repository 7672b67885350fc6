"""The release build script, run for real as the current user in a temp dir (prefix), with stand-in
install/build commands: dependency reuse, venv per lockfile hash, failure report, start script."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.agent.conftest import install_agent
from tests.unit.server.serverkit import Det, bash_syntax_ok, run_script

from lightfold.agent.envfile import render_env_file
from lightfold.config import DeployConfig
from lightfold.errors import LightfoldError
from lightfold.server.app import sandbox_properties
from lightfold.server.build import (
    ENV_LOADER,
    build_script,
    extract_command,
    failure_message,
    launchers,
    lockfiles,
    user_build_script,
)

NODE = Det(
    install="echo run >> install-ran && mkdir -p node_modules/dep node_modules/.cache"
            " && echo v1 > node_modules/dep/index.js && echo installing",
    build="mkdir -p .next && echo built > .next/BUILD_ID && echo building",
    start="node server.js",
)


def release(tmp_path: Path, rid: str, files: dict[str, str] | None = None) -> Path:
    rel = tmp_path / f"srv/shop/releases/{rid}"
    rel.mkdir(parents=True)
    (tmp_path / "srv/shop/cache").mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"package.json": "{}"}).items():
        (rel / name).parent.mkdir(parents=True, exist_ok=True)
        (rel / name).write_text(text)
    return rel


def build(tmp_path: Path, rid: str, det: Det = NODE, deploy: DeployConfig | None = None, **kw):
    script = user_build_script("shop", det, deploy or DeployConfig(), rid, prefix=str(tmp_path), **kw)
    return run_script(script)


def phases(events) -> list[tuple[str, str]]:
    return [(e["build"], e["status"]) for e in events]


def test_node_build_installs_builds_and_writes_start_and_release_json(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    rc, events, err = build(tmp_path, "20260101120001", deps_hash="h1",
                            release_info={"commit": "abc123", "dirty": False})
    assert rc == 0, err
    assert phases(events) == [("install", "start"), ("install", "done"), ("build", "start"), ("build", "done"),
                              ("finish", "done")]
    assert events[0]["command"] == NODE.install
    assert "installing" in err and "building" in err  # the commands' output streams on stderr
    assert (rel / ".next/BUILD_ID").read_text() == "built\n"
    start = rel / ".lightfold/start"
    assert os.access(start, os.X_OK)
    lines = start.read_text().splitlines()
    assert lines[0] == "#!/bin/sh" and lines[-1] == "exec node server.js"
    # the release directory is found from the script's own place, never written in
    assert lines[2] == 'LF_RELEASE=$(cd "$(dirname "$0")/.." && pwd -P) || exit 1'
    assert str(rel) not in start.read_text()
    assert 'PATH="$LF_APP/node_modules/.bin:/opt/lightfold/node-20/bin:' in start.read_text()
    info = json.loads((rel / ".lightfold/release.json").read_text())
    assert info["id"] == "20260101120001" and info["commit"] == "abc123" and info["deps_hash"] == "h1"
    assert info["start"] == "node server.js" and info["static"] is False


def test_unchanged_lockfile_reuses_the_previous_node_modules_as_hard_links(tmp_path: Path):
    release(tmp_path, "20260101120001")
    assert build(tmp_path, "20260101120001")[0] == 0
    rel2 = release(tmp_path, "20260101120002")
    rc, events, err = build(tmp_path, "20260101120002", reuse_from="20260101120001")
    assert rc == 0, err
    assert ("install", "reused") in phases(events) and ("install", "start") not in phases(events)
    assert not (rel2 / "install-ran").exists()
    old = tmp_path / "srv/shop/releases/20260101120001/node_modules/dep/index.js"
    assert (rel2 / "node_modules/dep/index.js").stat().st_ino == old.stat().st_ino
    assert not (rel2 / "node_modules/.cache").exists()  # caches are rewritten in place: never shared
    assert (tmp_path / "srv/shop/releases/20260101120001/node_modules/.cache").exists()


def test_reuse_falls_back_to_install_when_the_previous_release_has_no_deps(tmp_path: Path):
    release(tmp_path, "20260101120001")
    rel2 = release(tmp_path, "20260101120002")
    rc, events, _ = build(tmp_path, "20260101120002", reuse_from="20260101120001")
    assert rc == 0 and ("install", "done") in phases(events)
    assert (rel2 / "install-ran").exists()


def test_a_failed_build_reports_phase_command_exit_and_last_lines(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build="for i in $(seq 1 25); do echo line $i; done; echo 'Error: \"x\" failed' >&2; exit 4",
              start="node server.js")
    rc, events, err = build(tmp_path, "20260101120001", det)
    assert rc == 1
    failed = events[-1]
    assert failed["build"] == "build" and failed["status"] == "failed" and failed["exit"] == 4
    assert failed["command"] == det.build
    assert failed["output"][-1] == 'Error: "x" failed' and len(failed["output"]) == 20
    assert "line 25" in err
    assert not (rel / ".lightfold/start").exists()


def test_overrides_from_deploy_config_win(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    deploy = DeployConfig(build_command="echo custom > custom-build", start_command="node dist/main.js")
    rc, events, _ = build(tmp_path, "20260101120001", deploy=deploy)
    assert rc == 0
    assert (rel / "custom-build").exists() and not (rel / ".next/BUILD_ID").exists()
    assert (rel / ".lightfold/start").read_text().splitlines()[-1] == "exec node dist/main.js"


def test_release_command_runs_after_the_build_with_the_release_env(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build="echo built > order", release="echo migrated >> order", start="node s.js")
    rc, events, _ = build(tmp_path, "20260101120001", det)
    assert rc == 0 and ("release", "done") in phases(events)
    assert (rel / "order").read_text() == "built\nmigrated\n"
    assert json.loads((rel / ".lightfold/release.json").read_text())["release"] == "echo migrated >> order"
    rel2 = release(tmp_path, "20260101120002")
    assert build(tmp_path, "20260101120002", det, run_release=False)[0] == 0
    assert (rel2 / "order").read_text() == "built\n"


def test_release_command_is_stopped_at_its_time_limit_and_the_error_names_the_key(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build=None, release="echo migrating; sleep 30; echo never > late", start="node s.js",
              release_timeout=1)
    rc, events, _ = build(tmp_path, "20260101120001", det)
    assert rc != 0 and ("release", "failed") in phases(events)
    start = next(e for e in events if e["build"] == "release" and e["status"] == "start")
    assert start["timeout"] == 1
    failed = events[-1]
    assert failed["timed_out"] is True and failed["timeout"] == 1 and "migrating" in failed["output"]
    assert not (rel / "late").exists()
    problem, fix = failure_message(failed)
    assert "did not finish within its limit of 1 s" in problem and "sleep 30" in problem
    assert "release_timeout" in fix and "lightfold.toml" in fix and "live release keeps serving" in fix


def test_a_failing_release_command_is_not_reported_as_a_timeout(tmp_path: Path):
    release(tmp_path, "20260101120001")
    det = Det(install=None, build=None, release="echo broken >&2; exit 3", start="node s.js")
    rc, events, _ = build(tmp_path, "20260101120001", det)
    failed = events[-1]
    assert rc != 0 and failed["build"] == "release" and failed["exit"] == 3 and "timed_out" not in failed
    assert "exited 3" in failure_message(failed)[0]


def test_static_site_builds_without_a_start_script(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    det = Det(framework="astro", static=True, output_dir="dist", start=None,
              install="echo ok", build="mkdir -p dist && echo '<h1>hi</h1>' > dist/index.html")
    rc, _, err = build(tmp_path, "20260101120001", det)
    assert rc == 0, err
    assert (rel / "dist/index.html").exists() and not (rel / ".lightfold/start").exists()
    assert json.loads((rel / ".lightfold/release.json").read_text())["static"] is True


def test_missing_start_command_is_a_clear_error():
    with pytest.raises(LightfoldError, match="no start command") as e:
        user_build_script("shop", Det(start=None), DeployConfig(), "20260101120001")
    assert "deploy.start_command" in e.value.fix


def test_app_root_in_a_monorepo(tmp_path: Path):
    rel = release(tmp_path, "20260101120001", {"apps/web/package.json": "{}"})
    det = Det(install="echo > installed-here", build=None, start="node s.js", app_root="/home/me/mono/apps/web")
    rc, _, err = build(tmp_path, "20260101120001", det, app_subdir="apps/web")
    assert rc == 0, err
    assert (rel / "apps/web/installed-here").exists() and (rel / ".lightfold/start").exists()
    assert 'LF_APP="$LF_RELEASE/apps/web"' in (rel / ".lightfold/start").read_text()


def test_python_venv_lives_per_lockfile_hash_and_is_reused(tmp_path: Path):
    det = Det(runtime="python", framework="flask", package_manager="uv", runtime_version="3.11",
              install='python -c "import sys; print(sys.prefix)" > venv-used && echo ran >> install-ran',
              build=None, start="gunicorn app:app --bind 127.0.0.1:$PORT")
    rel1 = release(tmp_path, "20260101120001", {"uv.lock": "flask\n"})
    rc, events, err = build(tmp_path, "20260101120001", det, deps_hash="abc")
    assert rc == 0, err
    deps = tmp_path / "srv/shop/deps/abc"
    assert (rel1 / "venv-used").read_text().strip() == str(deps / ".venv")
    assert os.readlink(rel1 / ".venv") == str(deps / ".venv") and (deps / ".complete").exists()
    start = (rel1 / ".lightfold/start").read_text()
    assert 'PATH="$LF_APP/.venv/bin:' in start and 'VIRTUAL_ENV="$LF_APP/.venv"' in start
    assert start.splitlines()[-1] == "exec gunicorn app:app --bind 127.0.0.1:$PORT"

    rel2 = release(tmp_path, "20260101120002", {"uv.lock": "flask\n"})
    rc, events, err = build(tmp_path, "20260101120002", det, deps_hash="abc")
    assert rc == 0, err
    assert ("install", "reused") in phases(events) and not (rel2 / "install-ran").exists()
    assert os.readlink(rel2 / ".venv") == str(deps / ".venv")


def test_python_tools_get_the_proxy_and_index_of_pips_config(tmp_path: Path):
    """uv/poetry/pdm ignore pip.conf; a server whose pip goes through a proxy must still work."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nproxy = http://10.0.0.1:3142\nindex-url = https://mirror.invalid/simple\n")
    det = Det(runtime="python", package_manager="uv", build=None, start="gunicorn app:app",
              install='printf "%s %s %s" "$HTTPS_PROXY" "$UV_DEFAULT_INDEX" "$PDM_PYPI_URL" > seen')
    rel = release(tmp_path, "20260101120001", {"uv.lock": ""})
    script = user_build_script("shop", det, DeployConfig(), "20260101120001", prefix=str(tmp_path), deps_hash="h")
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    r = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True,
                       env={**env, "PIP_CONFIG_FILE": str(conf)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (rel / "seen").read_text() == (
        "http://10.0.0.1:3142 https://mirror.invalid/simple https://mirror.invalid/simple")


@pytest.mark.skipif(not shutil.which("npm"), reason="npm not installed")
def test_node_package_managers_get_the_proxy_of_npms_config(tmp_path: Path):
    """pnpm/yarn/bun ignore /etc/npmrc; they get its proxy through their own variables."""
    npmrc = tmp_path / "npmrc"
    npmrc.write_text("https-proxy=http://10.0.0.1:3142\n")
    det = Det(package_manager="pnpm", build=None,
              install='printf "%s %s %s" "$npm_config_https_proxy" "$HTTPS_PROXY" "$YARN_HTTPS_PROXY" > seen')
    rel = release(tmp_path, "20260101120001")
    script = user_build_script("shop", det, DeployConfig(), "20260101120001", prefix=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    r = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True,
                       env={**env, "npm_config_globalconfig": str(npmrc)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (rel / "seen").read_text() == " ".join(["http://10.0.0.1:3142"] * 3)


def test_bun_gets_the_ca_file_of_npms_config(tmp_path: Path):
    """bun ignores npm_config_cafile and the system store: behind a TLS proxy with its own CA its
    downloads fail (SELF_SIGNED_CERT_IN_CHAIN) unless NODE_EXTRA_CA_CERTS names npm's cafile."""
    npmrc = tmp_path / "npmrc"
    npmrc.write_text(f"cafile={tmp_path}/ca.crt\n")
    det = Det(package_manager="bun", build=None,
              install='printf "%s %s" "$NODE_EXTRA_CA_CERTS" "$YARN_CA_FILE_PATH" > seen')
    rel = release(tmp_path, "20260101120001")
    script = user_build_script("shop", det, DeployConfig(), "20260101120001", prefix=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_EXTRA_CA_CERTS", "YARN_CA_FILE_PATH")}
    r = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True,
                       env={**env, "npm_config_globalconfig": str(npmrc)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (rel / "seen").read_text() == f"{tmp_path}/ca.crt {tmp_path}/ca.crt"


def test_pip_projects_get_pip_in_their_venv_and_others_do_not():
    pip = user_build_script("shop", Det(runtime="python", package_manager="pip"), DeployConfig(), "20260101120001")
    uv = user_build_script("shop", Det(runtime="python", package_manager="uv"), DeployConfig(), "20260101120001")
    assert "$LF_PYTHON -m venv '$DEPS/.venv'" in pip and "$LF_PYTHON -m venv --without-pip '$DEPS/.venv'" in uv
    assert "LF_PYTHON=python3\n" in pip and "/opt/lightfold/python-" not in pip


def test_start_script_runs_in_the_app_dir_and_execs_the_command(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build=None, start="sh -c 'echo port=$PORT cwd=$(pwd)'")
    assert build(tmp_path, "20260101120001", det)[0] == 0
    out = subprocess.run([str(rel / ".lightfold/start")], capture_output=True, text=True,
                         env={"PORT": "8123"}, cwd="/")
    assert out.stdout.strip() == f"port=8123 cwd={rel}"
    compound = Det(install=None, build=None, start="echo one && echo two")
    rel2 = release(tmp_path, "20260101120002")
    assert build(tmp_path, "20260101120002", compound)[0] == 0
    text = (rel2 / ".lightfold/start").read_text()
    assert text.splitlines()[-1] == "exec /bin/sh -c 'echo one && echo two'"
    assert subprocess.run([str(rel2 / ".lightfold/start")], capture_output=True, text=True).stdout == "one\ntwo\n"


@pytest.mark.parametrize("start, last", [
    ("RAILS_ENV=production bin/rails server -p $PORT", "RAILS_ENV=production exec bin/rails server -p $PORT"),
    ("A='x y' B=\"1 2\" php -S 127.0.0.1:$PORT", "A='x y' B=\"1 2\" exec php -S 127.0.0.1:$PORT"),
    ("java -jar build/libs/*.jar", "exec java -jar build/libs/*.jar"),
])
def test_start_commands_with_env_assignments_keep_them_before_exec(tmp_path: Path, start: str, last: str):
    rel = release(tmp_path, "20260101120001")
    assert build(tmp_path, "20260101120001", Det(install=None, build=None, start=start))[0] == 0
    assert (rel / ".lightfold/start").read_text().splitlines()[-1] == last


def test_env_assignments_reach_the_started_program(tmp_path: Path):
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build=None, start="GREETING='hi there' printenv GREETING")
    assert build(tmp_path, "20260101120001", det)[0] == 0
    out = subprocess.run(["/bin/dash", str(rel / ".lightfold/start")], capture_output=True, text=True)
    assert out.stdout == "hi there\n"


def run_loader(agent_dir: Path, env_file: Path, user: str, command: str, path: str | None = None):
    return subprocess.run([sys.executable, "-c", ENV_LOADER, str(agent_dir), str(env_file), user, command],
                          capture_output=True, text=True, env={"PATH": path or os.environ["PATH"]})


def test_build_env_comes_from_the_release_snapshot_without_port(tmp_path: Path):
    """The wrapper loads /srv/<app>/env/<id>.env with the agent's parser (systemd's syntax)."""
    agent_dir = install_agent(tmp_path / "lib")
    hostile = {"NEXT_PUBLIC_API": "https://api.example/v1?a=1&b=2", "QUOTES": "it's \"quoted\" $HOME",
               "MULTI": "line1\nline2", "PORT": "1234"}
    env_file = tmp_path / "20260101120001.env"
    env_file.write_text(render_env_file(hostile))
    me = pwd.getpwuid(os.getuid()).pw_name
    r = run_loader(agent_dir, env_file, me, "python3 -c 'import json, os; print(json.dumps(dict(os.environ)))'")
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert {k: env[k] for k in ("NEXT_PUBLIC_API", "QUOTES", "MULTI")} == {
        k: hostile[k] for k in ("NEXT_PUBLIC_API", "QUOTES", "MULTI")}
    assert "PORT" not in env and env["USER"] == me


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root (the server's build runs as root)")
def test_root_drops_to_the_app_user_before_the_apps_path_or_preload_apply(tmp_path: Path):
    """issue 13 item 2: PATH and LD_PRELOAD from the app's env never pick what root runs."""
    agent_dir = install_agent(tmp_path / "lib")
    trap = tmp_path / "trap"
    trap.mkdir()
    for name in ("bash", "runuser", "python3"):  # what a hostile PATH would offer root
        (trap / name).write_text(f"#!/bin/sh\ntouch {trap}/ran-{name}\n")
        (trap / name).chmod(0o755)
    env_file = tmp_path / "20260101120001.env"
    env_file.write_text(render_env_file({"PATH": f"{trap}:/usr/bin:/bin", "LD_PRELOAD": "/nonexistent/evil.so"}))
    r = run_loader(agent_dir, env_file, "nobody", "/usr/bin/id -u; printf %s \"$LD_PRELOAD\"")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(pwd.getpwnam("nobody").pw_uid), "/nonexistent/evil.so"]
    assert not list(trap.glob("ran-*"))


def test_the_env_snapshot_is_never_read_through_a_symlink(tmp_path: Path):
    agent_dir = install_agent(tmp_path / "lib")
    secret = tmp_path / "secret"
    secret.write_text("SHADOW=root-only\n")
    link = tmp_path / "20260101120001.env"
    link.symlink_to(secret)
    r = run_loader(agent_dir, link, pwd.getpwuid(os.getuid()).pw_name, "printenv SHADOW")
    assert r.returncode != 0 and "root-only" not in r.stdout
    assert "Too many levels of symbolic links" in r.stderr or "ELOOP" in r.stderr


def test_root_wrapper_runs_the_build_as_the_build_user_and_only_the_release_phase_as_the_app_user():
    """issue 13 item 1: builds never run as root nor as the app user; the app user only gets the
    release phase (storage dirs, migrations), after the release was sealed."""
    script = build_script("shop", NODE, DeployConfig(), "20260101120000", reuse_from="20251231000000")
    bash_syntax_ok(script)
    assert '/usr/bin/python3 -c' in script and ' lfb-shop "$LF_BUILD"' in script
    assert "lf-shop" not in script.replace("lfb-shop", "")  # nothing to do for the app user
    build = script.index('lfb-shop "$LF_BUILD"')
    reap = script.index("pkill -KILL -U lfb-shop", build)
    seal = script.index("chown -R --no-dereference root:root /srv/shop/releases/20260101120000", reap)
    assert build < reap < seal < script.index('exit "$LF_RC"')
    # the reused deps: root hard-links the older release's into a stage, with no build-user process
    # alive and no symlink on the way, before the build
    stage = script.index("cp -al /srv/shop/releases/20251231000000/node_modules "
                         "/srv/shop/releases/.20260101120000.deps")
    assert script.index("pkill -KILL -U lfb-shop") < stage < build
    assert '[ "$(realpath -e /srv/shop/releases/20251231000000/node_modules)" = ' in script
    assert "LF_ENV=/srv/shop/env/20260101120000.env" in script
    with pytest.raises(LightfoldError, match="not a valid release id"):
        build_script("shop", NODE, DeployConfig(), "../etc")
    det = Det(install="npm ci", build="npm run build", release="npx prisma migrate deploy", start="node s.js")
    script = build_script("shop", det, DeployConfig(), "20260101120000")
    bash_syntax_ok(script)
    # neither phase reads root's stdin: the rest of this script arrives there
    first = script.index(' lfb-shop "$LF_BUILD" < /dev/null\n')
    reap = script.index("pkill -KILL -U lfb-shop")  # nothing of the build user outlives the build
    last = script.splitlines()[-1]
    assert first < reap < script.index('[ "$LF_RC" = 0 ] || exit "$LF_RC"') < script.index(last)
    # the release phase: a transient unit with the app unit's user, env snapshot and sandbox
    assert last.startswith("exec systemd-run --quiet --collect --wait --pipe --service-type=exec"
                           " --unit=lightfold-shop.release-20260101120000.service -p User=lf-shop -p Group=lf-shop ")
    # systemd expands $NAME and ${NAME} in ExecStart itself (it ate "${PIPESTATUS[0]}": found by
    # e2e): every "$" goes as "$$", which systemd turns back into one
    assert last.endswith(' -- /bin/bash -c "${LF_RELEASE//\\$/\\$\\$}" < /dev/null')
    expand = 'LF_RELEASE=\'x=${PIPESTATUS[0]} $$ $HOME\'; printf %s "${LF_RELEASE//\\$/\\$\\$}"'
    doubled = subprocess.run(["bash", "-c", expand], capture_output=True, text=True).stdout
    assert doubled == "x=$${PIPESTATUS[0]} $$$$ $$HOME"
    props = shlex.split(last)
    props = [props[i + 1] for i, w in enumerate(props) if w == "-p"]
    assert props[3] == "EnvironmentFile=-/srv/shop/env/20260101120000.env"
    assert props[4:] == sandbox_properties("shop") and "IPAddressDeny=169.254.169.254" in props
    build = user_build_script("shop", det, DeployConfig(), "20260101120000", phase="build")
    release = user_build_script("shop", det, DeployConfig(), "20260101120000", phase="release")
    bash_syntax_ok(build)
    bash_syntax_ok(release)
    assert "prisma migrate" not in build and "npm ci" in build and "HOME=/srv/shop/build-cache" in build
    assert "prisma migrate" in release and "npm ci" not in release and "npm run build" not in release
    assert "HOME=/srv/shop/cache" in release and "release.json" not in release


def test_the_build_seals_the_release_read_only_for_everyone_but_its_owner(tmp_path: Path):
    """Whatever modes the project's files or the build's output have, no group/other write bit and
    no set-id bit is left in the release (the app user is 'other' to the build user's files)."""
    rel = release(tmp_path, "20260101120001", {"package.json": "{}", "bin/tool": "#!/bin/sh\n", "pub/f": "x"})
    (rel / "bin/tool").chmod(0o6777)
    (rel / "pub").chmod(0o777)
    det = Det(install="mkdir -p node_modules/dep && touch node_modules/dep/i.js && chmod 666 node_modules/dep/i.js",
              build="mkdir -m 777 out && touch out/page && chmod 662 out/page", start="node s.js")
    rc, events, err = build(tmp_path, "20260101120001", det)
    assert rc == 0, err
    modes = {str(p.relative_to(rel)): p.lstat().st_mode for p in [rel, *rel.rglob("*")] if not p.is_symlink()}
    assert {k: oct(m) for k, m in modes.items() if m & 0o6022} == {}
    assert modes["bin/tool"] & 0o777 == 0o755 and modes["out/page"] & 0o777 == 0o640


def test_a_shipped_or_planted_lightfold_dir_is_never_written_through(tmp_path: Path):
    """The project (or its build) puts a symlink where the build writes the launchers: the build
    writes a fresh .lightfold/ and the place the link named is untouched."""
    rel = release(tmp_path, "20260101120001")
    victim = tmp_path / "older-release-meta"
    victim.mkdir()
    (victim / "start").write_text("the older release's start\n")
    (rel / ".lightfold").symlink_to(victim)
    det = Det(install=None, build="ln -sfn /nonexistent .lightfold-elsewhere", start="node s.js")
    rc, _, err = build(tmp_path, "20260101120001", det)
    assert rc == 0, err
    assert not (rel / ".lightfold").is_symlink() and (rel / ".lightfold/start").read_text().endswith("node s.js\n")
    assert (victim / "start").read_text() == "the older release's start\n" and sorted(victim.iterdir()) == [
        victim / "start"]


def test_dirs_next_writes_at_run_time_are_links_into_the_private_tmp(tmp_path: Path):
    """The release is read-only to the app: Next.js' .next/cache (image and fetch cache) points into
    the process's own /tmp, which the launcher makes."""
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build="mkdir -p .next/cache/webpack && echo built > .next/BUILD_ID", start="node s.js")
    rc, _, err = build(tmp_path, "20260101120001", det)
    assert rc == 0, err
    assert os.readlink(rel / ".next/cache") == "/tmp/lightfold-shop/.next/cache"
    assert (rel / ".next/BUILD_ID").exists()
    start = (rel / ".lightfold/start").read_text()
    assert "mkdir -p -m 700 /tmp/lightfold-shop && mkdir -p /tmp/lightfold-shop/.next/cache || exit 1" in start
    rails = user_build_script("shop", Det(framework="rails", runtime="ruby", start="bin/rails server"),
                              DeployConfig(), "20260101120001")
    assert "/tmp/lightfold-shop/tmp" in rails and "/tmp/lightfold-shop/log" in rails
    assert "/tmp/lightfold-" not in user_build_script("shop", Det(framework="express"), DeployConfig(),
                                                      "20260101120001")


def test_a_release_command_writing_scratch_dirs_gets_its_own_dir_or_fails(tmp_path: Path):
    """Outside a unit /tmp is shared: the release phase refuses a scratch dir another user made."""
    det = Det(framework="rails", runtime="ruby", install=None, build=None, release="bin/rails db:migrate",
              start="bin/rails server")
    release_phase = user_build_script("shop", det, DeployConfig(), "20260101120001", phase="release")
    assert "[ -O /tmp/lightfold-shop ] && [ ! -L /tmp/lightfold-shop ]" in release_phase


def test_python_launchers_never_write_bytecode(tmp_path: Path):
    det = Det(runtime="python", framework="flask", package_manager="pip", start="gunicorn app:app")
    build_phase = user_build_script("shop", det, DeployConfig(), "20260101120001", phase="build", deps_hash="h")
    assert "-m compileall" in build_phase  # compiled by the build user, read-only afterwards
    text = launchers("shop", det, ".", "gunicorn app:app")["start"]
    assert "PYTHONDONTWRITEBYTECODE=1\nexport PYTHONDONTWRITEBYTECODE" in text


def test_the_loader_gives_the_build_a_clean_environment_not_roots():
    """Nothing of the caller's environment (root's, over SSH or sudo) reaches the build."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        agent_dir = install_agent(Path(tmp) / "lib")
        me = pwd.getpwuid(os.getuid()).pw_name
        r = subprocess.run([sys.executable, "-c", ENV_LOADER, str(agent_dir), str(Path(tmp) / "none.env"), me,
                            "env"], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "SUDO_USER": "x", "LD_LIBRARY_PATH": "/x", "SECRET": "s"})
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert not {"SUDO_USER", "LD_LIBRARY_PATH", "SECRET"} & set(env)
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" and env["USER"] == me


def test_extract_unpacks_as_the_build_user():
    """Root never writes below releases/: the build user makes the release dir (a new one: mkdir
    without -p fails on anything already there, a planted symlink included) and unpacks into it."""
    cmd = extract_command("shop", "20260101120001", "/tmp/lf upload.tgz")
    assert cmd.endswith(
        " && runuser -u lfb-shop -- sh -c 'umask 022 && mkdir -m 755 /srv/shop/releases/20260101120001"
        " && exec tar -xzf - -C /srv/shop/releases/20260101120001 --no-same-owner --no-same-permissions'"
        " < '/tmp/lf upload.tgz' && rm -f '/tmp/lf upload.tgz'"
    )


def test_a_push_to_a_server_without_the_build_user_says_to_configure_it():
    """A server configured by an earlier version, pushed to without a configure first."""
    assert subprocess.run(["id", "-u", "lfb-shop"], capture_output=True).returncode != 0  # none here either
    r = subprocess.run(["bash", "-c", extract_command("shop", "20260101120001")], capture_output=True, text=True,
                       input="")
    assert r.returncode == 1
    assert "has no build user lfb-shop): run `lightfold configure --target shop`" in r.stderr


def test_builds_take_only_release_ids_of_the_one_rule():
    """The agent, rollback --to and the build agree: 14 digits, nothing else (a name the build once
    accepted, such as 'v1.2', would be a release the agent never lists or activates)."""
    for bad in ("r1", "v1.2", "2026010112000", "../20260101120001", "20260101120001\n"):
        with pytest.raises(LightfoldError, match="14 digits"):
            extract_command("shop", bad, "/tmp/x.tgz")
    with pytest.raises(LightfoldError, match="14 digits"):
        build_script("shop", NODE, DeployConfig(), "20260101120002", reuse_from="previous")


def test_lockfiles_per_runtime():
    assert "package-lock.json" in lockfiles(Det()) and "uv.lock" in lockfiles(Det(runtime="python"))
    assert lockfiles(Det(runtime="static")) == ()


def test_a_package_script_start_runs_the_script_itself(tmp_path: Path):
    """`npm run start` whose script is `node server.js` starts node directly (no npm in between);
    a start command changed by config or another builder runs as written."""
    det = Det(install=None, build=None, start="npm run start", start_exec={"npm run start": "node server.js"})
    rel = release(tmp_path, "20260101120001")
    assert build(tmp_path, "20260101120001", det)[0] == 0
    assert (rel / ".lightfold/start").read_text().splitlines()[-1] == "exec node server.js"
    rel2 = release(tmp_path, "20260101120002")
    assert build(tmp_path, "20260101120002", det, deploy=DeployConfig(start_command="npm run serve"))[0] == 0
    assert (rel2 / ".lightfold/start").read_text().splitlines()[-1] == "exec npm run serve"


def test_the_start_script_works_from_a_hard_linked_copy_after_the_original_is_gone(tmp_path: Path):
    """An env-only release is `cp -a --link` of the live one; once cleanup removes that one, the
    copy's start script must still find its own directory."""
    rel = release(tmp_path, "20260101120001")
    det = Det(install=None, build=None, runtime="python", package_manager="uv",
              start="sh -c 'echo cwd=$(pwd) venv=$VIRTUAL_ENV'")
    assert build(tmp_path, "20260101120001", det)[0] == 0
    copy = tmp_path / "srv/shop/releases/20260101120002"
    subprocess.run(["cp", "-a", "--link", str(rel), str(copy)], check=True)
    shutil.rmtree(rel)
    slot = tmp_path / "srv/shop/slots/blue"
    slot.parent.mkdir(parents=True)
    slot.symlink_to("../releases/20260101120002")  # systemd runs it through the slot link
    out = subprocess.run([str(slot / ".lightfold/start")], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"cwd={copy} venv={copy}/.venv"


# Recorded `docker build` outputs (BuildKit of docker 28, the classic builder of Debian's docker.io).
BUILDKIT_OFFLINE = """\
#2 [internal] load metadata for docker.io/library/node:20-alpine
#2 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/node/manifests/20-alpine": \
dial tcp: lookup registry-1.docker.io on 10.231.0.1:53: server misbehaving
------
 > [internal] load metadata for docker.io/library/node:20-alpine:
------
ERROR: failed to solve: node:20-alpine: failed to resolve source metadata for docker.io/library/node:20-alpine: \
failed to do request: Head "https://registry-1.docker.io/v2/library/node/manifests/20-alpine": \
dial tcp: lookup registry-1.docker.io on 10.231.0.1:53: server misbehaving"""
CLASSIC_OFFLINE = """\
Sending build context to Docker daemon  4.096kB
Step 1/6 : FROM python:3.12-slim
Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.231.0.1:53: no such host"""
DENIED = ("Step 1/3 : FROM acme/private:1\n"
          "pull access denied for acme/private, repository does not exist or may require 'docker login': denied")
NO_TAG = "manifest for node:99 not found: manifest unknown: manifest unknown"
APP_ERROR = "Step 4/6 : RUN npm ci\nnpm ERR! code ERESOLVE\nThe command '/bin/sh -c npm ci' returned a non-zero code: 1"


@pytest.mark.parametrize("output, image", [
    (BUILDKIT_OFFLINE, "docker.io/library/node:20-alpine"), (CLASSIC_OFFLINE, "python:3.12-slim"),
    (DENIED, "acme/private"), (NO_TAG, "node:99"),
])
def test_a_base_image_that_cannot_be_pulled_names_the_image_and_the_ways_out(output, image):
    from lightfold.server.build import failure_message

    failed = {"build": "image", "status": "failed", "command": "docker build -t lightfold-shop:1 .", "exit": 1,
              "output": output.splitlines()}
    error, fix = failure_message(failed)
    assert "could not pull the Dockerfile's base image" in error and image in error
    assert "--builder native" in fix and "daemon.json" in fix


def test_an_ordinary_docker_build_failure_is_not_called_a_pull_failure():
    from lightfold.server.build import failure_message

    error, fix = failure_message({"build": "image", "command": "docker build", "exit": 1,
                                  "output": APP_ERROR.splitlines()})
    assert "pull" not in error and "fix the build" in fix


def test_a_release_command_writing_into_its_release_is_told_to_use_storage():
    problem, fix = failure_message({"build": "release", "command": "python manage.py migrate", "exit": 1,
                                    "output": ["django.db.utils.OperationalError: unable to open database file"]})
    assert "read-only to the app" in problem and "storage" in fix and "lightfold.toml" in fix
    problem, _ = failure_message({"build": "release", "command": "x", "exit": 1, "output": ["boom"]})
    assert "read-only" not in problem
