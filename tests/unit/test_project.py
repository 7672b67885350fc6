"""The local project: which files ship, the archive, git state, env and fingerprints (real git)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from lightfold import project as proj
from lightfold.config import DeployConfig, DomainConfig, TargetConfig
from lightfold.errors import LightfoldError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"},
    ).stdout


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {
        "package.json": "{}\n",
        "src/index.js": "console.log(1)\n",
        ".gitignore": "dist/\n*.tmp\n",
        "dist/bundle.js": "built\n",
        "notes.tmp": "x\n",
    })
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def test_git_ships_tracked_and_untracked_files_but_not_ignored_ones(repo: Path):
    write(repo, {"src/new.js": "new\n", "scratch.tmp": "x\n"})
    files = proj.project_files(repo)
    assert files == [".gitignore", "package.json", "src/index.js", "src/new.js"]


def test_env_and_dependency_dirs_never_ship_even_when_committed(repo: Path):
    write(repo, {".env": "SECRET=1\n", "node_modules/x/index.js": "", "api/.env": "A=1\n",
                 "api/__pycache__/m.pyc": "", ".env.example": "SECRET=\n"})
    git(repo, "add", "-f", ".env", "node_modules", "api")
    git(repo, "commit", "-q", "-m", "oops")
    files = proj.project_files(repo)
    assert ".env" not in files and "api/.env" not in files
    assert not any(f.startswith("node_modules/") or "__pycache__" in f for f in files)
    assert ".env.example" in files


def test_env_variants_and_envrc_never_ship_but_env_templates_do(repo: Path):
    secrets = [".env.local", ".env.production", ".env.production.local", ".envrc", "web/.env.development"]
    templates = [".env.example", ".env.sample", ".env.template", "web/.env.dist"]
    write(repo, {name: "SECRET=1\n" for name in secrets + templates})
    git(repo, "add", "-f", *secrets, *templates)
    git(repo, "commit", "-q", "-m", "secrets")
    files = proj.project_files(repo)
    assert not set(secrets) & set(files)
    assert set(templates) <= set(files)


def test_lightfoldignore_dirs_globs_anchors_and_negation(repo: Path):
    write(repo, {
        ".lightfoldignore": "# not for the server\ndocs/\n*.log\n!keep.log\n/root-only.txt\ntests/**/fixtures\n",
        "docs/a.md": "", "app.log": "", "keep.log": "", "sub/debug.log": "", "root-only.txt": "",
        "sub/root-only.txt": "", "tests/unit/fixtures/big.bin": "", "tests/unit/test_a.py": "",
    })
    files = proj.project_files(repo)
    assert "docs/a.md" not in files
    assert "app.log" not in files and "sub/debug.log" not in files
    assert "keep.log" in files
    assert "root-only.txt" not in files and "sub/root-only.txt" in files
    assert "tests/unit/fixtures/big.bin" not in files and "tests/unit/test_a.py" in files
    assert ".lightfoldignore" in files


def test_project_in_a_subdirectory_of_a_repo_ships_only_its_own_files(repo: Path):
    write(repo, {"web/package.json": "{}", "web/dist/x.js": "", "other/y.js": ""})
    assert proj.project_files(repo / "web") == ["package.json"]


def test_non_git_directory_honours_gitignores_and_skips_vcs_and_deps(tmp_path: Path):
    root = tmp_path / "plain"
    write(root, {
        ".gitignore": "build/\n*.secret\n",
        "main.py": "", "build/out.txt": "", "key.secret": "", "lib/sub/.gitignore": "cache.db\n",
        "lib/sub/cache.db": "", "lib/sub/mod.py": "", "lib/cache.db": "", ".git/config": "",
        "node_modules/a.js": "", ".venv/bin/python": "", "pkg/__pycache__/m.pyc": "", ".env": "X=1",
    })
    files = proj.project_files(root)
    assert files == [".gitignore", "lib/cache.db", "lib/sub/.gitignore", "lib/sub/mod.py", "main.py"]
    assert proj.git_state(root) == proj.GitState(False, None, False)


@pytest.mark.parametrize("patterns", [
    "*.log\n!important.log\n",
    "/build\nsrc/**/gen/\n",
    "a/**\n!a/keep\n",
    "**/cache\n",
    "doc/*.txt\n",
    "[Tt]emp*\n",
    "logs/\n!logs/today.txt\n",
    "\\#hash\n\\!bang\ntrailing\\ \n",
    "*.py[co]\nfoo?\n",
    "build\nsrc/a/**/g.c\n",
    "**/a/c\n*\n!*/\n!*.log\n",
    "d/\n!d/x.log\n",
])
def test_ignore_rules_agree_with_git(tmp_path: Path, patterns: str):
    """Our walker (used outside git) must exclude exactly what git's own matcher excludes."""
    names = [
        "x.log", "important.log", "d/x.log", "d/important.log", "build/o", "src/build/o", "src/a/gen/g.c",
        "src/gen/g.c", "a/b", "a/keep", "b/a/c", "cache/c", "x/cache/c", "y/cache", "doc/a.txt", "doc/s/a.txt",
        "Temp1", "temp2/x", "stemp", "logs/today.txt", "logs/old.txt", "#hash", "!bang", "trailing ",
        "m.pyc", "m.pyo", "m.py", "foo1", "foo", "foo12",
    ]
    root = tmp_path / "r"
    write(root, {n: "" for n in names} | {".gitignore": patterns, "src/.gitignore": "*.c\n!gen/g.c\n"})
    git(root, "init", "-q")
    expected = sorted(git(root, "ls-files", "--others", "--exclude-standard").splitlines())
    ours = proj._walk(root, proj.IgnoreRules().add_file(root / ".gitignore"))  # nested ones too
    ours = sorted(p for p in ours if not p.startswith(".git/"))
    # git quotes names with special characters unless core.quotePath is off; compare unquoted.
    expected = [e[1:-1] if e.startswith('"') else e for e in expected]
    assert ours == expected


