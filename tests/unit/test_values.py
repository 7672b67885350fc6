"""The one validation layer for values that reach a shell, a unit file, an nginx file or a path:
names, release ids, env names, domains, output dirs, health paths and hosts. Every rule is a full
match over a strict ASCII set, so hostile strings (newlines, quotes, ';', braces, `$()`, '..', NUL,
unicode) are refused, never escaped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightfold import config
from lightfold.agent import layout
from lightfold.errors import LightfoldError
from lightfold.names import is_host, is_target_name, is_url_path, unsafe_subpath
from lightfold.server.tls import normalize_domain

HOSTILE = ["\n", "\r", "\0", '"', "'", ";", "{", "}", "$(", "`", " ", "\t", "ä", "٣", "\u2028", "\\"]

VALIDATORS = {
    "target name": (is_target_name, "web-1"),
    "app name": (layout.is_app_name, "web-1"),
    "release id": (layout.is_release_id, "20261203121314"),
    "env name": (layout.is_env_name, "DATABASE_URL"),
    "url path": (is_url_path, "/health"),
    "host": (is_host, "app.example.com:8080"),
}


def domain_ok(value: str) -> bool:
    try:
        normalize_domain(value)
    except LightfoldError:
        return False
    return True


VALIDATORS["domain"] = (domain_ok, "app.example.com")


@pytest.mark.parametrize("name", [n for n in VALIDATORS if n != "domain"])
def test_each_rule_takes_its_plain_value_and_refuses_it_with_a_trailing_newline(name):
    ok, good = VALIDATORS[name]
    assert ok(good)
    assert not ok(good + "\n"), f"{name} took a trailing newline"
    assert not ok(good + "\nPORT=1"), name


def test_a_domain_is_stripped_of_outer_space_but_refused_with_a_newline_inside():
    assert normalize_domain(" app.example.com\n") == "app.example.com"
    for bad in ("app\n.example.com", "app.example.com\nx", "app.exa mple.com"):
        assert not domain_ok(bad), bad


@pytest.mark.parametrize("name", VALIDATORS)
@settings(max_examples=150, deadline=None)
@given(prefix=st.text(max_size=8), bad=st.sampled_from(HOSTILE), suffix=st.text(max_size=8))
def test_no_rule_takes_a_hostile_character_anywhere(name, prefix, bad, suffix):
    ok, good = VALIDATORS[name]
    # normalize_domain strips outer whitespace (and returns the clean name): a domain gets it inside
    value = good[:3] + bad + good[3:] if name == "domain" else prefix + good + bad + suffix
    assert not ok(value), (name, value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_an_accepted_subpath_is_plain_relative_directory_names(path):
    if unsafe_subpath(path) is None:
        parts = path.split("/")
        assert not path.startswith("/") and ".." not in parts and "" not in parts
        assert all(c.isascii() and (c.isalnum() or c in "._@+-") for c in path.replace("/", ""))
        assert not any(p.startswith("-") for p in parts)


@pytest.mark.parametrize("path, why", [
    ("../x", "'..'"), ("a/../../b", "'..'"), ("/etc", "absolute"), ("dist\n", "characters"),
    ("dist;", "characters"), ("a//b", "empty part"), ("-rf", "characters"),
])
def test_subpath_refusals_say_why(path, why):
    assert why in unsafe_subpath(path)


def test_config_refuses_a_hostile_health_path_and_host_naming_the_key(tmp_path):
    for key, value in (("health_path", "/up\nX: y"), ("health_path", "up"), ("health_host", "a.com\r\nX: y"),
                       ("health_host", "a b")):
        raw = {"targets": {"web": {"project_path": "/p", "deploy": {key: value}}}}
        with pytest.raises(LightfoldError, match=f"deploy.{key}"):
            config.parse(raw, tmp_path / "config.json")
    raw = {"targets": {"web": {"project_path": "/p", "domain": {"domain": "app\n.example.com"}}}}
    with pytest.raises(LightfoldError, match="domain.domain"):
        config.parse(raw, tmp_path / "config.json")
    good = {"targets": {"web": {"project_path": "/p", "deploy": {"health_path": "/up?full=1",
                                                                "health_host": "app.example.com"}}}}
    assert config.parse(good, tmp_path / "config.json").targets["web"].deploy.health_path == "/up?full=1"


def test_config_refuses_a_target_name_with_a_trailing_newline(tmp_path):
    raw = {"targets": {"web\n": {"project_path": "/p"}}}
    with pytest.raises(LightfoldError, match="target name"):
        config.parse(raw, tmp_path / "config.json")
