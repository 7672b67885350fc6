"""lightfold.release.run: the script root runs for `lightfold run` (as text, and for real with a
stand-in systemd-run in a temp dir), its stop command, and the CLI's checks. On a server:
tests/e2e/test_operate.py."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from tests.unit.server.serverkit import Det

from lightfold.agent import layout
from lightfold.errors import LightfoldError, UsageError
from lightfold.release.run import command_argv, run_script, stop_command
from lightfold.server.app import sandbox_properties
from lightfold.server.build import start_script

RID = "20260101120000"


def systemd_run_words(script: str) -> list[str]:
    line = next(x for x in script.splitlines() if x.startswith("exec systemd-run"))
    return shlex.split(line)


def test_one_argument_is_a_shell_line_several_are_an_argv():
    assert command_argv(["echo $HOME | wc -c"]) == ["/bin/sh", "-c", "echo $HOME | wc -c"]
    assert command_argv(["python", "manage.py", "migrate"]) == ["python", "manage.py", "migrate"]
    for empty in ([], [" "]):
        with pytest.raises(UsageError, match="no command"):
            command_argv(empty)


def test_the_command_runs_as_a_transient_unit_with_the_apps_user_env_and_sandbox():
    words = systemd_run_words(run_script("shop", RID, ["python", "manage.py", "migrate"], "a1b2c3d4e5f6"))
    assert words[:7] == ["exec", "systemd-run", "--quiet", "--collect", "--wait", "--pipe", "--service-type=exec"]
    assert "--unit=lightfold-shop.run-a1b2c3d4e5f6.service" in words
    props = [words[i + 1] for i, w in enumerate(words) if w == "-p"]
    assert props[:4] == ["User=lf-shop", "Group=lf-shop", f"WorkingDirectory=/srv/shop/releases/{RID}",
                         f"EnvironmentFile=/srv/shop/env/{RID}.env"]
    assert props[4:] == sandbox_properties("shop")
    assert words[-2:] == ["--", "$@"]


def test_the_sandbox_is_the_app_units_own():
    props = sandbox_properties("shop")
    unit = (Path(__file__).resolve().parents[2] / "src/lightfold/server/templates/app.service.j2").read_text()
    for p in props[1:]:
        if not p.startswith("ReadWritePaths="):
            assert f"\n{p}\n" in unit, p
    assert "ProtectSystem=strict" in props and "NoNewPrivileges=yes" in props
    assert any(p.startswith("SystemCallFilter=") for p in props) and props[0].startswith("Environment=HOME=")
    assert "ReadWritePaths=-/srv/shop/cache -/srv/shop/storage" in props  # releases and deps: read-only


def test_no_env_value_or_secret_path_is_read_by_the_script_itself():
    script = run_script("shop", RID, ["env"], "a1b2c3d4e5f6")
    assert "cat " not in script and ".env" in script  # systemd reads the env file, the script never does


def test_bad_release_ids_and_tokens_are_refused():
    with pytest.raises(LightfoldError):
        run_script("shop", "../../etc", ["true"], "a1b2c3d4e5f6")
    with pytest.raises(ValueError):
        layout.run_unit("shop", "x; rm -rf /")
    assert shlex.split(stop_command("shop", "a1b2c3d4e5f6"))[:3] == [
        "systemctl", "stop", "lightfold-shop.run-a1b2c3d4e5f6.service"]


def _fake_server(tmp_path: Path, script: str) -> tuple[str, dict[str, str]]:
    """The script with /srv/shop moved into tmp_path, and a PATH whose systemd-run runs the
    command after `--` directly (the unit's properties are systemd's business)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemd-run"
    fake.write_text('#!/bin/bash\nwhile [ "$1" != -- ]; do shift; done; shift\ncd /\nexec "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return script.replace("/srv/shop", str(tmp_path / "srv/shop")), env


def test_a_release_with_an_exec_launcher_runs_the_command_through_it(tmp_path: Path):
    meta = tmp_path / f"srv/shop/releases/{RID}/.lightfold"
    meta.mkdir(parents=True)
    (meta / "exec").write_text('#!/bin/sh\necho "via exec:" "$@"\nexec "$@"\n')
    (meta / "exec").chmod(0o755)
    script, env = _fake_server(tmp_path, run_script("shop", RID, ["echo", "a b", "c"], "a1b2c3d4e5f6"))
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=20)
    assert (r.returncode, r.stdout) == (0, "via exec: echo a b c\na b c\n"), r.stderr


