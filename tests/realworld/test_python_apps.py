"""Generated Python apps on one sandbox machine (only with LIGHTFOLD_REALWORLD=all):
`django-admin startproject` (pip) and a uv FastAPI project."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import PYTHON

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


# `django-admin startproject` leaves ALLOWED_HOSTS = [] with DEBUG = True: Django then answers 400
# (DisallowedHost) to any Host but localhost, so the health check through the app's server name
# fails. lightfold's detect warns about it; it does not change the project's settings. (Django 6
# needs Python 3.12: on the Debian 12 machine it installs and starts on the Python 3.13 configure built.)
DJANGO_HOSTS = pytest.mark.xfail(strict=True, reason="startproject's empty ALLOWED_HOSTS: DisallowedHost")
CASES = [pytest.param(a, marks=DJANGO_HOSTS) if a.name == "django" else a for a in PYTHON]


@pytest.mark.parametrize("app", CASES, ids=[a.name for a in PYTHON])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
