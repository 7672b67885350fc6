"""The server's layout: every path, file name and unit name lightfold uses on a server, and the one
release-id rule. Standard library only: the on-server agent and the laptop side both import it, so
the two can never disagree about where a thing lives. Nothing else spells these paths.

For app `shop` (it runs as `lf-shop`; its builds run as `lfb-shop`), under a root prefix ("/" on a
server, a temp dir in tests):

    /etc/lightfold/configured                 the seed's server-wide marker (first configure)
    /etc/lightfold/created                    written when lightfold created/adopted the server
    /etc/lightfold/env-hash.key               the server's key of env hashes (0600 root, made by
                                              the agent on first use): a journal's or release.json's
                                              env_hash is an HMAC, so env values can't be guessed
                                              offline from it
    /etc/lightfold/apps/shop/app.json         configure -> agent: user, ports, health, static
    /etc/lightfold/apps/shop/configured       configure's per-app fingerprint marker
    /etc/lightfold/apps/shop/upstream.conf    the agent's: which slot nginx routes to
    /etc/lightfold/apps/shop/db-<kind>.env    `db add`'s connection variables (0600 root, made on the
                                              server); write_env merges them into every snapshot
    /usr/local/lib/lightfold/                 the agent (a package, run as a module)
    /srv/shop/                                the app's home
        releases/<id>/                        one release (id = YYYYMMDDHHMMSS, UTC): the build
                                              user's while it builds, root's once built (sealed),
                                              read-only to the app (immutable)
        releases/.<id>.deps/                  reused dependencies root hard-linked for the build
                                              of <id> (it moves them into place)
            .lightfold/start                  the start script (non-static apps)
            .lightfold/release.json           what the release was made from
            .lightfold/exec                   runs its arguments in the release (PATH, venv, cd):
                                              `lightfold run`
            .lightfold/proc/<name>            the launcher of process <name>
            .lightfold/cron/<name>            the launcher of cron job <name>
        env/<id>.env                          the release's env snapshot (0600 root)
        slots/<blue|green>                    -> ../releases/<id>
        slots/<slot>.names                    names of the slot's env variables
        run/<slot>.env                        the slot's EnvironmentFile (snapshot + PORT)
        current                               -> releases/<id>, the live release
        slots/procs                           -> ../releases/<id>: the release the app's other
                                              processes and cron jobs run (moved after the web
                                              slot passed its health check)
        run/procs.env                         their EnvironmentFile (the snapshot, no PORT)
        storage/<dir>/                        persistent directories (lightfold.toml `storage`),
                                              owned by the app user, linked into every release
        deps/<hash>/                          python venvs per lockfile hash (root's once built)
        cache/                                the app's HOME at run time (writable by the app)
            .lightfold/cron-<job>.lock        a cron job's flock: held by every run of the job (its
                                              timer's, `lightfold run` of its command), so one never
                                              overlaps another (the units' /tmp is private)
        build-cache/                          HOME of builds (package-manager caches; the build user's)
        .lightfold/                           the agent's: journal, audit log, lock, switch intent,
                                              last-op result, build logs, upload temp files
    /etc/systemd/system/lightfold-shop@.service   the slots' template (@blue, @green)
    /etc/systemd/system/lightfold-shop@.service.d/60-dockerfile.conf   the dockerfile builder's
                                              slots: root (no capabilities, no app env) runs
                                              agent/docker_run.py, which starts the container
    /etc/systemd/system/lightfold-shop.proc@.service   the other processes' template (@worker-1, ...)
    /etc/systemd/system/lightfold-shop.cron@.service   the cron jobs' template (@cleanup, ...)
    /etc/systemd/system/lightfold-shop.cron-<job>.timer   one timer per job (the agent writes them)
    /etc/systemd/system/<instance unit>.d/50-lightfold.conf   the agent's per-instance settings
    lightfold-shop.run-<token>.service        transient: one `lightfold run` (systemd-run)
    lightfold-shop.release-<id>.service       transient: a release's release phase (systemd-run)
    lightfold-shop.cron-grace-<job>-<invocation>-<t>.timer/.service   transient: stops a run of <job>
                                              that spans a deploy after its deploy_grace (agent)
    /etc/nginx/sites-enabled/lightfold-shop.conf  the app's nginx site

Server-wide toolchains (shared by every app; not under a root prefix):

    /opt/lightfold/node-<major>/              a Node major from the npm registry, with its own npm
    /opt/lightfold/python-<minor>/            a Python newer than the server's, built from Debian's source
    /opt/lightfold/pm/<pm>-<version>/         pnpm / yarn / bun at the version a project declares
                                              (`<version>` is exact, a major, or "latest")

Inside each of the app's units (PrivateTmp: every unit has its own /tmp):

    /tmp/lightfold-shop/<dir>                 what a framework writes into its tree at run time
                                              (the release links <app_root>/<dir> here; releases
                                              are read-only to the app: lightfold.server.build.SCRATCH)

Server-wide hardening (lightfold.server.firewall, lightfold.server.hardening):

    /etc/lightfold/firewall.nft               the wanted `table inet lightfold` (configure writes it)
    /etc/lightfold/firewall.confirmed.nft     the last table confirmed over a new SSH connection;
                                              lightfold-firewall.service loads it at boot
    /etc/lightfold/firewall.previous.nft      the table before the last apply (what a revert restores)
    /etc/lightfold/firewall-revert.sh         run by the transient lightfold-firewall-revert timer
    /etc/ssh/sshd_config.d/00-lightfold.conf  SSH hardening (first file wins in sshd_config.d)
    /etc/ssh/ssh_host_ed25519_key             a cloud server's host key: the one from user data,
                                              replaced by one made on the server once lightfold
                                              logged in (lightfold.server.hardening.rotate_*)
    /etc/apt/apt.conf.d/52lightfold-security-updates   unattended-upgrades: security origin only

Server-wide databases (lightfold.server.database; each app's credentials are its db-<kind>.env):

    /etc/postgresql/<version>/main/conf.d/lightfold.conf   loopback only, memory settings
    /etc/redis/lightfold.conf                 loopback only, memory settings (included by redis.conf)
    /etc/redis/lightfold-users.acl            the default user off, one user per app (password sha256)
    /etc/redis/lightfold.applied              sha256sum of those files when redis-server last restarted
    /etc/mysql/mariadb.conf.d/90-lightfold.cnf   MariaDB: loopback only, memory settings
    /etc/mysql/lightfold.applied              sha256sum of that file when mariadb last restarted

Backups (lightfold.server.backup; the tool is lightfold.server.backup_tool):

    /etc/lightfold/backup/backup_tool.py      the backup tool (python3, standard library only; its
                                              backup_parts.py beside it)
    /etc/lightfold/apps/shop/backup.json      what to back up and where (paths only)
    /etc/lightfold/apps/shop/backup-recipients.txt   the laptops' age public keys (one a line)
    /etc/lightfold/apps/shop/backup-rclone.conf      the off-server bucket's rclone remote (0600 root)
    /var/backups/lightfold/shop/<id>/         one complete backup (manifest.json + *.age files);
                                              .<id>.partial/ while it is being made
    /etc/systemd/system/lightfold-shop.backup.service / .timer   `backup.schedule`
"""

