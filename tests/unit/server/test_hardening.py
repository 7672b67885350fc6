"""The firewall, SSH and security-update steps as text (lightfold.server.firewall, .hardening),
and the `security` section of the target config. The nftables file is also checked by the real
`nft -c` in a throwaway network namespace when nft and unshare are there (root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.unit.server.serverkit import bash_syntax_ok

from lightfold import config
from lightfold.errors import LightfoldError
from lightfold.server import firewall
from lightfold.server.hardening import Hardening, ssh_step, sshd_dropin, unattended_conf, updates_step
from lightfold.server.plan import Plan, Remove, Run, ServiceReload, WriteFile, render


def test_ruleset_is_default_deny_in_lightfolds_own_table():
    text = firewall.ruleset(2222, (5432,))
    assert "table inet lightfold\ndelete table inet lightfold\ntable inet lightfold {" in text
    assert "table ip " not in text and "flush ruleset" not in text  # other tables stay as they are
    for line in [
        "type filter hook input priority filter; policy drop;",
        'iif "lo" accept',
        "ct state established,related accept",
        "meta l4proto { 1, 58 } accept  # icmp, ipv6-icmp (numbers: no /etc/protocols needed)",
        "tcp dport 2222 ct state new add @ssh_v4 { ip saddr limit rate over 20/minute burst 40 packets } drop",
        "tcp dport 2222 ct state new add @ssh_v6 { ip6 saddr limit rate over 20/minute burst 40 packets } drop",
        "tcp dport 2222 accept",
        "tcp dport { 80, 443, 5432 } accept",
    ]:
        assert "\t" + line + "\n" in text, line
    # nothing is forwarded to the metadata address (containers), nothing else forwarded is touched
    forward = text[text.index("\tchain forward {"):]
    assert "type filter hook forward priority filter; policy accept;" in forward
    assert "\t\tip daddr 169.254.169.254 reject" in forward and forward.count("\n\t\t") == 2
    from lightfold.server.app import sandbox_properties

    assert f"IPAddressDeny={firewall.METADATA}" in sandbox_properties("shop")  # the units deny the same address
    # the rate limit comes before the accept, the accept before nothing else lets it in
    assert text.index("add @ssh_v4") < text.index("tcp dport 2222 accept")
    assert "tcp dport { 80, 443 } accept" in firewall.ruleset(22)
    assert "tcp dport { 80 } accept" in firewall.ruleset(443)  # SSH on 443: rate-limited, listed once


def test_firewall_step_arms_the_revert_before_loading_and_skips_when_confirmed():
    step = firewall.firewall_step(22)
    paths = [a.path for a in step.actions if isinstance(a, WriteFile)]
    assert paths == ["/etc/lightfold/firewall.nft", "/etc/lightfold/firewall-revert.sh",
                     "/etc/systemd/system/lightfold-firewall.service"]
    apply = step.actions[-1]
    assert isinstance(apply, Run) and apply.label == firewall.APPLY_LABEL
    cmd = apply.command
    # check, save our table, arm the timer, and only then load the new table
    assert cmd.index("nft -c -f") < cmd.index("nft -s list table inet lightfold >") \
        < cmd.index("systemd-run --quiet --unit=lightfold-firewall-revert --on-active=60") \
        < cmd.rindex("nft -f /etc/lightfold/firewall.nft")
    assert apply.unless == ("cmp -s /etc/lightfold/firewall.nft /etc/lightfold/firewall.confirmed.nft"
                            " && nft list table inet lightfold >/dev/null")
    assert "--on-active=5 " in firewall.firewall_step(22, revert_seconds=5).actions[-1].command
    bash_syntax_ok(render(Plan((step,))))


def test_revert_restores_only_lightfolds_table_and_boot_loads_the_confirmed_one():
    revert = firewall.revert_script()
    assert "table inet lightfold\\ndelete table inet lightfold\\n'; cat /etc/lightfold/firewall.previous.nft" in revert
    assert revert.count("nft -f") == 1 and "nft delete" not in revert  # one transaction: never no table
    assert "flush ruleset" not in revert
    unit = firewall.boot_unit()
    assert "ExecStart=/usr/sbin/nft -f /etc/lightfold/firewall.confirmed.nft" in unit
    assert "Before=network-pre.target" in unit and "WantedBy=multi-user.target" in unit
    confirm = firewall.confirm_command()
    assert confirm.startswith("systemctl stop lightfold-firewall-revert.timer && ")
    assert confirm.endswith("mv -f /etc/lightfold/firewall.confirmed.nft.new /etc/lightfold/firewall.confirmed.nft")


def _netns_nft() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("nft")) and bool(shutil.which("unshare"))


@pytest.mark.skipif(not _netns_nft(), reason="needs root, nft and unshare")
def test_ruleset_loads_twice_and_the_revert_puts_the_old_table_back(tmp_path: Path):
    wanted, previous = tmp_path / "fw.nft", tmp_path / "prev.nft"
    wanted.write_text(firewall.ruleset(2222, (8443,)))
    old = firewall.ruleset(22)
    (tmp_path / "revert.sh").write_text(firewall.revert_script(str(previous)).replace("logger ", ": "))
    script = f"""set -e
