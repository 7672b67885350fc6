"""The server layout module: one release-id rule, full-string matches, paths under a root."""

from lightfold.agent import layout
from lightfold.agent.layout import Layout


def test_release_ids_are_fourteen_ascii_digits_and_nothing_more():
    assert layout.is_release_id("20261203080000")
    for bad in ("20261203080000\n", "2026120308000", "202612030800001", "2026120308000a", "٢٠٢٦١٢٠٣٠٨٠٠٠٠",
                "../20261203080", "", None, 20261203080000):
        assert not layout.is_release_id(bad), bad


def test_app_names_refuse_a_trailing_newline_and_path_characters():
    assert layout.is_app_name("shop") and layout.is_app_name("my-shop-2")
    for bad in ("shop\n", "Shop", "-shop", "shop/x", "../shop", "", "a" * 64, None):
        assert not layout.is_app_name(bad), bad


def test_paths_sit_under_the_root_prefix(tmp_path):
    lay = Layout("shop", str(tmp_path))
    assert lay.release("20261203080000") == f"{tmp_path}/srv/shop/releases/20261203080000"
    assert lay.upstream == f"{tmp_path}/etc/lightfold/apps/shop/upstream.conf"
    assert lay.unit_file == f"{tmp_path}/etc/systemd/system/lightfold-shop@.service"
    assert lay.relative(lay.journal) == "srv/shop/.lightfold/releases.json"


def test_a_server_layout_is_absolute():
    lay = Layout("shop")
    assert lay.env_file("20261203080000") == "/srv/shop/env/20261203080000.env"
    assert lay.build_log("20261203080000") == "/srv/shop/.lightfold/builds/20261203080000.log"
    assert layout.unit_name("shop", "blue") == "lightfold-shop@blue.service"
    assert layout.unit_name("shop") == "lightfold-shop@.service"
    assert layout.nginx_site("shop") == "/etc/nginx/sites-enabled/lightfold-shop.conf"
