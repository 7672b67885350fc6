"""Files: atomic writes, JSON, symlinks swapped atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from .core import AgentError
from .layout import is_release_id


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: never half-written."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
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
    fsync_dir(directory)


def write_json(path: str, data, mode: int = 0o644) -> None:
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(), mode)


def read_json(path: str, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AgentError(f"{path} is not valid JSON ({e})", "fix or remove the file, then retry") from e


def read_text(path: str) -> str | None:
    try:
        # newline="": env values may hold CR bytes that must not be translated.
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None


def swap_symlink(link: str, target: str) -> None:
    """Point `link` at `target` atomically (`ln -s` to a temp name + rename over the old link)."""
    directory = os.path.dirname(link)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(link)}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except IsADirectoryError as e:
        os.unlink(tmp)
        raise AgentError(f"{link} is a directory, not a symlink", f"move it away ({link}), then retry") from e
    fsync_dir(directory)


def link_release(link: str) -> str | None:
    """The release id a symlink points at, or None (missing, dangling name, not a release)."""
    try:
        rid = os.path.basename(os.readlink(link).rstrip("/"))
    except OSError:
        return None
    return rid if is_release_id(rid) else None


def restore_link(link: str, rid: str | None, target_prefix: str) -> None:
    if rid is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
    else:
        swap_symlink(link, target_prefix + rid)
