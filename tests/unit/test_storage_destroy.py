"""lightfold.release.storage: the storage fact (run for real on a temp tree), what `destroy`
asks per provider, and when `--yes` alone refuses. The e2e side: tests/e2e/test_operate.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lightfold.release.storage import (
    StorageOnServer,
    destroy_question,
    human_size,
    parse_storage,
    refusal,
    storage_fact,
)

FULL = StorageOnServer({"/srv/shop/storage": (12_345_678, 3), "/srv/blog/storage": (4096, 0)})
EMPTY = StorageOnServer({"/srv/shop/storage": (4096, 0)})
UNREADABLE = StorageOnServer(error="cannot reach 10.0.0.5:22 (connection refused)")


def test_the_fact_counts_bytes_and_files_of_every_apps_storage(tmp_path: Path):
    (tmp_path / "srv/shop/storage/uploads").mkdir(parents=True)
    (tmp_path / "srv/shop/storage/uploads/a.png").write_bytes(b"x" * 5000)
    (tmp_path / "srv/shop/storage/db.sqlite").write_bytes(b"y" * 100)
    (tmp_path / "srv/blog/storage").mkdir(parents=True)
    (tmp_path / "srv/other").mkdir(parents=True)
    command = storage_fact().command.replace("/srv/", f"{tmp_path}/srv/")
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=20).stdout
    dirs = parse_storage(out)
    assert set(dirs) == {f"{tmp_path}/srv/shop/storage", f"{tmp_path}/srv/blog/storage"}
    size, files = dirs[f"{tmp_path}/srv/shop/storage"]
    assert files == 2 and size >= 5100
    assert dirs[f"{tmp_path}/srv/blog/storage"][1] == 0
    assert parse_storage("") == {} and parse_storage("garbage\nline\twith\ttabs\n") == {}


def test_the_question_says_what_goes_with_the_server():
    q = destroy_question("shop", "local", FULL)
    assert q.startswith("Destroy the sandbox machine of 'shop'") and "12.3 MB in 3 files" in q
    assert "/srv/blog/storage, /srv/shop/storage" in q and "cannot be undone" in q
    q = destroy_question("shop", "hetzner", EMPTY)
    assert "hetzner server and its disk" in q and "no persistent storage holds files" in q
    assert "could not be read: cannot reach" in destroy_question("shop", "vultr", UNREADABLE)
    assert destroy_question("shop", "local", None) == "Destroy the sandbox machine of 'shop' and everything on it?"
    byos = destroy_question("shop", "byos", FULL)
    assert byos.startswith("Forget the server") and "nothing on it is changed" in byos and "stay there" in byos


def test_yes_alone_refuses_when_storage_holds_files_or_cannot_be_read():
    e = refusal("shop", "digitalocean", FULL)
    assert e is not None and "holds 12.3 MB in 3 files" in e.problem
    assert "--yes --delete-storage" in e.fix and "tar -czf - -C /srv/shop/storage" in e.fix
    e = refusal("shop", "local", UNREADABLE)
    assert e is not None and "could not read" in e.problem and "--delete-storage" in e.fix
    assert refusal("shop", "local", EMPTY) is None and refusal("shop", "local", None) is None
    assert refusal("shop", "byos", FULL) is None  # a byos server is only forgotten


def test_sizes_read_like_people_write_them():
    assert [human_size(n) for n in (0, 999, 1000, 12_345_678, 5 * 10**12)] == [
        "0 bytes", "999 bytes", "1.0 KB", "12.3 MB", "5000.0 GB"]
