"""Disk space on the server for a push: checked before the upload (from the free space the agent's
status already reports, so it costs no exec), and named when the server runs out anyway (the
upload's or the build's "No space left on device"). Pure, but for reading file sizes."""

from __future__ import annotations

import contextlib
from pathlib import Path

from lightfold.agent.layout import SRV, Layout
from lightfold.errors import LightfoldError

MB = 1_000_000
# Room a release needs beyond its own files: its build's output and dependencies, the build log,
# the journal and the env snapshot. A push stops before uploading when less than this is left.
HEADROOM = 50 * MB
OUT_OF_SPACE = ("No space left on device", "ENOSPC", "Disk quota exceeded")


def release_bytes(root: Path, files: list[str]) -> int:
    """What the release's files take once unpacked (the sizes of the files that ship)."""
    total = 0
    for name in files:
        with contextlib.suppress(OSError):
            total += (root / name).lstat().st_size
    return total


def mb(n: int) -> str:
    return f"{n / MB:.0f} MB" if n >= 10 * MB else f"{n / MB:.1f} MB"


def fix(app: str) -> str:
    return (f"free space on the server: see what uses it with `lightfold ssh --target {app} -- du -xhd1 {SRV} "
            f"/var /tmp` (failed releases under {Layout(app).releases_dir}/ can go; lightfold keeps the last five and"
            " removes older ones after each deploy), or give the server a bigger disk; then deploy again — the live"
            " release keeps serving")


def check_before_upload(app: str, free: int | None, needed_files: int) -> None:
    """Raise when the server's SRV filesystem has less free space than the release's files plus HEADROOM
    (`free` None: the server did not say; nothing is checked)."""
    if free is None:
        return
    needed = needed_files + HEADROOM
    if free < needed:
        raise LightfoldError(
            f"not enough disk space on the server: {SRV} has {mb(free)} free, and this release needs about "
            f"{mb(needed)} ({mb(needed_files)} of files plus {mb(HEADROOM)} for its build); nothing was uploaded",
            fix(app),
        )


def out_of_space(lines: list[str] | tuple[str, ...]) -> bool:
    return any(marker in str(line) for line in lines for marker in OUT_OF_SPACE)


def ran_out(app: str, during: str, free: int | None, details: list[str] | None = None) -> LightfoldError:
    """The error of a push whose `during` (upload, build) hit a full disk."""
    left = f" ({mb(free)} free on {SRV} now)" if free is not None else ""
    return LightfoldError(f"the server ran out of disk space during the {during}: No space left on device{left}",
                          fix(app), details=details or [])


async def free_now(conn) -> int | None:
    """The free bytes of the server's SRV filesystem now (None if it cannot say)."""
    try:
        res = await conn.run(f"df -B1 --output=avail {SRV}", check=False, timeout=15)
        return int(res.stdout.split()[-1])
    except Exception:  # noqa: BLE001 - only for a better message on a path that already failed
        return None


async def raise_if_out_of_space(conn, app: str, during: str, error: LightfoldError, lines: list[str]) -> None:
    """Raise `ran_out` instead of `error` when `lines` (the failed step's output) show a full disk."""
    if out_of_space(lines):
        raise ran_out(app, during, await free_now(conn), [str(x) for x in lines][-20:]) from error
