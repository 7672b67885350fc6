"""`lightfold detect` as a user runs it: the installed executable in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "detect"


def test_json_is_exactly_one_object_on_stdout(cli) -> None:
    r = cli("detect", str(FIXTURES / "django-pip"), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # raises if anything but one JSON document is on stdout
    assert isinstance(data, dict)
    assert data["framework"] == "django" and data["runtime"] == "python"
    assert data["start"] == ".venv/bin/gunicorn --bind 127.0.0.1:$PORT mysite.wsgi:application"
    assert "explain" not in data


def test_json_explain_lists_the_candidates(cli) -> None:
    r = cli("detect", str(FIXTURES / "next-in-script-only"), "--json", "--explain")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    by_id = {c["framework"]: c for c in data["explain"]}
    assert by_id["vite"]["won"] and not by_id["nextjs"]["matched"]
    assert "script" in by_id["nextjs"]["reason"]


def test_default_path_is_the_current_directory(cli) -> None:
    r = cli("detect", "--json", cwd=FIXTURES / "go-gin")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["framework"] == "gin"


def test_human_output_shows_plan_and_explanation(cli) -> None:
    r = cli("detect", str(FIXTURES / "rails"), "--explain")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Ruby on Rails" in out and "bin/rails server -b 127.0.0.1 -p $PORT" in out
    assert "SECRET_KEY_BASE" in out and "candidates" in out and "won" in out


def test_nothing_detected_exits_1_with_a_fix_and_empty_stdout(cli, tmp_path: Path) -> None:
    project = tmp_path / "notes"
    project.mkdir()
    (project / "README.md").write_text("just notes\n")
    r = cli("detect", str(project), "--json")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "no supported framework" in r.stderr and "lightfold.toml: start =" in r.stderr


def test_usage_errors_exit_2(cli, tmp_path: Path) -> None:
    missing = cli("detect", str(tmp_path / "missing"), "--json")
    assert missing.returncode == 2 and missing.stdout == "" and "does not exist" in missing.stderr
    assert cli("detect", "--no-such-flag").returncode == 2


def test_explain_shows_what_the_project_file_contributed(cli, tmp_path) -> None:
    (tmp_path / "requirements.txt").write_text("flask\ngunicorn\n")
    (tmp_path / "app.py").write_text("from flask import Flask\nimport sqlite3\napp = Flask(__name__)\n")
    (tmp_path / "Procfile").write_text("web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: python worker.py\n")
    (tmp_path / "lightfold.toml").write_text(
        '[processes]\nworker = 2\n[cron.cleanup]\nschedule = "@daily"\ncommand = "python cleanup.py"\n'
        'deploy_grace = "2m"\n')
    r = cli("detect", str(tmp_path), "--explain")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "project file" in out and "lightfold.toml, Procfile" in out
    assert "start ← Procfile" in out and "processes.worker ← lightfold.toml (command from Procfile)" in out
    assert "cron.cleanup ← lightfold.toml" in out and "worker ×2: python worker.py" in out
    assert "cleanup [*-*-* 00:00:00]: python cleanup.py (timeout 3600s, deploy grace 120s)" in out
    assert "this app uses SQLite" in out and 'storage = ["data"]' in out
    data = json.loads(cli("detect", str(tmp_path), "--json").stdout)
    assert data["manifest_keys"] == {"start": "Procfile", "processes.worker": "lightfold.toml (command from Procfile)",
                                     "cron.cleanup": "lightfold.toml"}
    assert data["cron"] == [{"name": "cleanup", "schedule": "*-*-* 00:00:00", "command": "python cleanup.py",
                             "timeout": 3600, "deploy_grace": 120}]


def test_a_broken_project_file_is_one_clear_error(cli, tmp_path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "lightfold.toml").write_text('relase = "x"\n')
    r = cli("detect", str(tmp_path))
    assert r.returncode == 1
    assert "lightfold.toml: unknown key 'relase' (did you mean 'release'?)" in " ".join(r.stderr.split())