from __future__ import annotations

import os
import re

ROOT = "/"
ETC = "/etc/lightfold"
APPS_ETC = f"{ETC}/apps"
SERVER_MARKER = f"{ETC}/configured"
CREATED_MARKER = f"{ETC}/created"
ENV_HASH_KEY = f"{ETC}/env-hash.key"
AGENT_DIR = "/usr/local/lib/lightfold"
# The agent is the package AGENT_DIR/agent/, imported by this name.
AGENT_PACKAGE = "agent"
SRV = "/srv"
SYSTEMD_DIR = "/etc/systemd/system"
NGINX_SITES = "/etc/nginx/sites-enabled"
NGINX_SHARED_CONF = "/etc/nginx/conf.d/lightfold.conf"
ACME_ROOT = "/var/www/lightfold-acme"
TOOLS = "/opt/lightfold"

# Server-wide hardening: the firewall (one nftables table of our own), sshd and apt drop-ins.
NFT_FAMILY, NFT_TABLE = "inet", "lightfold"
FIREWALL_NFT = f"{ETC}/firewall.nft"
FIREWALL_CONFIRMED = f"{ETC}/firewall.confirmed.nft"
FIREWALL_PREVIOUS = f"{ETC}/firewall.previous.nft"
FIREWALL_REVERT_SCRIPT = f"{ETC}/firewall-revert.sh"
FIREWALL_UNIT = "lightfold-firewall.service"
FIREWALL_REVERT_UNIT = "lightfold-firewall-revert"  # transient (systemd-run): .timer + .service
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-lightfold.conf"
# The host key a cloud server offers (the only one: lightfold's #cloud-config deletes the others).
SSH_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
UNATTENDED_CONF = "/etc/apt/apt.conf.d/52lightfold-security-updates"
REBOOT_REQUIRED = "/var/run/reboot-required"
# `apt-get -s dist-upgrade` as of apt's last update, written by an apt hook: `status` reads it
# (running apt-get there costs seconds on a small server); `audit` asks apt itself.
PENDING_UPDATES_HOOK = "/etc/apt/apt.conf.d/99lightfold-pending-updates"
PENDING_UPDATES = "/var/lib/lightfold/pending-updates"

