"""Bake the template, build the one virtualenv every baked project shares, run commands in a bake.

Plain functions and one small class; `conftest.py` wraps them in fixtures.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cookiecutter.main import cookiecutter
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.combos import TEMPLATE_DIR, Combo

CACHE_DIR = TEMPLATE_DIR / ".cache"
COMMAND_TIMEOUT = 300

# Variables a baked project reads; the tests always set them, so a developer's shell never leaks in.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL")
# Everything else a subprocess gets from our environment; the rest (DJANGO_*, PYTHON*, proxies...)
# is dropped so a run behaves the same on every machine.
INHERITED_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "TERM")


def write_cookiecutter_config(directory: Path) -> Path:
    """A config file that ignores ~/.cookiecutterrc and keeps replay files out of $HOME.

    A developer's `default_context` would otherwise change what "the defaults" bake.
    """
    config = directory / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {directory / 'cookiecutters'}\nreplay_dir: {directory / 'replay'}\n"
    )
    return config


def bake(combo: Combo, output_dir: Path, config_file: Path, **extra: str) -> Path:
    """Bake `combo` (plus `extra` answers) into `output_dir`; return the project's folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context={**combo.overrides, **extra},
        output_dir=str(output_dir),
        config_file=str(config_file),
    )
    return Path(project)


def cookiecutter_cli(output_dir: Path, config_file: Path, *answers: str) -> CommandResult:
    """Run the cookiecutter command line as a user would, with `key=value` answers."""
    argv = [
        sys.executable, "-m", "cookiecutter", str(TEMPLATE_DIR),
        "--no-input", "--output-dir", str(output_dir), "--config-file", str(config_file),
        *answers,
    ]  # fmt: skip
    return run_command(argv, cwd=output_dir, env=clean_env(), check=False)


# --- the shared virtualenv ------------------------------------------------------------------


# What a baked project's developer installs: the app's pins, then the test and lint tools (pytest
# and its Django and asyncio plugins among them), so the shared venv runs `pytest` as well as
# `manage.py test`.
DEVELOPMENT_REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")


def requirement_lines(
    project: Path, files: tuple[str, ...] = DEVELOPMENT_REQUIREMENTS
) -> list[str]:
    """The requirement lines of a baked project's requirements `files`, comments and options
    (`-r requirements.txt`) stripped."""
    lines = []
    for name in files:
        for line in (project / name).read_text().splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith(("#", "-")):
                lines.append(line)
    return lines


def requirements(project: Path, files=("requirements.txt",)) -> dict[str, Requirement]:
    """The pins of `files` by canonical name (`channels_redis` and `channels-redis` are one)."""
    parsed = {}
    for line in requirement_lines(project, files):
        requirement = Requirement(line)
        parsed[canonicalize_name(requirement.name)] = requirement
    return parsed


def env_file(path: Path) -> dict[str, str]:
    """The variables an env file (.env, .env.example) sets, quotes and `export` removed."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def baked_python() -> str:
    """The interpreter baked projects run on: the machine's python3 unless BAKED_PYTHON says."""
    python = os.environ.get("BAKED_PYTHON") or shutil.which("python3")
    if python is None:
        raise RuntimeError("no python3 on PATH to build the baked projects' virtualenv")
    return python


