"""Facts: what configure and push read from a server before they decide (pyinfra's idea: reading
the state apart from changing it). A fact is a shell command and a pure parse of its output, so
every parse is unit-tested from recorded outputs; `read` runs any number of facts in ONE exec.

    values = await read(conn, marker(app), app_configs(), nixpacks())
    values["marker"], values["apps"], values["nixpacks"]

Facts (name: what the parse returns):
    marker         this app's configure marker (lightfold.server.markers.parse_marker) or None
    apps           {app name: app.json} of every app configured on the server
    tls_cert       the domain's certificate and key exist (configure serves HTTPS only then)
    nixpacks       the nixpacks binary is on the server's PATH
    python3        the server's python3 version and OS (lightfold.server.pyversion.parse_python3)
    status         the agent's `status` reply (a protocol.StatusReply); parse raises like
                   agent_client.call when the agent is missing or fails
    certificate    what /etc/letsencrypt holds for a domain (lightfold.server.tls.cert_info)
    databases      the app's databases (those it has credentials for): {kind: {installed,
                   active, listening, names, url}}, the URL's password as ****
    noop_stamp     the raw output of the no-op stamp command (lightfold.release.noop)

lightfold.release.audit adds the server's security facts (firewall, listeners, sshd -T, pending
security updates, ...), parsed by lightfold.server.audit. `tolerant(fact)` turns a parse's
LightfoldError into the fact's value, so one failing fact does not hide the others.

The script run as root prints each fact between markers, `\\x1e<name>\\n<output>\\n\\x1f<exit>\\n`;
`split` reads them back. A fact's stderr is dropped unless it asks for it (`stderr=True`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightfold.agent.layout import Layout

if TYPE_CHECKING:
    from lightfold.remote import Connection

_START, _END = "\x1e", "\x1f"


@dataclass(frozen=True)
class Fact:
    name: str
    command: str  # run by root's sh; prints the fact on stdout
    parse: Callable[[str, int], Any]  # (stdout, exit status) -> the fact's value
    stderr: bool = False  # fold the command's stderr into what parse sees
    display: str = ""  # what the exec is called in errors and counts


def script(facts: tuple[Fact, ...] | list[Fact]) -> str:
    """The sh script that prints every fact between its markers (facts run in order)."""
    lines = []
    for f in facts:
        redirect = "2>&1" if f.stderr else "2>/dev/null"
        # A subshell each: a fact that exits ends only itself.
        lines.append(f"printf '{_START}%s\\n' {shlex.quote(f.name)}; ( {f.command}\n) {redirect} </dev/null; "
                     f"printf '\\n{_END}%s\\n' \"$?\"")
    return "\n".join(lines) + "\n"


def split(text: str) -> dict[str, tuple[str, int]]:
    """{fact name: (its output, its exit status)} from the script's stdout."""
    found = {}
    for m in re.finditer(f"{_START}([^\\n]*)\\n(.*?)\\n{_END}(\\d+)\\n", text, re.S):
        found[m.group(1)] = (m.group(2), int(m.group(3)))
    return found


def parse(facts: tuple[Fact, ...] | list[Fact], text: str) -> dict[str, Any]:
    outputs = split(text)
    values = {}
    for f in facts:
        if f.name not in outputs:
            from lightfold.errors import LightfoldError

            raise LightfoldError(f"the server printed no answer for {f.name}", "check the server, then retry",
                                 details=text.strip().splitlines()[-10:])
        values[f.name] = f.parse(*outputs[f.name])
    return values


def tolerant(fact: Fact) -> Fact:
    """`fact` whose failing parse gives the LightfoldError as its value instead of raising, so the
    other facts read in the same exec still count."""
    from lightfold.errors import LightfoldError

    def parse_or_error(out: str, rc: int) -> Any:
        try:
            return fact.parse(out, rc)
        except LightfoldError as e:
            return e

    return Fact(fact.name, fact.command, parse_or_error, fact.stderr, fact.display)


async def read(conn: Connection, *facts: Fact, timeout: float = 120) -> dict[str, Any]:
    """Every fact's value, read in one exec (as root)."""
    from lightfold.release.target import as_root

    display = "read " + ", ".join(f.display or f.name for f in facts)
    res = await conn.run(as_root(conn, "sh -s"), input=script(facts), check=False, timeout=timeout,
                         display=display)
    return parse(facts, res.stdout)


# ---------------------------------------------------------------------------------------------
# The facts


def marker(app: str) -> Fact:
    from lightfold.server.markers import marker_read_command, parse_marker

    return Fact("marker", marker_read_command(app), lambda out, _rc: parse_marker(out), display="the configure marker")


