"""Example apps in a sandbox target's project directory, as a user's git repository."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", *args],
        cwd=project, check=True, capture_output=True, text=True,
    ).stdout


def install_example(project: Path, name: str) -> None:
    """Copy examples/<name> into `project` and commit it."""
    shutil.copytree(EXAMPLES / name, project, dirs_exist_ok=True)
    git(project, "init", "-q", "-b", "main")
    commit(project, f"add {name}")


def commit(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "--allow-empty", "-m", message)


def set_python_message(project: Path, text: str) -> None:
    """Change the `MESSAGE = "..."` line of a Python example's app.py (what `/` answers) and commit."""
    path = project / "app.py"
    src = path.read_text()
    start = src.index('MESSAGE = "') + len('MESSAGE = "')
    path.write_text(src[:start] + text + src[src.index('"', start):])
    commit(project, text)


def get(ip: str, path: str = "/", host: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{ip}{path}", headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def exposure(sb, unit: str) -> tuple[float, str]:
    """`systemd-analyze security`'s overall exposure of `unit` on the machine (0 safest, 10 worst),
    with its full table for the assertion message."""
    import re

    out = sb.exec(f"systemd-analyze security --no-pager {unit}", check=False).stdout
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m, out
    return float(m.group(1)), out