# The load balancer's server (`lightfold scale`): HAProxy from the OS archive.
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
HAPROXY_SOCKET = "/run/haproxy/admin.sock"  # Debian's stats socket path (level admin)
HAPROXY_STATE = "/var/lib/haproxy/server-state"

PG_ETC = "/etc/postgresql"
REDIS_CONF = "/etc/redis/redis.conf"
REDIS_DROPIN = "/etc/redis/lightfold.conf"
REDIS_ACL = "/etc/redis/lightfold-users.acl"
REDIS_APPLIED = "/etc/redis/lightfold.applied"  # sha256sum of the files redis-server last restarted with
MARIADB_DROPIN = "/etc/mysql/mariadb.conf.d/90-lightfold.cnf"  # read after Debian's 50-server.cnf
MARIADB_APPLIED = "/etc/mysql/lightfold.applied"  # sha256sum of the drop-in mariadb last restarted with


BACKUP_DIR = f"{ETC}/backup"  # the tool: backup_tool.py + backup_parts.py
BACKUP_TOOL = f"{BACKUP_DIR}/backup_tool.py"
BACKUPS = "/var/backups/lightfold"


def pg_dropin(version: str) -> str:
    """lightfold's settings file of the PostgreSQL cluster `version`/main (Debian includes conf.d)."""
    return f"{PG_ETC}/{version}/main/conf.d/lightfold.conf"


SLOTS = ("blue", "green")
# The databases `lightfold db add` puts beside an app (lightfold.server.database).
# "mysql" is MariaDB (Debian's mariadb-server); `mariadb` is accepted as its other name.
DB_KINDS = ("postgres", "mysql", "redis")
# The meta directory inside a release and inside an app's home.
META = ".lightfold"

# A release id is the UTC time it was made, to the second: 14 ASCII digits and nothing else (a
# full match: no trailing newline, no unicode digits).
RELEASE_ID_RE = re.compile(r"[0-9]{14}", re.ASCII)
APP_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
# An environment variable's name, as systemd's EnvironmentFile and POSIX shells read one.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


# A process or cron job name (lightfold.toml `[processes.<name>]`, `[cron.<name>]`, a Procfile
# line): it becomes part of unit names and file names. No '-' (a process instance is
# `<name>-<n>`), at most 30 characters.
PROCESS_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,29}", re.ASCII)


def is_process_name(value: object) -> bool:
    return isinstance(value, str) and PROCESS_NAME_RE.fullmatch(value) is not None


def is_release_id(value: object) -> bool:
    return isinstance(value, str) and RELEASE_ID_RE.fullmatch(value) is not None


def is_app_name(value: object) -> bool:
    return isinstance(value, str) and APP_NAME_RE.fullmatch(value) is not None


def is_env_name(value: object) -> bool:
    return isinstance(value, str) and ENV_NAME_RE.fullmatch(value) is not None


def other_slot(slot: str | None) -> str:
    return "green" if slot == "blue" else "blue"


def unit_prefix(app: str) -> str:
    return f"lightfold-{app}"


