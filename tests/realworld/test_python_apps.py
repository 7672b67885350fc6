"""Generated Python apps on one sandbox machine (only with LIGHTFOLD_REALWORLD=all):
`django-admin startproject` (pip) and a uv FastAPI project."""

from __future__ import annotations

import pytest
from tests.e2e.apps import get
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import PYTHON

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


# `django-admin startproject` leaves ALLOWED_HOSTS = [] (and DEBUG = True): Django answers 400
# (DisallowedHost) to any Host but localhost. lightfold starts it with a settings module that adds
# the app's name (lightfold.server.django_settings); the admin's login form proves a real view
# answers through it, not only the debug welcome page. (Django 6 needs Python 3.12.)
@pytest.mark.parametrize("app", PYTHON, ids=[a.name for a in PYTHON])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
    if app.name == "django":
        status, body = get(machine.ip, "/admin/login/", host="django.rw.test", timeout=10)
        assert status == 200 and b"csrfmiddlewaretoken" in body, (status, body[:300])


# Debian 12, whose python3 is 3.11: Django 6 (3.12+) and the uv project (3.13) run on the Python
# 3.13 configure builds from Debian trixie's source (on Debian 13, the default, python3 is 3.13).
IMAGE = "debian-12"
