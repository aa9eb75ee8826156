"""A baked project served for real on a free loopback port (Daphne, Uvicorn or the development
server), and a websocket client. Used by the live-server and browser tests and the benchmark.
Readiness is polled with a deadline, never assumed after a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

from harness.baking import clean_env
from harness.services import LOOPBACK, die_with_parent, free_port

START_TIMEOUT = 60.0
# What a server log shows when an application raised, whatever the client was told.
APPLICATION_ERRORS = (
    "Exception inside application",  # Daphne
    "Exception in ASGI application",  # Uvicorn
    "Internal Server Error",  # Django's 500s
)
# ...and any traceback at all, which is what a clean run's log must not have.
LOG_PROBLEMS = ("Traceback", *APPLICATION_ERRORS)
# The two lines a server process logs about a channel layer outage (rest_live/layer_outage.py).
OUTAGE_STARTED = "cannot reach the channel layer"
OUTAGE_ENDED = "reached the channel layer again"

# Production-like settings over plain HTTP on loopback.
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "off",
    "DJANGO_ALLOWED_HOSTS": f"{LOOPBACK},localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "off",
    "DJANGO_SECURE_COOKIES": "off",
}


def server_command(server: str, port: int, module: str = "config.asgi:application") -> list[str]:
    """The command that serves the project with `server`, bound to loopback and `port`: the
    production commands of the baked README, or the development server."""
    if server == "runserver":
        return ["python", "manage.py", "runserver", "--noreload", f"{LOOPBACK}:{port}"]
    if server == "uvicorn":
        return [
            "uvicorn",
            module,
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--proxy-headers",
            "--lifespan",
            "off",
        ]
    return ["daphne", "--bind", LOOPBACK, "--port", str(port), "-v", "0", "--proxy-headers", module]


class ServerFailed(RuntimeError):
    """The server exited or did not answer in time; the message carries its log."""


class AppServer:
    """One server process for a baked project; `start()` after `stop()` or `kill()` reuses the
    port.

    `production` runs it with debug off (PRODUCTION_ENV), as deployed; the development server
    runs with the project's own settings, which serve the static files.
    """

    def __init__(
        self,
        project_dir: Path,
        venv: Path,
        env: dict[str, str],
        server: str,
        log_dir: Path,
        module: str = "config.asgi:application",
        ready_path: str = "/api/",
        options: tuple[str, ...] = (),
    ) -> None:
        self.project_dir, self.venv, self.server, self.module = project_dir, venv, server, module
        self.options = options  # more command-line options for the server
        self.env = env if server == "runserver" else {**PRODUCTION_ENV, **env}
        self.ready_path = ready_path
        self.port = free_port()
        self.log_path = log_dir / f"{server}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    url = http_url

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        argv = [*server_command(self.server, self.port, self.module), *self.options]
        argv[0] = str(self.venv / "bin" / argv[0])
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.project_dir,
                env=clean_env(self.venv, self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so a stuck server dies with its children
                # Parent death means parent *thread* death: tie the server to the main thread only.
                preexec_fn=die_with_parent
                if threading.current_thread() is threading.main_thread()
                else None,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.server} exited while starting:\n{self.log()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerFailed(f"{self.server} was not serving within {START_TIMEOUT}s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.http_url + self.ready_path, timeout=2) as response:
                return response.status < 500
        except urllib.error.HTTPError as error:
            return error.code < 500
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)

    def kill(self) -> None:
        """SIGKILL the server's process group, as a crash or the OOM killer would: no shutdown,
        no close frames, its sockets closed by the kernel. `start()` serves on the same port."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(15)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def lines_with(self, text: str) -> list[str]:
        """Every line of the whole log that contains `text`."""
        try:
            log = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in log.splitlines() if text in line]

    def get_json(self, path: str):
        """What the server answers a GET of `path` (an anonymous REST read)."""
        with urllib.request.urlopen(self.http_url + path, timeout=10) as response:
            return json.loads(response.read())

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        """Until the log shows `text`; fails with the log after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.lines_with(text):
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log()}"
            time.sleep(0.05)

    def log_size(self) -> int:
        """Where the log ends now: pass it to `assert_clean_log` to check only what follows."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def assert_clean_log(self, since: int = 0, problems=LOG_PROBLEMS) -> None:
        """The log (from byte `since`) shows no exception: a boundary the application handled
        must not also be a traceback, and Daphne logs one when an application misbehaves (an
        invalid close code, a send on a closed socket) even though the client sees a close."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except OSError:
            return
        found = [line for line in text.splitlines() if any(m in line for m in problems)]
        assert not found, f"the {self.server} log shows an exception:\n{text[-6000:]}"


@contextlib.contextmanager
def served(
    project_dir: Path,
    venv: Path,
    env: dict[str, str],
    server: str,
    log_dir: Path,
    log_problems=LOG_PROBLEMS,
    **kw,
):
    """A started AppServer, stopped on exit, whose whole log must show none of `log_problems`
    (tests that stop Redis pass APPLICATION_ERRORS: channels_redis logs tracebacks of its own).

    The one place tests start Daphne or Uvicorn for a fault or boundary test:

        with served(project.path, project.venv, env, "uvicorn", tmp_path) as app:
            socket = await LiveSocket.open(app)
    """
    app = AppServer(project_dir, venv, env, server, log_dir, **kw)
    app.start()
    try:
        yield app
    finally:
        app.stop()
    app.assert_clean_log(problems=log_problems)


class LiveSocket:
    """A real websocket client speaking the subscription protocol."""

    def __init__(self, connection, server: AppServer) -> None:
        self.connection = connection
        self.server = server
        self._ids = iter(range(1, 1_000_000))

    @classmethod
    async def open(cls, server: AppServer, path: str = "/ws/subscribe/", headers=None):
        connection = await connect(
            server.ws_url + path,
            origin=server.http_url,  # AllowedHostsOriginValidator refuses sockets without one
            additional_headers=headers,
            open_timeout=10,
        )
        return cls(connection, server)

    async def subscribe(self, model: str = "todos.Todo", action: str = "list", **fields) -> int:
        """Subscribe, and wait until the server says the subscription is live (its ack)."""
        request_id = next(self._ids)
        await self.send(
            {"type": "subscribe", "id": request_id, "model": model, "action": action,
             "ack": True, **fields}
        )  # fmt: skip
        while (reply := await self.receive(timeout=10)).get("type") == "snapshot":
            pass
        assert reply == {"type": "subscribed", "id": request_id}, reply
        return request_id

    async def send(self, frame: dict) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, timeout: float = 5.0) -> dict:
        try:
            return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        except TimeoutError:
            raise AssertionError(
                f"nothing arrived within {timeout}s; server log:\n{self.server.log()}"
            ) from None

    async def assert_silent(self, seconds: float) -> None:
        """Nothing arrives for `seconds` (a window the test chose), and the socket stays open."""
        with contextlib.suppress(TimeoutError):
            frame = await asyncio.wait_for(self.connection.recv(), seconds)
            raise AssertionError(f"unexpected frame: {frame}")
        assert self.connection.close_code is None, f"closed with {self.connection.close_code}"

    async def close(self) -> None:
        await self.connection.close()


def rest_write(
    server: AppServer,
    token: str,
    method: str,
    path: str,
    body: dict | None = None,
    statuses: tuple[int, ...] = (200, 201, 204),
) -> dict | None:
    """A write through the server's REST API (`POST`, `PATCH`, `DELETE`...), signed in with a DRF
    token; its answer must have one of `statuses`. The answer's JSON, or None when it has none."""
    request = urllib.request.Request(
        server.http_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in statuses, response.status
        answer = response.read()
    return json.loads(answer) if answer else None


def create_over_rest(server: AppServer, token: str, title: str) -> None:
    """Create a todo with `title` through the server's REST API, signed in with a DRF token."""
    rest_write(server, token, "POST", "/api/todos/", {"title": title}, statuses=(201,))