def unit_name(app: str, slot: str | None = None) -> str:
    """`lightfold-<app>@<slot>.service`, or the template `lightfold-<app>@.service`."""
    return f"{unit_prefix(app)}@{slot or ''}.service"


def proc_unit(app: str, instance: str | None = None) -> str:
    """`lightfold-<app>.proc@<name>-<n>.service` (one instance of a process), or the template.
    The '.' cannot occur in an app name, so no app's slot unit can collide with another's."""
    return f"{unit_prefix(app)}.proc@{instance or ''}.service"


def proc_instance(name: str, n: int) -> str:
    return f"{name}-{n}"


def cron_unit(app: str, job: str | None = None) -> str:
    """`lightfold-<app>.cron@<job>.service` (a run of a cron job), or the template."""
    return f"{unit_prefix(app)}.cron@{job or ''}.service"


def cron_timer(app: str, job: str) -> str:
    """`lightfold-<app>.cron-<job>.timer`, which starts `cron_unit(app, job)`."""
    return f"{unit_prefix(app)}.cron-{job}.timer"


# The token of a `lightfold run` unit: random hex the laptop makes (to stop the unit on Ctrl-C).
RUN_TOKEN_RE = re.compile(r"[0-9a-f]{8,32}", re.ASCII)


def run_unit(app: str, token: str) -> str:
    """`lightfold-<app>.run-<token>.service`: the transient unit of one `lightfold run`."""
    if not RUN_TOKEN_RE.fullmatch(token):
        raise ValueError(f"not a run token: {token!r}")
    return f"{unit_prefix(app)}.run-{token}.service"


# The exit status of a cron run that found its job's flock (`Layout.cron_lock`) held, EX_TEMPFAIL:
# the cron unit counts it a success (SuccessExitStatus), `status` shows the run as "skipped", and
# `lightfold run` of the job's command exits with it.
CRON_LOCKED_EXIT = 75

# A unit's InvocationID (systemd: 128 bits as 32 lowercase hex digits).
INVOCATION_ID_RE = re.compile(r"[0-9a-f]{32}", re.ASCII)


def cron_grace_unit(app: str, job: str, invocation: str, token: int) -> str:
    """`lightfold-<app>.cron-grace-<job>-<invocation>-<token>`: the transient timer + service
    (systemd-run, no suffix) that stops run `invocation` of cron job `job` once its deploy grace is
    over. `token` (the move's time) makes each move's name new: a run can span several moves, and
    an elapsed stopper's units may linger."""
    if not is_process_name(job) or not INVOCATION_ID_RE.fullmatch(invocation) or not isinstance(token, int):
        raise ValueError(f"not a cron job, invocation id and token: {job!r} {invocation!r} {token!r}")
    return f"{unit_prefix(app)}.cron-grace-{job}-{invocation}-{token}"


def backup_unit(app: str, suffix: str | None = "service") -> str:
    """`lightfold-<app>.backup.service` (one scheduled backup), its `.timer`, or (suffix None) the
    name both share."""
    return f"{unit_prefix(app)}.backup" + (f".{suffix}" if suffix else "")


def release_unit(app: str, rid: str) -> str:
    """`lightfold-<app>.release-<id>.service`: the transient unit of a release's release phase
    (storage dirs, the release command), confined like the app (lightfold.server.build)."""
    if not is_release_id(rid):
        raise ValueError(f"not a release id: {rid!r}")
    return f"{unit_prefix(app)}.release-{rid}.service"


def unit_instance(app: str, slot: str) -> str:
    """`lightfold-<app>@<slot>` (how status names a slot's unit, without the suffix)."""
    return f"{unit_prefix(app)}@{slot}"


def op_unit(op: str, app: str) -> str:
    """The transient unit a detached agent op runs in: `lightfold-<op>-<app>`."""
    return f"lightfold-{op}-{app}"


def nginx_site(app: str) -> str:
    return f"{NGINX_SITES}/{unit_prefix(app)}.conf"


def nginx_upstream_name(app: str) -> str:
    return "lightfold_" + app.replace("-", "_")


def image_name(app: str) -> str:
    """The docker image repository of an app's releases (tag = release id)."""
    return unit_prefix(app)


def node_prefix(major: str) -> str:
    """Where a Node major from the npm registry is installed (its bin/ holds node and npm)."""
    return f"{TOOLS}/node-{major}"


