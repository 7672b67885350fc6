"""The project file (lightfold.toml) and the Procfile: what they may say, the errors (file, key or
line, fix), who wins, and what reaches the Detection, app.json and the archive."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from lightfold import project as proj
from lightfold.config import DeployConfig
from lightfold.detect import detect
from lightfold.detect.manifest import check_storage, parse_procfile, read, storage_paths, suggest_name
from lightfold.detect.model import CronSpec, ProcessSpec
from lightfold.detect.toml_schema import parse
from lightfold.errors import LightfoldError
from lightfold.server.app import AppSpec, app_json

FLASK = {"requirements.txt": "flask\ngunicorn\n",
         "app.py": "from flask import Flask\napp = Flask(__name__)\n"}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


# -- Procfile --------------------------------------------------------------------------------------


def test_procfile_lines_in_order_with_comments_and_blank_lines_skipped():
    text = "# processes\nweb: gunicorn app:app\n\nworker:python worker.py --queue a:b\n  release : flask db upgrade\n"
    assert parse_procfile(text) == {"web": "gunicorn app:app", "worker": "python worker.py --queue a:b",
                                    "release": "flask db upgrade"}


@pytest.mark.parametrize(("text", "problem", "fix"), [
    ("worker-high: python w.py\n", "line 1: 'worker-high' is not a valid process name", "'worker_high'"),
    ("web: a\nWorker: b\n", "line 2: 'Worker' is not a valid process name", "'worker'"),
    ("web: a\n2fast: b\n", "'2fast' is not a valid process name", "'p_2fast'"),
    ("web: a\nweb: b\n", "line 2: 'web' is listed twice", "keep one"),
    ("worker:\n", "line 1: 'worker' has no command", "after 'worker:'"),
    ("just a command\n", "line 1 is not 'name: command'", "worker: python worker.py"),
])
def test_procfile_errors_name_the_line_and_the_fix(text, problem, fix):
    with pytest.raises(LightfoldError) as e:
        parse_procfile(text)
    assert problem in e.value.problem and e.value.problem.startswith("Procfile") and fix in e.value.fix


def test_suggested_names_are_valid_process_names():
    from lightfold.agent.layout import is_process_name

    for name in ("worker-high", "Worker", "2fast", "a.b.c", "-x-", "ç", "x" * 40):
        assert is_process_name(suggest_name(name)), name


# -- lightfold.toml: the schema --------------------------------------------------------------------

FULL = """
release = "python manage.py migrate --noinput"
release_timeout = "10m"
storage = ["uploads", "data/"]
build = "make assets"
start = "gunicorn app:app --bind 127.0.0.1:$PORT"

[health]
path = "/up"
status = 204
timeout = "2m"
host = "app.example.com"

[processes.worker]
command = "python worker.py"
count = 2
stop_timeout = "1m"
servers = "primary"

[processes]
mailer = "python mailer.py"

[cron.cleanup]
schedule = "*/5 * * * *"
command = "python cleanup.py"
timeout = 300
deploy_grace = "2m"

[cron.report]
schedule = "Mon..Fri 04:00"
command = "python report.py"

