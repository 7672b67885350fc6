"""Entry point. `--version` answers without importing the CLI framework, and help screens are
served from a cache keyed on everything that shapes them, a no-op `deploy`/`push`, a plain `push` and
`rollback` run in `lightfold.cli.fastpath` without Typer (and end without the interpreter's teardown);
everything else goes through the Typer app in `lightfold.cli.main`.

Why the help cache: importing Typer and rendering help with rich costs ~300 ms on a small VM,
while printing a cached screen costs ~20 ms. The key covers the argv, the version, the source of
the CLI modules (size + mtime), the terminal width and whether stdout is a terminal, so a stale
screen is never shown.
"""

from __future__ import annotations

import os
import sys

_HELP_FLAGS = ("--help", "-h")


def _exit_at_once() -> None:
    """End a command the fast path answered without tearing the interpreter down: a push or
    rollback has imported asyncssh, cryptography and pydantic, and freeing their modules costs
    ~0.1 s after the answer is printed. Nothing is left to run by then (state files are written
    and closed, asyncio.run has closed the loop and joined its threads); only stdio is flushed.
    A failure does not come here: it exits through SystemExit as always."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        print(version_line())
        return
    if "_LIGHTFOLD_COMPLETE" in os.environ:  # a shell asking Typer's completion for words
        from lightfold.cli.main import run

        run(argv)
        return
    if argv[:1] in (["deploy"], ["push"], ["rollback"]):
        from lightfold.cli.fastpath import try_run

        if try_run(argv):
            _exit_at_once()
    cache_file = _help_cache_file(argv) if _wants_help(argv) else None
    if cache_file is not None:
        try:
            with open(cache_file, encoding="utf-8") as f:
                sys.stdout.write(f.read())
            return
        except OSError:
            pass
    from lightfold.cli.main import run

    if cache_file is None:
        run(argv)
        return
    _record_help(run, argv, cache_file)


def version_line() -> str:
    """`lightfold X.Y.Z (agent protocol N)`: the CLI and the protocol its on-server agent speaks."""
    from lightfold import __version__

    return f"lightfold {__version__} (agent protocol {_agent_protocol()})"


def _agent_protocol() -> int:
    # lightfold.agent.protocol.PROTOCOL_VERSION, read from its source rather than imported:
    # importing it (dataclasses, typing) costs ~55 ms, several times what `--version` takes otherwise.
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "agent", "protocol.py")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("PROTOCOL_VERSION = "):
                return int(line.split("=", 1)[1].split("#", 1)[0])
    raise RuntimeError(f"no PROTOCOL_VERSION in {path}")


def _wants_help(argv: list[str]) -> bool:
    head = argv[: argv.index("--")] if "--" in argv else argv
    return not head or any(a in _HELP_FLAGS for a in head)


def _help_cache_file(argv: list[str]) -> str | None:
    import hashlib
    import shutil

    from lightfold import __version__

    if os.environ.get("LIGHTFOLD_NO_HELP_CACHE"):
        return None
    here = os.path.dirname(__file__)
    h = hashlib.sha256()
    h.update(repr((argv, __version__, shutil.get_terminal_size().columns, sys.stdout.isatty())).encode())
    for var in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS"):
        h.update(f"{var}={os.environ.get(var)}".encode())
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            st = os.stat(os.path.join(here, name))
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lightfold", "help", h.hexdigest()[:32])


class _Tee:
    """Forwards to the real stdout (so rich sees the same terminal) and keeps a copy."""

    def __init__(self, real):
        self._real = real
        self.parts: list[str] = []

    def write(self, text: str | bytes) -> int:
        self.parts.append(text.decode() if isinstance(text, bytes) else text)
        return self._real.write(text)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _record_help(run, argv: list[str], cache_file: str) -> None:
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    code: object = 0
    try:
        run(argv)
    except SystemExit as e:
        code = e.code
        raise
    finally:
        sys.stdout = tee._real
        if code in (0, None) and tee.parts:
            _save(cache_file, "".join(tee.parts))


def _save(path: str, text: str) -> None:
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        pass
