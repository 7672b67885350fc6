"""The settings module a Django release starts with when its ALLOWED_HOSTS would refuse the
server's name (lightfold.server.django_settings): built into a release by the real build script
and imported through the release's own start launcher (no Django needed: the module only reads the
project's settings)."""

from __future__ import annotations

import ast
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.unit.server.serverkit import Det, run_script

from lightfold.config import DeployConfig
from lightfold.detect import traps
from lightfold.server.app import AppSpec, cron_unit_text, proc_unit_text, unit_text
from lightfold.server.build import user_build_script

RID = "20260101120001"
PROBE = ("import lightfold_django_settings as s\n"
         "print(repr([s.ALLOWED_HOSTS, s.SECRET_KEY, s.SECURE_PROXY_SSL_HEADER, hasattr(s, 'lower_case'), "
         "s.DATABASES]))\n")


@dataclass
class DjangoDet(Det):
    framework: str = "django"
    language: str = "python"
    runtime: str = "python"
    package_manager: str | None = "pip"
    install: str | None = None
    build: str | None = None
    start: str | None = traps.django_hosts_start("python3 probe.py", "shop.settings")


def started(tmp_path: Path, settings: str, env: dict[str, str] | None = None, det: Det | None = None):
    rel = tmp_path / f"srv/shop/releases/{RID}"
    for name, text in {"shop/__init__.py": "", "shop/settings.py": settings, "probe.py": PROBE,
                       "shop/other.py": "SECRET_KEY = 'other'\nALLOWED_HOSTS = []\n"}.items():
        (rel / name).parent.mkdir(parents=True, exist_ok=True)
        (rel / name).write_text(text)
    (tmp_path / "srv/shop/cache").mkdir(parents=True, exist_ok=True)
    rc, _, err = run_script(user_build_script("shop", det or DjangoDet(), DeployConfig(), RID, prefix=str(tmp_path)))
    assert rc == 0, err
    r = subprocess.run([str(rel / ".lightfold/start")], capture_output=True, text=True, cwd="/",
                       env={"PATH": os.environ["PATH"], **(env or {})})
    assert r.returncode == 0, r.stderr
    return ast.literal_eval(r.stdout.strip())


def test_the_servers_name_and_loopback_are_added_to_the_projects_hosts(tmp_path: Path):
    hosts, secret, proxy, lower, _ = started(
        tmp_path, "SECRET_KEY = 'x'\nALLOWED_HOSTS = ['own.example']\nlower_case = 1\n",
        {"LIGHTFOLD_HOSTS": "shop.example.com"})
    assert hosts == ["own.example", "127.0.0.1", "localhost", ".localhost", "[::1]", "shop.example.com"]
    assert secret == "x" and not lower  # settings are the UPPERCASE names, as Django reads them
    assert proxy == ("HTTP_X_FORWARDED_PROTO", "https")


def test_the_projects_own_proxy_header_is_kept_and_no_hosts_env_adds_only_loopback(tmp_path: Path):
    hosts, _, proxy, _, _ = started(
        tmp_path, "SECRET_KEY = 'x'\nALLOWED_HOSTS = []\nSECURE_PROXY_SSL_HEADER = ('HTTP_X_SCHEME', 'https')\n")
    assert hosts == ["127.0.0.1", "localhost", ".localhost", "[::1]"]
    assert proxy == ("HTTP_X_SCHEME", "https")


def test_a_settings_module_from_the_apps_env_wins_over_the_detected_one(tmp_path: Path):
    hosts, secret, _, _, _ = started(tmp_path, "SECRET_KEY = 'x'\nALLOWED_HOSTS = []\n",
                                  {"DJANGO_SETTINGS_MODULE": "shop.other", "LIGHTFOLD_HOSTS": "10.0.0.5"})
    assert secret == "other" and hosts[-1] == "10.0.0.5"


def test_a_sqlite_file_in_the_release_is_kept_in_the_apps_storage(tmp_path: Path):
    settings = ("import os\nSECRET_KEY = 'x'\nALLOWED_HOSTS = []\nB = os.path.dirname(os.path.dirname(__file__))\n"
                "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3',"
                " 'NAME': os.path.join(B, 'db.sqlite3')},"
                " 'other': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': '/var/lib/x.db'},"
                " 'pg': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'shop'}}\n")
    *_, dbs = started(tmp_path, settings)
    storage = tmp_path / "srv/shop/storage/django"
    assert dbs["default"]["NAME"] == str(storage / "db.sqlite3") and storage.is_dir()
    assert dbs["other"]["NAME"] == "/var/lib/x.db" and dbs["pg"]["NAME"] == "shop"  # outside the release: as is


def test_only_django_releases_get_the_module(tmp_path: Path):
    det = Det(runtime="python", framework="flask", install=None, build=None, start="python3 probe.py")
    rel = tmp_path / f"srv/shop/releases/{RID}"
    rel.mkdir(parents=True)
    (tmp_path / "srv/shop/cache").mkdir(parents=True)
    rc, _, err = run_script(user_build_script("shop", det, DeployConfig(), RID, prefix=str(tmp_path)))
    assert rc == 0, err
    assert (rel / ".lightfold/start").exists() and not (rel / ".lightfold/python").exists()


def environment_line(**spec) -> str:
    text = unit_text(AppSpec("shop", DjangoDet(), DeployConfig(), (8000, 8001), **spec))
    return next(line for line in text.splitlines() if line.startswith("Environment="))


def test_the_units_give_the_app_its_domain_else_the_servers_address():
    assert environment_line(domain="shop.example.com", ip="203.0.113.7").endswith(" LIGHTFOLD_HOSTS=shop.example.com")
    assert environment_line(ip="203.0.113.7").endswith(" LIGHTFOLD_HOSTS=203.0.113.7")
    assert environment_line(ip="2001:db8::7").endswith(" LIGHTFOLD_HOSTS=[2001:db8::7]")
    assert "LIGHTFOLD_HOSTS" not in environment_line()
    assert "LIGHTFOLD_HOSTS" not in environment_line(ip="1.2.3.4 X=1")  # never a second assignment
    spec = AppSpec("shop", DjangoDet(), DeployConfig(), (8000, 8001), ip="203.0.113.7")
    for text in (proc_unit_text(spec), cron_unit_text(spec)):
        assert "LIGHTFOLD_HOSTS=203.0.113.7" in text