def test_git_state_reports_full_commit_and_dirty_tree(repo: Path):
    state = proj.git_state(repo)
    assert state.is_repo and not state.dirty
    assert state.commit == git(repo, "rev-parse", "HEAD").strip() and len(state.commit) == 40
    (repo / "src/index.js").write_text("changed\n")
    assert proj.git_state(repo).dirty
    git(repo, "checkout", "-q", "--", "src/index.js")
    write(repo, {"untracked.js": ""})
    assert proj.git_state(repo).dirty


def test_repo_without_commits_has_no_commit(tmp_path: Path):
    git(tmp_path, "init", "-q")
    write(tmp_path, {"a.txt": "1"})
    assert proj.git_state(tmp_path) == proj.GitState(True, None, True)


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_archive_is_deterministic_and_ignores_mtimes(repo: Path):
    first, sha1 = proj.archive_bytes(repo)
    os.utime(repo / "src/index.js", (1, 1))
    second, sha2 = proj.archive_bytes(repo)
    assert sha1 == sha2 == hashlib.sha256(first).hexdigest()
    assert first == second
    (repo / "src/index.js").write_text("changed\n")
    assert proj.archive_bytes(repo)[1] != sha1


def test_archive_holds_exactly_the_shipped_files_with_fixed_owner_and_exec_bits(repo: Path):
    write(repo, {".env": "SECRET=hunter2\n", "bin/run": "#!/bin/sh\n"})
    (repo / "bin/run").chmod(0o775)
    os.symlink("src/index.js", repo / "entry.js")
    dest = repo.parent / "r.tar.gz"
    archive = proj.build_archive(repo, dest)
    assert archive.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest() and archive.size == dest.stat().st_size
    members = _members(dest.read_bytes())
    assert sorted(members) == [".gitignore", "bin/run", "entry.js", "package.json", "src/index.js"]
    assert archive.files == 5
    assert members["bin/run"].mode == 0o755 and members["package.json"].mode == 0o644
    assert members["entry.js"].issym() and members["entry.js"].linkname == "src/index.js"
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, proj.ARCHIVE_MTIME)}
    assert b"hunter2" not in dest.read_bytes() and b"hunter2" not in _gunzip(dest)


def _gunzip(path: Path) -> bytes:
    import gzip

    return gzip.decompress(path.read_bytes())


def target(env: dict[str, str] | None = None, **deploy) -> TargetConfig:
    return TargetConfig(project_path="/p", deploy=DeployConfig(env_vars=env or {}, **deploy))


def test_env_merges_dotenv_and_config_with_config_winning(tmp_path: Path):
    (tmp_path / ".env").write_text("A=from-file\nB=file-only\n")
    env = proj.env_for_release(target({"A": "from-config", "C": "config-only"}), tmp_path)
    assert env == {"A": "from-config", "B": "file-only", "C": "config-only"}


def test_env_without_dotenv_is_the_config(tmp_path: Path):
    assert proj.env_for_release(target({"X": "1"}), tmp_path) == {"X": "1"}


def test_env_refuses_port_with_the_reason(tmp_path: Path):
    (tmp_path / ".env").write_text("PORT=3000\n")
    with pytest.raises(LightfoldError) as e:
        proj.env_for_release(target(), tmp_path)
    assert "PORT" in e.value.problem and "$PORT" in e.value.fix


