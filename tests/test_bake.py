"""Bake each supported combo; check its files, lint, Django checks and its own tests."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from harness import baking, programs
from harness.baking import env_file, requirements
from harness.combos import for_each_combo

# A Jinja tag that still mentions cookiecutter: something the bake failed to render. Django's own
# `{{ ... }}` and `{% ... %}` in baked templates are fine, so the tag must name cookiecutter.
LEFTOVER_TAG = re.compile(
    r"\{\{(?:(?!\}\}).)*?cookiecutter"
    r"|\{%(?:(?!%\}).)*?cookiecutter"
    r"|\{#(?:(?!#\}).)*?cookiecutter",
    re.DOTALL,
)
# Code that uses the example app: an import, or its module path as a string ("todos",
# "todos.urls"). A model label in an error message ('todos.Todo') is only an example, not a use.
EXAMPLE_APP_REFERENCE = re.compile(
    r"^\s*(?:from|import)\s+todos\b|[\"']todos(?:\.[a-z_]+)*[\"']", re.MULTILINE
)
# Written by the tools the tests run, not by the bake.
GENERATED_DIRS = {"__pycache__", ".ruff_cache", ".pytest_cache"}


def baked_files(project: Path) -> list[Path]:
    return sorted(
        path
        for path in project.rglob("*")
        if path.is_file() and not GENERATED_DIRS.intersection(path.relative_to(project).parts)
    )


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --- the files ------------------------------------------------------------------------------


@for_each_combo
def test_bake_succeeds(baked):
    expected_slug = "live_todos"  # the default project name, "Live Todos", made a slug
    assert baked.name == expected_slug
    assert (baked / "manage.py").is_file()
    assert (baked / "requirements.txt").is_file()


@for_each_combo
def test_no_template_leftovers(baked):
    problems = []
    for path in [baked, *baked.rglob("*")]:
        relative = path.relative_to(baked)
        if "{{" in path.name or "{%" in path.name:
            problems.append(f"{relative}: template syntax in the name")
        if path.is_file() and not GENERATED_DIRS.intersection(relative.parts):
            text = text_of(path)
            if text and (match := LEFTOVER_TAG.search(text)):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{relative}:{line}: unrendered {match.group(0)!r}")
    assert not problems, "\n".join(problems)


@for_each_combo
def test_only_chosen_options_are_baked(baked, combo):
    pins = requirements(baked)

    example = (baked / "todos").exists()
    assert example == (combo["include_example_app"] == "y")
    if not example:
        mentions = [
            f"{path.relative_to(baked)}"
            for path in baked_files(baked)
            if path.suffix == ".py" and EXAMPLE_APP_REFERENCE.search(path.read_text())
        ]
        assert not mentions, f"the example app is left out, yet these use it: {mentions}"

    workflow = baked / ".github" / "workflows" / "ci.yml"
    if combo["ci"] == "github":
        assert workflow.is_file()
    else:
        assert not (baked / ".github").exists()

    assert ("psycopg" in pins) == (combo["database"] == "postgresql"), sorted(pins)

    if combo["channel_layer"] == "redis":
        assert "channels-redis" in pins, sorted(pins)
        # redis-py 8 breaks channels-redis's core layer after 5 s idle (channels_redis issue 422,
        # as the baked requirements.txt says beside the pin).
        redis = pins.get("redis")
        assert redis is not None, "redis-py must be pinned below 8"
        assert not any(redis.specifier.contains(v) for v in ("8.0.0", "8.1.0", "9.0.0")), redis
    else:
        assert "channels-redis" not in pins and "redis" not in pins, sorted(pins)

    assert ("uvicorn" in pins) == (combo["asgi_server"] == "uvicorn"), sorted(pins)


@for_each_combo
def test_requirements_are_pinned(baked):
    pins = requirements(baked, baking.DEVELOPMENT_REQUIREMENTS)
    loose = [str(r) for r in pins.values() if not str(r.specifier).startswith("==")]
    assert not loose, f"requirements.txt and requirements-dev.txt should pin with ==: {loose}"
    # The baked pyproject.toml configures these for `pytest`.
    assert {"pytest", "pytest-django", "pytest-asyncio"} <= pins.keys(), sorted(pins)


@for_each_combo
def test_env_files(baked):
    env = baked / ".env"
    assert env.is_file(), "the post-gen hook should write .env"
    secret = env_file(env).get("DJANGO_SECRET_KEY", "")
    assert len(secret) >= 40, f"DJANGO_SECRET_KEY should be long and random, got {secret!r}"
    assert len(set(secret)) >= 15, f"DJANGO_SECRET_KEY looks like a placeholder: {secret!r}"

    example = baked / ".env.example"
    assert example.is_file()
    assert secret not in example.read_text(), ".env.example must not carry the real secret"

    ignored = {line.strip() for line in (baked / ".gitignore").read_text().splitlines()}
    assert ignored & {".env", "/.env"}, ".gitignore should list .env"


def test_each_bake_gets_its_own_secret(bake):
    first, second = (
        env_file(bake("defaults", fresh=True) / ".env")["DJANGO_SECRET_KEY"] for _ in range(2)
    )
    assert first != second


# --- lint and Django's checks ---------------------------------------------------------------


@for_each_combo
def test_ruff_passes(baked):
    # The template's ruff is the same pin the baked project asks for; the config is the bake's own.
    baking.run_command(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=baked,
        env=baking.clean_env(),
    )


@for_each_combo
def test_django_check(project):
    project.manage("check", "--fail-level", "WARNING")


@for_each_combo
def test_no_missing_migrations(project):
    project.manage("makemigrations", "--check", "--dry-run")


@for_each_combo
def test_runs_on_the_chosen_services(project, combo):
    result = project.shell(programs.source("services_probe"), timeout=60)
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["vendor"] == ("postgresql" if combo.needs_postgres else "sqlite"), probe
    assert probe["layer"].startswith("channels_redis" if combo.needs_redis else "channels.layers")
    assert probe["got"]["type"] == "probe.message"


# What a passing `manage.py test` may print on stderr: the runner's dots and summary, and the test
# database's lines. Anything else (a log line, a traceback) reads as a failure to a newcomer: a
# test that expects a refusal captures its log (`assertLogs`).
QUIET_TEST_RUN = re.compile(
    r"[.s]*|-+|Ran \d+ tests? in [\d.]+s|OK(?: \(.+\))?"
    r"|(?:Creating|Destroying) test database for alias '\w+'\.\.\."
)


@for_each_combo
@pytest.mark.timeout(600)
def test_project_test_suite_passes(project, combo):
    result = project.manage("test", "--noinput", timeout=540)
    # "Ran 0 tests" is a pass to Django, but here it means discovery broke (say, an __init__.py
    # gone missing).
    ran = re.search(r"^Ran (\d+) tests?", result.stderr, re.MULTILINE)
    assert ran and int(ran.group(1)) > 0, f"the project's suite ran no test\n{result.describe()}"
    noise = [line for line in result.stderr.splitlines() if not QUIET_TEST_RUN.fullmatch(line)]
    assert not noise, f"a passing run printed more than dots:\n{result.describe()}"
