"""config.json, state/<target>.json and tokens.json: round trips, refusals and file safety."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

from lightfold import config, secrets, state, store
from lightfold.errors import LightfoldError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_config_round_trip_keeps_every_field(lf_home):
    def change(cfg):
        config.set_value(cfg, "web", "provider", "byos")
        config.set_value(cfg, "web", "provider_config.byos.ip", "192.0.2.10")
        config.set_value(cfg, "web", "provider_config.byos.port", "2222")
        config.set_value(cfg, "web", "deploy.port", "3000")
        config.set_value(cfg, "web", "deploy.env_vars.GREETING", "héllo \"world\" $HOME")
        config.set_value(cfg, "web", "domain.domain", "example.com")

    config.update(change)
    t = config.load().targets["web"]
    assert t.provider == "byos"
    assert t.server().ip == "192.0.2.10" and t.server().port == 2222
    assert t.deploy.port == 3000
    assert t.deploy.env_vars["GREETING"] == "héllo \"world\" $HOME"
    assert t.domain.domain == "example.com"
    assert mode(config.config_path()) == 0o600


def test_unknown_key_in_file_names_file_key_and_suggestion(lf_home):
    lf_home.mkdir(parents=True)
    path = lf_home / "config.json"
    path.write_text(json.dumps({"version": 1, "targets": {"web": {"project_path": "/p", "deploy": {"evn_vars": {}}}}}))
    with pytest.raises(LightfoldError) as e:
        config.load()
    assert str(path) in e.value.problem
    assert "targets.web.deploy.evn_vars" in e.value.problem
    assert "env_vars" in e.value.problem  # the spelling hint


def test_malformed_json_is_an_error_and_the_file_is_left_alone(lf_home):
    lf_home.mkdir(parents=True)
    path = lf_home / "config.json"
    path.write_text('{"targets": {"web": ')
    with pytest.raises(LightfoldError) as e:
        config.update(lambda cfg: config.set_value(cfg, "web", "deploy.port", "1"))
    assert str(path) in e.value.problem and "line 1" in e.value.problem
    assert path.read_text() == '{"targets": {"web": '


def test_wrong_type_names_the_key(lf_home):
    lf_home.mkdir(parents=True)
    bad = {"targets": {"web": {"project_path": "/p", "deploy": {"port": "x"}}}}
    (lf_home / "config.json").write_text(json.dumps(bad))
    with pytest.raises(LightfoldError, match=r"targets\.web\.deploy\.port"):
        config.load()


def test_newer_version_is_refused(lf_home):
    lf_home.mkdir(parents=True)
    (lf_home / "config.json").write_text(json.dumps({"version": 99, "targets": {}}))
    with pytest.raises(LightfoldError, match="newer lightfold"):
        config.load()


def test_unset_returns_to_default(lf_home):
    config.update(lambda cfg: config.set_value(cfg, "web", "deploy.health_timeout", "5"))
    config.update(lambda cfg: config.unset_value(cfg, "web", "deploy.health_timeout"))
    assert config.load().targets["web"].deploy.health_timeout is None  # the default: lightfold.toml's, else 60


def test_the_written_default_health_timeout_counts_as_unset(lf_home):
    """Earlier versions wrote health_timeout 60 into every target; it must not hide lightfold.toml's."""
    lf_home.mkdir(parents=True)
    (lf_home / "config.json").write_text(json.dumps(
        {"version": 1, "targets": {"web": {"project_path": "/p", "deploy": {"health_timeout": 60}}}}))
    assert config.load().targets["web"].deploy.health_timeout is None
    config.update(lambda cfg: config.set_value(cfg, "web", "deploy.health_timeout", "90"))
    assert config.load().targets["web"].deploy.health_timeout == 90
    config.update(lambda cfg: config.unset_value(cfg, "web", "deploy.health_timeout"))
    assert "health_timeout" not in json.loads((lf_home / "config.json").read_text())["targets"]["web"]["deploy"]


def test_state_round_trip_and_permissions(lf_home):
    state.update("web", lambda s: setattr(s, "last_release", "20250101000000"))
    st = state.load("web")
    assert st.last_release == "20250101000000" and not st.created
    assert mode(state.state_path("web")) == 0o600
    state.remove("web")
    assert state.load("web").last_release is None


