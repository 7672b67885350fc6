"""Generated apps on a Debian 12 (bookworm) sandbox machine (only with LIGHTFOLD_REALWORLD=all):
issue 12 asks for at least five apps also on Debian 12. With the Python module (Django, FastAPI,
both on the Python 3.13 configure builds there) these make nine: plain HTML, Vite React (npm),
express-generator (yarn classic), Fastify (npm), SvelteKit (npm) and the Go net/http app, whose
go.mod asks for 1.19 (bookworm's golang). Each row's app name ends in `-12`."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import DEFAULT, MORE, NODE

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]

IMAGE = "debian-12"
PICK = ("html", "react", "express", "fastify", "svelte", "go")
BOOKWORM = [replace(a, name=f"{a.name}-12") for a in DEFAULT + NODE + MORE if a.name in PICK]


def test_the_picked_apps_exist():
    assert sorted(a.name for a in BOOKWORM) == sorted(f"{n}-12" for n in PICK)


@pytest.mark.parametrize("app", BOOKWORM, ids=[a.name for a in BOOKWORM])
def test_generated_app_goes_live_on_debian_12(machine, app, request):
    deploy_app(machine, app, request)
