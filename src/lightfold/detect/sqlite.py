"""Does the app keep a SQLite database? Then its file must live in a storage dir (lightfold.toml
`storage`), or the next deploy replaces it and cleanup deletes it with the old release.

    evidence(project) -> list[str]                 why we think it uses SQLite ([] if not)
    hints(project, framework, storage) -> (warnings, signals)
"""

from __future__ import annotations

import re

from lightfold.detect.project import Project

PYTHON_PACKAGES = ("aiosqlite", "sqlite-utils", "pysqlite3", "pysqlite3-binary", "sqlite-vec")
NODE_PACKAGES = ("better-sqlite3", "sqlite3", "sqlite", "@databases/sqlite")
DB_SUFFIXES = (".sqlite", ".sqlite3")
PY_IMPORT = re.compile(r"^\s*(?:import\s+sqlite3\b|from\s+sqlite3\s+import\b)", re.M)
PY_URL = re.compile(r"""["']sqlite(?:\+\w+)?:///""")
DJANGO_SQLITE = re.compile(r"django\.db\.backends\.sqlite3")
MAX_SCANNED = 200  # Python files read for imports, no more


def evidence(p: Project) -> list[str]:
    found: list[str] = []
    found += [f"{name} in the Python dependencies" for name in PYTHON_PACKAGES if name in p.python_deps]
    found += [f"{name} in package.json" for name in NODE_PACKAGES if name in p.node_deps]
    if "sqlite3" in p.gemfile:
        found.append("sqlite3 in the Gemfile")
    if re.search(r"adapter:\s*sqlite3", p.text("config/database.yml") or ""):
        found.append("config/database.yml uses the sqlite3 adapter")
    if re.search(r'provider\s*=\s*"sqlite"', p.text("prisma/schema.prisma") or ""):
        found.append("prisma/schema.prisma uses sqlite")
    if re.search(r"^DB_CONNECTION=sqlite\b", p.text(".env.example") or "", re.M):
        found.append(".env.example sets DB_CONNECTION=sqlite")
    scanned = 0
    for rel in p.files:
        if not rel.endswith(".py") or rel.count("/") > 3:
            continue
        scanned += 1
        if scanned > MAX_SCANNED:
            break
        text = p.text(rel) or ""
        if rel.endswith("settings.py") and DJANGO_SQLITE.search(text):
            found.append(f"{rel}: Django's DATABASES uses SQLite")
        elif PY_IMPORT.search(text):
            found.append(f"{rel} imports sqlite3")
        elif PY_URL.search(text):
            found.append(f"{rel} has a sqlite:/// database URL")
        if len(found) >= 5:
            break
    found += [f"database file {f}" for f in database_files(p)]
    return list(dict.fromkeys(found))


def database_files(p: Project) -> list[str]:
    return [f for f in p.files if f.endswith(DB_SUFFIXES)][:5]


def hints(p: Project, framework: str, storage: list[str]) -> tuple[list[str], list[str]]:
    """(warnings, signals) about SQLite and the storage dirs."""
    why = evidence(p)
    if not why:
        return [], []
    because = f"this app uses SQLite ({'; '.join(why[:3])})"
    if not storage:
        example = ('DATABASES["default"]["NAME"] = BASE_DIR / "data" / "db.sqlite3"' if framework == "django"
                   else "a path under data/")
        return [f"{because}: a database file inside a release is replaced by the next deploy and deleted with "
                f"the old release — keep it in a storage dir: storage = [\"data\"] in lightfold.toml, and point "
                f"the database at it ({example})"], []
    outside = [f for f in database_files(p) if not any(f == d or f.startswith(d + "/") for d in storage)]
    if outside:
        return [f"{because}: {', '.join(outside)} is outside the storage dirs ({', '.join(storage)}), so no "
                f"release keeps what is written to it: point the database at {storage[0]}/"], []
    return [], [f"{because}: make sure its database file is in a storage dir ({', '.join(storage)})"]
