"""The supported option combinations, as data: each one is baked and tested.

A combo names only the answers that differ from cookiecutter.json's defaults. Add a combo here and
every parametrized test runs on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parent.parent


def default_answers() -> dict[str, str]:
    """What `cookiecutter --no-input` answers: the first choice of each list, each plain value.

    Rendered values (the slug) are left out: they depend on other answers.
    """
    questions = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    answers = {}
    for key, value in questions.items():
        if key.startswith("_"):
            continue
        if isinstance(value, list):
            answers[key] = value[0]
        elif isinstance(value, str) and "{{" not in value:
            answers[key] = value
    return answers


@dataclass(frozen=True)
class Combo:
    name: str
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def answers(self) -> dict[str, str]:
        """Every answer this bake gets: defaults, then this combo's overrides."""
        return {**default_answers(), **self.overrides}

    def __getitem__(self, key: str) -> str:
        return self.answers[key]

    @property
    def needs_postgres(self) -> bool:
        return self["database"] == "postgresql"

    @property
    def needs_redis(self) -> bool:
        return self["channel_layer"] == "redis"


COMBOS = [
    Combo("defaults"),
    Combo("postgresql", {"database": "postgresql"}),
    Combo("redis", {"channel_layer": "redis"}),
    # Also the metrics bake: its own tests (tests/test_metrics.py) run here, and the README's
    # Uvicorn advice for scraping each process.
    Combo("uvicorn", {"asgi_server": "uvicorn", "metrics": "prometheus"}),
    Combo("no_example", {"include_example_app": "n", "ci": "none"}),
    Combo("production_daphne", {"database": "postgresql", "channel_layer": "redis"}),
    Combo(
        "production",
        {"database": "postgresql", "channel_layer": "redis", "asgi_server": "uvicorn"},
    ),
]

BY_NAME = {combo.name: combo for combo in COMBOS}


def combo_params(*names: str) -> list:
    """`pytest.param`s for the named combos (all by default), one xdist group per combo.

    The group keeps a combo's tests on one worker, where its bake is already cached.
    """
    chosen = [BY_NAME[name] for name in names] if names else COMBOS
    return [
        pytest.param(combo, id=combo.name, marks=pytest.mark.xdist_group(combo.name))
        for combo in chosen
    ]


def for_each_combo(test):
    """Decorator: run `test` once per supported combo (it takes `combo`, `baked` or `project`)."""
    return pytest.mark.parametrize("combo", combo_params())(test)
