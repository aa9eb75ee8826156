"""The pre-gen hook refuses bad answers before anything is written, and names what was wrong."""

from __future__ import annotations

import pytest

from tests import baking

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
