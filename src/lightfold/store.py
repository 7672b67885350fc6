"""Where lightfold keeps its local files, and how they are read and written.

Every write is atomic (temp file in the same directory, fsync, rename, fsync of the directory), so
a crash never leaves a half-written file. Reads of malformed JSON fail loudly with the file name and
position — a broken file is never silently reset.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lightfold.errors import LightfoldError

PRIVATE = 0o600


def home() -> Path:
    """Root of lightfold's local files: $LIGHTFOLD_HOME or ~/.lightfold."""
    env = os.environ.get("LIGHTFOLD_HOME")
    return Path(env).expanduser() if env else Path.home() / ".lightfold"


def ensure_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_json(path: Path, value: Any, mode: int = PRIVATE) -> None:
    write_atomic(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode(), mode)


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it does not exist. Malformed JSON is an error naming the spot."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise LightfoldError(f"{path} is not valid UTF-8 ({e.reason})", "fix or remove the file") from e
    except PermissionError as e:
        raise LightfoldError(f"cannot read {path}: permission denied", f"check the owner of {path}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise LightfoldError(
            f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
            "fix the file by hand (nothing was changed)",
        ) from e


def lock(path: Path):
    """An inter-process lock guarding read-modify-write of `path`."""
    from filelock import FileLock

    ensure_dir(path.parent)
    return FileLock(str(path) + ".lock", timeout=30)