def ensure_venv(requirements: list[str], python: str) -> Path:
    """Return a virtualenv with `requirements` installed, building it once per machine.

    The venv lives in .cache/ under a hash of the requirements and the interpreter's version, so
    it is reused across test sessions until a pin changes. A file lock keeps xdist workers from
    building it twice; the `.complete` marker tells a finished venv from one a crash left behind.
    """
    # Resolve the interpreter once (a pyenv shim picks a version from the environment), so the
    # version in the key is the version in the venv.
    python, version = subprocess.run(
        [python, "-c", "import sys; print(sys.executable); print(sys.version)"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n", 1)  # fmt: skip
    wanted = "\n".join(sorted(set(requirements))) + "\n"
    key = hashlib.sha256(f"{version}\n{wanted}".encode()).hexdigest()[:16]
    venv = CACHE_DIR / f"baked-venv-{key}"
    marker = venv / ".complete"
    CACHE_DIR.mkdir(exist_ok=True)
    with open(CACHE_DIR / f"baked-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            marker.touch()  # last used: see _remove_stale_venvs
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        run_command([python, "-m", "venv", str(venv)], cwd=CACHE_DIR, env=clean_env())
        (venv / "requirements.txt").write_text(wanted)
        run_command(
            [
                str(venv / "bin" / "python"), "-m", "pip", "install",
                "--disable-pip-version-check", "--quiet", "-r", str(venv / "requirements.txt"),
            ],
            cwd=venv,
            env=clean_env(),
            timeout=900,
        )  # fmt: skip
        marker.write_text(wanted)
    _remove_stale_venvs(keep=venv)
    return venv


def _remove_stale_venvs(keep: Path, unused_days: float = 7) -> None:
    """Delete venvs unused for a week (about 100 MB each), skipping any in use right now.

    Several venvs are live at once (one per interpreter and Django version), so age, not "not
    the one I just built", decides what is stale.
    """
    prune_cache("baked-venv-*.lock", keep=keep, unused_days=unused_days)


def prune_cache(pattern: str, keep: Path, unused_days: float = 7) -> None:
    """Delete the .cache/ folders whose lock files match `pattern` (`node-*.lock`) and whose
    `.complete` marker is older than `unused_days` (or missing), except `keep`.

    A folder whose lock another process holds (building or using it) is left alone.
    """
    cutoff = time.time() - unused_days * 86400
    for lock_path in CACHE_DIR.glob(pattern):
        folder = lock_path.with_suffix("")
        marker = folder / ".complete"
        if folder == keep or (marker.exists() and marker.stat().st_mtime > cutoff):
            continue
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            lock_path.unlink(missing_ok=True)


# --- running commands -----------------------------------------------------------------------


class CommandFailed(AssertionError):
    """A command exited non-zero or timed out; the message carries its whole output."""


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit code {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def clean_env(venv: Path | None = None, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """A small, predictable environment: a few inherited basics, the venv first on PATH."""
    env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONUNBUFFERED"] = "1"
    # Keep bakes free of __pycache__ so what is inspected is what was written.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    env.update(overrides or {})
    return env


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def run_command(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> CommandResult:
    """Run `argv` to completion with output captured; raise `CommandFailed` if `check` and it fails.

    The command gets its own process group so a timeout kills whatever it started too (a test
    server a baked test launched), instead of leaving it holding our pipes open.
    """
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        result = CommandResult(argv, process.returncode, _text(stdout), _text(stderr))
        raise CommandFailed(f"timed out after {timeout}s\n{result.describe()}") from None
    result = CommandResult(argv, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise CommandFailed(result.describe())
    return result


def service_env(combo: Combo, database_url: str = "", redis_url: str = "") -> dict[str, str]:
    """DATABASE_URL and REDIS_URL for `combo`: a real server's URL, or empty for the default.

    Empty rather than absent: the baked settings read an empty value as "use the default", and an
    explicit value beats anything the project's .env file says.
    """
    return {
        "DATABASE_URL": database_url if combo.needs_postgres else "",
        "REDIS_URL": redis_url if combo.needs_redis else "",
    }


def run_in_project(
    project_dir: Path,
    *args: str,
    venv: Path,
    env_overrides: dict[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> CommandResult:
    """`python manage.py ARGS` in a baked project, on the shared venv, in a clean environment."""
    return run_tool(
        project_dir, "python", "manage.py", *args,
        venv=venv, env_overrides=env_overrides, timeout=timeout, check=check,
    )  # fmt: skip


def run_tool(
    project_dir: Path,
    tool: str,
    *args: str,
    venv: Path,
    env_overrides: dict[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> CommandResult:
    """Any program of the shared venv (`python`, `daphne`, `uvicorn`...) in a baked project."""
    return run_command(
        [str(venv / "bin" / tool), *args],
        cwd=project_dir,
        env=clean_env(venv, env_overrides),
        timeout=timeout,
        check=check,
    )


@dataclass
class BakedProject:
    """A baked combo, ready to run: its folder, the shared venv, and its services' URLs."""

    path: Path
    combo: Combo
    venv: Path
    env: dict[str, str] = field(default_factory=dict)

    def manage(self, *args: str, **kwargs) -> CommandResult:
        kwargs["env_overrides"] = {**self.env, **(kwargs.get("env_overrides") or {})}
        return run_in_project(self.path, *args, venv=self.venv, **kwargs)

    def run(self, tool: str, *args: str, **kwargs) -> CommandResult:
        kwargs["env_overrides"] = {**self.env, **(kwargs.get("env_overrides") or {})}
        return run_tool(self.path, tool, *args, venv=self.venv, **kwargs)

    def shell(self, code: str, **kwargs) -> CommandResult:
        """Run Python `code` in `manage.py shell` (another process, as a job or an admin's)."""
        return self.manage("shell", "-c", code, **kwargs)

    def shell_answer(self, code: str, **kwargs) -> str:
        """The last line `code` printed in `manage.py shell` (Django's shell prints a line about
        its automatic imports first), or "" when it printed nothing."""
        printed = self.shell(code, **kwargs).stdout.strip().splitlines()
        return printed[-1] if printed else ""

    def create_in_shell(self, title: str, **kwargs) -> CommandResult:
        """A todo titled `title`, written from `manage.py shell`."""
        return self.shell(
            f"from todos.models import Todo; Todo.objects.create(title={title!r})", **kwargs
        )
