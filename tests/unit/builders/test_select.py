"""Builder auto-selection, one test per rule of the seed, on real detections of fixture projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightfold import builders
from lightfold.detect import detect
from lightfold.errors import LightfoldError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def det(name: str):
    return detect(FIXTURES / "detect" / name)


def test_a_dockerfile_selects_dockerfile_even_with_a_framework_and_nixpacks():
    d = det("nextjs-dockerfile")
    assert d.runtime == "node" and d.has_dockerfile
    choice = builders.select(d, nixpacks_available=True)
    assert choice.name == "dockerfile"
    assert choice.reason.startswith("a Dockerfile exists")


def test_dockerfile_reason_names_the_exposed_port():
    d = det("dockerfile-only")
    choice = builders.select(d)
    assert choice.name == "dockerfile"
    if d.dockerfile_port:
        assert f"EXPOSE {d.dockerfile_port}" in choice.reason


@pytest.mark.parametrize("fixture", ["express", "flask-pip"])
def test_node_or_python_with_nixpacks_on_the_server_selects_nixpacks(fixture):
    choice = builders.select(det(fixture), nixpacks_available=True)
    assert choice.name == "nixpacks" and "nixpacks is installed" in choice.reason


@pytest.mark.parametrize("fixture", ["express", "flask-pip"])
def test_without_nixpacks_falls_back_to_native_with_a_note(fixture):
    choice = builders.select(det(fixture), nixpacks_available=False)
    assert choice.name == "native"
    assert choice.note and "nixpacks is not on the server" in choice.note


def test_other_runtimes_and_static_sites_are_native_even_with_nixpacks():
    assert builders.select(det("go-gin"), nixpacks_available=True).name == "native"
    assert builders.select(det("static-html"), nixpacks_available=True).name == "native"


def test_unknown_availability_is_native_and_says_why():
    choice = builders.select(det("flask-pip"))
    assert choice.name == "native" and "if the server had it installed" in choice.reason


def test_the_configured_builder_overrides_the_rules():
    assert builders.select(det("nextjs-dockerfile"), "native").name == "native"
    assert builders.select(det("go-gin"), "nixpacks", nixpacks_available=True).name == "nixpacks"
    assert "--builder" in builders.select(det("express"), "native").reason


def test_a_configured_builder_that_cannot_work_is_a_clear_error():
    with pytest.raises(LightfoldError, match="no Dockerfile"):
        builders.select(det("express"), "dockerfile")
    with pytest.raises(LightfoldError, match="not installed on the server") as e:
        builders.select(det("express"), "nixpacks", nixpacks_available=False)
    assert "--builder native" in e.value.fix
    with pytest.raises(LightfoldError, match="unknown builder"):
        builders.select(det("express"), "buildpacks")


def test_a_dockerfile_app_is_never_static_for_the_builder():
    d = det("nextjs-dockerfile")
    d.static = True
    adapted = builders.get("dockerfile").adapt(d)
    assert adapted.static is False and d.static is True  # a copy; the detection is untouched
    assert builders.get("native").adapt(d) is d and builders.get("nixpacks").adapt(d) is d


def test_each_builder_says_what_decides_reusing_dependencies_and_how_an_env_only_release_reuses_it():
    d = det("express")
    assert builders.get("native").lockfiles(d) == builders.get("nixpacks").lockfiles(d) != ()
    assert builders.get("dockerfile").lockfiles(d) == ()
    assert builders.get("native").reuse_commands("web", "20260101120000", "20260101130000") == ()
    (retag,) = builders.get("dockerfile").reuse_commands("web", "20260101120000", "20260101130000")
    assert retag == "docker tag lightfold-web:20260101120000 lightfold-web:20260101130000"


def test_only_nixpacks_prepares_a_release_on_the_server_and_its_plan_becomes_the_detection():
    d = det("express")
    assert builders.get("native").prepare_command("web", "20260101130000", d, None) is None
    assert builders.get("dockerfile").prepare_command("web", "20260101130000", d, None) is None
    nix = builders.get("nixpacks")
    assert nix.prepare_command("web", "20260101130000", d, None) == (
        "runuser -u lfb-web -- nixpacks plan /srv/web/releases/20260101130000")
    plan = '{"phases": {"install": {"cmds": ["npm ci"]}, "build": {"dependsOn": ["install"], "cmds": ["npm run b"]}},'
    prepared, notes = nix.prepared(d, plan + ' "start": {"cmd": "node app.js"}}')
    assert (prepared.install, prepared.build, prepared.start) == ("npm ci", "npm run b", "node app.js")
    assert notes[-1] == "nixpacks plan: install `npm ci`, build `npm run b`, start `node app.js`"


def test_a_builder_is_asked_for_only_when_nixpacks_decides():
    assert builders.asks_server(det("express")) and builders.asks_server(det("go-gin"), "nixpacks")
    assert not builders.asks_server(det("express"), "native")
    assert not builders.asks_server(det("nextjs-dockerfile")) and not builders.asks_server(det("go-gin"))


def test_detect_explain_shows_the_builder_and_why(cli):
    out = cli("detect", str(FIXTURES / "detect" / "nextjs-dockerfile"), "--explain").stdout
    assert "builder dockerfile" in out and "a Dockerfile exists" in out
    out = cli("detect", str(FIXTURES / "detect" / "flask-pip"), "--explain").stdout
    assert "builder native" in out and "nixpacks would be used if the server had it installed" in out


def test_detect_explain_json_has_the_builder(cli):
    import json

    data = json.loads(cli("detect", str(FIXTURES / "detect" / "go-gin"), "--explain", "--json").stdout)
    assert data["builder"]["name"] == "native"


def test_builder_option_is_saved_in_config_and_checked(cli, tmp_path, lf_home):
    import json

    bad = cli("push", str(tmp_path), "--target", "web", "--builder", "buildpacks")
    assert bad.returncode == 2 and "unknown builder" in bad.stderr
    # saved before anything else happens (this push then fails: the target has no server)
    cli("push", str(tmp_path), "--target", "web", "--builder", "native")
    cfg = json.loads((lf_home / "config.json").read_text())
    assert cfg["targets"]["web"]["builder"] == "native"
