"""upstream.conf, atomic symlink swaps and release readiness checks."""

from __future__ import annotations

import os
import threading

import pytest

from lightfold.agent.core import AgentError
from lightfold.agent.files import link_release, swap_symlink
from lightfold.agent.live import check_release_ready, load_app_config
from lightfold.agent.upstream import render_upstream, slot_for_port, upstream_port


def test_upstream_names_port_slot_and_release():
    text = render_upstream(18002, "green", "20260101120000")
    assert "server 127.0.0.1:18002 max_fails=0;" in text.splitlines()
    assert "# live slot: green, release: 20260101120000" in text
    assert upstream_port(text) == 18002
    assert slot_for_port({"blue": 18001, "green": 18002}, upstream_port(text)) == "green"


def test_upstream_during_a_switch_keeps_the_old_slot_as_backup():
    text = render_upstream(18002, "green", "20260101120000", backup_port=18001)
    assert text.splitlines()[-2:] == ["server 127.0.0.1:18002 max_fails=0;", "server 127.0.0.1:18001 backup;"]
    assert upstream_port(text) == 18002


@pytest.mark.parametrize("text", [None, "", "# nothing\n", "server 10.0.0.1:80;\n"])
def test_unreadable_upstream_has_no_port(text):
    assert upstream_port(text) is None


def test_swap_symlink_replaces_without_a_gap(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "releases" / name).mkdir(parents=True)
    link = str(tmp_path / "current")
    swap_symlink(link, "releases/a")
    misses, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                os.readlink(link)
            except FileNotFoundError:
                misses.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(300):
        swap_symlink(link, f"releases/{'ab'[i % 2]}")
    stop.set()
    thread.join()
    assert misses == []
    assert os.readlink(link) == "releases/b"
    assert sorted(os.listdir(tmp_path)) == ["current", "releases"]


def test_swap_refuses_to_replace_a_real_directory(tmp_path):
    (tmp_path / "current").mkdir()
    with pytest.raises(AgentError, match="is a directory"):
        swap_symlink(str(tmp_path / "current"), "releases/a")
    assert sorted(os.listdir(tmp_path)) == ["current"]


def test_link_release_reads_only_release_ids(tmp_path):
    os.symlink("../releases/20260101120000", tmp_path / "blue")
    os.symlink("/etc", tmp_path / "green")
    assert link_release(str(tmp_path / "blue")) == "20260101120000"
    assert link_release(str(tmp_path / "green")) is None
    assert link_release(str(tmp_path / "missing")) is None


def test_release_must_have_an_executable_start_script(lay, app_json, release, root):
    app_json()
    cfg = load_app_config(lay, {})
    with pytest.raises(AgentError, match="not on the server"):
        check_release_ready(lay, "20260101120000", cfg)
    release("20260101120000", start=False)
    with pytest.raises(AgentError, match="no executable .lightfold/start"):
        check_release_ready(lay, "20260101120000", cfg)
    release("20260101120001")
    check_release_ready(lay, "20260101120001", cfg)


def test_static_release_must_have_its_output_dir(lay, app_json, release):
    app_json(static=True, output_dir="dist", ports=None)
    cfg = load_app_config(lay, {})
    release("20260101120000", start=False)
    with pytest.raises(AgentError, match="no build output at dist/"):
        check_release_ready(lay, "20260101120000", cfg)
    release("20260101120001", start=False, output_dir="dist")
    check_release_ready(lay, "20260101120001", cfg)


def test_request_health_overrides_app_json(lay, app_json):
    app_json()
    cfg = load_app_config(lay, {"health": {"timeout": 3, "path": None}})
    assert cfg["health"] == {"path": "/health", "status": 200, "timeout": 3, "host": "example.test"}
