"""Issue 13, a compromised app: two apps on one sandbox machine (Node with hard-linked node_modules,
Flask with a shared venv), each deployed twice. Acting as one app's own user — with plain
`runuser` (what ownership and modes allow) and inside the app's sandbox (`lightfold run`, the
unit's settings) — it tries to create, change, rename and delete files in its live release, its
older release (a rollback target), its dependencies, the agent (/usr/local/lib/lightfold), another
app's directories and lightfold's unit files, and to reach the cloud metadata address: every
attempt fails, nothing there changes, the live releases keep serving, and the places the app is
given (its storage, its HOME, its /tmp) stay writable. A server whose releases an earlier version
left app-owned is converted by the next configure.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tests.e2e.apps import commit, get, install_example, set_python_message

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

# Run by the app's user with a JSON argument {"files": [...], "dirs": [...], "writable": [...],
# "metadata": bool}; prints {"succeeded": [what the user could do and must not], "refused": n,
# "not_writable": [given places it could not write], "metadata": errno name or "connected"}.
ATTACK = r"""
import errno, json, os, socket, sys
t = json.loads(sys.argv[1])
ok, refused, not_writable = [], 0, []
def attempt(what, fn):
    global refused
    try:
        fn()
    except OSError:
        refused += 1
    else:
        ok.append(what)
for f in t["files"]:
    st = os.lstat(f)
    attempt(f"open for writing {f}", lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)))
    attempt(f"chmod {f}", lambda: os.chmod(f, st.st_mode & 0o7777, follow_symlinks=False))
    attempt(f"touch {f}", lambda: os.utime(f, None, follow_symlinks=False))
    attempt(f"rename {f}", lambda: (os.rename(f, f + ".lf-attack"), os.rename(f + ".lf-attack", f)))
    attempt(f"delete {f}", lambda: os.unlink(f))
for d in t["dirs"]:
    p = os.path.join(d, ".lf-attack")
    attempt(f"create a file in {d}", lambda: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)))
    attempt(f"create a dir in {d}", lambda: os.mkdir(p + "-dir"))
    attempt(f"plant a symlink in {d}", lambda: os.symlink("/etc/passwd", p + "-link"))
    attempt(f"chmod {d}", lambda: os.chmod(d, 0o777))
    attempt(f"rename {d}", lambda: (os.rename(d, d + ".lf-attack"), os.rename(d + ".lf-attack", d)))
for f in t.get("linked", []):  # its own file, a hard link to an older release's: the inode is not its
    attempt(f"open for writing {f}", lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)))
    attempt(f"chmod {f}", lambda: os.chmod(f, 0o666, follow_symlinks=False))
    attempt(f"touch {f}", lambda: os.utime(f, None, follow_symlinks=False))
for d in t["writable"]:
    p = os.path.join(d, ".lf-given")
    try:
        with open(p, "w") as f:
            f.write("x")
        os.unlink(p)
    except OSError as e:
        not_writable.append(f"{d}: {e}")
out = {"succeeded": ok, "refused": refused, "not_writable": not_writable}
if t["metadata"]:
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("169.254.169.254", 80))
        out["metadata"] = "connected"
    except OSError as e:
        out["metadata"] = errno.errorcode.get(e.errno, "timeout") if e.errno else "timeout"
print(json.dumps(out))
"""

# Run by the build (the project's build command, as the build user, in the release being built):
# the targets of ATTACK in the app's other releases (the live one and the rollback target) and in
# its own hard-linked node_modules.
BUILD_TARGETS = r"""
import glob, json, os
me = os.path.realpath(".")
home = os.path.dirname(os.path.dirname(me))
others = sorted(r for r in glob.glob(home + "/releases/[0-9]*") if os.path.realpath(r) != me)
files, dirs = [], []  # (deps/ itself is where the build makes a new venv: its to write, by design)
for r in others:
    files += [r + "/.lightfold/start", r + "/.lightfold/release.json", r + "/server.js",
              r + "/node_modules/express/package.json"]
    dirs += [r, r + "/.lightfold", r + "/node_modules", r + "/node_modules/express"]
print(json.dumps({"files": files, "dirs": dirs, "linked": [me + "/node_modules/express/package.json"],
                  "writable": [me], "metadata": False, "others": others}))
"""


# The Flask app's release command: what it may write (storage) and what it may not (its release).
MIGRATE = """import os
seen = [f"uid={os.getuid()}"]
try:
    open("app.py", "a").close()
    seen.append("wrote-its-release")