printf '%s' '{old}' > {tmp_path}/old.nft
nft -f {tmp_path}/old.nft
nft -s list table inet lightfold > {previous}
nft -f {wanted}; nft -f {wanted}
nft list table inet lightfold | grep -c 'tcp dport 2222 accept'
nft add table ip mine
sh {tmp_path}/revert.sh
nft list ruleset | grep -c 'tcp dport 22 accept'
nft list tables
"""
    out = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    counts, tables = out.stdout.split("\n", 2)[:2], out.stdout.split("\n", 2)[2]
    assert counts == ["1", "1"]
    assert sorted(tables.strip().splitlines()) == ["table inet lightfold", "table ip mine"]  # theirs kept


def test_ssh_hardening_drop_in_validated_before_reload():
    text = sshd_dropin("root")
    assert "PasswordAuthentication no\n" in text and "KbdInteractiveAuthentication no\n" in text
    assert "PermitRootLogin prohibit-password\n" in text
    assert "PermitRootLogin no\n" in sshd_dropin("deployer")  # a sudo user deploys: no root logins at all
    # a vanished client (no FIN) is dropped within a minute, so the deploy lock it held frees (issue 18)
    assert "ClientAliveInterval 15\n" in text and "ClientAliveCountMax 4\n" in text
    step = ssh_step(True, "root")
    write, reload = step.actions
    assert isinstance(write, WriteFile) and write.path == "/etc/ssh/sshd_config.d/00-lightfold.conf"
    assert reload == ServiceReload("ssh", "sshd -t")
    script = render(Plan((step,)))
    assert "_lf_service_reload 'reload ssh' ssh 'sshd -t'" in script
    # opting out takes lightfold's drop-in away again
    assert ssh_step(False).actions == (Remove("/etc/ssh/sshd_config.d/00-lightfold.conf"),
                                       ServiceReload("ssh", "sshd -t"))


def test_security_updates_from_the_security_origin_only():
    text = unattended_conf()
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in text
    assert "#clear Unattended-Upgrade::Allowed-Origins;" in text
    patterns = [line.strip() for line in text.splitlines() if line.strip().startswith('"origin=')]
    assert patterns and all("security" in p.lower() for p in patterns)
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in text
    timed = unattended_conf("03:30")
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in timed
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "03:30";' in timed
    step = updates_step(True)
    assert step.actions[0].path == "/etc/apt/apt.conf.d/52lightfold-security-updates"
    assert "systemctl enable --now apt-daily.timer apt-daily-upgrade.timer" in step.actions[3].command
    assert updates_step(False).actions == (Remove("/etc/apt/apt.conf.d/52lightfold-security-updates"),
                                           Remove("/etc/apt/apt.conf.d/99lightfold-pending-updates"))


def test_apt_notes_the_pending_updates_after_each_update_for_status_to_read(tmp_path):
    """status reads a file (apt-get -s costs seconds on a small server); apt's hook keeps it fresh."""
    import subprocess

    step = updates_step(True)
    hook = step.actions[1]
    assert hook.path == "/etc/apt/apt.conf.d/99lightfold-pending-updates"
    text = hook.data().decode()
    assert text.count('APT::Update::Post-Invoke-Success { "') == 1 and text.rstrip().endswith('"; };')
    assert "apt-get -s -o Debug::NoLocking=1 dist-upgrade > /var/lib/lightfold/pending-updates.new" in text
    # apt-config parses the hook as apt will (a syntax error would break every apt-get update)
    conf = tmp_path / "hook.conf"
    conf.write_bytes(hook.data())
    r = subprocess.run(["apt-config", "-c", str(conf), "dump", "APT::Update::Post-Invoke-Success"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "pending-updates" in r.stdout, r.stderr
    assert step.actions[2].unless == "test -s /var/lib/lightfold/pending-updates"  # primed once by configure


def test_status_reads_the_noted_pending_updates_and_says_unknown_without_them():
    from lightfold.release.audit import updates_facts

    pending = updates_facts(cached=True)[0]
    assert pending.command == "cat /var/lib/lightfold/pending-updates"
    inst = "Inst libssl3 [3.0.15-1~deb12u1] (3.0.16-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
    assert pending.parse(inst, 0) == ["libssl3"]
    assert pending.parse("", 1) is None
    assert updates_facts()[0].command.startswith("apt-get -s")  # audit asks apt itself


def test_hardening_from_the_target_config():
    sec = config.SecurityConfig(harden_ssh="false", updates="yes", reboot_window="04:00", allow_ports="8443,5432")
    h = Hardening.of(2222, "deployer", sec)
    assert h == Hardening(2222, "deployer", False, True, "04:00", (5432, 8443))
    assert h.packages() == ("nftables", "unattended-upgrades")
    assert [s.name for s in h.steps()] == ["firewall", "ssh", "updates"]
    assert Hardening(updates=False).packages() == ("nftables",)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("harden_ssh", "maybe", "security.harden_ssh must be true or false, not 'maybe'"),
    ("updates", "2", "security.updates must be true or false"),
    ("reboot_window", "25:00", "security.reboot_window must be a time of day as HH:MM"),
    ("reboot_window", "3am", "security.reboot_window must be a time of day as HH:MM"),
    ("allow_ports", "http", "security.allow_ports: 'http' is not a TCP port"),
    ("allow_ports", "70000", "security.allow_ports: '70000' is not a TCP port"),
    ("harden_sh", "false", "unknown key 'security.harden_sh' (did you mean 'harden_ssh'?)"),
])
def test_security_settings_are_validated_with_a_clear_error(key, value, message):
    cfg = config.Config()
    with pytest.raises(LightfoldError) as e:
        config.set_value(cfg, "web", f"security.{key}", value, project_path=Path("/tmp"))
    assert message in e.value.problem