def test_corrupt_state_points_at_sync(lf_home):
    state.state_dir().mkdir(parents=True)
    state.state_path("web").write_text(json.dumps({"created": "maybe"}))
    with pytest.raises(LightfoldError) as e:
        state.load("web")
    assert "created" in e.value.problem and "lightfold sync --target web" in e.value.fix


def test_atomic_write_leaves_no_temp_files(lf_home):
    for i in range(20):
        store.write_json(lf_home / "x.json", {"i": i})
    assert sorted(p.name for p in lf_home.iterdir()) == ["x.json"]


def _add_target(i: int) -> None:
    config.update(lambda cfg: config.set_value(cfg, f"t{i}", "deploy.port", str(3000 + i)))


def test_concurrent_writers_lose_nothing(lf_home):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_target, args=(i,)) for i in range(12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(config.load().targets) == sorted(f"t{i}" for i in range(12))


def test_token_precedence_env_then_file(lf_home, monkeypatch):
    assert secrets.get_token("hetzner") == (None, "none")
    where = secrets.set_token("hetzner", "file-token\n")
    assert where.endswith("tokens.json") and mode(where) == 0o600
    assert secrets.get_token("hetzner") == ("file-token", "file")
    monkeypatch.setenv("HCLOUD_TOKEN", "env-token")
    assert secrets.get_token("hetzner") == ("env-token", "env:HCLOUD_TOKEN")
    assert secrets.unset_token("hetzner")
    monkeypatch.delenv("HCLOUD_TOKEN")
    assert secrets.get_token("hetzner") == (None, "none")


def test_unknown_provider_token_is_refused(lf_home):
    with pytest.raises(LightfoldError, match="digitalocean"):
        secrets.set_token("aws", "x")


@pytest.mark.parametrize(
    ("dirname", "expected"),
    [("My App_2", "my-app-2"), ("web", "web"), ("___", "app"), ("a" * 40, "a" * 31)],
)
def test_default_target_name_is_sanitised(dirname, expected):
    assert config.sanitize_target_name(dirname) == expected


def test_a_state_file_from_before_scale_is_a_target_of_one_server(lf_home):
    """Old state files have no servers/load_balancer keys: they load, and the target's one server
    is the one its config names (the primary); a state without an address has none yet."""
    state.state_dir().mkdir(parents=True)
    state.state_path("web").write_text(json.dumps({"version": 1, "created": True, "last_release": "20250101000000"}))
    st = state.load("web")
    assert st.servers == [] and st.load_balancer is None and not st.multi
    assert state.servers_of("web", "10.0.0.5", st) == [state.Server(name="web", ip="10.0.0.5", role="primary")]
    assert state.servers_of("web", None, st) == []


def test_servers_and_load_balancer_round_trip_primary_first(lf_home):
    def scaled(s: state.TargetState) -> None:
        s.servers = [state.Server(name="web-2", ip="10.0.0.6"), state.Server(name="web", ip="10.0.0.5", role="primary")]
        s.load_balancer = state.LoadBalancer(name="web-lb", ip="10.0.0.9")

    state.update("web", scaled)
    st = state.load("web")
    assert st.multi and st.load_balancer.kind == "haproxy" and st.load_balancer.ip == "10.0.0.9"
    assert [s.name for s in state.servers_of("web", "10.0.0.5", st)] == ["web", "web-2"]
    with pytest.raises(LightfoldError):
        state.state_path("web").write_text(json.dumps({"servers": [{"name": "x", "ip": "1.2.3.4", "role": "boss"}]}))
        state.load("web")


def test_a_target_on_one_of_its_servers_keeps_login_and_key():
    from lightfold.release.target import Target

    tc = config.TargetConfig(project_path="/p", provider="local",
                             provider_config={"local": config.ProviderConfig(ip="10.0.0.5", ssh_key="/k")})
    other = Target("web", tc).on("10.0.0.6")
    assert other.server.ip == "10.0.0.6" and other.server.ssh_key == "/k" and other.name == "web"
    assert tc.server().ip == "10.0.0.5"  # the target's own config is untouched
