"""Package managers: which one a project uses, and the commands to install, run scripts and
execute binaries with it.

Node (first rule that applies wins):
  1. the `packageManager` field (corepack) of the app's or the workspace root's package.json;
  2. a lockfile in the app directory, else in the workspace root found by walking up (a directory
     with pnpm-workspace.yaml or a package.json `workspaces` field, never above the git root):
     bun.lock/bun.lockb > pnpm-lock.yaml > yarn.lock > package-lock.json/npm-shrinkwrap.json
     (several lockfiles side by side also produce a warning);
  3. no lockfile: .yarnrc.yml -> yarn berry, pnpm-workspace.yaml -> pnpm, else npm.
  yarn.lock is yarn berry when .yarnrc.yml exists or the lockfile has a `__metadata:` header.
  The version to install: `packageManager`'s, else the newest major that reads the lockfile
  (`lockfile_pm_version`: pnpm-lock.yaml `lockfileVersion`, yarn berry `__metadata.version`;
  yarn.lock v1 -> yarn 1, bun.lock(b) -> bun 1; package-lock.json with platform packages not
  marked optional -> npm 11), else None (the newest release; npm: the one node ships).
Python: uv.lock > poetry.lock > pdm.lock > Pipfile(.lock) > requirements.txt > pyproject tables
  ([tool.poetry] / [tool.pdm] / [tool.uv] / plain [project] -> pip). When uv.lock and poetry.lock
  are both present, poetry wins only if pyproject keeps its dependencies in [tool.poetry]; a uv
  workspace root above the app (with uv.lock) is found like a Node workspace.
Installs are frozen whenever a lockfile exists (`npm ci`, `--frozen-lockfile`, `--immutable`,
`uv sync --frozen`, `bundle` deployment mode, ...).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from lightfold.detect.project import Project

NODE_LOCKFILES = [
    ("bun.lock", "bun"),
    ("bun.lockb", "bun"),
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
]
MAX_WALK_UP = 8


@dataclass
class Toolchain:
    """A package manager bound to a project: how to install, run a script, run a binary."""

    manager: str | None
    lockfile: str | None = None  # relative to the app root (may start with ../)
    workspace_root: Path | None = None  # set when the lockfile lives above the app
    app_subdir: str | None = None
    version: str | None = None  # from packageManager ("9.1.0"), else the lockfile's major ("10")
    version_source: str | None = None  # where `version` was read
    evidence: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def frozen(self) -> bool:
        return self.lockfile is not None

    # -- node ---------------------------------------------------------------------------------

    def node_install(self) -> str:
        m = self.manager
        if m == "pnpm":
            cmd = "pnpm install --frozen-lockfile" if self.frozen else "pnpm install"
        elif m == "yarn":
            cmd = "yarn install --frozen-lockfile" if self.frozen else "yarn install"
        elif m == "yarn-berry":
            cmd = "yarn install --immutable" if self.frozen else "yarn install"
        elif m == "bun":
            cmd = "bun install --frozen-lockfile" if self.frozen else "bun install"
        else:
            cmd = "npm ci" if self.frozen else "npm install"
        return self.at_root(cmd)

    def run(self, script: str) -> str:
        """Run a package.json script."""
        m = self.manager
        if m in ("yarn", "yarn-berry"):
            return f"yarn run {script}"
        if m in ("pnpm", "bun"):
            return f"{m} run {script}"
        return f"npm run {script}"

    def exec(self, command: str) -> str:
        """Run a binary installed by the package manager (node_modules/.bin, hoisted or PnP)."""
        m = self.manager
        prefix = {"pnpm": "pnpm exec", "yarn": "yarn", "yarn-berry": "yarn", "bun": "bunx"}.get(m, "npx")
        return f"{prefix} {command}"

    # -- python -------------------------------------------------------------------------------

    def py(self, command: str) -> str:
        """Run a console script or `python` inside the project's environment."""
        m = self.manager
        if m == "uv":
            return f"uv run --no-sync {command}"
        if m in ("poetry", "pdm", "pipenv"):
            return f"{m} run {command}"
        return f".venv/bin/{command}"

    def at_root(self, cmd: str) -> str:
        """Prefix a command that must run at the workspace root (monorepos)."""
        if self.workspace_root is None or not self.app_subdir:
            return cmd
        up = "/".join([".."] * (self.app_subdir.count("/") + 1))
        return f"cd {up} && {cmd}"


# -- node ----------------------------------------------------------------------------------------


def _git_root(start: Path) -> Path | None:
    for d in [start, *start.parents]:
        if (d / ".git").exists():
            return d
    return None


