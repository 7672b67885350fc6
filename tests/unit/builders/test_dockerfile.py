"""The dockerfile builder's scripts and configure steps. The start script is run for real by bash,
with a stand-in `docker` on PATH that records its arguments (the real engine runs in the e2e test)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lightfold.builders import dockerfile
from lightfold.server.app import AppSpec, not_in_docker_group_action
from lightfold.server.configure import configure_plan
from lightfold.server.plan import render

# Records each call as one NUL-separated argv line; `run` stays in the foreground like a container
# until `stop` (or a signal) ends it.
DOCKER_SHIM = r"""#!/bin/bash
log=$(dirname "$0")/calls
printf '%s\0' "$@" >> "$log"; printf '\n' >> "$log"
case $1 in
  run) echo $$ > "$(dirname "$0")/run.pid"; trap 'exit 0' TERM; while :; do sleep 0.05; done ;;
  stop) kill "$(cat "$(dirname "$0")/run.pid")"; echo stopped > "$(dirname "$0")/stopped" ;;
esac
exit 0
"""


def calls(bin_dir: Path) -> list[list[str]]:
    text = (bin_dir / "calls").read_text() if (bin_dir / "calls").exists() else ""
    return [line.strip("\0").split("\0") for line in text.split("\0\n") if line.strip("\0\n")]


@pytest.fixture
def slot(tmp_path):
    """/srv/shop-like layout: releases/<id>/.lightfold/start and slots/green -> ../releases/<id>."""
    rel = tmp_path / "releases" / "20260101120000"
    (rel / ".lightfold").mkdir(parents=True)
    start = rel / ".lightfold" / "start"
    start.write_text(dockerfile.start_script("shop", 8000))
    start.chmod(0o755)
    (tmp_path / "slots").mkdir()
    (tmp_path / "slots" / "green").symlink_to("../releases/20260101120000")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_SHIM)
    (bin_dir / "docker").chmod(0o755)
    return tmp_path / "slots" / "green" / ".lightfold" / "start", bin_dir


def test_start_runs_the_release_image_with_the_env_by_name_and_stops_the_container(slot):
    start, bin_dir = slot
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PORT": "8003", "HOME": "/srv/shop/cache",
           "INVOCATION_ID": "abc", "SECRET": "multi\nline 'value'", "DATABASE_URL": "postgres://x"}
    proc = subprocess.Popen([str(start)], env=env)
    deadline = time.monotonic() + 10
    while not (bin_dir / "run.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # systemd stopping the slot
    assert proc.wait(10) == 0  # a clean stop, not a failed unit
    assert (bin_dir / "stopped").exists()
    rm, run, stop = calls(bin_dir)
    assert rm == ["rm", "-f", "lightfold-shop-green"]
    assert run[:6] == ["run", "--rm", "--init", "--name", "lightfold-shop-green", "-p"]
    assert run[6] == "127.0.0.1:8003:8000" and run[-1] == "lightfold-shop:20260101120000"
    passed = {run[i + 1] for i, a in enumerate(run) if a == "-e"}
    # values never on the command line: names only, taken from the unit's environment
    assert passed == {"PORT=8000", "SECRET", "DATABASE_URL"}
    assert not any("multi" in a for a in run)
    assert stop[:2] == ["stop", "-t"] and stop[-1] == "lightfold-shop-green"


def test_the_agents_names_file_decides_which_variables_reach_the_container(slot, tmp_path):
    """With the agent's list of the release's env names, LANG/PATH/HOME set for the app pass too,
    and nothing systemd added does."""
    start, bin_dir = slot
    (tmp_path / "slots" / "green.names").write_text("HOME\nLANG\nSECRET\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PORT": "8003", "HOME": "/app-home", "LANG": "de_DE.UTF-8",
           "INVOCATION_ID": "abc", "SECRET": "s", "JOURNAL_STREAM": "8:1"}
    proc = subprocess.Popen([str(start)], env=env)
    deadline = time.monotonic() + 10
    while not (bin_dir / "run.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    run = calls(bin_dir)[1]
    assert {run[i + 1] for i, a in enumerate(run) if a == "-e"} == {"PORT=8000", "HOME", "LANG", "SECRET"}


def test_a_container_that_exits_fails_the_unit(slot, tmp_path):
    start, bin_dir = slot
    (bin_dir / "docker").write_text("#!/bin/sh\n[ \"$1\" = run ] && exit 3\nexit 0\n")
    r = subprocess.run([str(start)], env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PORT": "8003"})
    assert r.returncode == 3  # Restart=on-failure and the agent's crash detection see it


def test_build_script_is_valid_bash_and_streams_the_build():
    det = SimpleNamespace(app_root=None, framework="dockerfile", dockerfile_port=8000)
    script = dockerfile.build_script("shop", det, SimpleNamespace(port=None), "20260101120000",
                                     release_info={"builder": "dockerfile"})
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert "docker build -f \"$df\" -t lightfold-shop:20260101120000" in script
    assert "apt-config dump" in script and "http_proxy=$proxy" in script  # proxy derived at run time
    assert "runuser -u lfb-shop" in script  # the release is the build user's


def test_container_port_prefers_deploy_port_then_expose():
    assert dockerfile.container_port(SimpleNamespace(port=3000), SimpleNamespace(dockerfile_port=8000)) == 3000
    assert dockerfile.container_port(SimpleNamespace(port=None), SimpleNamespace(dockerfile_port=8000)) == 8000
    assert dockerfile.container_port(SimpleNamespace(port=None), SimpleNamespace(dockerfile_port=None)) == 8080


def test_configure_installs_docker_instead_of_a_language_runtime():
    det = SimpleNamespace(runtime="docker", framework="dockerfile", static=False, app_root=None,
                          health_path=None, output_dir=None)
    deploy = SimpleNamespace(health_path=None, health_status=200, health_timeout=60, health_host=None)
    spec = AppSpec("shop", det, deploy, (8000, 8001))
    builder = dockerfile.DockerfileBuilder()
    plan = configure_plan(spec, agent_files={"agent/main.py": b"#agent"}, builder_steps=builder.configure_steps(spec),
                          builder_replaces_runtime=builder.replaces_runtime)
    names = [s.name for s in plan.plan.steps]
    assert "docker" in names and not any(n.startswith("runtime") for n in names)
    assert names.index("docker") < names.index("app-unit")  # the drop-in is there when systemd reloads
    text = render(plan.plan)
    assert "docker.io" in text and "/etc/systemd/system/lightfold-shop@.service.d/60-dockerfile.conf" in text
    # the app user is never put in the docker group (root on the server), and an older version's is undone
    assert "usermod" not in text
    [app_user_step] = [st for st in plan.plan.steps if st.name == "app-user"]
    assert not_in_docker_group_action("lf-shop") in app_user_step.actions
    assert "gpasswd -d lf-shop docker" in text
    # Debian 13's docker.io only recommends its client: installed where `docker` is missing (found by e2e)
    assert "install --no-install-recommends docker-cli" in text and "command -v docker >/dev/null" in text


def test_the_docker_group_check_leaves_a_user_outside_it_alone(tmp_path):
    """The action's `unless` run for real: true (nothing to do) for a user not in the group, false
    for one whose `id -nG` lists docker (a stand-in id on PATH)."""
    action = not_in_docker_group_action("lf-shop")
    assert action.command == "gpasswd -d lf-shop docker >/dev/null"
    (tmp_path / "id").write_text("#!/bin/sh\necho \"$ID_GROUPS\"\n")
    (tmp_path / "id").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    check = lambda groups: subprocess.run(["sh", "-c", action.unless], env={**env, "ID_GROUPS": groups}).returncode  # noqa: E731
    assert check("lf-shop") == 0 and check("lf-shop dockerish") == 0
    assert check("lf-shop docker") == 1


def test_image_tags_refuse_bad_ids():
    from lightfold.errors import LightfoldError

    assert dockerfile.image_tag("shop", "20260101120000") == "lightfold-shop:20260101120000"
    with pytest.raises(LightfoldError):
        dockerfile.image_tag("shop", "../x")
    assert dockerfile.retag_command("shop", "20260101120001", "20260101120002") == (
        "docker tag lightfold-shop:20260101120001 lightfold-shop:20260101120002")


def test_start_script_has_no_secrets_and_is_bash():
    text = dockerfile.start_script("shop", 8000)
    assert text.startswith("#!/bin/bash\n")
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_build_without_docker_says_to_configure(tmp_path):
    det = SimpleNamespace(app_root=None, framework="dockerfile", dockerfile_port=8000)
    script = dockerfile.build_script("shop", det, SimpleNamespace(port=None), "20260101120000")
    r = subprocess.run(["/bin/bash", "-s"], input=script, text=True, capture_output=True,
                       env={"PATH": str(tmp_path)})  # an empty PATH dir: no docker
    assert r.returncode == 1
    event = json.loads(r.stdout.splitlines()[-1])
    assert event["status"] == "failed" and "lightfold configure" in event["output"][0]


def test_image_tags_take_only_release_ids_of_the_one_rule():
    from lightfold.errors import LightfoldError

    for bad in ("1", "v1.2", "release-1", "20260101120000\n"):
        with pytest.raises(LightfoldError, match="14 digits"):
            dockerfile.image_tag("shop", bad)


def test_the_slots_drop_in_runs_root_owned_code_without_the_apps_env():
    """The slot's process talks to docker, so: root's program (the agent package), none of the
    app's env (EnvironmentFile and Environment reset), the template's sandbox kept (no
    CapabilityBoundingSet or ProtectSystem line undoes it), the container stopped on stop."""
    text = dockerfile.dropin_text("shop")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "[Service]", "User=root", "Group=root", "EnvironmentFile=", "Environment=",
        "Environment=DOCKER_CONFIG=/nonexistent", "ExecStart=",
        "ExecStart=/usr/bin/python3 -I -c \"import sys; sys.path.insert(0, '/usr/local/lib/lightfold'); "
        "from agent.docker_run import main; sys.exit(main())\" shop %i",
        "ExecStop=-/usr/bin/docker stop -t 20 lightfold-shop-%i",
    ]
    assert "$" not in text


def test_the_native_builder_removes_a_former_dockerfile_drop_in():
    from lightfold.builders.native import NativeBuilder
    from lightfold.server.plan import Remove

    [step] = NativeBuilder().configure_steps(SimpleNamespace(name="shop"))
    assert Remove("/etc/systemd/system/lightfold-shop@.service.d/60-dockerfile.conf") in step.actions
