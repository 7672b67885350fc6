"""SSH hardening and security updates: two configure steps, each with a per-target opt-out
(`security.harden_ssh`, `security.updates` in the target's config).

ssh       a drop-in that turns password and keyboard-interactive logins off and root logins to
          keys only (`no` when lightfold logs in as a sudo user), validated with `sshd -t`
          before sshd reloads (a failing check puts the old files back). It sorts first in
          sshd_config.d, and the first value sshd reads wins. lightfold itself logs in with a
          key, which is the proof that key login works before passwords go.
updates   unattended-upgrades for the security origin only (Debian-Security, Ubuntu's
          -security pocket), daily, with the apt timers enabled; an optional reboot time
          (`security.reboot_window`, "HH:MM") lets it reboot when an update needs it.

Opting out removes lightfold's drop-in (sshd then has the image's settings again).

host key  a cloud server boots with the host key lightfold generated and put into its user data
          (so the first connection is pinned, never trust-on-first-use); user data stays readable
          from the server's metadata service, so right after that first login the key is replaced
          by one made on the server and read back over the authenticated channel
          (`rotate_generate`, `rotate_install`, `rotate_restore`, `rotate_finish`).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

from lightfold.agent.layout import PENDING_UPDATES, PENDING_UPDATES_HOOK, SSH_HOST_KEY, SSHD_DROPIN, UNATTENDED_CONF
from lightfold.errors import LightfoldError
from lightfold.server.firewall import firewall_step
from lightfold.server.plan import Remove, Run, ServiceReload, Step, WriteFile

SSH_UNIT = "ssh"


@dataclass(frozen=True)
class Hardening:
    """The target's `security` settings as configure needs them, and who lightfold logs in as."""

    ssh_port: int = 22
    login_user: str = "root"
    harden_ssh: bool = True
    updates: bool = True
    reboot_window: str | None = None
    allow_ports: tuple[int, ...] = ()
    # The load balancer's address on an app server of a target on more than one server: web
    # traffic (80, 443) is accepted from it only.
    web_from: str | None = None

    @classmethod
    def of(cls, ssh_port: int, login_user: str, security, web_from: str | None = None) -> Hardening:
        """From a target's port, login and `security` section (lightfold.config.SecurityConfig)."""
        return cls(ssh_port, login_user, security.harden_ssh, security.updates, security.reboot_window,
                   tuple(security.allow_ports), web_from)

    def packages(self) -> tuple[str, ...]:
        return FIREWALL_PACKAGES + (UPDATE_PACKAGES if self.updates else ())

    def steps(self) -> tuple[Step, ...]:
        return (
            firewall_step(self.ssh_port, self.allow_ports, web_from=self.web_from),
            ssh_step(self.harden_ssh, self.login_user),
            updates_step(self.updates, self.reboot_window),
        )


_NEW, _OLD = f"{SSH_HOST_KEY}.lightfold-new", f"{SSH_HOST_KEY}.lightfold-old"
_RELOAD_SSHD = f"systemctl reload {SSH_UNIT} || systemctl reload sshd"


def rotate_generate() -> str:
    """A new ed25519 host key beside the live one; prints its public half."""
    new = shlex.quote(_NEW)
    return (f"set -eu; umask 077; rm -f {new} {new}.pub; "
            f"ssh-keygen -q -t ed25519 -N '' -C '' -f {new} </dev/null; cat {new}.pub")


def rotate_install() -> str:
    """The new key goes live (the old one kept aside until the new one is confirmed); sshd reloads,
    which keeps open connections."""
    key, new, old = (shlex.quote(p) for p in (SSH_HOST_KEY, _NEW, _OLD))
    return (f"set -eu; cp -p {key} {old}; cp -p {key}.pub {old}.pub; "
            f"mv -f {new}.pub {key}.pub; mv -f {new} {key}; {_RELOAD_SSHD}")


def rotate_restore() -> str:
    """Put the old key back (the new one could not be confirmed)."""
    key, old = shlex.quote(SSH_HOST_KEY), shlex.quote(_OLD)
    return f"set -eu; mv -f {old}.pub {key}.pub; mv -f {old} {key}; {_RELOAD_SSHD}"


