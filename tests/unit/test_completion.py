"""Shell completion (Typer's) for bash, zsh and fish, through the installed executable: the scripts
a user installs, and the words the shell gets back when it asks."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def complete(cli, shell: str, words: str, **extra: str) -> str:
    """What `lightfold` answers when `shell`'s completion function asks about the command line `words`."""
    env = {"_LIGHTFOLD_COMPLETE": f"complete_{shell}", **extra}
    if shell == "bash":
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": words}
    r = cli(env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_calls_back_into_lightfold(cli, shell):
    r = cli(env={"_LIGHTFOLD_COMPLETE": f"source_{shell}"})
    assert r.returncode == 0, r.stderr
    assert f"_LIGHTFOLD_COMPLETE=complete_{shell}" in r.stdout and "lightfold" in r.stdout


def test_bash_script_is_valid_bash(cli, tmp_path):
    script = tmp_path / "lightfold.bash"
    script.write_text(cli(env={"_LIGHTFOLD_COMPLETE": "source_bash"}).stdout)
    assert subprocess.run([shutil.which("bash") or "bash", "-n", str(script)]).returncode == 0


def test_bash_completes_commands_and_subcommands(cli):
    assert complete(cli, "bash", "lightfold dep").split() == ["deploy"]
    assert complete(cli, "bash", "lightfold config set-").split() == ["set-token"]


def test_zsh_completes_options_with_their_help(cli):
    answer = complete(cli, "zsh", "lightfold status --")
    assert answer.startswith("_arguments ")
    assert '"--target":"Target name' in answer and '"--json":"Print one JSON object' in answer


def test_fish_completes_options_with_their_help(cli):
    answer = complete(cli, "fish", "lightfold push --lock", _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert answer.splitlines() == ["--lock-wait\tWait up to this many seconds for another deploy to finish."]


def test_install_and_show_completion_are_offered(cli):
    h = cli("--help")
    assert "--install-completion" in h.stdout and "--show-completion" in h.stdout
