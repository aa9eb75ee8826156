"""Fixtures: bakes cached per combo, one shared venv for baked projects, real Redis and PostgreSQL.

A test that takes `project` gets a baked combo ready to run commands in::

    @for_each_combo
    def test_something(project):
        project.manage("check")

Without `@for_each_combo` (or its own parametrize of `combo`), `combo` is the defaults.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from harness import baking
from harness.browser import CHROMIUM, launch
from harness.combos import BY_NAME, COMBOS, Combo
from harness.services import (
    PostgresServer,
    RedisServer,
    ServiceNotInstalled,
    postgres_bin_dir,
    started,
)
from harness.skips import missing


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config) -> None:
    # A CI runner or `timeout` stops a run with SIGTERM, which by default kills Python on the
    # spot. Handle it like Ctrl-C, so fixtures tear down: servers stopped, temp dirs removed.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


# What the template's own tests add to baked projects' venv (tests/baked/ modules need them).
EXTRA_REQUIREMENTS = ["hypothesis==6.170.15"]


def pytest_report_header(config) -> list[str]:
    try:
        postgres = str(postgres_bin_dir())
    except ServiceNotInstalled:
        postgres = "not installed"
    return [
        f"baked projects run on: {baking.baked_python()}",
        f"redis-server: {shutil.which('redis-server') or 'not installed'}; postgres: {postgres}",
        f"REQUIRE_SERVICES={os.environ.get('REQUIRE_SERVICES', '')!r}",
    ]


# --- baking ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory) -> Path:
    return baking.write_cookiecutter_config(tmp_path_factory.mktemp("cookiecutter"))


@pytest.fixture(scope="session")
def bake(tmp_path_factory, cookiecutter_config):
    """`bake(combo)` -> the baked project's folder.

    Bakes are cached per combo name for the session (tests must not change them); pass
    `fresh=True` or extra answers for a new, private bake.
    """
    cache: dict[str, Path | Exception] = {}

    def bake_combo(combo: Combo | str, *, fresh: bool = False, **answers: str) -> Path:
        combo = BY_NAME[combo] if isinstance(combo, str) else combo
        if fresh or answers:
            output = tmp_path_factory.mktemp(f"bake-{combo.name}-fresh")
            return baking.bake(combo, output, cookiecutter_config, **answers)
        if combo.name not in cache:
            output = tmp_path_factory.mktemp(f"bake-{combo.name}")
            try:
                cache[combo.name] = baking.bake(combo, output, cookiecutter_config)
            except Exception as error:  # remembered, so a broken bake fails fast after once
                cache[combo.name] = error
        result = cache[combo.name]
        if isinstance(result, Exception):
            raise result
        return result

    return bake_combo


@pytest.fixture(scope="session")
def baked_venv(bake) -> Path:
    """The virtualenv every baked project runs on: the union of all combos' requirements.

    The pins are shared across combos, so one venv serves them all and is built once per machine.
    """
    requirements = [line for combo in COMBOS for line in baking.requirement_lines(bake(combo))]
    return baking.ensure_venv(requirements + EXTRA_REQUIREMENTS, baking.baked_python())


@pytest.fixture
def combo() -> Combo:
    """The combo under test; tests parametrize it (see `for_each_combo`)."""
    return BY_NAME["defaults"]


@pytest.fixture
def baked(combo, bake) -> Path:
    """The cached bake of `combo`: for tests that only read files."""
    return bake(combo)


@pytest.fixture
def project(combo, baked, baked_venv, combo_env) -> baking.BakedProject:
    """The cached bake of `combo`, its venv, and the URLs of the servers it needs, all running."""
    return baking.BakedProject(path=baked, combo=combo, venv=baked_venv, env=combo_env)


# --- services -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server for this test session (per xdist worker)."""
    with started(RedisServer) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster for this test session (per xdist worker)."""
    with started(PostgresServer) as server:
        yield server


@pytest.fixture
def private_redis():
    """A Redis of this test's own, so stopping it disturbs no other test."""
    with started(RedisServer) as server:
        yield server


@pytest.fixture
def private_postgres():
    """A PostgreSQL of this test's own: restarting it disturbs no other test."""
    with started(PostgresServer) as server:
        yield server


@pytest.fixture
def services_for(combo, request):
    """`services_for(database)`: DATABASE_URL and REDIS_URL for `combo`, starting only the servers
    it needs; on PostgreSQL, in the database named `database` (made if it does not exist)."""

    def env(database: str) -> dict[str, str]:
        database_url = redis_url = ""
        if combo.needs_postgres:
            postgres = request.getfixturevalue("postgres_server")
            postgres.start()  # a no-op unless an earlier test stopped it
            database_url = postgres.create_database(database)
        if combo.needs_redis:
            redis = request.getfixturevalue("redis_server")
            redis.start()
            redis_url = redis.url
        return baking.service_env(combo, database_url, redis_url)

    return env


@pytest.fixture
def combo_env(combo, services_for) -> dict[str, str]:
    """DATABASE_URL and REDIS_URL for `combo`, starting only the servers it needs.

    Each combo gets its own database, so combos sharing a worker never see each other's tables.
    """
    return services_for(combo.name)


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium for the module (harness/browser.py)."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed; apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed; pip install -r requirements-dev.txt")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()