def rotate_finish() -> str:
    old = shlex.quote(_OLD)
    return f"rm -f {old} {old}.pub"


_PUBLIC_KEY = re.compile(r"ssh-ed25519 [A-Za-z0-9+/]{68}", re.ASCII)


def rotated_public_key(output: str) -> str:
    """The `ssh-ed25519 AAAA…` line `rotate_generate` printed."""
    line = output.strip().split("\n")[-1].strip() if output.strip() else ""
    m = _PUBLIC_KEY.match(line)
    if m is None:
        raise LightfoldError(f"the server did not print a new ed25519 host key (got {line[:80]!r})",
                             "check that ssh-keygen works on the server (`ssh-keygen -t ed25519`), then run "
                             "`lightfold create` again")
    return m.group(0)


UPDATE_PACKAGES = ("unattended-upgrades",)
FIREWALL_PACKAGES = ("nftables",)
APT_TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")


def sshd_dropin(login_user: str = "root") -> str:
    root = "prohibit-password" if login_user == "root" else "no"
    return f"""\
# Generated by lightfold (lightfold configure): key-only SSH logins.
# Opt out with `lightfold config set security.harden_ssh false`; configure then removes this file.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin {root}
# A client that vanished without closing its connection (a laptop asleep, Wi-Fi gone) is dropped
# within a minute, and with it the deploy lock its session held.
ClientAliveInterval 15
ClientAliveCountMax 4
"""


def ssh_step(harden: bool = True, login_user: str = "root") -> Step:
    change = WriteFile(SSHD_DROPIN, sshd_dropin(login_user), 0o644) if harden else Remove(SSHD_DROPIN)
    return Step("ssh", (change, ServiceReload(SSH_UNIT, "sshd -t")))


def unattended_conf(reboot_window: str | None = None) -> str:
    reboot = (f'Unattended-Upgrade::Automatic-Reboot "true";\n'
              f'Unattended-Upgrade::Automatic-Reboot-Time "{reboot_window}";\n') if reboot_window else \
        'Unattended-Upgrade::Automatic-Reboot "false";\n'
    return """\
// Generated by lightfold (lightfold configure): install security updates only, every day.
// Opt out with `lightfold config set security.updates false`.
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
#clear Unattended-Upgrade::Allowed-Origins;
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
        "origin=Debian,codename=${distro_codename},label=Debian-Security";
        "origin=Ubuntu,archive=${distro_codename}-security,label=Ubuntu";
};
""" + reboot


PENDING_UPDATES_COMMAND = (
    f"mkdir -p {os.path.dirname(PENDING_UPDATES)} && apt-get -s -o Debug::NoLocking=1 dist-upgrade"
    f" > {PENDING_UPDATES}.new 2>/dev/null && mv {PENDING_UPDATES}.new {PENDING_UPDATES}"
)


def pending_updates_hook() -> str:
    """After every successful `apt-get update` (the daily timer's too), note what is pending, so
    `status` reads a file instead of running apt (as Ubuntu's update-notifier does)."""
    return ("// Generated by lightfold: what `lightfold status` reports as pending updates.\n"
            f'APT::Update::Post-Invoke-Success {{ "{PENDING_UPDATES_COMMAND} || true"; }};\n')


def updates_step(enabled: bool = True, reboot_window: str | None = None) -> Step:
    if not enabled:
        return Step("updates", (Remove(UNATTENDED_CONF), Remove(PENDING_UPDATES_HOOK)))
    timers = " ".join(APT_TIMERS)
    on = " && ".join(f"systemctl is-enabled --quiet {t} && systemctl is-active --quiet {t}" for t in APT_TIMERS)
    return Step("updates", (
        WriteFile(UNATTENDED_CONF, unattended_conf(reboot_window), 0o644),
        WriteFile(PENDING_UPDATES_HOOK, pending_updates_hook(), 0o644),
        Run(PENDING_UPDATES_COMMAND, unless=f"test -s {PENDING_UPDATES}", label="note the pending updates"),
        # An image may mask them (so nothing races a first deploy for dpkg's lock): security updates
        # are the default, `security.updates false` is the way out.
        Run(f"systemctl unmask {timers} && systemctl enable --now {timers}", unless=on,
            label="enable the apt timers"),
    ))
