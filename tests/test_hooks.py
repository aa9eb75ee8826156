"""The pre-gen hook refuses bad answers before anything is written, and names what was wrong."""

from __future__ import annotations

import sys

import pytest

from harness import baking
from harness.baking import env_file
from harness.combos import TEMPLATE_DIR

REFUSED = [
    ("project_slug", "My-Project"),  # not lowercase, not an identifier
    ("project_slug", "1abc"),  # starts with a digit
    ("project_slug", "class"),  # a Python keyword
    ("project_slug", "django"),  # shadows a dependency
    ("project_slug", "rest_live"),  # shadows a package inside the project
    ("project_slug", "config"),
    ("project_slug", "todos"),
    ("project_slug", "tests"),
    ("project_slug", "test"),  # shadows the standard library
    ("project_slug", "json"),
    ("project_slug", "asyncio"),
    ("email", "not-an-email"),
    ("email", "a@b"),
]


@pytest.mark.parametrize(("key", "value"), REFUSED, ids=[f"{k}={v}" for k, v in REFUSED])
def test_bad_answer_is_refused(tmp_path, cookiecutter_config, key, value):
    output = tmp_path / "out"
    output.mkdir()

    result = baking.cookiecutter_cli(output, cookiecutter_config, f"{key}={value}")

    assert result.returncode != 0, result.describe()
    assert "ERROR:" in result.output, result.describe()
    assert value in result.output, f"the message should name {value!r}\n{result.describe()}"
    assert list(output.iterdir()) == [], "nothing may be written when an answer is refused"


def test_slug_is_made_from_a_name_with_spaces_and_dashes(tmp_path, cookiecutter_config):
    output = tmp_path / "out"
    output.mkdir()

    result = baking.cookiecutter_cli(output, cookiecutter_config, "project_name=My Cool-App")

    assert result.returncode == 0, result.describe()
    assert [path.name for path in output.iterdir()] == ["my_cool_app"]
    assert (output / "my_cool_app" / "manage.py").is_file()


def test_no_input_with_overrides(tmp_path, cookiecutter_config):
    result = baking.cookiecutter_cli(
        tmp_path, cookiecutter_config, "project_name=Shop Live", "database=postgresql", "ci=none"
    )

    assert result.returncode == 0, result.describe()
    project = tmp_path / "shop_live"
    assert "psycopg" in (project / "requirements.txt").read_text()
    assert not (project / ".github").exists()
    assert (project / "README.md").read_text().startswith("# Shop Live\n")


def test_replay_bakes_the_same_answers_again(tmp_path, cookiecutter_config):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    answers = ("project_name=Replayed", "channel_layer=redis", "include_example_app=n")
    assert baking.cookiecutter_cli(first, cookiecutter_config, *answers).returncode == 0

    argv = [sys.executable, "-m", "cookiecutter", str(TEMPLATE_DIR), "--replay"]
    argv += ["--output-dir", str(second), "--config-file", str(cookiecutter_config)]
    result = baking.run_command(argv, cwd=second, env=baking.clean_env(), check=False)

    assert result.returncode == 0, result.describe()
    again = second / "replayed"
    assert "channels-redis" in (again / "requirements.txt").read_text()
    assert not (again / "todos").exists()
    # Everything but the fresh secret in .env is the same.
    originals = sorted(p.relative_to(first / "replayed") for p in (first / "replayed").rglob("*"))
    assert sorted(p.relative_to(again) for p in again.rglob("*")) == originals


def test_baking_over_an_existing_project_fails_without_touching_it(tmp_path, cookiecutter_config):
    assert baking.cookiecutter_cli(tmp_path, cookiecutter_config).returncode == 0
    project = tmp_path / "live_todos"
    (project / "my_work.py").write_text("kept = True\n")
    env_before = (project / ".env").read_text()

    result = baking.cookiecutter_cli(tmp_path, cookiecutter_config)

    assert result.returncode != 0, result.describe()
    assert "already exists" in result.output, result.describe()
    assert (project / "my_work.py").read_text() == "kept = True\n"
    assert (project / ".env").read_text() == env_before


# --- the post-gen hook's next steps ---------------------------------------------------------

NEXT_STEPS = {
    "defaults": ((), [], True),
    "postgresql": (("database=postgresql",), ["PostgreSQL"], True),
    "redis": (("channel_layer=redis", "include_example_app=n"), ["Redis"], False),
    "both": (("database=postgresql", "channel_layer=redis"), ["PostgreSQL", "Redis"], True),
}


@pytest.mark.parametrize(("answers", "servers", "example"), NEXT_STEPS.values(), ids=NEXT_STEPS)
def test_next_steps_fit_the_answers(tmp_path, cookiecutter_config, answers, servers, example):
    result = baking.cookiecutter_cli(tmp_path, cookiecutter_config, *answers)

    assert result.returncode == 0, result.describe()
    project = tmp_path / "live_todos"
    message = result.stdout[result.stdout.index("Project written to") :]
    commands = [line.split("#")[0].strip() for line in message.splitlines() if line[:4] == "    "]
    readme = (project / "README.md").read_text()
    for command in commands[1:]:  # after `cd`, each step is one the README's "Run it" shows
        assert command in readme, f"{command!r} is not in the baked README\n{message}"
    assert ("python manage.py seed_demo" in commands) == example, message
    assert commands[-1] == "python manage.py runserver", message

    if not servers:
        assert "docker" not in message and "expected on" not in message, message
        assert not (project / "compose.yaml").exists()
        return
    # The servers come before migrate, which needs them.
    assert commands.index("docker compose up -d --wait") < commands.index(
        "python manage.py migrate"
    ), message
    assert (project / "compose.yaml").is_file()
    names = " and ".join(servers)
    for name, address in (("PostgreSQL", "127.0.0.1:5432"), ("Redis", "127.0.0.1:6379")):
        assert (f"{name} is expected on {address}" in message) == (name in servers), message
    if "PostgreSQL" in servers:
        assert "user, password and database live_todos" in message, message
    # The README section it names exists, for those without Docker.
    section = f'section "Start {names}"'
    assert section in message, message
    assert f"\n### Start {names}\n" in readme, f"the baked README has no '### Start {names}'"
    variables = " and ".join(
        variable
        for name, variable in (("PostgreSQL", "DATABASE_URL"), ("Redis", "REDIS_URL"))
        if name in servers
    )
    assert f"{variables} in .env" in message, message


# --- the post-gen hook's metrics parts ------------------------------------------------------


@pytest.mark.parametrize("metrics", ["none", "prometheus"])
def test_metrics_token_and_files_follow_the_answer(tmp_path, cookiecutter_config, metrics):
    result = baking.cookiecutter_cli(tmp_path, cookiecutter_config, f"metrics={metrics}")

    assert result.returncode == 0, result.describe()
    project = tmp_path / "live_todos"
    chosen = metrics == "prometheus"
    for relative in ("config/metrics.py", "tests/test_metrics.py"):
        assert (project / relative).exists() == chosen, relative
    env = env_file(project / ".env")
    assert ("METRICS_TOKEN" in env) == chosen, sorted(env)
    if chosen:
        assert len(env["METRICS_TOKEN"]) >= 32, env["METRICS_TOKEN"]
        assert "METRICS_TOKEN=\n" in (project / ".env.example").read_text()
    assert ("METRICS_TOKEN are already there" in result.stdout) == chosen, result.stdout
