"""A baked combo deployed as in production on the test's services: migrated, debug off, and
served by two processes that share its database and channel layer, as behind a load balancer.

    project = production_project(combo, bake(combo), baked_venv, database_url, redis.url)
    with served_twice(project, tmp_path) as (a, b):
        ...
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from harness.appserver import PRODUCTION_ENV, served
from harness.baking import BakedProject, service_env
from harness.combos import Combo


def production_project(
    combo: Combo,
    path: Path,
    venv: Path,
    database_url: str,
    redis_url: str = "",
    extra_env: dict[str, str] | None = None,
) -> BakedProject:
    """The bake of `combo` at `path` on these services, with PRODUCTION_ENV (and `extra_env`),
    its database migrated."""
    env = {**service_env(combo, database_url, redis_url), **PRODUCTION_ENV, **(extra_env or {})}
    project = BakedProject(path=path, combo=combo, venv=venv, env=env)
    project.manage("migrate", "--noinput")
    return project


@contextlib.contextmanager
def served_twice(project: BakedProject, log_dir: Path, **kwargs):
    """Two processes of the combo's ASGI server on the project's environment, each `served`
    (started, stopped on exit, its log checked: `log_problems` and the rest go to `served`)."""
    kind = project.combo["asgi_server"]
    with (
        served(project.path, project.venv, project.env, kind, log_dir, **kwargs) as a,
        served(project.path, project.venv, project.env, kind, log_dir, **kwargs) as b,
    ):
        yield a, b