@pytest.mark.parametrize("name", ["1ABC", "MY-VAR", "A B", "ä"])
def test_env_refuses_invalid_names(tmp_path: Path, name: str):
    with pytest.raises(LightfoldError, match="not a valid environment variable name"):
        proj.env_for_release(target({name: "x"}), tmp_path)


def test_a_quoted_env_name_with_a_newline_is_refused_naming_the_file(tmp_path: Path):
    """issue 13: `'BAD<newline>LD_PRELOAD'=x` in .env would have written an extra line into the
    EnvironmentFile; it is refused, and the error names the .env file it came from."""
    (tmp_path / ".env").write_text("'BAD\nLD_PRELOAD'=/tmp/x.so\nOK=1\n")
    with pytest.raises(LightfoldError) as e:
        proj.env_for_release(target(), tmp_path)
    assert f"{tmp_path / '.env'} has 'BAD\\nLD_PRELOAD'" in e.value.problem
    with pytest.raises(LightfoldError, match="deploy.env_vars has 'A B'"):
        proj.env_for_release(target({"A B": "x"}), tmp_path.parent)


def test_dotenv_keeps_hostile_values_exactly(tmp_path: Path):
    (tmp_path / ".env").write_text(
        'QUOTED="he said \\"hi\\""\n'
        "SINGLE='$HOME and ${USER} stay'\n"
        "BARE=${HOME}/x\n"
        "SPACES=\"  padded  value \"\n"
        'MULTI="line1\nline2"\n'
        'ESCAPED="a\\nb"\n'
        "UNICODE=héllo wörld ✓\n"
        "EQUALS=a=b=c\n"
        "HASH='not # a comment'\n",
        encoding="utf-8",
    )
    env = proj.load_dotenv(tmp_path / ".env")
    assert env == {
        "QUOTED": 'he said "hi"',
        "SINGLE": "$HOME and ${USER} stay",
        "BARE": "${HOME}/x",
        "SPACES": "  padded  value ",
        "MULTI": "line1\nline2",
        "ESCAPED": "a\nb",
        "UNICODE": "héllo wörld ✓",
        "EQUALS": "a=b=c",
        "HASH": "not # a comment",
    }


def test_dependency_hash_follows_lockfiles_only(tmp_path: Path):
    write(tmp_path, {"package.json": "{}", "package-lock.json": "v1", "src/a.js": "1"})
    names = ["package.json", "package-lock.json", "yarn.lock"]
    h1 = proj.dependency_hash(tmp_path, names)
    (tmp_path / "src/a.js").write_text("2")
    assert proj.dependency_hash(tmp_path, names) == h1
    (tmp_path / "package-lock.json").write_text("v2")
    assert proj.dependency_hash(tmp_path, names) != h1
    assert proj.dependency_hash(tmp_path, ["nothing.lock"]) is None


def test_deploy_fingerprint_changes_with_code_env_and_settings_only(repo: Path):
    t = target({"A": "1"})
    env = {"A": "1"}
    base = proj.deploy_fingerprint(repo, t, env)
    assert proj.deploy_fingerprint(repo, t, env) == base
    assert proj.deploy_fingerprint(repo, t, {"A": "2"}) != base
    assert proj.deploy_fingerprint(repo, target({"A": "1"}, build_command="make"), env) != base
    with_domain = TargetConfig(project_path="/p", deploy=t.deploy, domain=DomainConfig(domain="x.example"))
    assert proj.deploy_fingerprint(repo, with_domain, env) != base

    (repo / "src/index.js").write_text("edit 1\n")
    dirty1 = proj.deploy_fingerprint(repo, t, env)
    assert dirty1 != base
    (repo / "src/index.js").write_text("edit 2\n")
    dirty2 = proj.deploy_fingerprint(repo, t, env)
    assert dirty2 not in (base, dirty1)
    git(repo, "checkout", "-q", "--", "src/index.js")
    assert proj.deploy_fingerprint(repo, t, env) == base

    (repo / "scratch.tmp").write_text("ignored by git\n")
    assert proj.deploy_fingerprint(repo, t, env) == base


def test_deploy_fingerprint_outside_git_follows_content(tmp_path: Path):
    write(tmp_path, {"index.html": "<h1>1</h1>"})
    t = target()
    first = proj.deploy_fingerprint(tmp_path, t, {})
    assert proj.deploy_fingerprint(tmp_path, t, {}) == first
    (tmp_path / "index.html").write_text("<h1>2</h1>")
    assert proj.deploy_fingerprint(tmp_path, t, {}) != first
