"""`pytest` in a baked project runs every test `manage.py test` runs, plus its pytest-style tests.

The baked pyproject.toml sets pytest-django and pytest-asyncio up, so the project's Django
TestCases run under pytest; `*_pytest.py` files use the fixtures of rest_live/pytest_plugin.py
and are left alone by Django's runner. test_bake.py runs `manage.py test` itself.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness import programs
from harness.combos import combo_params


def pytest_results(report) -> tuple[set[str], set[str]]:
    """(passed or skipped, failed) test ids from a JUnit XML report, as `module.Class.test`."""
    ran, failed = set(), set()
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}.{case.get('name')}"
        outcomes = {child.tag for child in case}
        (failed if outcomes & {"failure", "error"} else ran).add(test_id)
    return ran, failed


@pytest.mark.parametrize("combo", combo_params("defaults", "no_example"))
@pytest.mark.timeout(600)
def test_pytest_runs_the_whole_suite_and_passes(project, tmp_path):
    listed = project.shell(programs.source("django_test_ids"), timeout=120)
    django_ids = set(json.loads(listed.stdout.strip().splitlines()[-1]))
    assert django_ids, f"manage.py test would run no test\n{listed.describe()}"
    assert not [i for i in django_ids if "_pytest." in i], "Django's runner took *_pytest.py"

    report = tmp_path / "pytest.xml"
    result = project.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}",
        timeout=540, check=False,
    )  # fmt: skip
    ran, failed = pytest_results(report) if report.exists() else (set(), set())
    assert result.returncode == 0 and not failed, result.describe()

    missed = sorted(django_ids - ran)
    assert not missed, f"pytest ran {len(ran)} tests but not these of manage.py test: {missed}"
    pytest_style = {test_id for test_id in ran if "_pytest." in test_id}
    assert pytest_style, "pytest ran none of the *_pytest.py tests"
    assert len(ran) == len(django_ids) + len(pytest_style), sorted(ran - django_ids - pytest_style)