[databases]
postgres = true
redis = true
"""


def test_every_key_of_the_readme_example_is_read(tmp_path):
    m = read(write(tmp_path, {"lightfold.toml": FULL}))
    assert m.sources == ["lightfold.toml"]
    assert (m.release, m.release_timeout, m.build, m.start) == (
        "python manage.py migrate --noinput", 600, "make assets", "gunicorn app:app --bind 127.0.0.1:$PORT")
    assert m.storage == ["uploads", "data"]
    assert (m.health_path, m.health_status, m.health_timeout, m.health_host) == ("/up", 204, 120, "app.example.com")
    assert m.processes == [ProcessSpec("worker", "python worker.py", 2, 60, "primary"),
                           ProcessSpec("mailer", "python mailer.py")]
    assert m.cron == [CronSpec("cleanup", "*-*-* *:00/5:00", "python cleanup.py", 300, 120),
                      CronSpec("report", "Mon..Fri 04:00", "python report.py", 3600, None)]
    assert m.keys["cron.cleanup"] == "lightfold.toml" and m.keys["health.host"] == "lightfold.toml"
    assert m.databases == ["postgres", "redis"] and m.keys["databases"] == "lightfold.toml"


def test_databases_mariadb_is_mysql_and_one_database_url():
    from lightfold.detect.manifest import merge

    assert merge(parse({"databases": {"mariadb": True, "redis": True}}, "lightfold.toml"), {}).databases == [
        "mysql", "redis"]
    assert merge(parse({"databases": {"postgres": False}}, "lightfold.toml"), {}).databases == []
    with pytest.raises(LightfoldError, match="postgres and mysql both give the app DATABASE_URL"):
        parse({"databases": {"postgres": True, "mysql": True}}, "lightfold.toml")
    with pytest.raises(LightfoldError, match="'databases.redis': Input should be a valid boolean"):
        parse({"databases": {"redis": "yes"}}, "lightfold.toml")
    with pytest.raises(LightfoldError) as e:
        parse({"databases": {"postgress": True}}, "lightfold.toml")
    assert "did you mean 'postgres'?" in e.value.problem
    assert "keys there: postgres, mysql, mariadb, redis" in e.value.fix


def test_readme_documents_every_key():
    from lightfold.detect.toml_schema import CronTable, DatabasesTable, HealthTable, ProcessTable, ProjectFile

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## lightfold.toml", 1)[1].split("\n## ", 1)[0]
    for model, prefix in ((ProjectFile, ""), (HealthTable, "health."), (ProcessTable, "processes.<name>."),
                          (CronTable, "cron.<name>."), (DatabasesTable, "databases.")):
        for key in model.model_fields:
            assert f"`{prefix}{key}`" in section, f"{prefix}{key}"


@pytest.mark.parametrize(("value", "seconds"), [
    (600, 600), ("600", 600), ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2m 30s", 150)])
def test_durations_are_seconds_or_text(value, seconds):
    assert parse({"release_timeout": value}, "lightfold.toml").release_timeout == seconds


@pytest.mark.parametrize(("raw", "problem", "fix"), [
    ({"relase": "x"}, "unknown key 'relase' (did you mean 'release'?)", "keys there: release, release_timeout"),
    ({"health": {"paht": "/"}}, "unknown key 'health.paht' (did you mean 'path'?)", "path, status, timeout, host"),
    ({"processes": {"worker": {"comand": "x"}}}, "'processes.worker.comand' (did you mean 'command'?)",
     "command, count, stop_timeout, servers"),
    ({"cron": {"c": {"command": "x", "schedule": "daily", "timout": 5}}}, "did you mean 'timeout'?",
     "schedule, command, timeout, deploy_grace"),
    ({"cron": {"c": {"command": "x", "schedule": "daily", "deploy_grace": "soon"}}}, "'soon' is not a duration",
     "cron.c.deploy_grace"),
    ({"cron": {"c": {"command": "x", "schedule": "daily", "deploy_grace": -1}}}, "use 0 to 86400 seconds",
     "cron.c.deploy_grace"),
    ({"cron": {"c": {"command": "x", "schedule": "daily", "deploy_grace": "25h"}}}, "use 0 to 86400 seconds",
     "cron.c.deploy_grace"),
    ({"processes": {"web": "x"}}, "'processes': 'web' is not a process here: set the top-level `start`", "processes"),
    ({"processes": {"release": "x"}}, "set the top-level `release` key", "processes"),
    ({"processes": {"my-worker": "x"}}, "'my-worker' is not a valid name", "processes"),
    ({"cron": {"Nightly": {"schedule": "daily", "command": "x"}}}, "'Nightly' is not a valid name", "cron"),
    ({"processes": {"w": {"command": "x", "count": "2"}}}, "'processes.w.count': Input should be a valid integer",
     "processes.w.count"),
    ({"processes": {"w": {"command": "x", "count": True}}}, "'processes.w.count'", "processes.w.count"),
    ({"processes": {"w": {"command": "x", "count": 0}}}, "'processes.w.count'", "processes.w.count"),
    ({"processes": {"w": {"command": "x", "count": 33}}}, "'processes.w.count'", "processes.w.count"),
    ({"processes": {"w": {"command": "  "}}}, "the command is empty", "processes.w.command"),
    ({"cron": {"c": {"command": "x"}}}, "'cron.c.schedule': Field required", "add schedule = ... under [cron.c]"),
    ({"cron": {"c": {"schedule": "0 0 1 * 1", "command": "x"}}}, "either one", "cron.c.schedule"),
    ({"cron": {"c": {"schedule": "daily\nExecStart=/bin/sh", "command": "x"}}}, "characters", "cron.c.schedule"),
    ({"release_timeout": "ten"}, "'ten' is not a duration", "release_timeout"),
    ({"release_timeout": 0}, "use 1 to 86400 seconds", "release_timeout"),
    ({"health": {"timeout": "2h"}}, "use 1 to 3600 seconds", "health.timeout"),
    ({"health": {"path": "up"}}, "'health.path': 'up' is not a request path", "health.path"),
    ({"health": {"host": "a b"}}, "'health.host'", "health.host"),
    ({"health": {"status": 99}}, "'health.status'", "health.status"),
    ({"storage": "data"}, "'storage': Input should be a valid list", "storage"),
    ({"release": 5}, "'release': Input should be a valid string", "release"),
])
def test_errors_name_the_file_the_key_and_the_fix(raw, problem, fix):
    with pytest.raises(LightfoldError) as e:
        parse(raw, "/p/app/lightfold.toml")
    assert e.value.problem.startswith("/p/app/lightfold.toml: ")
    assert problem in e.value.problem and fix in e.value.fix and "lightfold.toml" in e.value.fix


def test_a_deploy_grace_of_0_stops_a_run_at_once_and_unset_lets_it_finish():
    job = {"schedule": "daily", "command": "x"}
    cron = parse({"cron": {"a": {**job, "deploy_grace": 0}, "b": {**job, "deploy_grace": "90s"}, "c": job}},
                 "lightfold.toml").cron
    assert [(n, t.deploy_grace) for n, t in cron.items()] == [("a", 0), ("b", 90), ("c", None)]


def test_several_errors_show_beyond_the_first():
    with pytest.raises(LightfoldError) as e:
        parse({"relase": "x", "storage": 1}, "lightfold.toml")
    assert len(e.value.details) == 1


def test_a_toml_syntax_error_names_the_file_and_the_line(tmp_path):
    write(tmp_path, {"lightfold.toml": 'release = "x"\nstorage = [1,,]\nbuild = "y"\n'})
    with pytest.raises(LightfoldError, match=r"lightfold.toml is not valid TOML: .*line"):
        read(tmp_path)


@pytest.mark.parametrize(("dirs", "says"), [
    (["."], "is the app itself"),
    (["./"], "is the app itself"),
    (["a/.."], "is the app itself"),
    (["../x"], "climbs out"),
    (["/srv/data"], "absolute"),
    (["up loads"], "characters other than"),
    (["a;b"], "characters other than"),
    ([""], "empty"),
    (["data", "data/"], "listed twice"),
    (["data", "data/db"], "'data/db' is inside 'data': list only 'data'"),
    (["data/db", "data"], "'data/db' is inside 'data'"),
    ([".lightfold/x"], "which lightfold or the build makes"),
    (["node_modules"], "which lightfold or the build makes"),
    ([".venv"], "which lightfold or the build makes"),
])
def test_storage_dirs_must_be_plain_separate_dirs_inside_the_app(dirs, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        check_storage(dirs)


def test_storage_dirs_are_normalised_and_may_be_siblings():
    assert check_storage(["uploads/", "./data", "var/cache", "var/cache2"]) == [
        "uploads", "data", "var/cache", "var/cache2"]


# -- Procfile and lightfold.toml together ----------------------------------------------------------


def test_lightfold_toml_wins_over_the_procfile_key_by_key(tmp_path):
    write(tmp_path, {
        "Procfile": "web: gunicorn app:app\nrelease: flask db upgrade\nworker: rq worker\nclock: python clock.py\n",
        "lightfold.toml": 'release = "python migrate.py"\n[processes]\nworker = 3\n'
                          '[processes.clock]\ncommand = "python clock2.py"\n',
    })
    m = read(tmp_path)
    assert m.sources == ["lightfold.toml", "Procfile"]
    assert m.start == "gunicorn app:app" and m.release == "python migrate.py"
    assert m.processes == [ProcessSpec("worker", "rq worker", 3), ProcessSpec("clock", "python clock2.py")]
    assert m.keys == {"start": "Procfile", "release": "lightfold.toml",
                      "processes.worker": "lightfold.toml (command from Procfile)",
                      "processes.clock": "lightfold.toml"}


def test_a_count_without_a_command_anywhere_is_an_error(tmp_path):
    write(tmp_path, {"lightfold.toml": "[processes]\nworker = 2\n"})
    with pytest.raises(LightfoldError, match="processes.worker has no command") as e:
        read(tmp_path)
    assert "[processes.worker]" in e.value.fix


def test_no_project_file_is_an_empty_manifest(tmp_path):
    m = read(tmp_path)
    assert m.sources == [] and m.keys == {} and m.processes == [] and m.start is None


# -- the Detection ---------------------------------------------------------------------------------


def test_detection_carries_the_project_file(tmp_path):
    write(tmp_path, {**FLASK, "lightfold.toml": FULL})
    d = detect(tmp_path)
    assert d.framework == "flask" and d.start == "gunicorn app:app --bind 127.0.0.1:$PORT"
    assert d.build == "make assets" and d.release == "python manage.py migrate --noinput"
    assert (d.health_path, d.health_status, d.health_timeout, d.health_host) == ("/up", 204, 120, "app.example.com")
    assert d.release_timeout == 600 and d.storage == ["uploads", "data"]
    assert [p.name for p in d.processes] == ["worker", "mailer"] and [c.name for c in d.cron] == ["cleanup", "report"]
    assert d.manifest_sources == ["lightfold.toml"] and d.manifest_keys["start"] == "lightfold.toml"
    assert any("start from lightfold.toml replaces the detected" in s for s in d.signals)
    data = d.to_json()
    assert data["processes"][0] == {"name": "worker", "command": "python worker.py", "count": 2, "stop_timeout": 60,
                                    "servers": "primary"}
    assert data["processes"][1]["servers"] == "all"  # the default: every server
    assert data["cron"][0]["schedule"] == "*-*-* *:00/5:00" and data["manifest_keys"]["storage"] == "lightfold.toml"


def test_without_a_project_file_the_detection_keeps_its_defaults(tmp_path):
    d = detect(write(tmp_path, FLASK))
    assert d.processes == [] and d.cron == [] and d.storage == [] and d.release_timeout == 600
    assert d.manifest_sources == [] and d.health_timeout is None and d.health_status is None


def test_procfile_web_replaces_the_detected_start_bound_to_loopback(tmp_path):
    write(tmp_path, {**FLASK, "Procfile": "web: gunicorn app:app --bind 0.0.0.0:$PORT --workers 3\n"
                                          "worker: python worker.py\n"})
    d = detect(tmp_path)
    assert d.start == ".venv/bin/gunicorn app:app --bind 127.0.0.1:$PORT --workers 3"
    assert d.processes == [ProcessSpec("worker", "python worker.py")] and d.manifest_keys["start"] == "Procfile"


def test_procfile_web_of_a_node_app_is_bound_to_loopback_and_runs_directly(tmp_path):
    write(tmp_path, {"package.json": json.dumps({"dependencies": {"express": "4"}, "scripts": {"start": "node s.js"}}),
                     "package-lock.json": "{}", "s.js": "require('express')().listen(process.env.PORT)\n",
                     "Procfile": "web: node s.js --host 0.0.0.0\n"})
    d = detect(tmp_path)
    assert d.start == "node s.js --host 127.0.0.1" and d.manifest_keys == {"start": "Procfile"}


def test_the_plain_python_procfile_plan_keeps_its_own_start(tmp_path):
    write(tmp_path, {"requirements.txt": "gunicorn\n", "wsgi.py": "def application(e, s): pass\n",
                     "Procfile": "web: gunicorn wsgi --bind 0.0.0.0:$PORT\n"})
    d = detect(tmp_path)
    assert d.variant == "procfile" and d.start == ".venv/bin/gunicorn wsgi --bind 127.0.0.1:$PORT"
    assert not any("replaces" in s for s in d.signals)


def test_a_broken_project_file_fails_detection_first(tmp_path):
    write(tmp_path, {**FLASK, "Procfile": "worker-high: python w.py\n"})
    with pytest.raises(LightfoldError, match="Procfile line 1"):
        detect(tmp_path)


def test_a_static_site_ignores_start_and_warns_about_processes(tmp_path):
    write(tmp_path, {"index.html": "<h1>hi</h1>", "lightfold.toml": 'start = "x"\n[processes]\nw = "y"\n'})
    d = detect(tmp_path)
    assert d.static and d.start is None
    assert any("static site" in w and "start command is not used" in w for w in d.warnings)
    assert any("processes and cron jobs have nothing to run" in w for w in d.warnings)


# -- SQLite ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("files", "evidence"), [
    ({"requirements.txt": "flask\n", "app.py": "from flask import Flask\nimport sqlite3\napp = Flask(__name__)\n"},
     "app.py imports sqlite3"),
    ({**FLASK, "requirements.txt": "flask\naiosqlite\n"}, "aiosqlite in the Python dependencies"),
    ({**FLASK, "models.py": 'URL = "sqlite:///data.db"\n'}, "models.py has a sqlite:/// database URL"),
    ({**FLASK, "db.sqlite3": ""}, "database file db.sqlite3"),
    ({"package.json": json.dumps({"dependencies": {"express": "4", "better-sqlite3": "9"}}), "server.js": ""},
     "better-sqlite3 in package.json"),
    ({"package.json": json.dumps({"dependencies": {"express": "4", "sqlite3": "5"}}), "server.js": ""},
     "sqlite3 in package.json"),
])
def test_sqlite_apps_are_told_to_keep_the_database_in_storage(tmp_path, files, evidence):
    d = detect(write(tmp_path, files))
    warning = next(w for w in d.warnings if "SQLite" in w)
    assert evidence in warning and 'storage = ["data"] in lightfold.toml' in warning


def test_django_default_databases_get_the_django_example(tmp_path):
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "detect" / "django-pip"
    import shutil

    shutil.copytree(fixtures, tmp_path / "app")
    settings = next((tmp_path / "app").rglob("settings.py"))
    settings.write_text(settings.read_text() + '\nDATABASES = {"default": {"ENGINE": '
                        '"django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}\n')
    d = detect(tmp_path / "app")
    warning = next(w for w in d.warnings if "SQLite" in w)
    assert "Django's DATABASES uses SQLite" in warning and 'BASE_DIR / "data" / "db.sqlite3"' in warning


def test_sqlite_with_storage_is_a_note_unless_a_database_file_is_outside(tmp_path):
    write(tmp_path, {**FLASK, "app.py": FLASK["app.py"] + "import sqlite3\n", "lightfold.toml": 'storage = ["data"]\n'})
    d = detect(tmp_path)
    assert not any("SQLite" in w for w in d.warnings)
    assert any("SQLite" in s and "storage dir (data)" in s for s in d.signals)
    write(tmp_path, {"instance/app.sqlite": ""})
    d = detect(tmp_path)
    assert any("instance/app.sqlite is outside the storage dirs (data)" in w for w in d.warnings)


def test_apps_without_sqlite_get_no_hint(tmp_path):
    d = detect(write(tmp_path, FLASK))
    assert not any("SQLite" in x for x in d.warnings + d.signals)


# -- storage never ships ---------------------------------------------------------------------------


def test_storage_dirs_never_ship_nor_enter_the_archive(tmp_path):
    write(tmp_path, {"app.py": "", "data/db.sqlite3": "x", "data/sub/f": "y", "database.py": "", "uploads/a.png": ""})
    assert proj.project_files(tmp_path, ["data", "uploads"]) == ["app.py", "database.py"]
    archive = proj.build_archive(tmp_path, tmp_path.parent / "a.tar.gz", ["app.py", "data/db.sqlite3"], ["data"])
    assert archive.files == 1


def test_storage_dirs_never_ship_from_a_git_repo_even_when_committed(tmp_path):
    import subprocess

    write(tmp_path, {"app.py": "", "data/.gitkeep": "", "data/seed.db": "x"})
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e.invalid", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env, capture_output=True)
    assert proj.project_files(tmp_path, ["data"]) == ["app.py"]
    assert "data/seed.db" in proj.project_files(tmp_path)


def test_storage_paths_are_relative_to_what_ships():
    assert storage_paths(["data", "up"], None) == ["data", "up"]
    assert storage_paths(["data"], ".") == ["data"]
    assert storage_paths(["data"], "apps/web") == ["apps/web/data"]


def test_a_monorepo_app_keeps_its_storage_out_of_the_workspace_archive(tmp_path):
    write(tmp_path, {"apps/web/data/x.db": "x", "apps/web/index.js": "", "data/other": "kept: not the app's"})
    files = proj.project_files(tmp_path, storage_paths(["data"], "apps/web"))
    assert files == ["apps/web/index.js", "data/other"]


# -- app.json: the target's deploy.health_* > lightfold.toml ---------------------------------------


def _det(**kw):
    return SimpleNamespace(static=False, app_root=".", output_dir=None, health_path="/up", health_status=204,
                           health_timeout=120, health_host="p.example", **kw)


def test_app_json_takes_the_project_files_health_settings():
    health = app_json(AppSpec("shop", _det(), DeployConfig(), (8000, 8001), domain="d.example"))["health"]
    assert health == {"path": "/up", "status": 204, "timeout": 120, "host": "p.example"}


def test_the_targets_health_settings_win_over_the_project_files():
    dep = DeployConfig(health_path="/ready", health_status=200, health_timeout=30, health_host="t.example")
    health = app_json(AppSpec("shop", _det(), dep, (8000, 8001)))["health"]
    assert health == {"path": "/ready", "status": 200, "timeout": 30, "host": "t.example"}


def test_without_either_the_health_defaults_hold():
    det = SimpleNamespace(static=False, app_root=".", output_dir=None, health_path="/")
    health = app_json(AppSpec("shop", det, DeployConfig(), (8000, 8001)))["health"]
    assert health == {"path": "/", "status": "2xx/3xx", "timeout": 60, "host": None}
