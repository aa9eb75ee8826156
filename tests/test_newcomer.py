"""What a newcomer meets in the first hour: compose.yaml and .env agree (and connect to a
PostgreSQL set up the way compose.yaml says), a new app passes lint, each log line is printed
once, the Procfile's servers start without noise.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from harness import baking, programs
from harness.appserver import served, server_command
from harness.baking import env_file
from harness.combos import COMBOS, combo_params
from harness.services import (
    LOOPBACK,
    PostgresServer,
    die_with_parent,
    free_port,
    started,
)

SERVICE_COMBOS = [combo.name for combo in COMBOS if combo.needs_postgres or combo.needs_redis]
POSTGRES_COMBOS = [combo.name for combo in COMBOS if combo.needs_postgres]


def compose_file(project: Path) -> dict:
    return yaml.safe_load((project / "compose.yaml").read_text())


def published(service: dict, container_port: int) -> tuple[str, int]:
    """(host address, host port) where `service` publishes `container_port`."""
    for mapping in service["ports"]:
        *address, host_port, port = str(mapping).split(":")
        if int(port) == container_port:
            return ":".join(address), int(host_port)
    raise AssertionError(f"port {container_port} is not published: {service['ports']}")


# --- compose.yaml ---------------------------------------------------------------------------


@pytest.mark.parametrize("combo", combo_params())
def test_compose_file_only_for_the_servers_chosen(baked, combo):
    compose = baked / "compose.yaml"
    if not (combo.needs_postgres or combo.needs_redis):
        assert not compose.exists(), "SQLite and the in-memory layer need no compose file"
        return
    expected = {"postgres"} if combo.needs_postgres else set()
    expected |= {"redis"} if combo.needs_redis else set()
    assert set(compose_file(baked)["services"]) == expected


@pytest.mark.parametrize("combo", combo_params(*SERVICE_COMBOS))
def test_compose_file_follows_the_compose_specification(baked, combo):
    # check-jsonschema ships the Compose Specification's schema (compose-spec.json, Apache-2.0),
    # refreshed with each of its releases; pinned in requirements-dev.txt.
    result = baking.run_command(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(baked / "compose.yaml")],
        cwd=baked, env=baking.clean_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.describe()


@pytest.mark.parametrize("combo", combo_params(*SERVICE_COMBOS))
def test_compose_file_matches_the_env_files(baked, combo):
    services = compose_file(baked)["services"]
    for name in (".env.example", ".env"):
        env = env_file(baked / name)
        if combo.needs_postgres:
            url = urlsplit(env["DATABASE_URL"])
            postgres = services["postgres"]
            settings = postgres["environment"]
            assert url.scheme == "postgres"
            assert (url.username, url.password, url.path.lstrip("/")) == (
                settings["POSTGRES_USER"],
                settings["POSTGRES_PASSWORD"],
                settings["POSTGRES_DB"],
            ), f"{name}'s DATABASE_URL and compose.yaml disagree"
            assert published(postgres, 5432) == (url.hostname, url.port)
            # The healthcheck waits for the same user and database.
            assert settings["POSTGRES_USER"] in postgres["healthcheck"]["test"]
        if combo.needs_redis:
            url = urlsplit(env["REDIS_URL"])
            assert published(services["redis"], 6379) == (url.hostname, url.port)
            assert url.password is None and "command" not in services["redis"]
    # Published on loopback only: a laptop's database is not for the café's network.
    for service in services.values():
        assert all(str(mapping).startswith(f"{LOOPBACK}:") for mapping in service["ports"])


class ScramPostgres(PostgresServer):
    """A cluster that asks for passwords over TCP (scram-sha-256), as the postgres image and
    Debian's, Ubuntu's and Homebrew's packages do; its socket trusts the system user, as theirs.

    `superuser` is the bootstrap superuser, with `password`; `database` is created at start.
    """

    def __init__(self, superuser: str, password: str, database: str | None = None) -> None:
        self.superuser, self.password, self.database = superuser, password, database
        super().__init__()

    def _initdb(self) -> None:
        password_file = self.tmp / "password"
        password_file.write_text(self.password + "\n")
        if self.user:
            os.chown(password_file, self.user.pw_uid, self.user.pw_gid)
        result = self._run(
            str(self.bin / "initdb"),
            "--pgdata", str(self.data),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--username={self.superuser}",
            f"--pwfile={password_file}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        assert result.returncode == 0, f"initdb failed:\n{result.stdout}\n{result.stderr}"

    def start(self, timeout: float = 30) -> None:
        super().start(timeout)
        if self.database:
            result = self.client("createdb", self.database)
            assert result.returncode == 0 or "already exists" in result.stderr, result.stderr

    def client(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """A client program (psql, createdb...) as the superuser, through the socket: what
        `sudo -u postgres` gives on a stock install (and here without root too)."""
        return self._run(
            str(self.bin / program),
            "-h", str(self.sockets), "-p", str(self.port), "-U", self.superuser,
            *args,
        )  # fmt: skip

    def url_on_this_server(self, url: str) -> str:
        """`url` (a .env DATABASE_URL) with this server's port."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{credentials}@{LOOPBACK}:{self.port}"))