def _node_workspace_globs(d: Path) -> list[str] | None:
    """The workspace package globs declared in `d`, or None when `d` is not a workspace root."""
    globs: list[str] = []
    found = False
    pnpm_ws = d / "pnpm-workspace.yaml"
    if pnpm_ws.is_file():
        found = True
        text = pnpm_ws.read_text(errors="replace")
        block = re.search(r"^packages\s*:\s*\n((?:[ \t]*(?:-.*|#.*)?\n?)*)", text, re.M)
        if block:
            globs += [g.strip().strip("'\"") for g in re.findall(r"^\s*-\s*(.+?)\s*$", block.group(1), re.M)]
    pkg = Project(d).package_json
    if pkg is not None:
        ws = pkg.get("workspaces")
        if isinstance(ws, dict):
            ws = ws.get("packages")
        if isinstance(ws, list):
            found = True
            globs += [str(g) for g in ws]
    return globs if found else None


def _in_globs(rel: str, globs: list[str]) -> bool:
    rel = rel.strip("/")
    included = False
    for g in globs:
        neg = g.startswith("!")
        pat = g.lstrip("!").rstrip("/").removeprefix("./")
        if (
            fnmatch.fnmatch(rel, pat)
            or fnmatch.fnmatch(rel, pat.replace("/**", "/*"))
            or (pat.endswith("/**") and rel.startswith(pat[:-3] + "/"))
        ):
            included = not neg
    return included


def _workspace_root(app: Path, is_root) -> tuple[Path, list[str]] | None:
    """Walk up from `app` (not including it) to the git root; the first dir `is_root` accepts."""
    stop = _git_root(app)
    d = app
    for _ in range(MAX_WALK_UP):
        if d == stop or d.parent == d:
            return None
        d = d.parent
        globs = is_root(d)
        if globs is not None:
            return d, globs
    return None


def workspace_members(root: Path) -> list[Path]:
    """The package directories a Node (pnpm/npm/yarn/bun) or uv workspace root declares."""
    globs = _node_workspace_globs(root) or []
    uv = ((Project(root).pyproject or {}).get("tool") or {}).get("uv") or {}
    globs += [str(g) for g in (uv.get("workspace") or {}).get("members") or []]
    found: list[Path] = []
    for g in globs:
        if g.startswith("!"):
            continue
        pattern = g.rstrip("/").removeprefix("./").removesuffix("/**").removesuffix("/*")
        base = root / pattern
        if "*" in pattern or not base.is_dir():
            continue
        children = (
            [base]
            if pattern == g.rstrip("/").removeprefix("./")
            else sorted(c for c in base.iterdir() if c.is_dir() and not c.name.startswith("."))
        )
        found += [c for c in children if c not in found]
    return found


def _parse_package_manager_field(value: object) -> tuple[str, str | None] | None:
    if not isinstance(value, str) or "@" not in value:
        return None
    name, _, version = value.partition("@")
    version = version.split("+", 1)[0]
    if name == "yarn":
        major = version.split(".", 1)[0]
        name = "yarn" if major in ("0", "1") else "yarn-berry"
    if name not in ("npm", "pnpm", "yarn", "yarn-berry", "bun"):
        return None
    return name, version or None


def _lockfiles(d: Path) -> list[tuple[str, str]]:
    return [(f, m) for f, m in NODE_LOCKFILES if (d / f).is_file()]


# pnpm-lock.yaml `lockfileVersion` -> the pnpm major to install when package.json names none: the
# newest that reads it and keeps the build-script rules the lockfile was written under. pnpm 9 and
# 10 write 9.0; pnpm 11 reads it too but refuses dependencies' unapproved build scripts by default
# (strictDepBuilds), which a project that declares no pnpm was not written for.
PNPM_BY_LOCKFILE = {"9": "10", "6": "8", "5.4": "7", "5.3": "6"}
# yarn berry's `__metadata: version:` -> the yarn major that writes it.
YARN_BERRY_BY_LOCKFILE = {"4": "2", "5": "3", "6": "3", "7": "3", "8": "4"}


def _head(path: Path, size: int = 4096) -> str:
    try:
        with path.open(errors="replace") as fh:
            return fh.read(size)
    except OSError:
        return ""


def lockfile_pm_version(manager: str | None, lockfile: Path) -> str | None:
    """The major of `manager` that reads `lockfile` (see the module docstring), or None."""
    if manager == "pnpm":
        m = re.search(r"^lockfileVersion:\s*['\"]?(\d+)(?:\.(\d+))?", _head(lockfile), re.M)
        if not m:
            return None
        major, minor = m.group(1), m.group(2) or "0"
        return PNPM_BY_LOCKFILE.get(major) or PNPM_BY_LOCKFILE.get(f"{major}.{minor}") or (
            "6" if major == "5" else None)
    if manager == "yarn":
        return "1"
    if manager == "yarn-berry":
        m = re.search(r"^__metadata:\s*\n(?:[ \t]+.*\n)*?[ \t]+version:\s*['\"]?(\d+)", _head(lockfile), re.M)
        return YARN_BERRY_BY_LOCKFILE.get(m.group(1)) if m else None
    if manager == "bun":
        return "1"
    if manager == "npm":
        return NPM_FOR_PLATFORM_PINNED if platform_pinned_required(lockfile) else None
    return None


