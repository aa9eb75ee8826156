"""The baked defaults on the other supported Pythons, and on Django 6 (which needs 3.12+).

The main suite runs on the machine's python3 (3.11); each case here builds its own shared venv
(cached in .cache/ like the main one) from the same pins, with Django swapped where it says.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from harness import baking
from harness.combos import BY_NAME, COMBOS
from harness.skips import missing

CASES = [
    pytest.param("3.12", None, id="python3.12-django5.2"),
    pytest.param("3.13", "Django==6.1.3", id="python3.13-django6.1"),
]


def find_python(version: str) -> str | None:
    """An interpreter of `version` that runs (a pyenv shim may exist but refuse to run)."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python3")))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
        )
        if check.returncode == 0 and check.stdout.startswith(version):
            return candidate
    return None


@pytest.mark.parametrize(("version", "django"), CASES)
@pytest.mark.xdist_group("python-versions")
def test_baked_defaults_pass_their_tests(version, django, bake):
    python = find_python(version)
    if python is None:
        missing(f"Python {version} is not installed")
    requirements = [line for combo in COMBOS for line in baking.requirement_lines(bake(combo))]
    if django:
        requirements = [line for line in requirements if not line.startswith("Django==")]
        requirements.append(django)
    venv = baking.ensure_venv(requirements, python)
    combo = BY_NAME["defaults"]
    project = baking.BakedProject(
        path=bake(combo), combo=combo, venv=venv, env=baking.service_env(combo)
    )

    version_line = project.run(
        "python", "-c", "import sys, django; print(sys.version, django.__version__)"
    )
    assert version_line.stdout.startswith(version)
    if django:
        assert django.split("==")[1] in version_line.stdout
    project.manage("check", "--fail-level", "WARNING")
    project.manage("makemigrations", "--check", "--dry-run")
    result = project.manage("test", "--noinput", timeout=600)
    assert "OK" in result.stderr.splitlines()[-2:] or result.stderr.rstrip().endswith("OK"), (
        result.describe()
    )