def python_prefix(minor: str) -> str:
    """Where a Python newer than the server's (minor: '3.13') is installed: bin/python<minor>."""
    if not re.fullmatch(r"3\.\d{1,2}", minor, re.ASCII):
        raise ValueError(f"not a Python minor version: {minor!r}")
    return f"{TOOLS}/python-{minor}"


# What may name a package manager's version in a path and a shell word: 9.15.0, 10, latest, 4.0.0-rc.1.
PM_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,63}", re.ASCII)


def pm_prefix(pm: str, version: str | None) -> str:
    """Where package manager `pm` at `version` (None: the newest) is installed."""
    version = version or "latest"
    if not PM_VERSION_RE.fullmatch(version):
        raise ValueError(f"not a package-manager version: {version!r}")
    return f"{TOOLS}/pm/{pm}-{version}"


def scratch_root(app: str) -> str:
    """The app's run-time scratch dir, in a unit's private /tmp (not under a root prefix)."""
    return f"/tmp/lightfold-{app}"


def agent_entry(parent: str = AGENT_DIR, package: str = AGENT_PACKAGE) -> str:
    """Python code (for `python3 -c`) that runs the agent package found in directory `parent`.
    Imported rather than run as a script: Python keeps the modules' bytecode in __pycache__, so a
    call does not compile ~1,800 lines first (~30 ms of each agent call)."""
    return f"import sys; sys.path.insert(0, {parent!r}); from {package}.main import main; sys.exit(main())"


def agent_path(name: str = "", root: str = ROOT) -> str:
    return _under(root, AGENT_DIR, name) if name else _under(root, AGENT_DIR)


def _under(root: str, *parts: str) -> str:
    """`parts` joined below `root` (absolute parts are taken relative to it)."""
    return os.path.join(root, *(p.lstrip("/") for p in parts if p))