# npm 11 writes some platform binaries (@oxc-parser/binding-android-arm-eabi under a nested
# node_modules) with "os"/"cpu" but without "optional"; npm 10 (Node 20's) then stops `npm ci` on
# any other platform with EBADPLATFORM, npm 11 skips them. Such a lockfile is installed with npm 11.
NPM_FOR_PLATFORM_PINNED = "11"


def platform_pinned_required(lockfile: Path) -> str | None:
    """The first package of a package-lock.json that names an os/cpu and is not optional, if any (an
    "extraneous" one too: npm 10 refuses those as well, e.g. fsevents in an Eleventy lockfile)."""
    try:
        packages = json.loads(lockfile.read_text(errors="replace")).get("packages") or {}
    except (OSError, ValueError, AttributeError):
        return None
    for path, meta in packages.items() if isinstance(packages, dict) else ():
        if isinstance(meta, dict) and (meta.get("os") or meta.get("cpu")) and not (
                meta.get("optional") or meta.get("devOptional") or meta.get("peer")):
            return path
    return None


def _yarn_flavour(d: Path) -> str:
    if (d / ".yarnrc.yml").is_file():
        return "yarn-berry"
    lock = d / "yarn.lock"
    if lock.is_file():
        with lock.open(errors="replace") as fh:
            head = fh.read(2048)
        if "__metadata:" in head:
            return "yarn-berry"
    return "yarn"


def node_toolchain(project: Project) -> Toolchain:
    app = project.root
    tc = Toolchain(manager=None)
    lock_dir: Path | None = app if _lockfiles(app) else None
    ws = None
    if lock_dir is None:
        ws = _workspace_root(app, _node_workspace_globs)
        if ws is not None:
            root, globs = ws
            rel = app.relative_to(root).as_posix()
            tc.workspace_root, tc.app_subdir = root, rel
            tc.evidence.append(f"workspace root {root} (app is {rel})")
            if globs and not _in_globs(rel, globs):
                tc.warnings.append(
                    f"{rel} is not listed in the workspace globs of {root} ({', '.join(globs)}): "
                    "the workspace install may not include this app"
                )
            lock_dir = root
    prefix = "" if tc.workspace_root is None else "/".join([".."] * (tc.app_subdir.count("/") + 1)) + "/"

    declared = _parse_package_manager_field((project.package_json or {}).get("packageManager"))
    if declared is None and tc.workspace_root is not None:
        declared = _parse_package_manager_field((Project(tc.workspace_root).package_json or {}).get("packageManager"))
    locks = _lockfiles(lock_dir) if lock_dir else []
    if declared:
        tc.manager, tc.version = declared
        tc.evidence.append(f'package.json "packageManager": {declared[0]}@{declared[1]}')
        wanted = "yarn" if tc.manager == "yarn-berry" else tc.manager
        for f, m in locks:
            if m == wanted:
                tc.lockfile = prefix + f
                break
        if locks and tc.lockfile is None:
            tc.warnings.append(
                f"packageManager says {tc.manager} but the lockfile is {locks[0][0]}: the install cannot be frozen"
            )
    elif locks:
        f, m = locks[0]
        tc.manager, tc.lockfile = m, prefix + f
        tc.evidence.append(f"lockfile {prefix}{f}")
        others = sorted({lf for lf, mm in locks if mm != m})
        if others:
            tc.warnings.append(f"several lockfiles ({f}, {', '.join(others)}): using {m}; delete the stale ones")
    else:
        d = tc.workspace_root or app
        if (d / ".yarnrc.yml").is_file():
            tc.manager = "yarn-berry"
            tc.evidence.append(".yarnrc.yml (no lockfile)")
        elif (d / "pnpm-workspace.yaml").is_file():
            tc.manager = "pnpm"
            tc.evidence.append("pnpm-workspace.yaml (no lockfile)")
        else:
            tc.manager = "npm"
            tc.evidence.append("no lockfile: npm")
            tc.warnings.append("no lockfile: the install is not reproducible; commit a lockfile")
    if tc.manager == "yarn" and lock_dir is not None:
        tc.manager = _yarn_flavour(lock_dir)
        if tc.manager == "yarn-berry":
            tc.evidence.append("yarn berry (.yarnrc.yml or __metadata in yarn.lock)")
    if tc.version:
        tc.version_source = 'package.json "packageManager"'
    elif tc.lockfile:
        tc.version = lockfile_pm_version(tc.manager, app / tc.lockfile)
        if tc.version:
            tc.version_source = tc.lockfile.rsplit("/", 1)[-1]
            tc.evidence.append(f"{tc.manager} {tc.version} (the newest major that reads {tc.version_source})"
                               if tc.manager != "npm" else
                               f"npm {tc.version}: {tc.version_source} lists platform packages not marked optional "
                               f"({platform_pinned_required(app / tc.lockfile)}), which npm 10 refuses (EBADPLATFORM)")
    return tc


