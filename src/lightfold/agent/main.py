"""Entry point: parse the request, run the op (or re-run it detached in a transient unit),
print the one reply."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

from .core import DETACHABLE_OPS, JOURNAL_TAIL_LINES, AgentError, now_iso, root_from_env, step, write_result
from .files import write_json
from .layout import Layout, agent_entry, is_app_name, op_unit
from .ops import OPS
from .systemd import systemctl


def parse_request(raw: bytes) -> dict:
    try:
        req = json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AgentError(f"the request is not valid JSON ({e})", "send one JSON object on stdin") from e
    if not isinstance(req, dict):
        raise AgentError("the request must be a JSON object", 'send {"op": "status", "app": "myapp"}')
    if req.get("op") not in OPS:
        raise AgentError(f"unknown op {req.get('op')!r}", f"use one of: {', '.join(OPS)}")
    app = req.get("app")
    if not is_app_name(app):
        raise AgentError(f"invalid app name {app!r}", "app names are lowercase letters, digits and -")
    return req


def handle(req: dict, root: str = "/") -> dict:
    """Run one validated request; always returns a result dict."""
    lay = Layout(req["app"], root)
    try:
        data = OPS[req["op"]](req, lay)
        result = {"ok": True, "op": req["op"], "app": req["app"], **data}
    except AgentError as e:
        result = {**e.result(), "op": req["op"], "app": req["app"]}
    except Exception as e:  # noqa: BLE001 - the CLI must get JSON even when the agent has a bug
        import traceback  # here: ~2 ms of every call's start-up otherwise, for a bug's report

        result = {"ok": False, "op": req["op"], "app": req["app"],
                  "error": f"the lightfold agent failed: {type(e).__name__}: {e}",
                  "fix": "this is a lightfold bug; please report it with the lines below",
                  "log_tail": traceback.format_exc().splitlines()[-JOURNAL_TAIL_LINES:]}
    if req["op"] in DETACHABLE_OPS and os.path.isdir(lay.srv):
        with contextlib.suppress(OSError):
            write_json(lay.last_op, {**result, "finished_at": now_iso()})
    return result


def run_detached(raw: bytes, req: dict) -> dict:
    """Re-run this request as a transient unit that outlives the SSH session. Progress events are
    relayed as they come; an early result (`"early": true`, see early_announcer) is returned at
    once, leaving the unit to finish on its own."""
    unit = op_unit(req["op"], req["app"])
    if not wait_unit_gone(unit):
        return AgentError(f"a {req['op']} of {req['app']} is still running ({unit})",
                          "wait for it to finish; `lightfold status` shows the result").result()
    argv = ["systemd-run", f"--unit={unit}", f"--description=lightfold {req['op']} {req['app']}",
            "--collect", "--wait", "--pipe", "--quiet"]
    if os.environ.get("LIGHTFOLD_ROOT"):
        argv.append(f"--setenv=LIGHTFOLD_ROOT={os.environ['LIGHTFOLD_ROOT']}")
    argv += [sys.executable or "python3", "-c", agent_entry(*where_this_package_is())]
    import selectors  # only a detached op needs it

    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with contextlib.suppress(BrokenPipeError):
        p.stdin.write(raw)
    p.stdin.close()
    out = b""
    streams = {p.stdout.fileno(): "out", p.stderr.fileno(): "err"}
    with selectors.DefaultSelector() as sel:
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                elif streams[key.fd] == "err":
                    with contextlib.suppress(OSError, ValueError):
                        sys.stderr.buffer.write(data)
                        sys.stderr.flush()
                else:
                    out += data
                    early = first_early_result(out)
                    if early is not None:
                        return early
    p.wait()
    with contextlib.suppress(ValueError):
        result = json.loads(out.decode().strip().splitlines()[-1] if out.strip() else "null")
        if isinstance(result, dict):
            return result
    return AgentError(f"the detached {req['op']} exited with status {p.returncode} without a result",
                      f"see `journalctl -u {unit}` on the server, then `lightfold status`").result()


def where_this_package_is() -> tuple[str, str]:
    """(directory on sys.path, package name) of this very agent: ("/usr/local/lib/lightfold",
    "agent") on a server, (".../src", "lightfold.agent") when tests run it from the source tree."""
    package = __package__ or __name__.rpartition(".")[0]
    parent = os.path.abspath(__file__)
    for _ in range(package.count(".") + 2):
        parent = os.path.dirname(parent)
    return parent, package


def first_early_result(out: bytes) -> dict | None:
    for line in out.split(b"\n")[:-1]:  # complete lines only
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and value.get("early"):
                return value
    return None


def wait_unit_gone(unit: str, seconds: float = 60) -> bool:
    """The previous run of `unit` (e.g. a rollback still in its smoke window) must end before the
    name can be reused; wait for it, saying so once."""
    deadline = time.monotonic() + seconds
    said = False
    while systemctl("is-active", "--quiet", f"{unit}.service").code == 0:
        if time.monotonic() >= deadline:
            return False
        if not said:
            step(f"waiting for the previous {unit} to finish")
            said = True
        time.sleep(0.2)
    return True


def run_lines(args: list[str]) -> int:
    """`--lines N [--holder-pid PID]`: N requests, one JSON line each on stdin, run one after the
    other in this one process (one python3 start for all of them), each reply on its own stdout
    line; stops at the first that is not ok. Reads exactly its N lines and no further, so the
    shell that started it can keep stdin open afterwards (push's deploy-lock holder: its `lock`
    request says `"pid": "holder"`, the PID given here: that shell's). After a lock that had to
    wait or replaced a stale one, the rest is not run but answered `"skipped": true` (still one
    line each, so the caller reads exactly N): it was decided before the lock, and the caller
    decides again and sends it itself. Detachable ops are refused: they run on their own
    (`--detach`)."""
    n = int(args[args.index("--lines") + 1])
    pid = int(args[args.index("--holder-pid") + 1]) if "--holder-pid" in args else None
    skip = False
    for _ in range(n):
        raw = sys.stdin.buffer.readline()
        if skip:
            with contextlib.suppress(ValueError, AttributeError):
                req = json.loads(raw)
                write_result({"ok": True, "op": req.get("op"), "app": req.get("app"), "skipped": True})
                continue
            write_result({"ok": True, "skipped": True})
            continue
        try:
            req = parse_request(raw)
            if req["op"] in DETACHABLE_OPS:
                raise AgentError(f"{req['op']} cannot run with --lines", "send it on its own (--detach)")
        except AgentError as e:
            result = e.result()
        else:
            if req["op"] == "lock" and req.get("pid") == "holder":
                req["pid"] = pid
            result = handle(req, root_from_env())
        write_result(result)
        if not result.get("ok"):
            return 1
        skip = req["op"] == "lock" and bool(result.get("waited") or result.get("replaced_stale"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--lines" in args:
        return run_lines(args)
    raw = sys.stdin.buffer.read()
    try:
        req = parse_request(raw)
    except AgentError as e:
        result = e.result()
    else:
        if "--detach" in args and req["op"] in DETACHABLE_OPS:
            result = run_detached(raw, req)
        else:
            result = handle(req, root_from_env())
    write_result(result)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
