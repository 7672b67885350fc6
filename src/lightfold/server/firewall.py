"""The firewall: allow SSH, HTTP and HTTPS and enable ufw — only where ufw is already installed.

lightfold never installs ufw (cloud images and providers differ; a provider firewall may be the
user's choice). The SSH rule comes first so enabling ufw can never lock the session out.
"""

from __future__ import annotations

from lightfold.server.plan import Run, Step


def firewall_step(ssh_port: int = 22) -> Step:
    ports = [ssh_port, 80, 443]
    actions = [
        Run(f"ufw allow {p}/tcp", unless=f"ufw show added | grep -qx 'ufw allow {p}/tcp'")
        for p in dict.fromkeys(ports)
    ]
    actions.append(Run("ufw --force enable", unless="ufw status | grep -q '^Status: active'"))
    return Step("firewall", tuple(actions), when="command -v ufw")
