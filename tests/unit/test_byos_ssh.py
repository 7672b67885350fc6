"""Reading the user's OpenSSH files as ssh does: ~/.ssh/config for a host, known_hosts lookups
(plain, hashed, [host]:port, patterns, @revoked), and the trust verdict on a presented host key."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lightfold.remote.user_ssh import KnownKeys, judge, known_keys, parse_ssh_config, read_known_keys

HOME = Path("/home/ann")
ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa/ypRVM40sZ8pRPESljddWl+KUyOSr6uRCwoRhwoEl"
ED2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther1"
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDfakefakefake"

CONFIG = """
# comment
Host web web.example
    HostName 203.0.113.7
    User deploy
    Port 2222
    IdentityFile ~/.ssh/web_key
    IdentityFile ~/.ssh/second

Host *.example !blocked.example
    User wildcard
    HostName %h.internal

Match host web
    User from-match

Host=*
    User = fallback
    IdentityFile "~/.ssh/my key"
    Port 22
"""


def test_alias_gets_hostname_user_port_and_identity_files_first_value_wins():
    s = parse_ssh_config(CONFIG, "web", HOME)
    assert (s.hostname, s.user, s.port) == ("203.0.113.7", "deploy", 2222)
    assert s.identity_files == ["/home/ann/.ssh/web_key", "/home/ann/.ssh/second", "/home/ann/.ssh/my key"]
    assert s.proxy is None


def test_wildcards_negation_and_tokens():
    s = parse_ssh_config(CONFIG, "db.example", HOME)
    assert (s.hostname, s.user, s.port) == ("db.example.internal", "wildcard", 22)
    blocked = parse_ssh_config(CONFIG, "blocked.example", HOME)
    assert (blocked.hostname, blocked.user) == (None, "fallback")  # the negated pattern wins over *.example


def test_match_blocks_are_not_guessed_and_unknown_hosts_get_only_the_catch_all():
    assert parse_ssh_config(CONFIG, "web", HOME).user == "deploy"
    s = parse_ssh_config(CONFIG, "10.0.0.5", HOME)
    assert (s.hostname, s.user, s.port) == (None, "fallback", 22)
    assert parse_ssh_config("Host other\n  User x\n", "10.0.0.5", HOME).user is None


def test_hostname_matching_is_case_insensitive_and_keywords_too():
    s = parse_ssh_config("HOST MyServer\n  HOSTNAME 192.0.2.1\n  user Bob\n", "myserver", HOME)
    assert (s.hostname, s.user) == ("192.0.2.1", "Bob")


def test_include_relative_to_dot_ssh(tmp_path):
    (tmp_path / ".ssh" / "conf.d").mkdir(parents=True)
    (tmp_path / ".ssh" / "conf.d" / "a.conf").write_text("Host box\n  HostName 192.0.2.9\n  Port 2200\n")
    s = parse_ssh_config("Include conf.d/*.conf\nHost *\n  Port 22\n", "box", tmp_path)
    assert (s.hostname, s.port) == ("192.0.2.9", 2200)


def test_include_loop_stops():
    s = parse_ssh_config("Include loop\n", "x", HOME, read=lambda _p: "Include loop\n")
    assert s.hostname is None


def test_proxy_settings_are_reported_and_none_is_not_a_proxy():
    assert parse_ssh_config("Host j\n  ProxyJump bastion\n", "j", HOME).proxy == "ProxyJump bastion"
    assert parse_ssh_config("Host j\n  ProxyCommand none\n", "j", HOME).proxy is None


def test_known_hosts_file_and_alias_options():
    s = parse_ssh_config("Host a\n  UserKnownHostsFile ~/.ssh/kh_a /tmp/kh2\n  HostKeyAlias boxa\n", "a", HOME)
    assert s.known_hosts_files == ["/home/ann/.ssh/kh_a", "/tmp/kh2"]
    assert s.host_key_alias == "boxa"


# ---- known_hosts

def test_plain_and_comma_separated_entries():
    text = f"# c\n203.0.113.7,web {ED}\nother {ED2}\n\n"
    assert known_keys(text, "203.0.113.7", 22).keys == [ED]
    assert known_keys(text, "web", 22).keys == [ED]
    assert known_keys(text, "nothing", 22).keys == []


def test_port_other_than_22_uses_the_bracket_form_only():
    text = f"[203.0.113.7]:2222 {ED}\n203.0.113.7 {ED2}\n"
    assert known_keys(text, "203.0.113.7", 2222).keys == [ED]
    assert known_keys(text, "203.0.113.7", 22).keys == [ED2]
    assert known_keys(f"[203.0.113.7]:22 {ED}\n", "203.0.113.7", 22).keys == []  # ssh never writes :22


def test_patterns_negation_markers_and_comments():
    text = (f"10.0.0.* {ED}\n!10.0.0.9,10.0.0.* {ED2}\n@revoked 10.0.0.5 {RSA}\n"
            f"@cert-authority *.example {ED2}\n10.0.0.5 {ED} trailing comment\n")
    found = known_keys(text, "10.0.0.5", 22)
    assert found.keys == [ED, ED2] and found.revoked == [RSA]
    assert known_keys(text, "10.0.0.9", 22).keys == [ED]
    assert known_keys(text, "host.example", 22).keys == []  # CA lines are not host keys


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_hashed_entries_written_by_ssh_keygen(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"203.0.113.7 {ED}\n[203.0.113.7]:2222 {ED2}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(kh)], check=True, capture_output=True)
    text = kh.read_text()
    assert "203.0.113.7" not in text and text.startswith("|1|")
    assert known_keys(text, "203.0.113.7", 22).keys == [ED]
    assert known_keys(text, "203.0.113.7", 2222).keys == [ED2]
    assert known_keys(text, "203.0.113.8", 22).keys == []


def test_read_known_keys_merges_files_and_names_sources(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text(f"h {ED}\n")
    b.write_text(f"h {ED}\nh {RSA}\n")
    found = read_known_keys([a, tmp_path / "missing", b], "h", 22)
    assert found.keys == [ED, RSA] and found.sources == [str(a), str(b)]


# ---- verdict

def test_verdicts():
    assert judge(ED, [ED], KnownKeys()).kind == "pinned"
    assert judge(ED + " comment", [], KnownKeys([ED])).kind == "known"
    assert judge(ED, [], KnownKeys()).kind == "unknown"
    assert judge(ED, [], KnownKeys([RSA])).kind == "unknown"  # another type on file says nothing
    changed = judge(ED, [ED2], KnownKeys([ED]))
    assert (changed.kind, changed.where, changed.expected) == ("changed", "lightfold", (ED2,))
    changed = judge(ED, [ED], KnownKeys([ED2, RSA]))  # a user-side change is refused even when pinned
    assert (changed.kind, changed.where, changed.expected) == ("changed", "user", (ED2,))
    assert judge(ED, [], KnownKeys([ED], revoked=[ED])).kind == "revoked"


def test_public_keys_from_pub_files_and_known_hosts_lines():
    from lightfold.remote.user_ssh import public_keys

    ecdsa = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEm1Vx0K9VcP8L6l4N2cFAbm"
             "Wq1m2vYJd7cQ8Rk0mJm6bXq8T3h4qJ9v0m3oN2oTJ7l9g8Vw7vCkq8kqXWb5Z7A=")
    text = f"# exported\n{ED} root@web\n\n203.0.113.7 {ecdsa}\n{ED}\n"
    assert public_keys(text) == [ED, ecdsa]
    assert public_keys(f"[203.0.113.7]:2222 {ED}") == [ED]
    assert public_keys("") == []


def test_public_keys_refuses_what_is_not_a_key():
    from lightfold.remote.user_ssh import public_keys

    for bad in ("SHA256:abc", "ssh-ed25519 not-base64!", ED.replace("ssh-ed25519", "ssh-rsa"), "ssh-ed25519"):
        with pytest.raises(ValueError, match="line 1 is not an SSH public key"):
            public_keys(bad)
