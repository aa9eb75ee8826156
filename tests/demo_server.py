"""The demo as a test serves it: a baked project's `manage.py runserver` on a free port."""

from __future__ import annotations

from pathlib import Path

from tests import baking
from tests.appserver import AppServer


def DemoServer(project: baking.BakedProject, log_dir: Path) -> AppServer:  # noqa: N802
    """Started, stopped and restarted on the same port like any AppServer; ready when `/` is."""
    return AppServer(project.path, project.venv, project.env, "runserver", log_dir, ready_path="/")
