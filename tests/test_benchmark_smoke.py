"""The fan-out benchmark still runs: a small run on both servers, asserting delivery, not speed.

Each timed write in the benchmark waits until every subscriber holds it, so a run that finishes
has delivered every write to every socket, live and floor alike.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests import baking
from tests.combos import TEMPLATE_DIR
from tests.services import ServiceNotInstalled, postgres_bin_dir

pytestmark = [pytest.mark.xdist_group("benchmark"), pytest.mark.timeout(600)]


def test_the_fanout_benchmark_delivers_every_write(tmp_path, baked_venv):
    try:
        postgres_bin_dir()
        if shutil.which("redis-server") is None:
            raise ServiceNotInstalled("redis-server is not installed; apt-get install redis-server")
    except ServiceNotInstalled as error:
        from tests.conftest import _missing

        _missing(str(error))
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "benchmarks/fanout.py", "--clients", "1", "20", "--writes", "3",
         "--out", str(out), "--no-plot", "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=540,
    )  # fmt: skip
    rows = json.loads((out / "fanout.json").read_text())["results"]
    assert {(row["server"], row["n"]) for row in rows} == {
        (server, n) for server in ("daphne", "uvicorn") for n in (1, 20)
    }, result.stdout
    for row in rows:
        assert len(row["live"]) == len(row["floor"]) == 3
