"""Plans as data, and their rendering into one idempotent bash script.

A `Plan` is a tuple of named `Step`s; a step is a tuple of actions (`WriteFile`, `EnsurePackages`,
`Run`, `EnsureUser`, `EnsureDir`, `Symlink`, `Remove`, `SystemdReload`, `SystemdEnable`,
`NginxReload`, `ServiceReload`). Building a plan does no I/O. `render(plan)` turns it into ONE bash script that the
remote layer runs as root in ONE ssh exec (`bash -s` with the script on stdin, or uploaded).

What the script prints on stdout — JSON lines only (command output goes to a log file):
    {"step": "nginx", "status": "start"}
    {"step": "nginx", "action": "file /etc/nginx/...", "changed": true}
    {"step": "nginx", "status": "done", "changed": true}
    {"step": "firewall", "status": "skipped", "reason": "command -v ufw"}
and, when an action fails, before exiting 1:
    {"step": ..., "action": ..., "failed": true, "command": ..., "exit": 2, "output": [last 20 lines]}
`parse_event(line)` reads one of these lines (None for anything else).

Idempotence is by construction (pyinfra's facts-vs-operations idea, done on the server): every
action first checks the current state and reports `"changed": false` when it is already right.
Files are compared by sha256 + mode + owner. `SystemdReload` and `NginxReload` only act when an
earlier action of the same step changed something (`ServiceReload` too), so a second run changes
nothing.

A failed step is undone: every file the step wrote, linked or removed is put back as it was, so an
nginx site that fails `nginx -t` never replaces the working one (nginx was not reloaded yet).

Setting LF_ROOT=/some/dir in the script's environment prefixes every path of the file actions
(WriteFile, EnsureDir, Symlink, Remove) — used by the unit tests to run the file parts for real.

`fingerprint(plan)` is the sha256 of the rendered script: any change in what configure would do,
including a newer renderer, changes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WriteFile:
    """A file with exactly this content, mode and owner. `only_if_absent`: create it once, then
    leave it alone (someone else owns it afterwards). `unless`: a shell test; when it succeeds the
    file is left alone."""

    path: str
    content: bytes | str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    only_if_absent: bool = False
    unless: str | None = None

    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclass(frozen=True)
class EnsurePackages:
    """Debian packages installed with apt (update only when something is missing)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """A command; `unless` is a shell test that succeeds when the work is already done."""

    command: str
    unless: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class EnsureUser:
    """An unprivileged system user with its own group, no login shell."""

    name: str
    home: str


@dataclass(frozen=True)
class EnsureDir:
    path: str
    mode: int = 0o755
    owner: str = "root"
    group: str = "root"


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Remove:
    """A file or symlink that must not exist (never a directory)."""

    path: str


@dataclass(frozen=True)
class SystemdReload:
    """`systemctl daemon-reload`, only when an earlier action of the step changed something."""


@dataclass(frozen=True)
class SystemdEnable:
    unit: str
    now: bool = False


@dataclass(frozen=True)
class NginxReload:
    """`nginx -t` then a graceful reload, only when an earlier action of the step changed something
    (or nginx is not running). A failing `nginx -t` undoes the step's files."""


@dataclass(frozen=True)
class ServiceReload:
    """`check` (e.g. `sshd -t`) then `systemctl try-reload-or-restart unit`, only when an earlier
    action of the step changed something. A failing check undoes the step's files."""

    unit: str
    check: str


Action = (
    WriteFile | EnsurePackages | Run | EnsureUser | EnsureDir | Symlink | Remove | SystemdReload
    | SystemdEnable | NginxReload | ServiceReload
)


@dataclass(frozen=True)
class Step:
    """A named group of actions. `when`: a shell test; the step is skipped when it fails."""

    name: str
    actions: tuple[Action, ...]
    when: str | None = None


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.steps + other.steps)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def render(plan: Plan) -> str:
    """The whole plan as one bash script (see the module docstring for its output)."""
    parts = [_PRELUDE]
    for step in plan.steps:
        parts.append(f"_lf_step {_q(step.name)}")
        body = [_render_action(a) for a in step.actions]
        if step.when:
            parts.append(f"if _lf_when {_q(step.when)}; then")
            parts.extend("  " + line for line in body)
            parts.append("  _lf_step_end")
            parts.append("fi")
        else:
            parts.extend(body)
            parts.append("_lf_step_end")
    parts.append("exit 0")
    return "\n".join(parts) + "\n"


