"""lightfold.release.facts: each fact's parse from recorded server outputs, and the one-exec script
run for real by sh (its markers survive outputs with and without a final newline)."""

from __future__ import annotations

import json
import subprocess

import pytest
from tests.unit.test_operate import AGENT_STATUS

from lightfold.errors import LightfoldError
from lightfold.release import facts
from lightfold.release.agent_client import AgentError
from lightfold.release.facts import Fact

MARKER = ('{"agent_hash": "ab12", "fingerprint": "f00d", "lightfold_version": "0.1.0", '
          '"configured_at": "2026-01-01T12:00:00Z"}\n')
APP_JSONS = ('\x1c/etc/lightfold/apps/shop/app.json\n{"app": "shop", "ports": {"blue": 8000, "green": 8001}}\n'
             '\x1c/etc/lightfold/apps/blog/app.json\n{"app": "blog", "ports": {"blue": 8002, "green": 8003}}'
             '\x1c/etc/lightfold/apps/broken/app.json\n{"app": ')
CERT_INFO = ('{"domain": "shop.example.com", "exists": true, "certbot": true, "not_after": 1798761600.0, '
             '"not_before": 1791000000.0, "names": ["shop.example.com"], "issuer": "R11", "serial": "04AB", '
             '"sha256": "ff", "server": "https://acme-v02.api.letsencrypt.org/directory"}\n')


def run(facts_: list[Fact]) -> str:
    return subprocess.run(["sh", "-s"], input=facts.script(facts_), capture_output=True, text=True).stdout


def test_the_script_gives_each_facts_exact_output_and_exit_status():
    got = facts.split(run([
        Fact("a", "printf 'one\\ntwo\\n'", lambda o, r: o),
        Fact("b", "printf 'no newline'; exit 3", lambda o, r: o),
        Fact("c", "true", lambda o, r: o),
        Fact("d", "echo err >&2; echo out", lambda o, r: o),
        Fact("e", "echo err >&2", lambda o, r: o, stderr=True),
    ]))
    assert got == {"a": ("one\ntwo\n", 0), "b": ("no newline", 3), "c": ("", 0), "d": ("out\n", 0),
                   "e": ("err\n", 0)}


def test_a_fact_never_reads_the_scripts_own_stdin():
    assert facts.split(run([Fact("a", "cat", lambda o, r: o), Fact("b", "echo after", lambda o, r: o)])) == {
        "a": ("", 0), "b": ("after\n", 0)}


def test_a_missing_answer_is_an_error_not_a_default():
    with pytest.raises(LightfoldError, match="no answer for nixpacks"):
        facts.parse([facts.nixpacks()], "connection closed\n")


def test_marker_parses_the_recorded_marker_and_none_when_absent():
    fact = facts.marker("shop")
    assert fact.parse(MARKER, 0)["fingerprint"] == "f00d"
    assert fact.parse("", 0) is None and fact.parse("garbage", 0) is None


def test_app_configs_keys_each_app_json_by_its_directory_and_skips_broken_ones():
    assert facts.app_configs().parse(APP_JSONS, 0) == {
        "shop": {"app": "shop", "ports": {"blue": 8000, "green": 8001}},
        "blog": {"app": "blog", "ports": {"blue": 8002, "green": 8003}},
    }
    assert facts.app_configs().parse("", 0) == {}


def test_app_configs_command_lists_every_app_json_under_a_root(tmp_path):
    for app, doc in (("shop", '{"app": "shop"}'), ("blog", '{"app": "blog"}\n')):
        (tmp_path / app).mkdir()
        (tmp_path / app / "app.json").write_text(doc)
    (tmp_path / "empty").mkdir()
    fact = facts.app_configs()
    command = fact.command.replace("/etc/lightfold/apps", str(tmp_path))
    out = run([Fact("apps", command, fact.parse)])
    assert facts.parse([Fact("apps", command, fact.parse)], out)["apps"] == {
        "shop": {"app": "shop"}, "blog": {"app": "blog"}}


def test_tls_cert_and_nixpacks_are_yes_or_no():
    assert facts.tls_cert("shop.example.com").parse("yes\n", 0) is True
    assert facts.tls_cert("shop.example.com").parse("", 1) is False
    assert facts.tls_cert(None).parse("", 0) is False and facts.tls_cert(None).command == "true"
    assert facts.nixpacks().parse("yes\n", 0) is True and facts.nixpacks().parse("no\n", 0) is False


def test_status_is_the_agents_reply_and_its_failures_raise_like_a_call():
    fact = facts.status("web", "10.0.0.5")
    assert fact.parse(json.dumps(AGENT_STATUS) + "\n", 0).live.release == "20260101120000"
    with pytest.raises(AgentError, match="app web is not configured"):
        fact.parse('{"ok": false, "op": "status", "error": "app web is not configured"}\n', 1)
    with pytest.raises(LightfoldError, match="not installed on 10.0.0.5"):
        fact.parse("Traceback (most recent call last):\nModuleNotFoundError: No module named 'lfagent'\n", 1)
    assert "env" not in fact.command and '"op": "status"' in fact.command


def test_certificate_reads_cert_info_and_an_unreadable_answer_as_none():
    info = facts.certificate("shop.example.com").parse(CERT_INFO, 0)
    assert info["exists"] and info["issuer"] == "R11" and info["expires"] == "2027-01-01T00:00:00Z"
    assert facts.certificate("shop.example.com").parse("", 1) == {"domain": "shop.example.com", "exists": False}


def test_noop_stamp_is_the_raw_output_or_none_on_failure():
    assert facts.noop_stamp("sh -c 'true'").parse("a -> b\n", 0) == "a -> b\n"
    assert facts.noop_stamp("sh -c 'true'").parse("", 1) is None
