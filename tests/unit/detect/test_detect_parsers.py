"""The manifest parsers read declarations, not words: comments, strings and other tables don't count."""

from __future__ import annotations

from pathlib import Path

from lightfold.detect.project import (
    Project,
    parse_gemfile,
    parse_gemfile_lock,
    parse_go_mod,
    parse_mix_deps,
    strip_js_comments,
)


def test_js_comment_stripping_keeps_strings_that_look_like_comments() -> None:
    src = (
        "const a = 'https://example.com/x'; // output: 'export'\n"
        "/* output: 'export' */ const b = \"//not a comment\";\n"
        "const c = `/* template */`;\n"
    )
    out = strip_js_comments(src)
    assert "export" not in out
    assert "'https://example.com/x'" in out and '"//not a comment"' in out and "`/* template */`" in out


def test_gemfile_ignores_comments_and_reads_every_group() -> None:
    gems = parse_gemfile(
        '# gem "rails", github: "rails/rails"\ngem "sinatra", "~> 4.0"\ngroup :test do\n  gem \'rspec\'\nend\n'
    )
    assert gems == {"sinatra": "~> 4.0", "rspec": ""}


def test_gemfile_lock_reads_resolved_specs_only() -> None:
    lock = "GEM\n  specs:\n    rails (7.1.3)\n      actionpack (= 7.1.3)\n\nDEPENDENCIES\n  rails\n"
    assert parse_gemfile_lock(lock) == {"rails": "7.1.3"}


def test_go_mod_require_blocks_single_lines_and_comments() -> None:
    mod = parse_go_mod(
        "module example.com/svc // the service\n\ngo 1.22\n\ntoolchain go1.22.4\n\n"
        "require github.com/go-chi/chi/v5 v5.0.12\n"
        "require (\n\tgithub.com/gin-gonic/gin v1.10.0 // indirect\n\t// github.com/labstack/echo/v4 v4.0.0\n)\n"
    )
    assert (mod.module, mod.go, mod.toolchain) == ("example.com/svc", "1.22", "1.22.4")
    assert mod.requires == {"github.com/go-chi/chi/v5": "v5.0.12"}  # gin is only an indirect dependency


def test_mix_deps_only_from_the_deps_function() -> None:
    src = (
        'defmodule App.MixProject do\n  def project do\n    [app: :app, description: "not {:phoenix}"]\n  end\n\n'
        '  defp deps do\n    [\n      # {:ecto_sql, "~> 3.0"},\n      {:plug_cowboy, "~> 2.7"},\n'
        '      {:jason, "~> 1.4"}\n    ]\n  end\nend\n'
    )
    assert parse_mix_deps(src) == {"plug_cowboy": "~> 2.7", "jason": "~> 1.4"}


def test_requirements_follow_includes_and_skip_options(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_text("Django==5.0  # web\n-e .\n--index-url https://x/simple\n")
    (tmp_path / "requirements" / "production.txt").write_text("-r base.txt\ngunicorn[gevent]>=22\n")
    p = Project(tmp_path)
    assert p.requirements_file == "requirements/production.txt"
    assert p.python_deps == {"django": "==5.0", "gunicorn": "[gevent]>=22"}


def test_python_deps_ignore_dev_groups(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["Flask>=3"]\n\n'
        '[project.optional-dependencies]\ndev = ["fastapi"]\n\n[dependency-groups]\ndev = ["django"]\n'
    )
    assert Project(tmp_path).python_deps == {"flask": ">=3"}


def test_package_json_dependency_tables_not_scripts(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(
        '{"scripts": {"next": "next build"}, "dependencies": {"react": "18"}, "devDependencies": {"vite": "5"}}'
    )
    assert set(Project(tmp_path).node_deps) == {"react", "vite"}


def test_byte_order_marks_do_not_hide_manifests(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_bytes(b'\xef\xbb\xbf{"dependencies": {"express": "4"}}')
    (tmp_path / "Api.csproj").write_bytes(b'\xef\xbb\xbf<Project Sdk="Microsoft.NET.Sdk.Web"></Project>')
    p = Project(tmp_path)
    assert "express" in p.node_deps
    assert p.text("Api.csproj").startswith("<Project")