def scram_postgres(*args: str):
    return started(lambda: ScramPostgres(*args))


def without_password(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@")))


@pytest.mark.parametrize("combo", combo_params(*POSTGRES_COMBOS[:1]))
def test_env_database_url_migrates_on_postgres_set_up_as_compose_says(baked, baked_venv):
    settings = compose_file(baked)["services"]["postgres"]["environment"]
    setup = (settings["POSTGRES_USER"], settings["POSTGRES_PASSWORD"], settings["POSTGRES_DB"])
    with scram_postgres(*setup) as postgres:
        url = postgres.url_on_this_server(env_file(baked / ".env")["DATABASE_URL"])
        env = {"DATABASE_URL": url, "REDIS_URL": ""}

        result = baking.run_in_project(
            baked, "migrate", "--noinput", venv=baked_venv, env_overrides=env, timeout=180
        )
        assert "Applying rest_live" in result.stdout, result.describe()

        # The server really asks for the password: the old URL, without one, is refused. (No
        # pool, which would retry for its 30 s timeout before giving up.)
        refused = baking.run_in_project(
            baked, "migrate", "--noinput", venv=baked_venv, check=False,
            env_overrides={**env, "DATABASE_URL": without_password(url), "DATABASE_POOL": "off"},
        )  # fmt: skip
        assert refused.returncode != 0 and "password" in refused.output, refused.describe()


def readme_postgres_commands(project: Path) -> list[list[str]]:
    """The commands of the baked README's "Start PostgreSQL" block, as the postgres user."""
    readme = (project / "README.md").read_text()
    section = readme[readme.index("\n### Start PostgreSQL") :]
    block = section[section.index("```sh\n") + 6 : section.index("\n```", section.index("```sh"))]
    commands = [
        shlex.split(line.removeprefix("sudo -u postgres "))
        for line in block.splitlines()
        if line.startswith("sudo -u postgres ")
    ]
    assert [command[0] for command in commands] == ["psql", "createdb"], block
    return commands


@pytest.mark.parametrize("combo", combo_params(*POSTGRES_COMBOS[:1]))
def test_readme_sets_up_your_own_postgres_for_the_env_file(baked, baked_venv):
    """A stock server (the superuser `postgres`, passwords over TCP): the README's commands make
    the user and database of .env's DATABASE_URL, which migrates and can run the tests."""
    with scram_postgres("postgres", secrets.token_urlsafe(12)) as postgres:
        for program, *args in readme_postgres_commands(baked):
            result = postgres.client(program, *args)
            assert result.returncode == 0, f"{program} {args}:\n{result.stderr}"
        env = {
            "DATABASE_URL": postgres.url_on_this_server(env_file(baked / ".env")["DATABASE_URL"]),
            "REDIS_URL": "",
        }
        baking.run_in_project(baked, "migrate", "--noinput", venv=baked_venv, env_overrides=env)
        # The user may create the test database (CREATEDB): a suite with database tests runs.
        result = baking.run_in_project(
            baked, "test", "--noinput", "todos.tests.test_seed_demo",
            venv=baked_venv, env_overrides=env, timeout=180,
        )  # fmt: skip
        assert "Creating test database" in result.stderr, result.describe()


# --- lint of a new app ----------------------------------------------------------------------


@pytest.mark.parametrize("combo", combo_params("defaults", "no_example"))
def test_a_new_app_from_startapp_passes_lint(combo, bake, baked_venv):
    project = bake(combo, fresh=True)
    baking.run_in_project(project, "startapp", "shop", venv=baked_venv)
    assert (
        (project / "shop" / "admin.py").read_text().startswith("from django.contrib import admin")
    )

    # The app alone, with the project's config (test_bake lints the rest).
    result = baking.run_command(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "shop"],
        cwd=project, env=baking.clean_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.describe()

    # The exception is for startapp's four stub imports, not for unused imports in general.
    (project / "shop" / "views.py").write_text(
        "import json\n\nfrom django.shortcuts import render\n"
    )
    result = baking.run_command(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "shop"],
        cwd=project, env=baking.clean_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 1 and re.findall(r"F401", result.stdout) == ["F401"], (
        result.describe()
    )
    assert "`json` imported but unused" in result.stdout, result.describe()


# --- logging ------------------------------------------------------------------------------


def private_database(tmp_path: Path) -> dict[str, str]:
    """A SQLite file of the test's own, so the cached bake's folder stays as baked."""
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}


