"""Databases beside an app, from the server's own OS packages: the plans of `lightfold db add|remove`
(pure data, lightfold.server.plan) and the scripts that read their facts and status.

Kinds: postgres (postgresql), mysql (MariaDB: mariadb-server; `mariadb` is its other name), redis.

    install_plan(kind)                  the Debian packages, the service enabled and running
    settings_plan(kind, facts)          loopback-only, memory sized from MemTotal; restart only
                                        when the running server's settings differ
    credentials_plan(kind, app, facts)  a role + database (postgres), a user + database (mysql)
                                        or an ACL user (redis) for the
                                        app, with a password generated ON the server, written with
                                        the connection variables to the app's root-only
                                        db-<kind>.env (lightfold.agent.layout), which the agent
                                        merges into every release's env snapshot
    remove_plan(kind, app, purge)       the env file goes; the data stays unless `purge`

No plan holds a secret: the password is made by the script on the server (python3's `secrets`),
kept in the env file (0600 root), reused when the file already exists, and reaches PostgreSQL on
psql's stdin and MariaDB on the client's stdin (never a command line) with statement logging off
for that session.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from lightfold.agent.layout import (
    DB_KINDS,
    MARIADB_APPLIED,
    MARIADB_DROPIN,
    PG_ETC,
    REDIS_ACL,
    REDIS_APPLIED,
    REDIS_CONF,
    REDIS_DROPIN,
    Layout,
    pg_dropin,
)
from lightfold.server.plan import EnsurePackages, Plan, Run, Step, SystemdEnable, WriteFile

PACKAGES = {"postgres": ("postgresql",), "mysql": ("mariadb-server",), "redis": ("redis-server",)}
UNITS = {"postgres": "postgresql", "mysql": "mariadb", "redis": "redis-server"}
# The variables each kind gives the app (values only on the server).
VARIABLES = {
    "postgres": ("DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"),
    "mysql": ("DATABASE_URL", "MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE"),
    "redis": ("REDIS_URL", "REDIS_PASSWORD"),
}
URL_VARIABLE = {"postgres": "DATABASE_URL", "mysql": "DATABASE_URL", "redis": "REDIS_URL"}
# Other names a user may type for a kind.
ALIASES = {"mariadb": "mysql", "postgresql": "postgres"}
LOOPBACK = "127.0.0.1"
MYSQL_PORT = 3306

# Printed by FACTS_SCRIPT as NAME=value lines.
FACTS_SCRIPT = r"""
echo "mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
m=$(cat /sys/fs/cgroup/memory.max 2>/dev/null)
case "$m" in ''|max|*[!0-9]*) ;; *) echo "limit_kb=$((m / 1024))" ;; esac
v=$(ls PG_ETC 2>/dev/null | sort -n | tail -n 1)
echo "pg_version=$v"
if [ -n "$v" ]; then
  p=$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' PG_ETC/$v/main/postgresql.conf)
  echo "pg_port=$(echo "$p" | tail -n 1)"
fi
""".replace("PG_ETC", PG_ETC)


def check_kind(kind: str) -> str:
    """`kind` as one of DB_KINDS (`mariadb` -> `mysql`); anything else is a usage error."""
    from lightfold.errors import UsageError

    kind = ALIASES.get(kind, kind)
    if kind not in DB_KINDS:
        raise UsageError(f"unknown database '{kind}'", f"use one of: {', '.join(DB_KINDS)} (mariadb is mysql)")
    return kind


def url_clash(kind: str, configured: list[str]) -> str | None:
    """The configured kind whose URL variable `kind` would also set (postgres and mysql both give
    DATABASE_URL: one app gets one), or None."""
    return next((k for k in configured if k != kind and URL_VARIABLE[k] == URL_VARIABLE[kind]), None)


@dataclass(frozen=True)
class Facts:
    """What the settings depend on, read from the server after the packages are installed.
    `mem_kb`: MemTotal, or the machine's cgroup memory limit when that is lower (a container
    sees the host's MemTotal)."""

    mem_kb: int
    pg_version: str | None = None
    pg_port: int = 5432

    @classmethod
    def parse(cls, text: str) -> Facts:
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        mem = values.get("mem_kb", "").strip()
        limit = values.get("limit_kb", "").strip()
        port = values.get("pg_port", "").strip()
        mem_kb = int(mem) if mem.isdigit() else 1024 * 1024
        if limit.isdigit() and 0 < int(limit) < mem_kb:
            mem_kb = int(limit)
        return cls(mem_kb=mem_kb,
                   pg_version=values.get("pg_version", "").strip() or None,
                   pg_port=int(port) if port.isdigit() else 5432)