def test_an_older_release_without_exec_gets_the_start_scripts_cd_and_path(tmp_path: Path):
    rel = tmp_path / f"srv/shop/releases/{RID}"
    (rel / ".lightfold").mkdir(parents=True)
    (rel / ".venv/bin").mkdir(parents=True)
    tool = rel / ".venv/bin/migrate-tool"
    tool.write_text('#!/bin/sh\necho "migrated in $(pwd)"; exit 3\n')
    tool.chmod(0o755)
    det = Det(framework="flask", language="python", runtime="python", package_manager="uv", install=None,
              start="gunicorn app:app")
    (rel / ".lightfold/start").write_text(start_script("shop", det, ".", "gunicorn app:app"))
    script, env = _fake_server(tmp_path, run_script("shop", RID, ["migrate-tool"], "a1b2c3d4e5f6"))
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 3 and r.stdout == f"migrated in {rel}\n", r.stderr  # the exit status passes through
    shell = run_script("shop", RID, ['echo "$VIRTUAL_ENV"'], "a1b2c3d4e5f6").replace("/srv/shop",
                                                                                   str(tmp_path / "srv/shop"))
    r = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=20)
    assert r.stdout == f"{rel}/.venv\n", r.stderr  # the command, not the start command


def test_a_release_with_neither_launcher_is_an_error(tmp_path: Path):
    (tmp_path / f"srv/shop/releases/{RID}").mkdir(parents=True)
    script, env = _fake_server(tmp_path, run_script("shop", RID, ["true"], "a1b2c3d4e5f6"))
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 127 and "neither .lightfold/exec nor a start script" in r.stderr


def test_run_without_a_command_is_a_usage_error(cli, lf_home):
    r = cli("run", "--target", "web")
    assert r.returncode == 2 and "no command to run" in r.stderr and "Traceback" not in r.stderr


def test_with_a_terminal_the_command_gets_its_own_pty_instead_of_pipes():
    words = systemd_run_words(run_script("shop", RID, ["python", "manage.py", "createsuperuser"], "a1b2c3d4e5f6",
                                         pty=True))
    assert "--pty" in words and "--pipe" not in words and "--wait" in words


@pytest.mark.parametrize("user, provider", [("root", "byos"), ("deploy", "digitalocean")])
def test_the_pty_run_is_ssh_with_a_terminal_running_the_script_as_root(user, provider, lf_home):
    from lightfold.config import ProviderConfig, TargetConfig
    from lightfold.release.run import pty_argv
    from lightfold.release.target import Target

    cfg = TargetConfig(project_path="/p", provider=provider,
                       provider_config={provider: ProviderConfig(ip="203.0.113.9", username=user, ssh_key="/k")})
    argv = pty_argv(Target("shop", cfg), RID, ["python", "manage.py", "createsuperuser"])
    assert argv[0] == "ssh" and argv.index("-t") < argv.index("--") and argv[argv.index("--") + 1] == "203.0.113.9"
    remote = argv[-1]
    assert remote.startswith("sudo -n bash -c " if user != "root" else "bash -c ")
    script = shlex.split(remote)[-1]
    assert "--pty" in systemd_run_words(script) and "createsuperuser" in script
    known = next(o for o in argv if o.startswith("UserKnownHostsFile="))
    assert ("/.ssh/known_hosts" in known) is (provider == "byos")  # the user's own file only for their servers