class Layout:
    """Every path of one app, under a root prefix."""

    def __init__(self, app: str, root: str = ROOT):
        self.app = app
        self.root = root
        self.etc = _under(root, APPS_ETC, app)
        self.srv_root = _under(root, SRV)
        self.srv = os.path.join(self.srv_root, app)
        self.meta = os.path.join(self.srv, META)

    home = property(lambda self: self.srv)
    app_json = property(lambda self: os.path.join(self.etc, "app.json"))
    marker = property(lambda self: os.path.join(self.etc, "configured"))
    env_hash_key = property(lambda self: _under(self.root, ENV_HASH_KEY))
    upstream = property(lambda self: os.path.join(self.etc, "upstream.conf"))
    releases_dir = property(lambda self: os.path.join(self.srv, "releases"))
    env_dir = property(lambda self: os.path.join(self.srv, "env"))
    slots_dir = property(lambda self: os.path.join(self.srv, "slots"))
    run_dir = property(lambda self: os.path.join(self.srv, "run"))
    deps_dir = property(lambda self: os.path.join(self.srv, "deps"))
    cache_dir = property(lambda self: os.path.join(self.srv, "cache"))
    build_cache_dir = property(lambda self: os.path.join(self.srv, "build-cache"))
    current = property(lambda self: os.path.join(self.srv, "current"))
    procs_link = property(lambda self: os.path.join(self.slots_dir, "procs"))
    procs_env = property(lambda self: os.path.join(self.run_dir, "procs.env"))
    storage_dir = property(lambda self: os.path.join(self.srv, "storage"))
    journal = property(lambda self: os.path.join(self.meta, "releases.json"))
    audit_log = property(lambda self: os.path.join(self.meta, "audit.log"))
    lock = property(lambda self: os.path.join(self.meta, "lock"))
    lock_guard = property(lambda self: os.path.join(self.meta, "lock.guard"))
    switch_lock = property(lambda self: os.path.join(self.meta, "switch.lock"))
    switch_intent = property(lambda self: os.path.join(self.meta, "switch.json"))
    last_op = property(lambda self: os.path.join(self.meta, "last-op.json"))
    builds_dir = property(lambda self: os.path.join(self.meta, "builds"))
    unit_file = property(lambda self: _under(self.root, SYSTEMD_DIR, unit_name(self.app)))
    docker_dropin = property(lambda self: _under(self.root, SYSTEMD_DIR, f"{unit_name(self.app)}.d",
                                                 "60-dockerfile.conf"))
    proc_unit_file = property(lambda self: _under(self.root, SYSTEMD_DIR, proc_unit(self.app)))
    cron_unit_file = property(lambda self: _under(self.root, SYSTEMD_DIR, cron_unit(self.app)))
    nginx_site = property(lambda self: _under(self.root, nginx_site(self.app)))

    def release(self, rid: str) -> str:
        return os.path.join(self.releases_dir, rid)

    def release_meta(self, rid: str) -> str:
        return os.path.join(self.release(rid), META)

    def release_info(self, rid: str) -> str:
        return os.path.join(self.release_meta(rid), "release.json")

    def start_script(self, rid: str) -> str:
        return os.path.join(self.release_meta(rid), "start")

    def exec_script(self, rid: str) -> str:
        return os.path.join(self.release_meta(rid), "exec")

    def proc_script(self, rid: str, name: str) -> str:
        return os.path.join(self.release_meta(rid), "proc", name)

    def cron_script(self, rid: str, name: str) -> str:
        return os.path.join(self.release_meta(rid), "cron", name)

    def cron_lock(self, job: str) -> str:
        """The flock of cron job `job`, in the app's HOME: the one place every unit of the app
        may write (ReadWritePaths) that is not private to the unit (/tmp is)."""
        return os.path.join(self.cache_dir, META, f"cron-{job}.lock")

    def cron_timer_file(self, job: str) -> str:
        return _under(self.root, SYSTEMD_DIR, cron_timer(self.app, job))

    def unit_dropin(self, unit: str) -> str:
        """lightfold's drop-in of one unit instance (a process's stop timeout, a cron job's limit)."""
        return _under(self.root, SYSTEMD_DIR, f"{unit}.d", "50-lightfold.conf")

    def storage(self, subdir: str) -> str:
        """A persistent directory (`subdir` is relative to the app root, already checked)."""
        return os.path.join(self.storage_dir, subdir)

    def env_file(self, rid: str) -> str:
        return os.path.join(self.env_dir, f"{rid}.env")

    def db_env(self, kind: str) -> str:
        """The root-only env file of database `kind` (one of DB_KINDS) for this app."""
        return os.path.join(self.etc, f"db-{kind}.env")

    # a target on several servers: its servers and load balancer, kept on the primary for `sync`
    servers_record = property(lambda self: os.path.join(self.etc, "servers.json"))
    backup_spec = property(lambda self: os.path.join(self.etc, "backup.json"))
    backup_recipients = property(lambda self: os.path.join(self.etc, "backup-recipients.txt"))
    backup_rclone = property(lambda self: os.path.join(self.etc, "backup-rclone.conf"))
    backup_known_hosts = property(lambda self: os.path.join(self.etc, "backup-known_hosts"))  # an sftp:// remote's
    backups_dir = property(lambda self: _under(self.root, BACKUPS, self.app))

    def backup_unit_file(self, suffix: str = "service") -> str:
        return _under(self.root, SYSTEMD_DIR, backup_unit(self.app, suffix))

    def slot_link(self, slot: str) -> str:
        return os.path.join(self.slots_dir, slot)

    def run_env(self, slot: str) -> str:
        return os.path.join(self.run_dir, f"{slot}.env")

    def slot_names(self, slot: str) -> str:
        return os.path.join(self.slots_dir, f"{slot}.names")

    def deps(self, key: str) -> str:
        return os.path.join(self.deps_dir, key)

    def deps_stage(self, rid: str) -> str:
        """Where root hard-links the reused dependencies of release `rid` for its build to move
        into place (not a release id: nothing lists it as a release)."""
        return os.path.join(self.releases_dir, f".{rid}.deps")

    def build_log(self, rid: str) -> str:
        return os.path.join(self.builds_dir, f"{rid}.log")

    def upload_archive(self, rid: str) -> str:
        return os.path.join(self.meta, f"upload-{rid}.tar.gz")

    def relative(self, path: str) -> str:
        """`path` relative to the root prefix ('srv/shop/...'), for commands run from '/'."""
        return os.path.relpath(path, self.root)
