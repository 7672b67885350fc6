"""Read-only view of a project directory for detection: cached file reads, a bounded file listing
that never enters dependency or build directories, and parsers for every manifest we look at.

Parsers read the dependency tables of a manifest (never a substring search over the whole file),
so a word inside a script string or a comment does not count as a dependency.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any

# Directories that hold dependencies, build output, caches or VCS data: never listed.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "bower_components",
        "vendor",
        "venv",
        ".venv",
        "env",
        ".env",
        "virtualenv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        "target",
        "dist",
        "build",
        "out",
        ".next",
        ".nuxt",
        ".output",
        ".svelte-kit",
        ".astro",
        ".cache",
        ".turbo",
        ".yarn",
        ".pnpm-store",
        "_build",
        "deps",
        "bin",
        "obj",
        "coverage",
        ".idea",
        ".vscode",
        "tmp",
        "log",
        "storage",
        "_site",
        "public",
        "static",
        "staticfiles",
        "resources",
        "assets",
        "docs",
        "test",
        "tests",
        "spec",
        "__tests__",
    }
)
MAX_READ = 512 * 1024  # bigger files are generated or vendored, not hand-written entry points
MAX_LISTED = 4000


class Project:
    """One directory under detection. All paths are relative to `root`."""

    def __init__(self, root: Path):
        self.root = root
        self._text: dict[str, str | None] = {}
        # Results several matchers share (e.g. the parsed Python entry points), computed once.
        self.memo: dict[str, Any] = {}

    # -- raw access -------------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def is_dir(self, rel: str) -> bool:
        return (self.root / rel).is_dir()

    def first(self, *rels: str) -> str | None:
        """The first of `rels` that exists."""
        return next((r for r in rels if self.exists(r)), None)

    def text(self, rel: str) -> str | None:
        if rel not in self._text:
            path = self.root / rel
            try:
                if not path.is_file() or path.stat().st_size > MAX_READ:
                    self._text[rel] = None
                else:
                    # utf-8-sig: files saved by Windows editors often start with a byte order mark
                    self._text[rel] = path.read_text(encoding="utf-8-sig", errors="replace")
            except OSError:
                self._text[rel] = None
        return self._text[rel]

    def json(self, rel: str) -> Any:
        raw = self.text(rel)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            try:  # tsconfig/angular.json-style files sometimes carry comments
                return json.loads(strip_js_comments(raw))
            except ValueError:
                return None

    def json_object(self, rel: str) -> dict | None:
        """The JSON file `rel` when it holds an object (a manifest), else None."""
        data = self.json(rel)
        return data if isinstance(data, dict) else None

    def toml(self, rel: str) -> dict | None:
        raw = self.text(rel)
        if raw is None:
            return None
        try:
            return tomllib.loads(raw)
        except tomllib.TOMLDecodeError:
            return None

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly in `rel` (sorted), empty when it is not a directory."""
        try:
            return sorted(os.listdir(self.root / rel))
        except OSError:
            return []

    @cached_property
    def files(self) -> list[str]:
        """Files up to three levels deep, skipping SKIP_DIRS, sorted by depth then name."""
        found: list[str] = []
        stack: list[tuple[str, int]] = [("", 0)]
        while stack and len(found) < MAX_LISTED:
            rel, depth = stack.pop()
            try:
                entries = sorted(os.scandir(self.root / rel), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < 3 and entry.name not in SKIP_DIRS and not entry.name.startswith("."):
                            stack.append((child, depth + 1))
                    elif entry.is_file():
                        found.append(child)
                except OSError:
                    continue
        found.sort(key=lambda f: (f.count("/"), f))
        return found

    def glob(self, pattern: str) -> list[str]:
        """Listed files matching a regular expression on the relative path."""
        rx = re.compile(pattern)
        return [f for f in self.files if rx.fullmatch(f)]

    # -- manifests ----------------------------------------------------------------------------

    @cached_property
    def package_json(self) -> dict | None:
        return self.json_object("package.json")

    @cached_property
    def node_deps(self) -> dict[str, str]:
        """dependencies + devDependencies (+ optional/peer) of package.json: name -> range."""
        return merged_tables(self.package_json,
                             ("peerDependencies", "optionalDependencies", "devDependencies", "dependencies"))

    @cached_property
    def scripts(self) -> dict[str, str]:
        value = (self.package_json or {}).get("scripts")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @cached_property
    def pyproject(self) -> dict | None:
        return self.toml("pyproject.toml")

    @cached_property
    def requirements_file(self) -> str | None:
        """requirements.txt, or a requirements file in a requirements/ folder (prod first)."""
        if self.exists("requirements.txt"):
            return "requirements.txt"
        for name in ("prod", "production", "base", "common", "requirements"):
            for ext in ("txt", "in"):
                if self.exists(f"requirements/{name}.{ext}"):
                    return f"requirements/{name}.{ext}"
        return None

    @cached_property
    def misspelled_requirements(self) -> str | None:
        """A top-level file that looks like a misspelled requirements.txt (Heroku's classic trap)."""
        import difflib

        for name in self.listdir():
            low = name.lower()
            if name == "requirements.txt" or not (self.root / name).is_file():
                continue
            if low.startswith("requirements") and low.endswith((".txt", ".in")) and name != low:
                return name  # Requirements.txt: pip on Linux will not find it
            if low.endswith((".txt", ".text")) and (
                difflib.SequenceMatcher(None, low.rsplit(".", 1)[0], "requirements").ratio() >= 0.8
                and low.rsplit(".", 1)[0] != "requirements"
            ):
                return name
            if low == "requirements.text":
                return name
        return None

    @cached_property
    def python_deps(self) -> dict[str, str]:
        """Runtime dependencies from every Python manifest present: normalised name -> spec."""
        deps: dict[str, str] = {}
        req = self.requirements_file or self.misspelled_requirements
        if req:
            deps.update(parse_requirements(self, req))
        py = self.pyproject or {}
        for spec in (py.get("project") or {}).get("dependencies") or []:
            name, rest = split_requirement(str(spec))
            if name:
                deps[name] = rest
        poetry = ((py.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
        for name, spec in poetry.items():
            if name.lower() != "python":
                deps[normalize_py(name)] = spec if isinstance(spec, str) else json.dumps(spec)
        pipfile = self.toml("Pipfile") or {}
        for name, spec in (pipfile.get("packages") or {}).items():
            deps[normalize_py(name)] = spec if isinstance(spec, str) else json.dumps(spec)
        setup = self.text("setup.py")
        if setup:
            m = re.search(r"install_requires\s*=\s*\[(.*?)\]", setup, re.S)
            for item in re.findall(r"['\"]([^'\"]+)['\"]", m.group(1) if m else ""):
                name, rest = split_requirement(item)
                if name:
                    deps[name] = rest
        return deps

    @cached_property
    def gemfile(self) -> dict[str, str]:
        return parse_gemfile(self.text("Gemfile") or "")

    @cached_property
    def gemfile_lock(self) -> dict[str, str]:
        return parse_gemfile_lock(self.text("Gemfile.lock") or "")

    @cached_property
    def composer(self) -> dict | None:
        return self.json_object("composer.json")

    @cached_property
    def composer_deps(self) -> dict[str, str]:
        return {k.lower(): v for k, v in merged_tables(self.composer, ("require-dev", "require")).items()}

    @cached_property
    def go_mod(self) -> GoMod | None:
        raw = self.text("go.mod")
        return parse_go_mod(raw) if raw is not None else None

    @cached_property
    def cargo(self) -> dict | None:
        return self.toml("Cargo.toml")

    @cached_property
    def mix_deps(self) -> dict[str, str]:
        return parse_mix_deps(self.text("mix.exs") or "")


# -- parsers (pure functions of text) ----------------------------------------------------------

_JS_COMMENT = re.compile(r"""("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|(//[^\n]*|/\*.*?\*/)""", re.S)


def merged_tables(manifest: dict | None, tables: tuple[str, ...]) -> dict[str, str]:
    """The name -> version tables of a manifest merged in order (a later table wins)."""
    merged: dict[str, str] = {}
    for table in tables:
        value = (manifest or {}).get(table)
        if isinstance(value, dict):
            merged.update({str(k): str(v) for k, v in value.items()})
    return merged


def strip_js_comments(src: str) -> str:
    """Remove // and /* */ comments from JS/TS/JSON source, leaving strings intact."""
    return _JS_COMMENT.sub(lambda m: m.group(1) or (" " if m.group(2).startswith("/*") else ""), src)


def strip_hash_comments(src: str) -> str:
    """Remove # comments (Ruby, Python, TOML-ish, YAML) outside simple quoted strings."""
    out = []
    for line in src.splitlines():
        quote = None
        for i, ch in enumerate(line):
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "#":
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def normalize_py(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def split_requirement(line: str) -> tuple[str | None, str]:
    """'Django[argon2]>=4.2; python_version>"3"' -> ('django', '[argon2]>=4.2; ...')."""
    m = _REQ_NAME.match(line)
    if not m:
        return None, ""
    return normalize_py(m.group(1)), ((m.group(2) or "") + (m.group(3) or "")).strip()


def parse_requirements(project: Project, rel: str, _seen: set[str] | None = None) -> dict[str, str]:
    """A pip requirements file, following `-r other.txt` includes inside the project."""
    seen = _seen if _seen is not None else set()
    if rel in seen:
        return {}
    seen.add(rel)
    deps: dict[str, str] = {}
    base = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
    for raw in (project.text(rel) or "").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ", "-c ")):
            if line.startswith("-c "):
                continue
            include = line.split(None, 1)[1].strip()
            deps.update(parse_requirements(project, os.path.normpath(base + include), seen))
            continue
        if line.startswith("-") or "://" in line and "#egg=" not in line:
            continue
        if "#egg=" in line:
            line = line.split("#egg=", 1)[1]
        name, rest = split_requirement(line)
        if name:
            deps[name] = rest
    return deps


_GEM = re.compile(r"""^\s*gem\s*\(?\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"])?""")


def parse_gemfile(src: str) -> dict[str, str]:
    """Gemfile `gem "name", "version"` lines (any group): name -> version or ''."""
    deps: dict[str, str] = {}
    for line in strip_hash_comments(src).splitlines():
        m = _GEM.match(line)
        if m:
            deps[m.group(1)] = m.group(2) or ""
    return deps


def parse_gemfile_lock(src: str) -> dict[str, str]:
    """The resolved gems of Gemfile.lock (4-space `name (version)` lines under specs:)."""
    deps: dict[str, str] = {}
    for m in re.finditer(r"^ {4}([A-Za-z0-9_.-]+) \(([^)]+)\)\s*$", src, re.M):
        deps.setdefault(m.group(1), m.group(2))
    return deps


def gemfile_ruby_version(gemfile: str, lock: str) -> str | None:
    m = re.search(r"""^\s*ruby\s+['"]([^'"]+)['"]""", strip_hash_comments(gemfile), re.M)
    if m:
        return m.group(1)
    m = re.search(r"^RUBY VERSION\s*\n\s+ruby ([0-9][^\s]*)", lock, re.M)
    return m.group(1).split("p")[0] if m else None


class GoMod:
    def __init__(self, module: str, go: str | None, toolchain: str | None, requires: dict[str, str]):
        self.module = module
        self.go = go
        self.toolchain = toolchain
        self.requires = requires


def parse_go_mod(src: str) -> GoMod:
    """module path, go directive, toolchain and the direct requirements (`// indirect` ones are
    dependencies of dependencies: a framework listed only there is not the app's)."""
    src = "\n".join("" if re.search(r"//\s*indirect\b", line) else line for line in src.splitlines())
    src = re.sub(r"//[^\n]*", "", src)
    module = (re.search(r"^\s*module\s+(\S+)", src, re.M) or [None, ""])[1]
    go = re.search(r"^\s*go\s+(\d[\w.]*)", src, re.M)
    toolchain = re.search(r"^\s*toolchain\s+go(\d[\w.]*)", src, re.M)
    requires: dict[str, str] = {}
    for block in re.findall(r"^\s*require\s*\((.*?)\)", src, re.M | re.S):
        for line in block.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                requires[parts[0]] = parts[1]
    for m in re.finditer(r"^\s*require\s+([^\s(]+)\s+(\S+)", src, re.M):
        requires[m.group(1)] = m.group(2)
    return GoMod(module.strip('"'), go.group(1) if go else None, toolchain.group(1) if toolchain else None, requires)


def parse_mix_deps(src: str) -> dict[str, str]:
    """`{:phoenix, "~> 1.7"}` tuples inside `defp deps do ... end` of mix.exs."""
    src = strip_hash_comments(src)
    m = re.search(r"defp?\s+deps\b.*?\bdo\b(.*?)\n\s*end\b", src, re.S)
    body = m.group(1) if m else ""
    return {name: ver or "" for name, ver in re.findall(r"\{\s*:(\w+)\s*(?:,\s*\"([^\"]*)\")?", body)}


def xml_root(src: str):
    """Parse XML with namespaces stripped from tag names (pom.xml, *.csproj)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(src)
    except ET.ParseError:
        return None
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root
