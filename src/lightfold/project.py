"""The local project: its git state, the files a release ships, the release archive, its env.

    git_state(project) -> GitState(is_repo, commit, dirty)
    project_files(project, storage=()) -> list[str]   what ships (sorted, relative, '/'-separated)
    build_archive(project, dest, files=None, storage=()) -> Archive(path, sha256, size, files)
    load_dotenv(path) -> dict[str, str]            python-dotenv, interpolate=False
    env_for_release(target, project) -> dict        .env + deploy.env_vars (config wins), checked
    dependency_hash(project, names) -> str | None   sha256 over the lockfiles that exist
    deploy_fingerprint(project, target, env, files=None) -> str   push skips when unchanged

Which files ship: in a git repo, tracked + untracked-not-ignored files (`git ls-files --cached
--others --exclude-standard`); elsewhere a walk that honours every .gitignore. Then, in both
cases, `.lightfoldignore` (gitignore syntax, at the project root) removes more, and `.git`,
`node_modules`, `.venv`, `__pycache__` and every `.env` never ship (the server installs
dependencies; env values travel in the env snapshot, not in the archive), and neither do the
app's storage dirs (lightfold.toml `storage`: the server keeps their content across releases).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import stat
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightfold.agent.layout import is_env_name
from lightfold.errors import LightfoldError

ALWAYS_EXCLUDED_DIRS = frozenset({".git", "node_modules", ".venv", "__pycache__"})
# Secrets files never ship: `.env` (its values go into the release's env snapshot, 0600, instead),
# every `.env.<variant>` (.env.local, .env.production, ...) and direnv's `.envrc`; templates such as
# `.env.example` are documentation and ship.
NEVER_SHIPPED_FILES = frozenset({".env", ".envrc"})
SHIPPED_ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"})
IGNORE_FILE = ".lightfoldignore"
RESERVED_ENV = frozenset({"PORT"})
# Every archive entry gets the same time (2000-01-01) and owner, so equal trees give equal bytes.
ARCHIVE_MTIME = 946684800


# --- git ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitState:
    is_repo: bool
    commit: str | None  # full sha of HEAD; None outside git or before the first commit
    dirty: bool  # uncommitted changes or untracked files (they ship too)


def git_state(project: Path) -> GitState:
    if not _is_git_repo(project):
        return GitState(False, None, False)
    head = _git(project, "rev-parse", "--verify", "-q", "HEAD", check=False)
    commit = (head.stdout.decode().strip() or None) if head.returncode == 0 else None
    status = _git(project, "status", "--porcelain", "-z", "--", ".")
    return GitState(True, commit, bool(status.stdout))


def _is_git_repo(project: Path) -> bool:
    try:
        r = subprocess.run(
            ["git", "-C", str(project), "rev-parse", "--show-toplevel"], capture_output=True, check=False
        )
    except FileNotFoundError:
        return False
    return r.returncode == 0


def _git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run(["git", "-C", str(project), *args], capture_output=True, check=False)
    if check and r.returncode != 0:
        raise LightfoldError(
            f"git {' '.join(args)} failed in {project}: {r.stderr.decode(errors='replace').strip()}",
            "fix the repository (try the command yourself)",
        )
    return r


def _changed_files(project: Path) -> list[str]:
    """Paths (relative to the project) that differ from HEAD, untracked ones included."""
    out = _git(project, "status", "--porcelain=v1", "-z", "-uall", "--no-renames", "--", ".").stdout
    prefix = _git(project, "rev-parse", "--show-prefix").stdout.decode().strip()
    paths = []
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        if len(entry) > 3:
            path = entry[3:]
            paths.append(path[len(prefix):] if prefix and path.startswith(prefix) else path)
    return sorted(set(paths))


# --- ignore rules (gitignore syntax) ---------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    base: str  # directory of the ignore file, relative to the project ('' for the root)
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool  # contains a '/': matched against the path from `base`, else the name


class IgnoreRules:
    """gitignore semantics: last matching rule wins, `!` re-includes, `dir/` matches only
    directories, a pattern with a '/' is anchored to its file's directory, `**` spans directories,
    and nothing inside an excluded directory can be re-included."""

    def __init__(self) -> None:
        self.rules: list[_Rule] = []

    def add(self, lines: Iterable[str], base: str = "") -> IgnoreRules:
        for line in lines:
            rule = _parse_rule(line, base)
            if rule:
                self.rules.append(rule)
        return self

    def add_file(self, path: Path, base: str = "") -> IgnoreRules:
        if path.is_file():
            self.add(path.read_text(encoding="utf-8", errors="replace").splitlines(), base)
        return self

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        """Is `path` (relative, '/'-separated) excluded, by itself or through a parent directory?"""
        parts = path.split("/")
        for i in range(1, len(parts)):
            if self._match("/".join(parts[:i]), True):
                return True
        return self._match(path, is_dir)

    def _match(self, path: str, is_dir: bool) -> bool:
        result = False
        for rule in self.rules:
            if rule.base:
                if not path.startswith(rule.base + "/"):
                    continue
                rel = path[len(rule.base) + 1:]
            else:
                rel = path
            if rule.dir_only and not is_dir:
                continue
            subject = rel if rule.anchored else rel.rsplit("/", 1)[-1]
            if rule.regex.fullmatch(subject):
                result = not rule.negate
        return result


def _parse_rule(line: str, base: str) -> _Rule | None:
    line = line.rstrip("\n\r")
    if not line or line.startswith("#"):
        return None
    # Trailing spaces are ignored unless escaped with a backslash.
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    negate = line.startswith("!")
    if negate or line.startswith(("\\!", "\\#")):  # '\!' and '\#' are literal
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    return _Rule(base, re.compile(_glob_to_regex(line)), negate, dir_only, anchored)


def _glob_to_regex(pattern: str) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i) and (i == 0 or pattern[i - 1] == "/") and (
                i + 2 == n or pattern[i + 2] == "/"
            ):
                if i + 2 == n:
                    out.append(".*")
                    i += 2
                else:  # '**/' : zero or more directories
                    out.append("(?:.*/)?")
                    i += 3
                continue
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


# --- the file list ---------------------------------------------------------------------------------


def project_files(project: Path, storage: Iterable[str] = ()) -> list[str]:
    """The files a release ships, sorted, relative to `project`, '/'-separated. `storage`: the
    app's persistent dirs relative to `project` (lightfold.manifest's storage_paths): nothing in
    them ships — the server keeps their content across releases."""
    project = Path(project)
    if not project.is_dir():
        raise LightfoldError(f"{project} is not a directory", "run lightfold in your project's directory")
    extra = IgnoreRules().add_file(project / IGNORE_FILE)
    kept = tuple(storage)
    if _is_git_repo(project):
        candidates = _git_files(project)
    else:
        candidates = _walk(project, IgnoreRules().add_file(project / ".gitignore"), kept)
    return sorted(p for p in set(candidates) if _ships(p) and not extra.ignored(p) and not in_dirs(p, kept))


def in_dirs(path: str, dirs: Iterable[str]) -> bool:
    """Is `path` one of `dirs` or inside one (all relative, '/'-separated)?"""
    return any(path == d or path.startswith(d + "/") for d in dirs)


def is_secrets_file(name: str) -> bool:
    return name in NEVER_SHIPPED_FILES or (name.startswith(".env.") and name not in SHIPPED_ENV_TEMPLATES)


def _ships(path: str) -> bool:
    parts = path.split("/")
    return not (ALWAYS_EXCLUDED_DIRS.intersection(parts[:-1]) or is_secrets_file(parts[-1])
                or parts[-1] in ALWAYS_EXCLUDED_DIRS)


def _git_files(project: Path) -> list[str]:
    out = _git(project, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    files: list[str] = []
    for name in out.decode("utf-8", "surrogateescape").split("\0"):
        if not name:
            continue
        full = project / name
        if full.is_dir() and not full.is_symlink():  # a submodule: ship its working tree
            files += [f"{name}/{p}" for p in _walk(full, IgnoreRules().add_file(full / ".gitignore"))]
        elif os.path.lexists(full):  # deleted in the working tree but still in the index: gone
            files.append(name)
    return files


def _walk(root: Path, rules: IgnoreRules, skip: tuple[str, ...] = ()) -> list[str]:
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        if rel_dir:
            rules.add_file(Path(dirpath) / ".gitignore", rel_dir)
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            full = Path(dirpath) / d
            if full.is_symlink():  # os.walk does not follow links: ship the link itself
                if not rules.ignored(rel):
                    files.append(rel)
            elif d not in ALWAYS_EXCLUDED_DIRS and not rules.ignored(rel, True) and rel not in skip:
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = f"{rel_dir}/{f}" if rel_dir else f
            if not rules.ignored(rel):
                files.append(rel)
    return files


# --- the archive -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    files: int


def build_archive(project: Path, dest: Path, files: list[str] | None = None, storage: Iterable[str] = ()) -> Archive:
    """A deterministic tar.gz of the shipped files at `dest`: sorted entries, fixed mtime, owner
    0:0, modes 0644/0755 — the same tree always gives the same bytes (and sha256). Nothing in the
    `storage` dirs (relative to `project`) is in it, even when `files` names it."""
    project = Path(project)
    kept = tuple(storage)
    names = sorted(f for f in (project_files(project, kept) if files is None else files) if not in_dirs(f, kept))
    dest = Path(dest)
    # mtime=0 and no file name in the gzip header: byte-identical output.
    with open(dest, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            _add(tar, project, name)
    digest = hashlib.sha256()
    with open(dest, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return Archive(dest, digest.hexdigest(), dest.stat().st_size, len(names))


def _add(tar: tarfile.TarFile, project: Path, name: str) -> None:
    full = project / name
    st = full.lstat()
    info = tarfile.TarInfo(name)
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
        info.mode = 0o777
        tar.addfile(info)
        return
    if not stat.S_ISREG(st.st_mode):
        return  # sockets, fifos and devices never ship
    info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    info.size = st.st_size
    with open(full, "rb") as f:
        tar.addfile(info, f)


# --- env -------------------------------------------------------------------------------------------


def load_dotenv(path: Path) -> dict[str, str]:
    """A .env file as written: no `${VAR}` expansion (it would expand on the laptop). Names
    without a value (`NAME` alone) are left out: they would otherwise leak nothing but confusion."""
    from dotenv import dotenv_values

    if not Path(path).is_file():
        return {}
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {k: v for k, v in values.items() if v is not None}


def env_for_release(target: Any, project: Path) -> dict[str, str]:
    """The app's environment: the project's .env, then the target's deploy.env_vars (they win).
    Refuses invalid names, NUL bytes and PORT (lightfold gives each slot its own port)."""
    env = load_dotenv(Path(project) / ".env")
    check_env(env, str(Path(project) / ".env"))
    check_env(target.deploy.env_vars, "deploy.env_vars")
    env.update(target.deploy.env_vars)
    return dict(sorted(env.items()))


def check_env(env: Mapping[str, str], source: str = "the environment") -> None:
    """Names and values that may reach the release's env snapshot; an error names `source` (the
    .env file, or deploy.env_vars) and the name."""
    for name, value in env.items():
        if name in RESERVED_ENV:
            raise LightfoldError(
                f"{source} sets {name}, which lightfold owns (each slot listens on its own port)",
                f"remove {name} from {source}; your app must listen on $PORT",
            )
        if not is_env_name(name):
            raise LightfoldError(
                f"{source} has {name!r}, which is not a valid environment variable name",
                "use letters, digits and '_', not starting with a digit (a quoted name cannot hold a newline)",
            )
        if "\0" in value:
            raise LightfoldError(f"the value of {name} in {source} contains a NUL byte", f"fix the value of {name}")


# --- hashes ----------------------------------------------------------------------------------------


def dependency_hash(project: Path, names: Iterable[str]) -> str | None:
    """sha256 over the named files (e.g. `lightfold.server.build.lockfiles(detection)`) that exist;
    None when none does (then nothing can be reused)."""
    digest, found = hashlib.sha256(), False
    for name in sorted(set(names)):
        path = Path(project) / name
        if path.is_file():
            found = True
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest() if found else None


def tree_hash(project: Path, files: Iterable[str]) -> str:
    """sha256 over (path, mode, content) of the given files (a missing file counts as deleted)."""
    digest = hashlib.sha256()
    for name in sorted(set(files)):
        full = Path(project) / name
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        if full.is_symlink():
            digest.update(b"link\0" + os.readlink(full).encode("utf-8", "surrogateescape"))
        elif full.is_file():
            mode = b"755" if full.stat().st_mode & 0o111 else b"644"
            digest.update(mode + b"\0" + hashlib.sha256(full.read_bytes()).digest())
        else:
            digest.update(b"deleted")
        digest.update(b"\0")
    return digest.hexdigest()


def deploy_fingerprint(
    project: Path, target: Any, env: Mapping[str, str], files: list[str] | None = None,
) -> str:
    """What a release is made of: the commit, the content of uncommitted changes (or of every
    file outside git), the env values and the deploy settings. Equal fingerprints: skip the push."""
    project = Path(project)
    git = git_state(project)
    if git.is_repo and git.commit:
        shipped = set(project_files(project) if files is None else files)
        # Changes that do not ship (ignored by .lightfoldignore) do not make a new release.
        changed = [p for p in _changed_files(project) if p in shipped or not (project / p).exists()]
        source = {"commit": git.commit, "changes": tree_hash(project, changed) if changed else None}
    else:
        source = {"tree": tree_hash(project, project_files(project) if files is None else files)}
    settings = target.model_dump(mode="json", exclude={"provider_config"}) if hasattr(target, "model_dump") \
        else dict(target)
    settings.get("deploy", {}).pop("env_vars", None)  # env values are in `env`, already merged
    doc = {"source": source, "env": dict(sorted(env.items())), "settings": settings}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def archive_bytes(project: Path, files: list[str] | None = None) -> tuple[bytes, str]:
    """The archive in memory with its sha256 (for small projects and tests)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        archive = build_archive(project, Path(tmp) / "release.tar.gz", files)
        return archive.path.read_bytes(), archive.sha256

