"""The CLI's conventions, checked through the installed executable: exit codes, one-line errors,
--json purity and secrets that never print."""

from __future__ import annotations

import json


def test_version_names_the_cli_and_agent_protocol_versions(cli):
    from lightfold import __version__
    from lightfold.agent.protocol import PROTOCOL_VERSION

    for flag in ("--version", "-V"):
        v = cli(flag)
        assert (v.returncode, v.stdout) == (0, f"lightfold {__version__} (agent protocol {PROTOCOL_VERSION})\n")
    assert cli("--debug", "--version").stdout == v.stdout  # through Typer: the same line


def test_help(cli):
    h = cli("--help")
    assert h.returncode == 0
    for command in ("detect", "config"):
        assert command in h.stdout


def test_unknown_command_is_a_usage_error(cli):
    r = cli("deplyo")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_bad_option_is_a_usage_error(cli):
    assert cli("config", "show", "--nope").returncode == 2


def test_config_error_is_one_line_with_the_fix(cli, lf_home):
    r = cli("config", "set", "deploy.evn_vars.X", "1", "--target", "web")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "did you mean 'env_vars'" in lines[0] and "lightfold config show" in lines[0]
    assert "Traceback" not in r.stderr


def test_malformed_config_names_file_and_leaves_it(cli, lf_home):
    lf_home.mkdir(parents=True)
    (lf_home / "config.json").write_text("{ not json")
    r = cli("config", "show")
    assert r.returncode == 1
    assert str(lf_home / "config.json") in r.stderr
    assert (lf_home / "config.json").read_text() == "{ not json"


def test_json_output_is_pure_and_redacts_secrets(cli, lf_home):
    assert cli("config", "set", "deploy.env_vars.API_KEY", "sk-very-secret", "-t", "web").returncode == 0
    assert cli("config", "set-token", "hetzner", input="hz-secret-token\n").returncode == 0
    r = cli("config", "show", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)  # stdout is exactly one JSON document
    assert data["targets"]["web"]["deploy"]["env_vars"]["API_KEY"] == "********"
    assert data["tokens"]["hetzner"] == {"set": True, "source": "file"}
    human = cli("config", "show")
    for out in (r.stdout, r.stderr, human.stdout, human.stderr):
        assert "sk-very-secret" not in out and "hz-secret-token" not in out


def test_config_set_reads_a_secret_value_from_stdin_keeping_it_off_argv(cli, lf_home):
    value = "line one\nline 'two' $(x)"
    r = cli("config", "set", "deploy.env_vars.API_KEY", "-t", "web", input=value + "\n")
    assert r.returncode == 0 and "line one" not in r.stdout + r.stderr
    saved = json.loads((lf_home / "config.json").read_text())
    assert saved["targets"]["web"]["deploy"]["env_vars"]["API_KEY"] == value
    assert oct((lf_home / "config.json").stat().st_mode & 0o777) == "0o600"


def test_set_token_env_source_is_reported_not_printed(cli, lf_home):
    r = cli("config", "show", "--json", env={"DIGITALOCEAN_TOKEN": "dop_v1_abc"})
    data = json.loads(r.stdout)
    assert data["tokens"]["digitalocean"] == {"set": True, "source": "env:DIGITALOCEAN_TOKEN"}
    assert "dop_v1_abc" not in r.stdout


def test_target_defaults_to_sanitised_directory_name(cli, tmp_path):
    project = tmp_path / "My Shop"
    project.mkdir()
    assert cli("config", "set", "deploy.port", "8080", str(project)).returncode == 0
    data = json.loads(cli("config", "show", "--json").stdout)
    assert data["targets"]["my-shop"]["project_path"] == str(project)


def test_debug_shows_traceback_for_errors(cli, lf_home):
    r = cli("--debug", "config", "set", "deploy.port", "x", "-t", "web")
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_any_command_module_imported_first_gives_the_whole_cli():
    """No import circle hides behind the command registration: whichever module a caller (or a
    test) imports first, the CLI ends up with every command; through the entry point (main) they
    stand in `--help` order."""
    import subprocess
    import sys

    probe = (
        "import importlib, sys\n"
        "importlib.import_module(sys.argv[1])\n"
        "from lightfold.cli.main import app\n"
        "print(' '.join(c.name or c.callback.__name__ for c in app.registered_commands))\n"
    )
    firsts = ["lightfold.cli.main", "lightfold.cli.app", "lightfold.cli.options", "lightfold.cli.detect_cmd",
              "lightfold.cli.server_cmds", "lightfold.cli.deploy_cmds", "lightfold.cli.operate_cmds",
              "lightfold.cli.domain_cmd", "lightfold.cli.config_cmd"]
    seen = {first: subprocess.run([sys.executable, "-c", probe, first], capture_output=True, text=True)
            for first in firsts}
    for first, r in seen.items():
        assert r.returncode == 0, (first, r.stderr)
    assert len({frozenset(r.stdout.split()) for r in seen.values()}) == 1, seen
    commands = seen["lightfold.cli.main"].stdout.split()
    assert commands[0] == "detect" and {"deploy", "push", "rollback", "status", "create"} <= set(commands)


def test_db_commands_check_their_words_before_touching_anything(cli, lf_home):
    r = cli("db", "add", "mongodb", "--target", "web")
    assert r.returncode == 2 and "unknown database 'mongodb'" in r.stderr and "postgres, mysql, redis" in r.stderr
    assert "no target named 'web'" in cli("db", "add", "mariadb", "--target", "web").stderr  # a known word
    assert cli("db", "url", "memcached", "--target", "web").returncode == 2
    r = cli("db", "remove", "postgres", "--target", "web")  # no terminal, no --yes: refuse, say how
    assert r.returncode == 2 and "pass --yes to confirm" in r.stderr
    for sub in ("add", "status", "url", "remove", "shell"):
        assert cli("db", sub, "--help").returncode == 0


def test_logs_process_and_all_refuse_each_other_and_build(cli, lf_home):
    for args in (("--process", "worker", "--all"), ("--build", "--all"), ("--build", "--process", "worker")):
        r = cli("logs", "--target", "web", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