@pytest.mark.parametrize("debug", ["on", "off"])
def test_each_log_line_is_printed_once(project, debug, tmp_path):
    # Django's own console handler printed django's lines a second time with debug on; with
    # debug off, the root logger's handler alone must still print them.
    result = project.manage(
        "shell", "-c", programs.source("log_each"),
        env_overrides={
            **private_database(tmp_path), "DJANGO_DEBUG": debug, "DJANGO_ALLOWED_HOSTS": "localhost"
        },
    )  # fmt: skip
    for marker in ("marker-django", "marker-rest-live", "marker-app"):
        assert result.stderr.count(marker) == 1, f"{marker}\n{result.describe()}"


def test_runserver_prints_each_request_once(project, tmp_path):
    env = {**project.env, **private_database(tmp_path)}
    with served(project.path, project.venv, env, "runserver", tmp_path) as server:
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server.http_url}/no-such-page/", timeout=10).close()
        deadline = time.monotonic() + 10
        while "GET /no-such-page/" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
    log = server.log_path.read_text()
    assert log.count("Not Found: /no-such-page/") == 1, log
    assert len(re.findall(r"HTTP GET /no-such-page/ 404", log)) == 1, log


# --- the Procfile ---------------------------------------------------------------------------


def procfile_command(project: Path, process: str = "web") -> str:
    for line in (project / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise AssertionError(f"Procfile has no {process}: line")


def options(argv: list[str]) -> dict[str, str | None]:
    """--flag value pairs of a command line (None for a flag without a value)."""
    found = {}
    for index, word in enumerate(argv):
        if word.startswith("--"):
            following = argv[index + 1] if index + 1 < len(argv) else ""
            found[word] = None if not following or following.startswith("-") else following
    return found


def test_the_test_servers_run_uvicorn_as_the_procfile_does(bake):
    procfile = options(shlex.split(procfile_command(bake("uvicorn"))))
    tests = options(server_command("uvicorn", 8000))
    # Where it listens and how many workers are the deployment's; every other option is shared.
    for flag, value in procfile.items():
        if flag not in ("--host", "--port", "--workers"):
            assert tests.get(flag, "missing") == value, (flag, procfile, tests)


@pytest.mark.parametrize("combo", combo_params("defaults", "uvicorn"))
def test_the_procfile_web_command_serves_without_noise(combo, project, tmp_path):
    """The Procfile's web line as a platform runs it (PORT, WEB_CONCURRENCY set), on loopback."""
    port = free_port()
    command = procfile_command(project.path).replace("0.0.0.0", LOOPBACK)
    env = baking.clean_env(
        project.venv,
        {**project.env, **private_database(tmp_path), "PORT": str(port), "WEB_CONCURRENCY": "1"},
    )
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["sh", "-c", command], cwd=project.path, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/api/", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)
    log = log_path.read_text()
    assert "Traceback" not in log, log
    # Uvicorn's lifespan probe of a Django application logs "ASGI 'lifespan' protocol appears
    # unsupported." at every start unless it is off.
    assert "lifespan" not in log.lower(), log
