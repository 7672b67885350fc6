"""The parts of a backup, for lightfold's backup tool on the server (backup_tool.py beside this
file; standard library only): the pipes that count and hash what flows through them, and how each
kind of data is dumped, checked and restored (PostgreSQL, MariaDB, Redis, storage).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import threading

CHUNK = 1 << 20


class Failure(Exception):
    def __init__(self, error: str, fix: str = ""):
        super().__init__(error)
        self.error, self.fix = error, fix


# ---- pipes --------------------------------------------------------------------------------------------


def pipe(producer: list[str], consumer: list[str], *, stdout=None, pass_fds=(), cwd="/tmp", env=None,
         what: str = "", tap=None) -> tuple[int, str, bytes]:
    """producer | consumer, with the bytes in between counted and hashed here (and handed to
    `tap(chunk)` when given). Returns (bytes, sha256, consumer's stdout when `stdout` is PIPE).
    Either side failing is a Failure."""
    p1 = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds, cwd=cwd,
                          env=env)
    p2 = subprocess.Popen(consumer, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd)
    errs: dict[str, bytes] = {}
    out: list[bytes] = []
    threads = [threading.Thread(target=lambda: errs.__setitem__("p1", p1.stderr.read())),
               threading.Thread(target=lambda: errs.__setitem__("p2", p2.stderr.read()))]
    if stdout == subprocess.PIPE:
        threads.append(threading.Thread(target=lambda: out.append(p2.stdout.read())))
    for t in threads:
        t.start()
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := p1.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if tap is not None:
                tap(chunk)
            p2.stdin.write(chunk)
        p2.stdin.close()
    except BrokenPipeError:
        p1.kill()
    rc1, rc2 = p1.wait(), p2.wait()
    for t in threads:
        t.join()
    if rc1 or rc2:
        side, rc, err = (producer, rc1, errs.get("p1", b"")) if rc1 else (consumer, rc2, errs.get("p2", b""))
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise Failure(f"{what or side[0]}: `{side[0]}` exited {rc}" + (f": {' / '.join(tail)}" if tail else ""))
    return size, digest.hexdigest(), b"".join(out)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def identity_fd(identity: bytes) -> int:
    """A pipe's read end holding the identity (a few hundred bytes: fits the pipe's buffer)."""
    r, w = os.pipe()
    os.write(w, identity)
    os.close(w)
    return r


def decrypt(path: str, identity: bytes) -> tuple[list[str], tuple[int, ...]]:
    fd = identity_fd(identity)
    return ["age", "-d", "-i", f"/dev/fd/{fd}", path], (fd,)


def encrypt(recipients: str, out: str) -> list[str]:
    return ["age", "-R", recipients, "-o", out]


# ---- postgres -----------------------------------------------------------------------------------------

# One "schema.table<TAB>rows" line per table (\gexec runs each generated statement).
COUNT_SQL = (
    "SELECT format('SELECT %L || chr(9) || count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname, "
    "tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 \\gexec\n"
    "SELECT 'lightfold-end';\n"
)


def psql_argv(db: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", db]


def parse_counts(text: str) -> dict[str, int]:
    counts = {}
    for line in text.splitlines():
        name, sep, n = line.partition("\t")
        if sep and n.strip().isdigit():
            counts[name] = int(n)
    return counts


def psql(db: str, sql: str) -> str:
    res = subprocess.run(psql_argv(db), input=sql, capture_output=True, text=True, cwd="/tmp")
    if res.returncode:
        raise Failure(f"psql on {db}: {res.stderr.strip()[-300:]}")
    return res.stdout


def db_exists(db: str) -> bool:
    return psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{db}';\n").strip() == "1"


def dump_postgres(db: str, recipients: str, out: str) -> dict:
    """pg_dump in the snapshot in which the row counts are read: a session holds a repeatable-read
    transaction, exports its snapshot, counts, and pg_dump --snapshot dumps exactly that state."""
    session = subprocess.Popen(psql_argv(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd="/tmp")
    try:
        session.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();\n"
                            + COUNT_SQL)
        session.stdin.flush()
        snapshot = session.stdout.readline().strip()
        lines = []
        while (line := session.stdout.readline()) and line.strip() != "lightfold-end":
            lines.append(line)
        if not line or not snapshot:
            raise Failure(f"postgres {db}: could not read the tables' row counts: "
                          f"{session.stderr.read().strip()[-300:] if session.poll() is not None else 'no answer'}")
        counts = parse_counts("".join(lines))
        plain, plain_sha, _ = pipe(
            ["runuser", "-u", "postgres", "--", "pg_dump", "-Fc", f"--snapshot={snapshot}", "-d", db],
            encrypt(recipients, out), what=f"pg_dump {db}")
        session.stdin.write("COMMIT;\n")
        session.stdin.close()
        session.wait(30)
    finally:
        if session.poll() is None:
            session.kill()
    return {"database": db, "tables": counts, "plain_bytes": plain, "plain_sha256": plain_sha}


def restore_postgres(part: dict, path: str, identity: bytes, scratch: str, owner: str) -> dict[str, int]:
    """The dump restored into a new database `scratch` (dropped first if there); its row counts."""
    run(["runuser", "-u", "postgres", "--", "dropdb", "--if-exists", "--force", scratch])
    run(["runuser", "-u", "postgres", "--", "createdb", "-O", owner, scratch])
    argv, fds = decrypt(path, identity)
    _, sha, _ = pipe(argv, ["runuser", "-u", "postgres", "--", "pg_restore", "-e", "-d", scratch],
                     pass_fds=fds, what="decrypt and pg_restore")
    os.close(fds[0])
    if sha != part["plain_sha256"]:
        raise Failure(f"the decrypted dump's sha256 is {sha[:12]}, the manifest says {part['plain_sha256'][:12]}")
    return parse_counts(psql(scratch, COUNT_SQL))


def compare_counts(wanted: dict[str, int], got: dict[str, int]) -> list[str]:
    differ = [f"{name}: {got.get(name)} rows, {n} at backup time" for name, n in sorted(wanted.items())
              if got.get(name) != n]
    return differ + [f"{name}: not in the backup's manifest" for name in sorted(set(got) - set(wanted))]


def run(argv: list[str], **kw) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, cwd="/tmp", **kw)
    if res.returncode:
        raise Failure(f"`{' '.join(argv[:6])}` exited {res.returncode}: {res.stderr.strip()[-300:]}")
    return res.stdout


# ---- mysql (MariaDB) ----------------------------------------------------------------------------------

# mariadb-dump escapes the newlines inside values (\n), so no string spans lines: a table's rows
# are the tuples of its "INSERT INTO `t` VALUES (...),(...);" statements, on the statement's
# line (MariaDB 10.x) or one row a line after it (11.x), counted as they stream by, so the
# manifest's counts are exactly the dump's (--single-transaction: one snapshot; a second
# session could not read that snapshot's counts).
_CREATE_RE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(")
_INSERT_RE = re.compile(rb"^INSERT (?:IGNORE )?INTO `((?:[^`]|``)+)` (?:\((?:[^`)]|`(?:[^`]|``)*`)*\) )?VALUES ?")
_SQL_STRING_RE = re.compile(rb"'(?:[^'\\]|\\.)*'", re.S)


def _table_name(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", errors="replace")


class DumpCounter:
    """Rows per table of a mariadb-dump stream, fed in chunks of any size."""

    def __init__(self) -> None:
        self.tables: dict[str, int] = {}
        self._rest = b""
        self._insert: str | None = None  # the table of the INSERT statement being read

    def feed(self, chunk: bytes) -> None:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> dict[str, int]:
        if self._rest:
            self._line(self._rest)
            self._rest = b""
        return self.tables

    def _line(self, line: bytes) -> None:
        if self._insert is None:
            if line.startswith(b"CREATE TABLE `"):
                m = _CREATE_RE.match(line)
                if m:
                    self.tables.setdefault(_table_name(m.group(1)), 0)
                return
            m = _INSERT_RE.match(line) if line.startswith(b"INSERT ") else None
            if not m:
                return
            self._insert = _table_name(m.group(1))
            line = line[m.end():]
        values = _SQL_STRING_RE.sub(b"''", line)
        self.tables[self._insert] = self.tables.get(self._insert, 0) + values.count(b"(")
        if values.rstrip().endswith(b";"):
            self._insert = None


def mysql_argv(db: str | None = None) -> list[str]:
    """The root client (unix_socket auth: root of the OS), tab-separated, no header."""
    return ["mariadb", "-N", "-B", *([db] if db else [])]


def mysql(sql: str, db: str | None = None) -> str:
    res = subprocess.run(mysql_argv(db), input=sql, capture_output=True, text=True, cwd="/tmp")
    if res.returncode:
        raise Failure(f"mariadb{' on ' + db if db else ''}: {res.stderr.strip()[-300:]}")
    return res.stdout


def mysql_db_exists(db: str) -> bool:
    return mysql(f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}';\n").strip() == "1"


def mysql_counts(db: str) -> dict[str, int]:
    """COUNT(*) of every table of `db`, by name."""
    statements = mysql(
        "SELECT CONCAT('SELECT ', QUOTE(TABLE_NAME), ', COUNT(*) FROM `', REPLACE(TABLE_NAME, '`', '``'), '`;') "
        f"FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' "
        "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME;\n")
    return parse_counts(mysql(statements, db)) if statements.strip() else {}


MYSQL_DUMP = ["mariadb-dump", "--single-transaction", "--routines", "--triggers", "--hex-blob",
              "--default-character-set=utf8mb4", "--skip-dump-date"]


def dump_mysql(db: str, recipients: str, out: str) -> dict:
    """mariadb-dump --single-transaction | gzip | age; the rows per table counted from the dump."""
    counter = DumpCounter()
    plain, plain_sha, _ = pipe([*MYSQL_DUMP, db],
                               ["bash", "-o", "pipefail", "-c", 'gzip -6 | age -R "$0" -o "$1"', recipients, out],
                               what=f"mariadb-dump {db}", tap=counter.feed)
    return {"database": db, "tables": counter.close(), "plain_bytes": plain, "plain_sha256": plain_sha}


def load_mysql(part: dict, path: str, identity: bytes, db: str) -> None:
    """The dump decrypted, unpacked and loaded into the (existing, empty) database `db`."""
    fd = identity_fd(identity)
    try:
        _, sha, _ = pipe(["bash", "-o", "pipefail", "-c", 'age -d -i "$0" "$1" | gzip -dc', f"/dev/fd/{fd}", path],
                         mysql_argv(db), pass_fds=(fd,), what="decrypt and load into mariadb")
    finally:
        os.close(fd)
    if sha != part["plain_sha256"]:
        raise Failure(f"the decrypted dump's sha256 is {sha[:12]}, the manifest says {part['plain_sha256'][:12]}")


def recreate_mysql_db(db: str) -> None:
    mysql(f"DROP DATABASE IF EXISTS `{db}`;\n"
          f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n")


def restore_mysql(part: dict, path: str, identity: bytes, scratch: str) -> dict[str, int]:
    """The dump loaded into a new database `scratch` (dropped first if there); its row counts."""
    recreate_mysql_db(scratch)
    load_mysql(part, path, identity, scratch)
    return mysql_counts(scratch)


def drop_mysql_db(db: str) -> None:
    mysql(f"DROP DATABASE IF EXISTS `{db}`;\n")


# ---- redis --------------------------------------------------------------------------------------------


def env_values(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as f:
        return dict(re.findall(r'^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$', f.read(), re.M))


def redis_keys(rdb: str) -> int:
    """The keys in an RDB file, as redis-check-rdb counts them."""
    res = subprocess.run(["redis-check-rdb", rdb], capture_output=True, text=True, cwd="/tmp")
    text = res.stdout + res.stderr
    if res.returncode or "RDB looks OK" not in text:
        raise Failure(f"redis-check-rdb: {text.strip()[-300:]}")
    m = re.search(r"(\d+) keys read", text)
    return int(m.group(1)) if m else 0


def dump_redis(env_file: str, recipients: str, out: str, work: str) -> dict:
    values = env_values(env_file)
    user = re.sub(r"^redis://([^:@]*):.*$", r"\1", values.get("REDIS_URL", ""))
    rdb = os.path.join(work, "redis.rdb")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "REDISCLI_AUTH": values.get("REDIS_PASSWORD", "")}
    run(["redis-cli", "--no-auth-warning", "--user", user, "--rdb", rdb], env=env)
    try:
        keys = redis_keys(rdb)
        with open(rdb, "rb") as f:
            data = f.read()
        plain_sha = hashlib.sha256(data).hexdigest()
        res = subprocess.run(encrypt(os.path.join(recipients), out), input=gzip.compress(data, 6), capture_output=True)
        if res.returncode:
            raise Failure(f"age: {res.stderr.decode(errors='replace').strip()[-300:]}")
    finally:
        os.unlink(rdb)
    return {"keys": keys, "plain_bytes": len(data), "plain_sha256": plain_sha}


def decrypt_redis(part: dict, path: str, identity: bytes, work: str) -> tuple[str, int]:
    """The RDB decrypted to work/redis.rdb (root only), checked; its path and keys."""
    argv, fds = decrypt(path, identity)
    res = subprocess.run(argv, capture_output=True, pass_fds=fds)
    os.close(fds[0])
    if res.returncode:
        raise Failure(f"age -d: {res.stderr.decode(errors='replace').strip()[-300:]}")
    data = gzip.decompress(res.stdout)
    if hashlib.sha256(data).hexdigest() != part["plain_sha256"]:
        raise Failure("the decrypted RDB's sha256 differs from the manifest's")
    rdb = os.path.join(work, "redis.rdb")
    with open(os.open(rdb, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(data)
    return rdb, redis_keys(rdb)


# ---- storage ------------------------------------------------------------------------------------------


def count_files(root: str) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def dump_storage(storage: str, recipients: str, out: str) -> dict:
    parent, name = os.path.split(storage.rstrip("/"))
    plain, sha, _ = pipe(["tar", "-C", parent, "--numeric-owner", "-czf", "-", name], encrypt(recipients, out),
                         what="tar storage")
    return {"files": count_files(storage), "plain_bytes": plain, "plain_sha256": sha}


def list_storage(part: dict, path: str, identity: bytes) -> int:
    argv, fds = decrypt(path, identity)
    _, sha, listing = pipe(argv, ["tar", "-tzvf", "-"], stdout=subprocess.PIPE, pass_fds=fds,
                           what="decrypt and list storage")
    os.close(fds[0])
    if sha != part["plain_sha256"]:
        raise Failure("the decrypted storage archive's sha256 differs from the manifest's")
    return sum(1 for line in listing.decode(errors="replace").splitlines() if line.startswith("-"))


def restore_storage(part: dict, path: str, identity: bytes, storage: str) -> int:
    parent, name = os.path.split(storage.rstrip("/"))
    new = os.path.join(parent, f".{name}.restore")
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(new, mode=0o700)
    argv, fds = decrypt(path, identity)
    _, sha, _ = pipe(argv, ["tar", "-C", new, "--numeric-owner", "-xzf", "-"], pass_fds=fds,
                     what="decrypt and unpack storage")
    os.close(fds[0])
    if sha != part["plain_sha256"]:
        shutil.rmtree(new, ignore_errors=True)
        raise Failure("the decrypted storage archive's sha256 differs from the manifest's")
    old = os.path.join(parent, f".{name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(storage):
        os.rename(storage, old)
    os.rename(os.path.join(new, name), storage)
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return count_files(storage)