def servers_record(app: str) -> Fact:
    """What `scale` last recorded on the primary about the target's servers and load balancer
    (lightfold.release.scale.record): {servers, load_balancer}, or None when there is none."""
    def parse(out: str, _rc: int) -> dict[str, Any] | None:
        try:
            value = json.loads(out)
        except ValueError:
            return None
        return value if isinstance(value, dict) and isinstance(value.get("servers"), list) else None

    return Fact("servers_record", f"cat {shlex.quote(Layout(app).servers_record)}", parse,
                display="the servers record")


def app_configs() -> Fact:
    """Each app.json, behind a line naming its file (app names cannot hold a newline)."""
    pattern = Layout("*").app_json
    folder, name = os.path.dirname(os.path.dirname(pattern)), os.path.basename(pattern)
    command = (f"for f in {shlex.quote(folder)}/*/{shlex.quote(name)}; do "
               f"[ -f \"$f\" ] && printf '\\034%s\\n' \"$f\" && cat \"$f\"; done; true")
    return Fact("apps", command, parse_app_configs, display="the apps' app.json")


def parse_app_configs(out: str, _rc: int = 0) -> dict[str, Any]:
    apps = {}
    for chunk in out.split("\x1c")[1:]:
        path, _, text = chunk.partition("\n")
        try:
            apps[os.path.basename(os.path.dirname(path))] = json.loads(text or "null")
        except ValueError:
            continue  # a broken app.json is configure's to rewrite, not a reason to stop
    return apps


def tls_cert(domain: str | None) -> Fact:
    from lightfold.server.tls import LIVE

    if not domain:
        return Fact("tls_cert", "true", lambda _out, _rc: False)
    live = shlex.quote(f"{LIVE}/{domain}")
    return Fact("tls_cert", f"[ -e {live}/fullchain.pem ] && [ -e {live}/privkey.pem ] && echo yes",
                lambda out, _rc: out.strip() == "yes", display="the certificate")


def nixpacks() -> Fact:
    from lightfold.builders import NIXPACKS_CHECK

    return Fact("nixpacks", NIXPACKS_CHECK, lambda out, _rc: out.strip() == "yes", display="is nixpacks installed")


def python3() -> Fact:
    from lightfold.server.pyversion import PYTHON3_FACT_COMMAND, parse_python3

    return Fact("python3", PYTHON3_FACT_COMMAND, parse_python3, display="the server's python3")


def status(app: str, host: str = "the server", *, missing_ok: bool = False) -> Fact:
    """The agent's status reply; the request (no secrets in it) goes to the agent on its stdin.
    `missing_ok`: None instead of the error when there is no agent or no app yet (deploy reads it
    before configure, which installs them)."""
    from lightfold.agent.bundle import remote_command
    from lightfold.errors import LightfoldError
    from lightfold.release import agent_client

    def parse(out: str, rc: int):
        try:
            return agent_client.status_reply(agent_client.answer("status", out, rc, out, host))
        except LightfoldError:
            if missing_ok:
                return None
            raise

    request = shlex.quote(json.dumps(agent_client.request("status", app)))
    return Fact("status", f"printf '%s' {request} | {remote_command()}", parse, stderr=True,
                display="lightfold agent status")


def certificate(domain: str) -> Fact:
    from lightfold.server import tls

    def parse_cert(out: str, _rc: int) -> dict[str, Any]:
        try:
            return tls.cert_info(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError, KeyError, TypeError):
            return {"domain": domain, "exists": False}  # unreadable counts as none: a new one is obtained

    return Fact("certificate", f"python3 -c {shlex.quote(tls.CERT_INFO_SCRIPT)} {shlex.quote(domain)}", parse_cert,
                display="the certificate")


def databases(app: str) -> Fact:
    from lightfold.errors import LightfoldError
    from lightfold.server.database import status_command

    def parse_databases(out: str, rc: int) -> dict[str, Any]:
        try:
            return json.loads(out.strip().splitlines()[-1]) if rc == 0 else {}
        except (ValueError, IndexError) as e:
            raise LightfoldError("cannot read the databases' state on the server", "run `lightfold db status`") from e

    from lightfold.agent.layout import DB_KINDS

    # python3 only when the app has a database (status and audit read this on every call).
    files = " ".join(shlex.quote(Layout(app).db_env(kind)) for kind in DB_KINDS)
    command = (f"for f in {files}; do [ -f \"$f\" ] && exec {status_command(app, only_configured=True)}; done; "
               "echo '{}'")
    return Fact("databases", command, parse_databases, display="the databases")


def noop_stamp(command: str) -> Fact:
    """`command` is noop.stamp_command's (the exact text the fast path reruns later)."""
    return Fact("noop_stamp", command, lambda out, rc: out if rc == 0 else None, display="the no-op stamp")