def fingerprint(plan: Plan) -> str:
    return hashlib.sha256(render(plan).encode()).hexdigest()


def parse_event(line: str | bytes) -> dict[str, Any] | None:
    """One event printed by a lightfold script (configure or build), or None for other lines."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not (line.startswith('{"step"') or line.startswith('{"build"')):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def action_label(action: Action) -> str:
    """The name an action has in the script's events."""
    match action:
        case WriteFile(path=p):
            return f"file {p}"
        case EnsurePackages(names=n):
            return "packages " + " ".join(n)
        case Run(label=label, command=c):
            return label or (c if len(c) <= 80 else c[:77] + "...")
        case EnsureUser(name=n):
            return f"user {n}"
        case EnsureDir(path=p):
            return f"dir {p}"
        case Symlink(path=p):
            return f"link {p}"
        case Remove(path=p):
            return f"remove {p}"
        case SystemdReload():
            return "systemd daemon-reload"
        case SystemdEnable(unit=u):
            return f"enable {u}"
        case NginxReload():
            return "nginx reload"
        case ServiceReload(unit=u):
            return f"reload {u}"
    raise TypeError(f"not a plan action: {action!r}")


def _q(text: str) -> str:
    return shlex.quote(text)


def _render_action(a: Action) -> str:
    label = _q(action_label(a))
    match a:
        case WriteFile():
            data = a.data()
            return " ".join([
                "_lf_write", label, _q(a.path), format(a.mode, "o"), _q(a.owner), _q(a.group),
                hashlib.sha256(data).hexdigest(), "1" if a.only_if_absent else "0", _q(a.unless or ""),
                _q(base64.b64encode(data).decode()),
            ])
        case EnsurePackages():
            return " ".join(["_lf_packages", label, *(_q(n) for n in a.names)])
        case Run():
            return f"_lf_run {label} {_q(a.unless or '')} {_q(a.command)}"
        case EnsureUser():
            return f"_lf_user {label} {_q(a.name)} {_q(a.home)}"
        case EnsureDir():
            return f"_lf_dir {label} {_q(a.path)} {format(a.mode, 'o')} {_q(a.owner)} {_q(a.group)}"
        case Symlink():
            return f"_lf_symlink {label} {_q(a.path)} {_q(a.target)}"
        case Remove():
            return f"_lf_remove {label} {_q(a.path)}"
        case SystemdReload():
            return f"_lf_daemon_reload {label}"
        case SystemdEnable():
            return f"_lf_enable {label} {_q(a.unit)} {'1' if a.now else '0'}"
        case NginxReload():
            return f"_lf_nginx_reload {label}"
        case ServiceReload():
            return f"_lf_service_reload {label} {_q(a.unit)} {_q(a.check)}"
    raise TypeError(f"not a plan action: {a!r}")


