"""Which environment variables an app reads, from its entry and settings files.

A read without a fallback (`os.environ["X"]`, `ENV.fetch("X")`, `config("X")`, `System.fetch_env!`)
makes X required; a read with one (`os.getenv`, `process.env.X`, `ENV["X"]`) makes it optional.
DATABASE_URL is required whenever it is referenced at all: an app that mentions it almost always
fails without it in production. Variables the platform sets itself (PORT, HOST) are never listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lightfold.detect.project import Project

PLATFORM_VARS = frozenset({"PORT", "HOST", "HOSTNAME", "NODE_ENV", "PATH", "HOME", "PWD", "USER", "PYTHONPATH"})
ALWAYS_REQUIRED = frozenset({"DATABASE_URL"})
_NAME = r"([A-Z][A-Z0-9_]{1,})"

_REQUIRED = [
    re.compile(r"os\.environ\[\s*['\"]" + _NAME + r"['\"]\s*\]"),
    # no default argument; also prisma's `url = env("DATABASE_URL")`
    re.compile(r"\b(?:env|config)(?:\.\w+)?\(\s*['\"]" + _NAME + r"['\"]\s*\)"),
    re.compile(r"ENV\.fetch\(\s*['\"]" + _NAME + r"['\"]\s*\)(?!\s*\{)"),
    re.compile(r"System\.fetch_env!\(\s*\"" + _NAME + r"\"\s*\)"),
    re.compile(r"env::var\(\s*\"" + _NAME + r"\"\s*\)\s*\.(?:expect|unwrap)\(\s*[\"\)]"),
]
_OPTIONAL = [
    re.compile(r"os\.(?:environ\.get|getenv)\(\s*['\"]" + _NAME + r"['\"]"),
    re.compile(r"\b(?:env|config)(?:\.\w+)?\(\s*['\"]" + _NAME + r"['\"]\s*,"),
    re.compile(r"process\.env\.(?:" + _NAME + r")\b"),
    re.compile(r"process\.env\[\s*['\"]" + _NAME + r"['\"]\s*\]"),
    re.compile(r"import\.meta\.env\." + _NAME + r"\b"),
    re.compile(r"ENV\[\s*['\"]" + _NAME + r"['\"]\s*\]"),
    re.compile(r"ENV\.fetch\(\s*['\"]" + _NAME + r"['\"]"),
    re.compile(r"System\.get_env\(\s*\"" + _NAME + r"\""),
    re.compile(r"os\.(?:Getenv|LookupEnv)\(\s*\"" + _NAME + r"\""),
    re.compile(r"env::var\(\s*\"" + _NAME + r"\""),
    re.compile(r"getenv\(\s*['\"]" + _NAME + r"['\"]"),
]
# Helpers that read DATABASE_URL implicitly.
_IMPLICIT_DB = re.compile(r"\benv\.db(?:_url)?\(|dj_database_url\.(?:config|parse)\(")


def scan(project: Project, files: Iterable[str]) -> tuple[list[str], list[str]]:
    """(required, optional) variable names read by `files` (relative paths; missing ones skipped)."""
    required: set[str] = set()
    optional: set[str] = set()
    for rel in dict.fromkeys(files):
        src = project.text(rel)
        if not src:
            continue
        for rx in _REQUIRED:
            required.update(rx.findall(src))
        for rx in _OPTIONAL:
            optional.update(rx.findall(src))
        if _IMPLICIT_DB.search(src):
            required.add("DATABASE_URL")
    required |= optional & ALWAYS_REQUIRED
    required -= PLATFORM_VARS
    optional = optional - required - PLATFORM_VARS
    return sorted(required), sorted(optional)