except OSError:
    seen.append("release-read-only")
with open("data/migrated", "a") as f:
    f.write(" ".join(seen) + "\\n")
"""


# What must not change while the apps are attacked (paths, sizes, modes, owners, mtimes).
def snapshot(sb, dirs: list[str]) -> str:
    return sb.exec(f"find {' '.join(dirs)} -printf '%p %s %m %U %T@\\n' | sort | sha256sum").stdout


def live_release(sb, app: str) -> str:
    return sb.exec(f"readlink /srv/{app}/current").stdout.strip().rsplit("/", 1)[-1]


def releases(sb, app: str) -> list[str]:
    return sorted(sb.exec(f"ls /srv/{app}/releases").stdout.split())


def first_file(sb, root: str, pattern: str) -> str:
    path = sb.exec(f"find {root} -path '{pattern}' -type f | sort | head -n 1").stdout.strip()
    assert path, f"no {pattern} under {root}"
    return path


@pytest.fixture(scope="module")
def apps(shared_sandbox):
    sb = shared_sandbox
    node = sb.target
    install_example(sb.project, "node-express")
    (sb.project / "lightfold.toml").write_text('storage = ["uploads"]\n')
    commit(sb.project, "storage")
    sb.lightfold("deploy", "--target", node, "--json", timeout=900)
    (sb.project / "message.json").write_text(json.dumps({"text": "node v2"}) + "\n")
    commit(sb.project, "v2")
    second = json.loads(sb.lightfold("deploy", "--target", node, "--json", timeout=600).stdout)
    assert second["push"]["build"] == "deps-reused"  # node_modules hard-linked from the older release

    # a second app on the same machine: its own (byos) target
    py = f"{node}-py"[:31]
    project = sb.root / "flask"
    project.mkdir()
    install_example(project, "python-flask")
    (project / "lightfold.toml").write_text('storage = ["data"]\nrelease = "python migrate.py"\n')
    (project / "migrate.py").write_text(MIGRATE)
    commit(project, "storage and a release command")
    local = sb.config()["targets"][node]["provider_config"]["local"]
    sb.lightfold("create", "--target", py, "--provider", "byos", "--ip", local["ip"],
                 "--ssh-key", local["ssh_key"], str(project))
    sb.lightfold("config", "set", "domain.domain", "py.trust.test", "-t", py)
    sb.lightfold("config", "set", "domain.ssl", "false", "-t", py)
    sb.lightfold("deploy", "--target", py, "--json", str(project), timeout=900)
    set_python_message(project, "python v2")
    sb.lightfold("deploy", "--target", py, "--json", str(project), timeout=600)
    return SimpleNamespace(sb=sb, node=node, py=py, py_project=project)


def serving(a) -> None:
    assert get(a.sb.ip) == (200, b"node v2\n")
    assert get(a.sb.ip, host="py.trust.test") == (200, b"python v2\n")


def attack_targets(a, app: str, other: str) -> dict:
    sb = a.sb
    live, older = live_release(sb, app), [r for r in releases(sb, app) if r != live_release(sb, app)]
    assert older, releases(sb, app)
    rel = f"/srv/{app}/releases"
    files, dirs = [], [rel, f"/srv/{app}/deps", f"/srv/{app}", "/usr/local/lib/lightfold",
                       "/usr/local/lib/lightfold/agent", f"/srv/{other}", f"/srv/{other}/releases"]
    for rid in (live, older[-1]):
        files += [f"{rel}/{rid}/.lightfold/release.json", f"{rel}/{rid}/.lightfold/start"]
        dirs += [f"{rel}/{rid}", f"{rel}/{rid}/.lightfold"]
    if app == a.node:
        dep = first_file(sb, f"{rel}/{live}/node_modules/express", "*/express/package.json")
        files += [f"{rel}/{live}/server.js", dep]
        dirs += [f"{rel}/{live}/node_modules", dep.rsplit("/", 1)[0]]
    else:
        dep = first_file(sb, f"/srv/{app}/deps", "*/site-packages/flask/__init__.py")
        files += [f"{rel}/{live}/app.py", dep]
        dirs += [dep.rsplit("/", 1)[0]]
    other_live = live_release(sb, other)
    files += [f"/srv/{other}/releases/{other_live}/.lightfold/start",
              f"/srv/{other}/releases/{other_live}/.lightfold/release.json",
              "/usr/local/lib/lightfold/agent/main.py", f"/etc/systemd/system/lightfold-{app}@.service",
              f"/etc/lightfold/apps/{app}/app.json"]
    dirs += [f"/srv/{other}/releases/{other_live}", f"/srv/{other}/deps", f"/srv/{other}/cache",
             f"/etc/lightfold/apps/{app}", "/etc/systemd/system"]
    storage = "uploads" if app == a.node else "data"
    return {"files": files, "dirs": dirs, "writable": [f"/srv/{app}/storage/{storage}", f"/srv/{app}/cache", "/tmp"]}


def protected(a) -> list[str]:
    return [f"/srv/{x}/{d}" for x in (a.node, a.py) for d in ("releases", "deps")] + ["/usr/local/lib/lightfold"]


@pytest.mark.parametrize("who", ["node", "py"])
def test_the_apps_own_user_can_change_no_release_no_deps_no_agent_and_no_other_app(apps, who):
    """Plain runuser: only ownership and modes stand between the app's user and the files."""
    a = apps
    app, other = (a.node, a.py) if who == "node" else (a.py, a.node)
    before = snapshot(a.sb, protected(a))
    targets = {**attack_targets(a, app, other), "metadata": False}
    r = a.sb.exec(["runuser", "-u", f"lf-{app}", "--", "python3", "-c", ATTACK, json.dumps(targets)], check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["succeeded"] == [], out["succeeded"]
    assert out["refused"] == 5 * len(targets["files"]) + 5 * len(targets["dirs"])
    assert out["not_writable"] == []
    assert snapshot(a.sb, protected(a)) == before
    serving(a)


@pytest.mark.parametrize("who", ["node", "py"])
def test_inside_its_sandbox_the_app_writes_only_what_it_is_given(apps, who):
    """`lightfold run`: the app unit's own settings (User=, ProtectSystem=strict, ReadWritePaths)
    on top of the ownership."""
    a = apps
    app, other = (a.node, a.py) if who == "node" else (a.py, a.node)
    before = snapshot(a.sb, protected(a))
    targets = {**attack_targets(a, app, other), "metadata": False}
    r = a.sb.lightfold("run", "--target", app, "--", "python3", "-c", ATTACK, json.dumps(targets), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["succeeded"] == [], out["succeeded"]
    assert out["not_writable"] == []
    assert snapshot(a.sb, protected(a)) == before
    serving(a)


def test_the_app_units_deny_the_metadata_address(apps):
    """A cloud's metadata address is denied to the app's units (IPAddressDeny, as systemd loaded
    them, web and `lightfold run` alike). Enforcement itself cannot be shown here: inside a
    systemd-nspawn machine systemd cannot attach its cgroup BPF firewall, so connect() behaves as
    outside the unit (measured); on a VM the kernel refuses it with EPERM."""
    sb = apps.sb
    units = sb.exec(f"systemctl list-units 'lightfold-{apps.node}@*' --state=active --plain --no-legend").stdout
    unit = units.split()[0]
    denied = sb.exec(f"systemctl show -p IPAddressDeny --value {unit}").stdout.split()
    assert any(d.split("/")[0] == "169.254.169.254" for d in denied), denied
    from lightfold.server.app import sandbox_properties

    assert "IPAddressDeny=169.254.169.254" in sandbox_properties(apps.node)  # what `run` passes to systemd-run


def test_releases_and_deps_are_roots_and_sealed(apps):
    """Once built, a release and its deps are root's (the build user owns only the release it
    builds), with no group/other write bit; the releases/ and deps/ dirs are root's, writable by
    the build user's group and sticky (it makes new entries there, and can't rename sealed ones)."""
    a = apps
    for app in (a.node, a.py):
        for d in ("releases", "deps"):
            wrong = a.sb.exec(f"find /srv/{app}/{d} -mindepth 1 \\( ! -user root -o \\( ! -type l -perm /6022 \\) \\) "
                              "-printf '%p %u %m\\n' | head -n 5").stdout
            assert wrong == "", wrong
            assert a.sb.exec(f"stat -c '%U %G %a' /srv/{app}/{d}").stdout.split() == ["root", f"lfb-{app}", "1775"]
        # what the app writes at run time lives outside: nothing of lf-<app> in the code
        assert a.sb.exec(f"find /srv/{app}/releases /srv/{app}/deps -user lf-{app} | head -n 1").stdout == ""
        assert a.sb.exec(f"stat -c '%U %a' /srv/{app}/cache /srv/{app}/storage").stdout.split() == [
            f"lf-{app}", "700", f"lf-{app}", "750"]


def test_the_release_command_runs_as_the_app_user_confined_and_writes_only_storage(apps):
    a = apps
    uid = a.sb.exec(f"id -u lf-{a.py}").stdout.strip()
    runs = a.sb.exec(f"cat /srv/{a.py}/storage/data/migrated").stdout.splitlines()
    assert runs == [f"uid={uid} release-read-only"] * 2, runs  # one per release, never root, never the code
    units = a.sb.exec(f"systemctl list-units --all --no-legend 'lightfold-{a.py}.release-*'").stdout
    assert units.strip() == "", units  # collected: nothing of it keeps running


def test_an_earlier_versions_app_owned_releases_are_converted_by_the_next_configure(apps):
    """Before immutable releases the app user owned its releases and venvs: configure makes them
    root's without stopping the app; a second configure changes nothing."""
    a = apps
    app = a.py
    a.sb.exec(f"chown -R lf-{app}:lf-{app} /srv/{app}/releases /srv/{app}/deps"
              f" && chmod -R g+w /srv/{app}/releases/{live_release(a.sb, app)}")
    def writable_findings():
        out = a.sb.lightfold("audit", "--target", app, "--json", check=False, timeout=120)
        return [f for f in json.loads(out.stdout)["findings"] if "writable by its user" in f["message"]]

    (found,) = writable_findings()
    assert found["severity"] == "high" and found["subject"].startswith(f"/srv/{app}/"), found
    first = a.sb.lightfold("configure", "--target", app, "--force", "--json", str(a.py_project), timeout=600)
    assert "app-user" in json.loads(first.stdout)["changed"], first.stdout
    assert f"releases and deps: root's, read-only to lf-{app} and lfb-{app}" in first.stderr
    left = a.sb.exec(f"find /srv/{app}/releases /srv/{app}/deps -mindepth 1"
                     f" \\( -user lf-{app} -o \\( ! -type l -perm /022 \\) \\) | head -n 3").stdout
    assert left == "", left
    owners = a.sb.exec(f"stat -c '%U %a' /srv/{app}/releases /srv/{app}/deps").stdout.split("\n")
    assert [o.split()[0] for o in owners if o] == ["root", "root"], owners  # sticky, for the build user's group
    assert writable_findings() == []
    serving(a)
    again = a.sb.lightfold("configure", "--target", app, "--force", "--json", str(a.py_project), timeout=600)
    assert "app-user" in json.loads(again.stdout)["unchanged"], again.stdout
    # and the app deploys on it as before (an env-only copy, by root, of a root's release)
    a.sb.lightfold("config", "set", "deploy.env_vars.TRUST", "1", "-t", app)
    data = json.loads(a.sb.lightfold("deploy", "--target", app, "--json", str(a.py_project), timeout=600).stdout)
    assert data["push"]["build"] == "env-only", data
    assert get(a.sb.ip, "/env/TRUST", host="py.trust.test") == (200, b"1")
    serving(a)


def test_a_build_cannot_change_the_live_release_an_older_one_or_the_deps_they_share(apps):
    """issue 13: builds run as the build user, and so does a hostile dependency's install script.
    A build whose build command attacks the app's other releases (the live one, the rollback
    target: files, dirs, their node_modules) and the hard-linked node_modules it reused: every
    attempt fails, nothing there changes, and the release it builds deploys and serves."""
    a = apps
    sb, app = a.sb, a.node
    before_releases = releases(sb, app)
    kept = [f"/srv/{app}/releases/{r}" for r in before_releases] + [f"/srv/{app}/deps"]
    before = snapshot(sb, kept)
    (sb.project / "lf_targets.py").write_text(BUILD_TARGETS)
    (sb.project / "lf_attack.py").write_text(ATTACK)
    (sb.project / "lightfold.toml").write_text(
        'storage = ["uploads"]\n'
        'build = "python3 lf_targets.py > lf-targets.json && python3 lf_attack.py \\"$(cat lf-targets.json)\\"'
        ' > build-attack.json"\n')
    commit(sb.project, "a hostile build")
    data = json.loads(sb.lightfold("deploy", "--target", app, "--json", timeout=600).stdout)
    assert data["push"]["build"] == "deps-reused", data  # node_modules hard-linked from the live release
    new = data["push"]["release"]
    targets = json.loads(sb.exec(f"cat /srv/{app}/releases/{new}/lf-targets.json").stdout)
    assert len(targets["others"]) == len(before_releases) >= 2, targets["others"]
    out = json.loads(sb.exec(f"cat /srv/{app}/releases/{new}/build-attack.json").stdout)
    assert out["succeeded"] == [], out["succeeded"]
    assert out["refused"] == 5 * len(targets["files"]) + 5 * len(targets["dirs"]) + 3 * len(targets["linked"])
    assert out["not_writable"] == []  # its own release was its to write while it was built
    assert snapshot(sb, kept) == before
    assert live_release(sb, app) == new
    serving(a)


# Stands in for every command a root process might look up on a hostile PATH: notes who ran it
# (uid) in the machine's /tmp, then runs the real one.
WRAPPER = """#!/bin/sh
echo "$(id -u) $0" >> /tmp/lf-hostile-ran
n=$(basename "$0")
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do [ -x "$d/$n" ] && exec "$d/$n" "$@"; done
exit 127
"""
WRAPPED = ("runuser", "sh", "bash", "python3", "env", "cat", "cp", "mv", "chown", "systemd-run", "systemctl", "tar")


def test_a_hostile_project_reaches_nothing_of_roots(apps):
    """issue 13, a hostile project: its .env puts its own directory first on PATH (wrappers of
    the commands root runs) and sets LD_PRELOAD; its .lightfold/ ships a symlink where root used
    to write on an env-only deploy; a quoted .env name holds a newline. The deploys go live, no
    wrapper ever ran as root, nothing was written through the symlink, and the newline name is
    refused naming the .env file while the live release keeps serving."""
    a = apps
    sb, app, project = a.sb, a.py, a.py_project
    sb.exec("rm -f /tmp/lf-hostile-ran /tmp/lf-hostile-target")
    evil = project / "evil"
    evil.mkdir()
    for name in WRAPPED:
        (evil / name).write_text(WRAPPER)
        (evil / name).chmod(0o755)
    (project / ".lightfold").mkdir(exist_ok=True)
    (project / ".lightfold" / "release.json.new").symlink_to("/tmp/lf-hostile-target")
    hostile_path = f"/srv/{app}/current/evil:evil:/usr/local/bin:/usr/bin:/bin"
    (project / ".env").write_text(f"PATH={hostile_path}\nLD_PRELOAD=/srv/{app}/current/evil/none.so\nHOSTILE=1\n")
    commit(project, "a hostile project")
    first = json.loads(sb.lightfold("deploy", "--target", app, "--json", str(project), timeout=600).stdout)
    (project / ".env").write_text(f"PATH={hostile_path}\nLD_PRELOAD=/srv/{app}/current/evil/none.so\nHOSTILE=2\n")
    second = json.loads(sb.lightfold("deploy", "--target", app, "--json", str(project), timeout=600).stdout)
    assert second["push"]["build"] == "env-only", second  # root copies the release and rewrites its release.json
    assert get(sb.ip, "/env/HOSTILE", host="py.trust.test") == (200, b"2")
    ran = sb.exec("cat /tmp/lf-hostile-ran 2>/dev/null || true").stdout.split("\n")
    assert not [line for line in ran if line.startswith("0 ")], ran  # the build user's may; root's never
    assert sb.exec("test -e /tmp/lf-hostile-target || test -L /tmp/lf-hostile-target", check=False).returncode == 1
    rel = f"/srv/{app}/releases/{second['push']['release']}/.lightfold/release.json"
    assert sb.exec(f"test -f {rel} && ! test -L {rel}", check=False).returncode == 0
    assert first["push"]["release"] != second["push"]["release"]

    (project / ".env").write_text("'HOSTILE\nLD_PRELOAD'=/tmp/x.so\n")
    refused = sb.lightfold("deploy", "--target", app, "--json", str(project), timeout=600, check=False)
    said = " ".join(refused.stderr.split())
    assert refused.returncode != 0 and f"{project / '.env'} has 'HOSTILE\\nLD_PRELOAD'" in said, said
    assert get(sb.ip, "/env/HOSTILE", host="py.trust.test") == (200, b"2")
    # back to the project the other tests know
    (project / ".env").unlink()
    (project / ".lightfold" / "release.json.new").unlink()
    for name in WRAPPED:
        (evil / name).unlink()
    evil.rmdir()
    commit(project, "the hostile parts removed")
    sb.lightfold("deploy", "--target", app, "--json", str(project), timeout=600)
    serving(a)


def test_nothing_was_left_by_the_attacks(apps):
    left = apps.sb.exec("find /srv /usr/local/lib/lightfold /etc -xdev -name '.lf-attack*' | head -n 3").stdout
    assert left == "", left