def db_name(app: str) -> str:
    """The app's PostgreSQL role and database, and its Redis user: the app name, '-' as '_'."""
    return app.replace("-", "_")


# ---- sizes -----------------------------------------------------------------------------------------


def _pg_mem(mb: int) -> str:
    """A size in MB as PostgreSQL's SHOW prints it (the largest unit that divides it)."""
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def postgres_settings(mem_kb: int) -> dict[str, str]:
    """Settings for a small VM, from its memory: shared_buffers 1/8 (32 MB..2 GB), the planner's
    cache estimate 1/2, a few connections. Values are what SHOW prints, so they double as the check."""
    mb = max(mem_kb // 1024, 256)
    shared = max(32, min(mb // 8, 2048)) // 16 * 16
    return {
        "listen_addresses": "localhost",
        "max_connections": "50",
        "shared_buffers": _pg_mem(shared),
        "effective_cache_size": _pg_mem(max(64, mb // 2) // 16 * 16),
        "maintenance_work_mem": _pg_mem(max(16, min(mb // 16, 256)) // 16 * 16),
        "work_mem": "4MB",
    }


def _mysql_mem(mb: int) -> str:
    """A size in MB as a MariaDB option value (M or G suffix)."""
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def mysql_settings(mem_kb: int) -> dict[str, str]:
    """MariaDB for a small VM beside the app: loopback TCP (and the unix socket), the InnoDB buffer
    pool 1/8 of memory (32 MB..2 GB, like PostgreSQL's shared_buffers), a few connections, no
    performance_schema (~100 MB saved), no DNS lookups of clients, no LOAD DATA LOCAL."""
    mb = max(mem_kb // 1024, 256)
    pool = max(32, min(mb // 8, 2048)) // 16 * 16
    return {
        "bind-address": LOOPBACK,
        "port": str(MYSQL_PORT),
        "skip-name-resolve": "1",
        "local-infile": "0",
        "max_connections": "50",
        "innodb_buffer_pool_size": _mysql_mem(pool),
        "innodb_log_file_size": _mysql_mem(max(16, min(pool // 4, 512)) // 16 * 16),
        "tmp_table_size": "16M",
        "max_heap_table_size": "16M",
        "performance_schema": "OFF",
        "character-set-server": "utf8mb4",
        "collation-server": "utf8mb4_unicode_ci",
    }


def redis_settings(mem_kb: int) -> dict[str, str]:
    """Loopback only, protected mode, at most 1/8 of memory (16 MB..1 GB), no eviction (a queue
    must not lose jobs; a cache app can change the policy)."""
    mb = max(16, min(mem_kb // 1024 // 8, 1024))
    return {"bind": "127.0.0.1 -::1", "protected-mode": "yes", "maxmemory": f"{mb}mb",
            "maxmemory-policy": "noeviction", "aclfile": REDIS_ACL}


# ---- plans -------------------------------------------------------------------------------------------


def install_plan(kind: str) -> Plan:
    return Plan((Step(f"{kind} packages", (EnsurePackages(PACKAGES[check_kind(kind)]),
                                           SystemdEnable(UNITS[kind], now=True))),))


def _psql(sql: str) -> str:
    return f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}"


def settings_plan(kind: str, facts: Facts) -> Plan:
    if check_kind(kind) == "postgres":
        if not facts.pg_version:
            from lightfold.errors import LightfoldError

            raise LightfoldError(f"postgresql is installed but the server has no cluster in {PG_ETC}",
                                 "run `pg_createcluster <version> main --start` on the server, then retry")
        wanted = postgres_settings(facts.mem_kb)
        body = "# Written by lightfold (db add postgres): loopback only, sized for this server's memory.\n"
        body += "".join(f"{k} = '{v}'\n" for k, v in wanted.items())
        names = ", ".join(f"'{k}'" for k in wanted)
        current = _psql(f"SELECT string_agg(name || '=' || current_setting(name), ',' ORDER BY name) "
                        f"FROM pg_settings WHERE name IN ({names})")
        expected = ",".join(f"{k}={v}" for k, v in sorted(wanted.items()))
        return Plan((Step("postgres settings", (
            WriteFile(pg_dropin(facts.pg_version), body),
            Run("systemctl restart postgresql", unless=f'cd /tmp && [ "$({current})" = {shlex.quote(expected)} ]',
                label="restart postgresql with these settings"),
        )),))
    if kind == "mysql":
        wanted = mysql_settings(facts.mem_kb)
        body = ("# Written by lightfold (db add mysql): loopback only, sized for this server's memory.\n"
                "[mysqld]\n" + "".join(f"{k} = {v}\n" for k, v in wanted.items()))
        return Plan((Step("mysql settings", (
            WriteFile(MARIADB_DROPIN, body),
            _applied_restart(UNITS["mysql"], (MARIADB_DROPIN,), MARIADB_APPLIED,
                             "restart mariadb with these settings"),
        )),))
    wanted = redis_settings(facts.mem_kb)
    body = "# Written by lightfold (db add redis): loopback only, sized for this server's memory.\n"
    body += "".join(f"{k} {v}\n" for k, v in wanted.items())
    include = f"include {REDIS_DROPIN}"
    return Plan((Step("redis settings", (
        WriteFile(REDIS_ACL, "user default off\n", mode=0o640, group="redis", only_if_absent=True),
        WriteFile(REDIS_DROPIN, body, mode=0o640, group="redis"),
        Run(f"echo {shlex.quote(include)} >> {REDIS_CONF}", unless=f"grep -qxF {shlex.quote(include)} {REDIS_CONF}",
            label=f"{REDIS_CONF} includes {REDIS_DROPIN}"),
        _redis_restart("restart redis-server with these settings"),
    )),))


def _applied_restart(unit: str, files: tuple[str, ...], applied: str, label: str) -> Run:
    """Restart `unit` unless it runs and last restarted with exactly these files (their sha256sum,
    kept in `applied`: a file's mtime is too coarse to tell)."""
    return Run(f"systemctl restart {unit} && sha256sum {' '.join(files)} > {applied}",
               unless=f"systemctl is-active --quiet {unit} && sha256sum -c --quiet --status {applied}",
               label=label)


def _redis_restart(label: str) -> Run:
    return _applied_restart("redis-server", (REDIS_CONF, REDIS_DROPIN, REDIS_ACL), REDIS_APPLIED, label)


# Shared by the credential scripts: the password kept in the env file, or a new one.
_PASSWORD = (
    'pw=""\n'
    'if [ -f "$f" ]; then pw=$(sed -n "s/^$var=\\"\\([0-9a-f]*\\)\\"$/\\1/p" "$f" | head -n 1); fi\n'
    'if [ -z "$pw" ]; then pw=$(python3 -c "import secrets; print(secrets.token_hex(24))"); fi\n'
)


def _env_writer(lines: list[str]) -> str:
    """Shell that writes the env file $f (0600 root) atomically; $pw is the password."""
    body = "\\n".join(lines)
    return (f'mkdir -p "$(dirname "$f")" && umask 077 && printf "{body}\\n" > "$f.new" '
            '&& chmod 600 "$f.new" && chown root:root "$f.new" && mv -f "$f.new" "$f"\n')


def credentials_plan(kind: str, app: str, facts: Facts) -> Plan:
    env_file = Layout(app).db_env(check_kind(kind))
    name = db_name(app)
    if kind == "postgres":
        port = facts.pg_port
        role_exists = _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'")
        db_exists = _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        url = f"postgresql://{name}:$pw@{LOOPBACK}:{port}/{name}"
        script = (
            f"set -eu\ncd /tmp\nf={shlex.quote(env_file)}\nvar=PGPASSWORD\n{_PASSWORD}"
            f'if [ "$({role_exists})" = 1 ]; then verb=ALTER; else verb=CREATE; fi\n'
            # Statement text stays out of the server's log even if the statement fails.
            "printf \"SET log_statement = 'none'; SET log_min_error_statement = panic; "
            f"%s ROLE \\\"{name}\\\" LOGIN PASSWORD '%s';\\n\" \"$verb\" \"$pw\" "
            "| runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -v VERBOSITY=terse >/dev/null\n"
            f'if [ "$({db_exists})" != 1 ]; then runuser -u postgres -- createdb -O {name} {name}; fi\n'
            + _env_writer([
                f"# {kind} for {app} (written by lightfold db add; root only)",
                f'DATABASE_URL=\\"{url}\\"', f'PGHOST=\\"{LOOPBACK}\\"', f'PGPORT=\\"{port}\\"',
                f'PGUSER=\\"{name}\\"', 'PGPASSWORD=\\"$pw\\"', f'PGDATABASE=\\"{name}\\"',
            ])
        )
        done = f'[ -f {shlex.quote(env_file)} ] && cd /tmp && [ "$({role_exists})" = 1 ] && [ "$({db_exists})" = 1 ]'
        return Plan((Step("postgres role", (
            Run(script, unless=done, label=f"role and database {name}, password in {env_file}"),
        )),))
    if kind == "mysql":
        return _mysql_credentials(app, env_file, name)
    # redis: one ACL user per app; the ACL file holds each password's sha256 only, rebuilt from
    # every app's env file, and redis-server restarts when it changed.
    script = (
        f"set -eu\nf={shlex.quote(env_file)}\nvar=REDIS_PASSWORD\n{_PASSWORD}"
        + _env_writer([f"# {kind} for {app} (written by lightfold db add; root only)",
                       f'REDIS_URL=\\"redis://{name}:$pw@{LOOPBACK}:6379/0\\"', 'REDIS_PASSWORD=\\"$pw\\"'])
    )
    return Plan((Step("redis user", (
        Run(script, unless=f"[ -f {shlex.quote(env_file)} ]", label=f"redis user {name}, password in {env_file}"),
        *_redis_acl_actions(),
    )),))


# MariaDB's accounts of an app: the unix socket ('localhost') and TCP on loopback ('127.0.0.1';
# skip-name-resolve: the address is never looked up as "localhost").
MYSQL_HOSTS = ("localhost", LOOPBACK)


def _mysql(sql: str) -> str:
    """The root client (unix_socket: root of the OS is MariaDB's root), one statement, no header."""
    return f"mariadb -N -B -e {shlex.quote(sql)}"


def _mysql_exists(name: str) -> str:
    """Shell true when user `name` (both hosts) and database `name` exist."""
    hosts = ", ".join(f"'{h}'" for h in MYSQL_HOSTS)
    users = _mysql(f"SELECT COUNT(*) FROM mysql.user WHERE User = '{name}' AND Host IN ({hosts})")
    schema = _mysql(f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'")
    return f'[ "$({users})" = {len(MYSQL_HOSTS)} ] && [ "$({schema})" = 1 ]'


def _mysql_credentials(app: str, env_file: str, name: str) -> Plan:
    # The password reaches the server on the client's stdin through printf (a shell builtin: no
    # argv holds it); this session logs nothing (general log, binary log).
    statements = ["SET SESSION sql_log_off = 1", "SET SESSION sql_log_bin = 0"]
    for host in MYSQL_HOSTS:
        statements += [f"CREATE USER IF NOT EXISTS '{name}'@'{host}' IDENTIFIED BY '%s'",
                       f"ALTER USER '{name}'@'{host}' IDENTIFIED BY '%s'"]
    statements.append(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    statements += [f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'{host}'" for host in MYSQL_HOSTS]
    # In the shell's double quotes: a backtick must be escaped, `\n` is printf's.
    sql = (";\\n".join(statements) + ";\\n").replace("`", "\\`")
    pw_args = " ".join(['"$pw"'] * (2 * len(MYSQL_HOSTS)))
    url = f"mysql://{name}:$pw@{LOOPBACK}:{MYSQL_PORT}/{name}"
    script = (
        f"set -eu\ncd /tmp\nf={shlex.quote(env_file)}\nvar=MYSQL_PASSWORD\n{_PASSWORD}"
        f'printf "{sql}" {pw_args} | mariadb -N -B\n'
        + _env_writer([
            f"# mysql (MariaDB) for {app} (written by lightfold db add; root only)",
            f'DATABASE_URL=\\"{url}\\"', f'MYSQL_HOST=\\"{LOOPBACK}\\"', f'MYSQL_PORT=\\"{MYSQL_PORT}\\"',
            f'MYSQL_USER=\\"{name}\\"', 'MYSQL_PASSWORD=\\"$pw\\"', f'MYSQL_DATABASE=\\"{name}\\"',
        ])
    )
    done = f"[ -f {shlex.quote(env_file)} ] && cd /tmp && {_mysql_exists(name)}"
    return Plan((Step("mysql user", (
        Run(script, unless=done, label=f"user and database {name}, password in {env_file}"),
    )),))


def _redis_acl() -> str:
    """Shell printing the wanted ACL file: the default user off, one user per app with a redis
    env file, by its password's sha256 (the file never holds a password)."""
    return (
        "echo 'user default off'\n"
        f"for f in {Layout('*').db_env('redis')}; do\n"
        '  [ -f "$f" ] || continue\n'
        '  pw=$(sed -n "s/^REDIS_PASSWORD=\\"\\([0-9a-f]*\\)\\"$/\\1/p" "$f" | head -n 1)\n'
        '  [ -n "$pw" ] || continue\n'
        '  echo "user $(basename "$(dirname "$f")" | tr - _) on #$(printf %s "$pw" | sha256sum | cut -d" " -f1) '
        '~* &* +@all"\n'
        "done\n"
    )


def _redis_acl_actions() -> tuple[Run, ...]:
    acl = _redis_acl()
    write = (f"set -eu\n{{\n{acl}}} > {REDIS_ACL}.new\n"
             f"chmod 640 {REDIS_ACL}.new && chown root:redis {REDIS_ACL}.new && mv -f {REDIS_ACL}.new {REDIS_ACL}\n")
    return (
        Run(write, unless=f"{{\n{acl}}} | cmp -s - {REDIS_ACL}", label=f"{REDIS_ACL}: one user per app"),
        _redis_restart("restart redis-server with these users"),
    )


def remove_plan(kind: str, app: str, purge: bool) -> Plan:
    from lightfold.server.plan import Remove

    env_file = Layout(app).db_env(check_kind(kind))
    name = db_name(app)
    actions: list = [Remove(env_file)]
    if kind == "postgres" and purge:
        db_exists = _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        role_exists = _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'")
        actions += [
            Run(f"cd /tmp && runuser -u postgres -- dropdb --if-exists {name}",
                unless=f'cd /tmp && [ "$({db_exists})" != 1 ]',
                label=f"drop database {name}"),
            Run(f"cd /tmp && runuser -u postgres -- dropuser --if-exists {name}",
                unless=f'cd /tmp && [ "$({role_exists})" != 1 ]',
                label=f"drop role {name}"),
        ]
    if kind == "mysql" and purge:
        users = ", ".join(f"'{name}'@'{h}'" for h in MYSQL_HOSTS)
        schema = _mysql(f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'")
        user = _mysql(f"SELECT COUNT(*) FROM mysql.user WHERE User = '{name}'")
        actions += [
            Run(f"cd /tmp && {_mysql(f'DROP DATABASE IF EXISTS `{name}`')}",
                unless=f'cd /tmp && [ "$({schema})" = 0 ]', label=f"drop database {name}"),
            Run(f"cd /tmp && {_mysql(f'DROP USER IF EXISTS {users}')}",
                unless=f'cd /tmp && [ "$({user})" = 0 ]', label=f"drop user {name}"),
        ]
    if kind == "redis":
        actions += list(_redis_acl_actions())  # the app's user goes; keys stay (one shared keyspace)
    return Plan((Step(f"{kind} remove", tuple(actions)),))


# ---- shell -----------------------------------------------------------------------------------------

# `lightfold db shell`: the client of each kind, run in the live release as the app's user with the
# release's env (systemd reads the snapshot): the credentials are read from that env by the client
# (libpq's PG*, MariaDB's MYSQL_PWD, redis-cli's REDISCLI_AUTH), never put on a command line.
_SHELLS = {
    "postgres": ("PGUSER", "exec psql"),
    "mysql": ("MYSQL_USER", 'MYSQL_PWD="$MYSQL_PASSWORD" exec mariadb --host="$MYSQL_HOST" --port="$MYSQL_PORT" '
                            '--user="$MYSQL_USER" "$MYSQL_DATABASE"'),
    "redis": ("REDIS_PASSWORD", 'u=${REDIS_URL#redis://}; REDISCLI_AUTH="$REDIS_PASSWORD" '
                                'exec redis-cli --no-auth-warning --user "${u%%:*}"'),
}


def shell_command(kind: str, app: str) -> str:
    """The shell command line (for `lightfold run`'s `sh -c`) that starts `kind`'s client as the
    app's role. It refuses when the live release has no such variables (db add, then no deploy)."""
    kind = check_kind(kind)
    var, command = _SHELLS[kind]
    missing = shlex.quote(f"lightfold: the live release of {app} has no {var}: deploy once after `db add {kind}`")
    return f'if [ -z "${{{var}:-}}" ]; then echo {missing} >&2; exit 1; fi; {command}'


# ---- status ----------------------------------------------------------------------------------------

# Run as root with python3 on the server: `python3 -c STATUS_SCRIPT <{kind: env file} JSON> <reveal 0|1>`.
# Prints one JSON object {kind: {installed, active, configured, names, url, listening}}; `url` has
# its password replaced by "****" unless reveal is 1. Values other than the URL never leave.
STATUS_SCRIPT = r"""
import json, re, subprocess, sys
import os
files, reveal = json.loads(sys.argv[1]), sys.argv[2] == "1"
only_configured = sys.argv[3:4] == ["configured"]
kinds = {"postgres": ("postgresql", "postgresql", "postgres", "DATABASE_URL"),
         "mysql": ("mariadb-server", "mariadb", "mariadbd", "DATABASE_URL"),
         "redis": ("redis-server", "redis-server", "redis-server", "REDIS_URL")}
def sh(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout
    except OSError:
        return ""
listen = [line.split() for line in sh("ss", "-Hltnp").splitlines()]
out = {}
for kind, (pkg, unit, proc, var) in kinds.items():
    if only_configured and not (kind in files and os.path.exists(files[kind])):
        continue
    info = {"installed": "ok installed" in sh("dpkg-query", "-W", "-f=${Status}", pkg),
            "active": sh("systemctl", "is-active", unit).strip() == "active", "configured": False,
            "names": [], "url": None,
            "listening": sorted({f[3] for f in listen if len(f) > 5 and f'"{proc}"' in f[5]})}
    try:
        text = open(files[kind], encoding="utf-8").read() if kind in files else None
    except FileNotFoundError:
        text = None
    if text is not None:
        env = dict(re.findall(r'^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$', text, re.M))
        info.update(configured=True, names=sorted(env))
        url = env.get(var)
        info["url"] = url if reveal or not url else re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)
    out[kind] = info
print(json.dumps(out))
"""


def status_command(app: str, reveal: bool = False, only_configured: bool = False) -> str:
    """`only_configured`: the kinds the app has credentials for only (what `status` and `audit`
    show; no dpkg-query or systemctl for the others)."""
    import json

    files = json.dumps({kind: Layout(app).db_env(kind) for kind in DB_KINDS})
    return (f"python3 -c {shlex.quote(STATUS_SCRIPT)} {shlex.quote(files)} {'1' if reveal else '0'}"
            + (" configured" if only_configured else ""))


def is_loopback(address: str) -> bool:
    """`127.0.0.1:5432`, `[::1]:6379`: a listening address `ss` prints is on loopback."""
    host = address.rsplit(":", 1)[0].strip("[]").split("%")[0]
    return host.startswith("127.") or host == "::1"
