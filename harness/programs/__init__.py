"""Python programs the tests run in a baked project's `manage.py shell`: real files, which ruff
reads, instead of strings in the test modules.

    project.shell(programs.source("writer_token"))
    project.shell(programs.source("mixed_writes"), env_overrides=programs.env(title="x", creates=3))

A program that takes parameters reads them from environment variables, named in its opening
comment; `env()` spells them (upper-cased names, values as text).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The file of program `name` (`writer_token` -> harness/programs/writer_token.py)."""
    found = HERE / f"{name}.py"
    if not found.is_file():
        raise FileNotFoundError(f"no program {name!r} in {HERE}")
    return found


def source(name: str) -> str:
    """The text of program `name`, to pass to `manage.py shell -c`."""
    return path(name).read_text()


def env(**params: object) -> dict[str, str]:
    """`params` as a program's environment variables: `env(creates=10)` -> {"CREATES": "10"}."""
    return {name.upper(): str(value) for name, value in params.items()}
