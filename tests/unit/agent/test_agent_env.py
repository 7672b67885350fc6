"""Env snapshots: what push sends with write_env must reach the app byte-exact through systemd."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightfold.agent.core import AgentError
from lightfold.agent.envfile import env_hash, parse_env_file, render_env_file, slot_env
from lightfold.agent.files import read_text

HOSTILE_VALUES = [
    "",
    " ",
    "  leading and trailing  ",
    'has "double" quotes',
    "has 'single' quotes",
    "back\\slash",
    "trailing backslash\\",
    "\\\\two backslashes",
    "\\n is not a newline",
    '\\"',
    "\\$",
    "$HOME",
    "${HOME}",
    "$(whoami)",
    "`id`",
    "line1\nline2",
    "crlf\r\nline",
    "\r",
    "tab\there",
    "#not a comment",
    ";not a comment either",
    "=equals=signs=",
    "a\\\nb",
    "ends with newline\n",
    "quote at end\"",
    "unicode: héllo — 日本語 🚀",
    "\x1b[31mescape codes\x1b[0m\x7f",
    "postgres://user:p@ss w'rd\"$@db:5432/app?sslmode=require",
    "multi\n\nblank\n\nlines",
]

names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)


@given(st.dictionaries(names, values, max_size=8))
@settings(max_examples=100, deadline=None)
def test_render_then_parse_returns_the_same_env(env):
    assert parse_env_file(render_env_file(env, "a header")) == env


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_value_survives_round_trip(value):
    env = {"SECRET": value, "AFTER": "still parsed"}
    assert parse_env_file(render_env_file(env)) == env


def test_rendered_file_escapes_only_what_systemd_unescapes():
    text = render_env_file({"A": 'x"y\\z`w$v', "B": "two\nlines"})
    assert text == 'A="x\\"y\\\\z\\`w\\$v"\nB="two\nlines"\n'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=foo bar   ", {"A": "foo bar"}),
        ("  B = spaced", {"B": "spaced"}),
        ("C='single $x \\n'", {"C": "single $x \\n"}),
        ('D="a\\qb"', {"D": "a\\qb"}),
        ("E=unquoted\\ value", {"E": "unquoted value"}),
        ('F="line1\\\nline2"', {"F": "line1line2"}),
        ("# comment\n; comment\nG=1", {"G": "1"}),
        ("NOEQUALS\nH=2", {"H": "2"}),
        ("I=\"con\"'cat'enated", {"I": "concatenated"}),
        ("J=", {"J": ""}),
        ("K=1\nK=2", {"K": "2"}),
        ('L="no closing quote', {"L": "no closing quote"}),
    ],
)
def test_parser_follows_systemd_env_file_rules(line, expected):
    assert parse_env_file(line) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"1ABC": "x"}, "invalid environment variable name"),
        ({"MY-VAR": "x"}, "invalid environment variable name"),
        ({"A B": "x"}, "invalid environment variable name"),
        ({"NUL": "a\x00b"}, "NUL"),
        ({"SURROGATE": "\ud800"}, "UTF-8"),
        ({"LIST": ["a"]}, "must be a string"),
        ({"FLAG": True}, "must be a string"),
    ],
)
def test_unrepresentable_env_is_refused_with_a_clear_error(env, message):
    with pytest.raises(AgentError, match=message):
        render_env_file(env)


def test_numbers_become_strings():
    assert parse_env_file(render_env_file({"WORKERS": 4, "RATIO": 0.5})) == {
        "WORKERS": "4", "RATIO": "0.5"}


def test_env_snapshot_read_back_by_the_agent_keeps_carriage_returns(tmp_path):
    path = tmp_path / "x.env"
    path.write_bytes(render_env_file({"A": "crlf\r\nline", "B": "\r"}).encode())
    assert parse_env_file(read_text(str(path))) == {"A": "crlf\r\nline", "B": "\r"}


def test_slot_env_port_always_wins():
    snapshot = render_env_file({"PORT": "3000", "DATABASE_URL": "postgres://x"})
    assert slot_env(snapshot, 18002) == {"DATABASE_URL": "postgres://x", "PORT": "18002"}
    assert slot_env(None, 18001) == {"PORT": "18001"}


def test_env_hashes_are_keyed_with_a_private_server_key(root, agent_cli, app_json):
    """A journal's env_hash must not let a short secret be found by hashing guesses: the agent
    keys it with 32 random bytes of its own (0600 root), made once and kept."""
    app_json()
    result, _, _ = agent_cli({"op": "status", "app": "web"})
    path = root / "etc/lightfold/env-hash.key"
    key = path.read_text().strip()
    assert result["env_key"] == key and len(bytes.fromhex(key)) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    keyed = env_hash({"PASSWORD": "1234"}, key)
    assert keyed.startswith("hmac-sha256:") and keyed != env_hash({"PASSWORD": "1234"})
    assert keyed != env_hash({"PASSWORD": "1234"}, "00" * 32)
    again, _, _ = agent_cli({"op": "status", "app": "web"})
    assert again["env_key"] == key  # stable: every stored hash keeps matching
    written, _, _ = agent_cli({"op": "write_env", "app": "web", "release": "20260101120000",
                               "env": {"PASSWORD": "1234"}})
    assert written["env_hash"] == keyed


def test_a_malformed_env_hash_key_is_an_error_never_replaced(root, agent_cli, app_json):
    app_json()
    path = root / "etc/lightfold/env-hash.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not hex\n")
    result, _, code = agent_cli({"op": "status", "app": "web"})
    assert code != 0 and "env-hash key" in result["error"] and "remove" in result["fix"]
    assert path.read_text() == "not hex\n"


def test_env_hash_ignores_order_and_sees_changes():
    assert env_hash({"A": "1", "B": "2"}) == env_hash({"B": "2", "A": "1"})
    assert env_hash({"A": "1"}) != env_hash({"A": "1 "})


def test_write_env_op_keeps_values_off_the_command_line_and_private(root, agent_cli):
    env = {value_name: value for value_name, value in zip(
        [f"V{i}" for i in range(len(HOSTILE_VALUES))], HOSTILE_VALUES, strict=True)}
    result, events, code = agent_cli({"op": "write_env", "app": "web", "release": "20260101120000",
                                            "env": env})
    assert code == 0 and result["ok"], result
    assert result["count"] == len(env) and result["names"] == sorted(env)
    path = root / "srv/web/env/20260101120000.env"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert parse_env_file(path.read_bytes().decode()) == env
    assert result["env_hash"] == env_hash(env, (root / "etc/lightfold/env-hash.key").read_text().strip())
    # The result echoes names, never values.
    assert "p@ss" not in str(result) and "p@ss" not in str(events)


def test_write_env_rejects_bad_release_id(root, agent_cli):
    result, _, code = agent_cli({"op": "write_env", "app": "web", "release": "../../etc", "env": {}})
    assert code == 1 and not result["ok"]
    assert "release must be a release id" in result["error"]
    assert not (root / "srv").exists()
