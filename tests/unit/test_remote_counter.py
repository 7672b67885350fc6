"""lightfold.remote.counter: what counts as an exec that starts python3 on the server."""

import json

from lightfold.remote import counter


def test_agent_calls_and_python_scripts_start_python3():
    assert counter.starts_python("sudo -n python3 -c 'import agent'")
    assert counter.starts_python("bash -s", b"set -e\n  exec python3 -c 'x' /usr/bin/env\n")
    assert counter.starts_python("bash -c 'cp -a x y' && python3 -c 'import json' y")
    assert counter.starts_python("bash -s", b'eval "$(python3 - <<EOF\nprint(1)\nEOF\n)"')


def test_an_exec_running_two_agent_requests_starts_python3_twice():
    from lightfold.release.agent_client import many_command

    assert counter.python_starts(many_command(2)) == 2 and counter.python_starts(many_command(1)) == 1
    assert counter.python_starts("bash -s", b"python3 -c 1\npython3 -c 2\n") == 1  # a script: at most once


def test_a_detached_agent_op_and_the_deploy_lock_with_its_requests_start_python3_once():
    from types import SimpleNamespace

    from lightfold.agent.bundle import detached_command
    from lightfold.release.locking import holder_with_requests_command

    assert counter.python_starts(detached_command("activate", "web")) == 1
    assert counter.python_starts("sudo -n " + detached_command("rollback", "web")) == 1
    assert counter.python_starts(holder_with_requests_command(SimpleNamespace(username="deploy"), 3)) == 1
    assert counter.python_starts("systemd-run --unit=x --scope true") == 0


def test_shell_commands_and_json_inputs_do_not():
    assert not counter.starts_python("sh -c 'cat /x'")
    assert not counter.starts_python("bash -s", b"npm ci\n")
    assert not counter.starts_python("bash -s", b"_lf_packages 'packages nginx python3' nginx python3 curl\n")
    # an env value on stdin of a non-shell command never counts
    assert not counter.starts_python("cat > /tmp/x", b"python3 rocks")


def test_record_counts_and_writes_one_line_per_exec(tmp_path, monkeypatch):
    log = tmp_path / "execs.jsonl"
    monkeypatch.setenv(counter.ENV, str(log))
    before = counter.totals()
    counter.record("python3 -c 'print(1)'", display="lightfold agent status")
    counter.record("sh -c 'true'", b"SECRET=1")
    after = counter.totals()
    assert after["execs"] - before["execs"] == 2
    assert after["python3"] - before["python3"] == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines == [{"exec": "lightfold agent status", "python3": 1}, {"exec": "sh -c 'true'", "python3": 0}]
    assert "SECRET" not in log.read_text()