def test_app_servers_of_a_scaled_target_accept_web_traffic_from_the_load_balancer_only():
    text = firewall.ruleset(22, (5432,), web_from="10.213.7.9")
    assert "ip saddr 10.213.7.9 tcp dport { 80, 443 } accept" in text
    assert "\t\ttcp dport { 80, 443 } accept" not in text  # 80/443 are not open to everyone
    assert "tcp dport { 5432 } accept" in text and "tcp dport 22 accept" in text
    assert "ip saddr" not in firewall.ruleset(22, (5432,)).replace("ip saddr limit", "")
    assert firewall.ruleset(22) == firewall.ruleset(22, (), None)  # a single server: as before
    with pytest.raises(ValueError):
        firewall.ruleset(22, (), web_from="10.0.0.1; accept")  # reaches the nft file: an address only
    step = Hardening.of(22, "root", config.SecurityConfig(), web_from="10.213.7.9").steps()[0]
    nft = next(a for a in step.actions if isinstance(a, WriteFile))
    assert "ip saddr 10.213.7.9" in nft.data().decode()


@pytest.mark.skipif(not _netns_nft(), reason="needs root, nft and unshare")
def test_the_load_balancer_only_ruleset_loads(tmp_path: Path):
    wanted = tmp_path / "fw.nft"
    wanted.write_text(firewall.ruleset(22, (), web_from="10.213.7.9"))
    out = subprocess.run(["unshare", "-n", "sh", "-c", f"nft -f {wanted} && nft list table inet lightfold"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "ip saddr 10.213.7.9 tcp dport { 80, 443 } accept" in out.stdout
