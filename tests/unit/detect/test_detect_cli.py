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
    assert "no supported framework" in r.stderr and "deploy.start_command" in r.stderr


def test_usage_errors_exit_2(cli, tmp_path: Path) -> None:
    missing = cli("detect", str(tmp_path / "missing"), "--json")
    assert missing.returncode == 2 and missing.stdout == "" and "does not exist" in missing.stderr
    assert cli("detect", "--no-such-flag").returncode == 2