# -- python --------------------------------------------------------------------------------------


def _uv_workspace(d: Path) -> list[str] | None:
    data = Project(d).pyproject or {}
    ws = ((data.get("tool") or {}).get("uv") or {}).get("workspace")
    if isinstance(ws, dict) and (d / "uv.lock").is_file():
        return [str(g) for g in ws.get("members") or []]
    return None


def python_toolchain(project: Project) -> Toolchain:
    tc = Toolchain(manager=None)
    py = project.pyproject or {}
    tool = py.get("tool") or {}
    poetry_deps = bool((tool.get("poetry") or {}).get("dependencies"))
    has = project.exists
    if has("uv.lock") and has("poetry.lock"):
        tc.manager, tc.lockfile = ("poetry", "poetry.lock") if poetry_deps else ("uv", "uv.lock")
        tc.warnings.append(f"both uv.lock and poetry.lock: using {tc.manager}; delete the stale lockfile")
    elif has("uv.lock"):
        tc.manager, tc.lockfile = "uv", "uv.lock"
    elif has("poetry.lock"):
        tc.manager, tc.lockfile = "poetry", "poetry.lock"
    elif has("pdm.lock"):
        tc.manager, tc.lockfile = "pdm", "pdm.lock"
    elif has("Pipfile.lock") or has("Pipfile"):
        tc.manager = "pipenv"
        tc.lockfile = "Pipfile.lock" if has("Pipfile.lock") else None
    elif project.requirements_file or project.misspelled_requirements:
        tc.manager = "pip"
    elif "poetry" in tool:
        tc.manager = "poetry"
    elif "pdm" in tool:
        tc.manager = "pdm"
    elif "uv" in tool:
        tc.manager = "uv"
    else:
        ws = _workspace_root(project.root, _uv_workspace)
        if ws is not None:
            root, _ = ws
            tc.manager, tc.workspace_root = "uv", root
            tc.app_subdir = project.root.relative_to(root).as_posix()
            up = "/".join([".."] * (tc.app_subdir.count("/") + 1))
            tc.lockfile = f"{up}/uv.lock"
            tc.evidence.append(f"uv workspace root {root} with uv.lock")
        else:
            tc.manager = "pip"
    if tc.lockfile and not tc.evidence:
        tc.evidence.append(f"lockfile {tc.lockfile}")
    elif not tc.evidence:
        tc.evidence.append(f"python package manager: {tc.manager}")
    return tc


def python_install(project: Project, tc: Toolchain, extra: list[str]) -> str:
    """`extra`: server packages the start command needs but the manifests lack (pip only)."""
    m = tc.manager
    if m == "uv":
        return tc.at_root("uv sync --frozen --no-dev" if tc.frozen else "uv sync --no-dev")
    if m == "poetry":
        return "poetry install --no-root --only main"
    if m == "pdm":
        return "pdm install --prod --frozen-lockfile" if tc.frozen else "pdm install --prod"
    if m == "pipenv":
        return "pipenv install --deploy" if tc.frozen else "pipenv install"
    req = project.requirements_file or project.misspelled_requirements
    py = project.pyproject or {}
    declared = (py.get("project") or {}).get("dependencies") or []
    if req:
        target = f"-r {req}"
    elif "build-system" in py or project.exists("setup.py") or not declared:
        target = "."
    else:
        # [project] without a build system is not installable as a package: install its dependencies
        target = " ".join(shlex.quote(str(d)) for d in declared)
    tail = (" " + " ".join(extra)) if extra else ""
    # The venv may already exist (lightfold's build links a per-lockfile venv in as .venv).
    return f"{VENV_PREFIX}.venv/bin/pip install {target}{tail}"


VENV_PREFIX = "test -x .venv/bin/python || python3 -m venv .venv && "


def simple_toolchain(manager: str, lockfile: str | None, evidence: str) -> Toolchain:
    return Toolchain(manager=manager, lockfile=lockfile, evidence=[evidence])