# The runtime of every rendered script. Kept in one string so the fingerprint covers it.
_PRELUDE = r"""#!/bin/bash
# Generated by lightfold. Idempotent: run it again and it changes nothing.
set -uo pipefail
umask 022
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
LF_ROOT="${LF_ROOT:-}"
LF_LOG=$(mktemp "${TMPDIR:-/tmp}/lightfold-log.XXXXXX")
LF_BAK=$(mktemp -d "${TMPDIR:-/tmp}/lightfold-undo.XXXXXX")
trap 'rm -rf "$LF_LOG" "$LF_BAK"' EXIT
LF_STEP=""
LF_STEP_CHANGED=0
LF_APT_UPDATED=0
LF_UNDO=()

_lf_esc() {
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\010\013-\037\177')
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  printf '%s' "$s"
}

_lf_event() {  # action changed
  printf '{"step":"%s","action":"%s","changed":%s}\n' "$(_lf_esc "$LF_STEP")" "$(_lf_esc "$1")" "$2"
  if [ "$2" = true ]; then LF_STEP_CHANGED=1; fi
}

_lf_step() {
  LF_STEP=$1
  LF_STEP_CHANGED=0
  LF_UNDO=()
  printf '{"step":"%s","status":"start"}\n' "$(_lf_esc "$LF_STEP")"
}

_lf_step_end() {
  local c=false
  if [ "$LF_STEP_CHANGED" = 1 ]; then c=true; fi
  printf '{"step":"%s","status":"done","changed":%s}\n' "$(_lf_esc "$LF_STEP")" "$c"
}

_lf_when() {
  if bash -c "$1" >/dev/null 2>&1; then return 0; fi
  printf '{"step":"%s","status":"skipped","reason":"%s"}\n' "$(_lf_esc "$LF_STEP")" "$(_lf_esc "$1")"
  return 1
}

# Put back, newest first, every file the current step changed.
_lf_undo() {
  local i entry path saved
  for ((i = ${#LF_UNDO[@]} - 1; i >= 0; i--)); do
    entry=${LF_UNDO[$i]}
    path=${entry%%|*}
    saved=${entry#*|}
    rm -f -- "$path"
    if [ -n "$saved" ]; then mv -f -- "$LF_BAK/$saved" "$path"; fi
  done
  LF_UNDO=()
}

_lf_backup() {
  local n=${#LF_UNDO[@]}
  if [ -e "$1" ] || [ -L "$1" ]; then
    cp -a -- "$1" "$LF_BAK/$n"
    LF_UNDO+=("$1|$n")
  else
    LF_UNDO+=("$1|")
  fi
}

_lf_fail() {  # action command exit-code; the output is in $LF_LOG
  local lines="" line sep=""
  _lf_undo
  while IFS= read -r line || [ -n "$line" ]; do
    lines+="$sep\"$(_lf_esc "$line")\""
    sep=","
  done < <(tail -n 20 "$LF_LOG")
  printf '{"step":"%s","action":"%s","failed":true,"command":"%s","exit":%s,"output":[%s]}\n' \
    "$(_lf_esc "$LF_STEP")" "$(_lf_esc "$1")" "$(_lf_esc "$2")" "$3" "$lines"
  exit 1
}

_lf_exec() {  # action command: run, output to the log, fail the script on error
  local rc
  : > "$LF_LOG"
  bash -c "$2" >>"$LF_LOG" 2>&1
  rc=$?
  if [ "$rc" != 0 ]; then _lf_fail "$1" "$2" "$rc"; fi
}

_lf_run() {  # action unless command
  if [ -n "$2" ] && bash -c "$2" >/dev/null 2>&1; then _lf_event "$1" false; return; fi
  _lf_exec "$1" "$3"
  _lf_event "$1" true
}

_lf_write() {  # action path mode owner group sha256 only-if-absent unless base64
  local p="$LF_ROOT$2" cur="" meta="" tmp
  if [ -n "$8" ] && bash -c "$8" >/dev/null 2>&1; then _lf_event "$1" false; return; fi
  if [ "$7" = 1 ] && { [ -e "$p" ] || [ -L "$p" ]; }; then _lf_event "$1" false; return; fi
  if [ -f "$p" ] && [ ! -L "$p" ]; then
    cur=$(sha256sum < "$p")
    cur=${cur%% *}
    meta=$(stat -c '%a %U %G' -- "$p")
  fi
  if [ "$cur" = "$6" ] && [ "$meta" = "$3 $4 $5" ]; then _lf_event "$1" false; return; fi
  _lf_backup "$p"
  tmp="$p.lightfold-new"
  : > "$LF_LOG"
  if ! { mkdir -p -- "$(dirname -- "$p")" && printf '%s' "$9" | base64 -d > "$tmp" \
         && chmod "$3" "$tmp" && chown "$4:$5" "$tmp" && mv -fT -- "$tmp" "$p"; } >>"$LF_LOG" 2>&1; then
    rm -f -- "$tmp"
    _lf_fail "$1" "write $2" 1
  fi
  _lf_event "$1" true
}

_lf_dir() {  # action path mode owner group
  local p="$LF_ROOT$2"
  if [ -d "$p" ] && [ ! -L "$p" ] && [ "$(stat -c '%a %U %G' -- "$p")" = "$3 $4 $5" ]; then
    _lf_event "$1" false
    return
  fi
  : > "$LF_LOG"
  if ! { mkdir -p -- "$p" && chmod "$3" "$p" && chown "$4:$5" "$p"; } >>"$LF_LOG" 2>&1; then
    _lf_fail "$1" "mkdir $2" 1
  fi
  _lf_event "$1" true
}

_lf_symlink() {  # action path target
  local p="$LF_ROOT$2"
  if [ -L "$p" ] && [ "$(readlink -- "$p")" = "$3" ]; then _lf_event "$1" false; return; fi
  _lf_backup "$p"
  : > "$LF_LOG"
  if ! { mkdir -p -- "$(dirname -- "$p")" && ln -sfn -- "$3" "$p.lightfold-new" \
         && mv -fT -- "$p.lightfold-new" "$p"; } >>"$LF_LOG" 2>&1; then
    _lf_fail "$1" "ln -s $3 $2" 1
  fi
  _lf_event "$1" true
}

_lf_remove() {  # action path
  local p="$LF_ROOT$2"
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then _lf_event "$1" false; return; fi
  : > "$LF_LOG"
  if [ -d "$p" ] && [ ! -L "$p" ]; then
    echo "$2 is a directory; lightfold only removes files" >> "$LF_LOG"
    _lf_fail "$1" "rm $2" 1
  fi
  _lf_backup "$p"
  rm -f -- "$p"
  _lf_event "$1" true
}

_lf_apt_update() {
  local i
  for i in $(seq 1 120); do
    : > "$LF_LOG"
    if apt-get -o DPkg::Lock::Timeout=600 update >>"$LF_LOG" 2>&1; then LF_APT_UPDATED=1; return 0; fi
    # Another apt (cloud-init, unattended-upgrades) holds the lists lock: wait, never delete it.
    grep -qE 'Could not get lock|Unable to lock' "$LF_LOG" || return 1
    sleep 5
  done
  return 1
}

_lf_packages() {  # action names...
  local label=$1 n missing=()
  shift
  for n in "$@"; do
    dpkg-query -W -f='${Status}' "$n" 2>/dev/null | grep -q 'ok installed' || missing+=("$n")
  done
  if [ ${#missing[@]} = 0 ]; then _lf_event "$label" false; return; fi
  if [ "$LF_APT_UPDATED" = 0 ]; then
    _lf_apt_update || _lf_fail "$label" "apt-get update" 1
  fi
  _lf_exec "$label" "apt-get -y -o DPkg::Lock::Timeout=600 install --no-install-recommends ${missing[*]}"
  _lf_event "$label" true
}

_lf_user() {  # action name home
  if id -u "$2" >/dev/null 2>&1; then _lf_event "$1" false; return; fi
  _lf_exec "$1" "useradd --system --user-group --home-dir '$3' --no-create-home --shell /usr/sbin/nologin '$2'"
  _lf_event "$1" true
}

_lf_daemon_reload() {  # action
  if [ "$LF_STEP_CHANGED" = 0 ]; then _lf_event "$1" false; return; fi
  _lf_exec "$1" "systemctl daemon-reload"
  _lf_event "$1" true
}

_lf_enable() {  # action unit now
  if systemctl is-enabled --quiet "$2" 2>/dev/null \
     && { [ "$3" = 0 ] || systemctl is-active --quiet "$2"; }; then
    _lf_event "$1" false
    return
  fi
  if [ "$3" = 1 ]; then _lf_exec "$1" "systemctl enable --now '$2'"; else _lf_exec "$1" "systemctl enable '$2'"; fi
  _lf_event "$1" true
}

_lf_nginx_reload() {  # action
  if [ "$LF_STEP_CHANGED" = 0 ] && systemctl is-active --quiet nginx; then _lf_event "$1" false; return; fi
  _lf_exec "$1" "nginx -t"
  if systemctl is-active --quiet nginx; then
    _lf_exec "$1" "systemctl reload nginx"
  else
    _lf_exec "$1" "systemctl restart nginx"
  fi
  _lf_event "$1" true
}

_lf_service_reload() {  # action unit check
  if [ "$LF_STEP_CHANGED" = 0 ]; then _lf_event "$1" false; return; fi
  _lf_exec "$1" "$3"
  _lf_exec "$1" "systemctl try-reload-or-restart '$2'"
  _lf_event "$1" true
}
"""


def write_private_command(path: str) -> str:
    """Shell writing stdin to `path` (0600 root) atomically."""
    p = shlex.quote(path)
    script = (f"set -e; umask 077; mkdir -p $(dirname {p}); cat > {p}.new; "
              f"chown root:root {p}.new; chmod 600 {p}.new; mv -f {p}.new {p}")
    return f"sh -c {shlex.quote(script)}"
