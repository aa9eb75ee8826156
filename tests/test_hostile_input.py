"""Hostile input on the websocket, run inside a baked project (modules from tests/baked/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import baking
from harness.combos import BY_NAME

BAKED_TESTS = Path(__file__).parent / "baked"


@pytest.fixture(scope="module")
def hostile_project(bake, baked_venv):
    """A private bake of the defaults with the hostile-input test modules added."""
    path = bake("defaults", fresh=True)
    shutil.copy(BAKED_TESTS / "hostile_frames.py", path / "tests" / "test_hostile_frames.py")
    combo = BY_NAME["defaults"]
    return baking.BakedProject(path=path, combo=combo, venv=baked_venv,
                               env=baking.service_env(combo))  # fmt: skip


@pytest.mark.xdist_group("hostile")
def test_arbitrary_frames_never_kill_the_consumer(hostile_project):
    result = hostile_project.manage("test", "tests.test_hostile_frames", "--noinput", timeout=900)
    assert "Ran 1 test" in result.stderr, result.describe()
