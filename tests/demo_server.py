"""A baked project's `manage.py runserver` as a subprocess, for tests that drive it from outside.

`start()` returns once the demo page answers (polled with a deadline, never a fixed sleep);
`stop()` then `start()` again restarts it on the same port, so clients can watch it go and return.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests import baking
from tests.services import LOOPBACK, free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class ServerFailed(RuntimeError):
    """The server exited or did not answer in time; the message carries its log."""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the test process dies, so no server is left over."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DemoServer:
    def __init__(self, project: baking.BakedProject, log_dir: Path, port: int | None = None):
        self.project = project
        self.port = port or free_port()
        self.log_path = log_dir / f"runserver-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.running:
            return
        argv = [
            str(self.project.venv / "bin" / "python"), "manage.py",
            "runserver", "--noreload", f"{LOOPBACK}:{self.port}",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.project.path,
                env=baking.clean_env(self.project.venv, self.project.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so a stuck server dies with its children
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(
                    f"runserver exited with code {self.process.returncode}:\n{self.log()}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerFailed(f"runserver did not answer within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False
