"""The benchmarks' own bake: a `production` bake plus a floor consumer, a layer choice and the
writers, and the environment to run it on.

The files in benchmarks/baked/ are copied into a temporary bake only; nothing there ships in the
template. Each says what it is for.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from harness import baking
from harness.appserver import PRODUCTION_ENV
from harness.combos import BY_NAME

COMBO = BY_NAME["production"]  # PostgreSQL, Redis, DEBUG off

BAKED = Path(__file__).resolve().parent / "baked"
# What every benchmark's bake holds; a benchmark copies in the others it runs (`copy_in`).
FILES = (
    "bench_settings.py",
    "bench_asgi.py",
    "bench_writer.py",
    "bench_paced_writer.py",
    "bench_distinct_asgi.py",
    "bench_title_writer.py",
)


def copy_in(path: Path, *names: str) -> None:
    """Copy these files of benchmarks/baked/ into the bake at `path`."""
    for name in names:
        shutil.copy(BAKED / name, path / name)


def program(name: str) -> str:
    """The text of benchmarks/baked/`name`, a program to run with `manage.py shell -c`."""
    return (BAKED / name).read_text()


def bake(workdir: Path, venv: Path | None = None) -> tuple[Path, Path]:
    """A `production` bake in `workdir` with FILES, and a venv with its requirements (`venv`, if
    given): (project path, venv)."""
    path = baking.bake(COMBO, workdir / "bake", baking.write_cookiecutter_config(workdir))
    copy_in(path, *FILES)
    return path, venv or baking.ensure_venv(baking.requirement_lines(path), baking.baked_python())


async def start_script(project, script: str, *args, env=None):
    """`script` (a file of benchmarks/baked/ copied into the bake) run by the bake's Python, in
    the bake, with `args`, talking through pipes: the benchmarks' writer processes."""
    return await asyncio.create_subprocess_exec(
        str(project.venv / "bin" / "python"),
        script,
        *map(str, args),
        cwd=project.path,
        env=baking.clean_env(project.venv, project.env if env is None else env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def start_ready(project, script: str):
    """`start_script(project, script)`, once the script has said "ready" (its Django set up)."""
    process = await start_script(project, script)
    line = await asyncio.wait_for(process.stdout.readline(), 120)
    assert line.strip() == b"ready", line
    return process


class TitleWriter:
    """A writer process (benchmarks/baked/bench_title_writer.py): saves a todo with a title on
    request, reports when it started."""

    def __init__(self, process):
        self.process = process

    @classmethod
    async def start(cls, project):
        return cls(await start_ready(project, "bench_title_writer.py"))

    async def write(self, pk: int, title: str) -> float:
        self.process.stdin.write(f"{pk} {title}\n".encode())
        await self.process.stdin.drain()
        return json.loads(await asyncio.wait_for(self.process.stdout.readline(), 60))

    async def stop(self):
        self.process.stdin.close()
        await self.process.wait()


def environment(postgres_url: str, redis_url: str, layer: str) -> dict[str, str]:
    """What the bake runs with: its services, production settings, and the channel layer chosen."""
    return {
        **baking.service_env(COMBO, postgres_url, redis_url),
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "BENCH_LAYER": layer,
    }
