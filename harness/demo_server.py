"""The demo as deployed: static files collected as the Procfile's release step does, then the
production command (Daphne or Uvicorn, debug off) serving it on a free port."""

from __future__ import annotations

from pathlib import Path

from harness import baking
from harness.appserver import PRODUCTION_ENV, AppServer


def collect_static(project: baking.BakedProject) -> None:
    """`collectstatic` with debug off (hashed names, gzip and Brotli copies) into the project's
    DJANGO_STATIC_ROOT, where its servers look for them too."""
    if not project.env.get("DJANGO_STATIC_ROOT"):
        # The default is staticfiles/ inside the bake, which other tests share.
        raise ValueError("set DJANGO_STATIC_ROOT in project.env to a temp dir")
    project.manage("collectstatic", "--noinput", env_overrides=PRODUCTION_ENV)


def DemoServer(project: baking.BakedProject, log_dir: Path, server: str) -> AppServer:  # noqa: N802
    """`server` ("daphne" or "uvicorn") with PRODUCTION_ENV, started, stopped and restarted on
    the same port like any AppServer; ready when `/` (which needs the collected manifest) is."""
    return AppServer(project.path, project.venv, project.env, server, log_dir, ready_path="/")
