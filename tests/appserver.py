"""A baked project served for real: Daphne or Uvicorn on a free loopback port, and a client.

Used by the live-server tests and the fan-out benchmark. Readiness is polled with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

from tests.baking import clean_env
from tests.services import LOOPBACK, free_port

START_TIMEOUT = 30.0

# Production-like settings over plain HTTP on loopback.
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "off",
    "DJANGO_ALLOWED_HOSTS": f"{LOOPBACK},localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "off",
    "DJANGO_SECURE_COOKIES": "off",
}


def server_command(server: str, port: int, module: str = "config.asgi:application") -> list[str]:
    """The command the baked README gives for `server`, bound to loopback and `port`."""
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
        ]
    return ["daphne", "--bind", LOOPBACK, "--port", str(port), "-v", "0", module]


class AppServer:
    """One ASGI server process for a baked project; `start()` after `stop()` reuses the port."""

    def __init__(
        self,
        project_dir: Path,
        venv: Path,
        env: dict[str, str],
        server: str,
        log_dir: Path,
        module: str = "config.asgi:application",
    ) -> None:
        self.project_dir, self.venv, self.server, self.module = project_dir, venv, server, module
        self.env = {**PRODUCTION_ENV, **env}
        self.port = free_port()
        self.log_path = log_dir / f"{server}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        argv = server_command(self.server, self.port, self.module)
        argv[0] = str(self.venv / "bin" / argv[0])
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.project_dir,
                env=clean_env(self.venv, self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.server} exited while starting:\n{self.log()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.server} was not serving within {START_TIMEOUT}s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/api/", timeout=2) as response:
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

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


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
        """Subscribe, and wait until the server has set it up (a 404 barrier: see LiveTestCase)."""
        request_id = next(self._ids)
        await self.send(
            {"type": "subscribe", "id": request_id, "model": model, "action": action, **fields}
        )
        marker = f"barrier-{next(self._ids)}"
        await self.send({"type": "unsubscribe", "id": marker})
        reply = await self.receive(timeout=10)
        assert reply.get("id") == marker and reply.get("code") == 404, reply
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
