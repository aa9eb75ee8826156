"""Real Redis and PostgreSQL servers for the tests, on loopback, on free ports, in temp dirs.

Each server is a plain object: `start()`, `stop()`, `start()` again on the same port (so tests can
restart a server under a live client), and `.url`. Readiness is polled with a deadline, never
assumed after a fixed sleep. A missing binary raises `ServiceNotInstalled`, which the fixtures turn
into a skip (or a failure when REQUIRE_SERVICES=1, as in CI).

Usable outside pytest too::

    with RedisServer() as redis:
        print(redis.url)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness.skips import missing

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# Servers still running, stopped at interpreter exit if a fixture's teardown never ran
# (a crashed xdist worker, an interrupted scratch script).
_running: set[_Server] = set()


class ServiceNotInstalled(RuntimeError):
    """A server binary is missing; the message says which package provides it."""


class ServiceFailed(RuntimeError):
    """A server did not come up (or go down) in time; the message carries its log."""


def free_port() -> int:
    """A port nothing listens on right now: the kernel picks it when we bind to port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to SIGTERM it if the test process dies.

    Without this a SIGKILLed pytest worker would leave servers running on the machine.
    """
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class _Server:
    """Process bookkeeping shared by both servers: spawn, poll until ready, stop, clean up."""

    name = "server"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"rest-live-{self.name}-"))
        self.log_path = self.tmp / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    # Subclasses fill these in.
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _popen_user(self) -> dict:
        return {}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.running:
            return
        # Parent death means parent *thread* death: tie the server to the main thread only.
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                # Own process group, so a stuck server and its children can be killed together.
                start_new_session=True,
                preexec_fn=die_with_parent if in_main_thread else None,
                **self._popen_user(),
            )
        _running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._forget()
                raise ServiceFailed(
                    f"{self.name} exited with code {self.process.returncode} while starting "
                    f"on port {self.port}:\n{self.log()}"
                )
            if self._is_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceFailed(f"{self.name} was not ready within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down; its data dir stays, so `start()` brings the same data back."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            # The polite signal goes to the server alone (PostgreSQL's children read SIGINT
            # differently); SIGKILL goes to the whole group so no child outlives it.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self._stop_signal)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        self._forget()

    def close(self) -> None:
        """Stop the server and delete everything it wrote."""
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    _stop_signal = signal.SIGTERM

    def _forget(self) -> None:
        _running.discard(self)


class RedisServer(_Server):
    """`redis-server` with no persistence, answering on redis://127.0.0.1:PORT/0."""

    name = "redis"

    def __init__(self, port: int | None = None) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServiceNotInstalled("redis-server is not installed; apt-get install redis-server")
        super().__init__(port)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tmp),
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        # The inline protocol needs no client library: "PING\r\n" -> "+PONG\r\n".
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def postgres_bin_dir() -> Path:
    """The bin dir of the newest PostgreSQL installed the Debian way."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    if not candidates:
        on_path = shutil.which("postgres")
        if on_path:
            return Path(on_path).parent
        raise ServiceNotInstalled("PostgreSQL is not installed; apt-get install postgresql")
    newest = max(candidates, key=lambda path: int(Path(path).parts[-3]))
    return Path(newest).parent


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster with trust auth, answering on postgres://postgres@...:PORT.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system
    user and every server command runs as that user.
    """

    name = "postgres"

    def __init__(self, port: int | None = None) -> None:
        self.bin = postgres_bin_dir()
        self.user = self._system_user()
        super().__init__(port)
        self.data = self.tmp / "data"
        self.sockets = self.tmp / "sockets"
        self.sockets.mkdir()
        self.databases = {"postgres"}
        if self.user:
            for path in (self.tmp, self.sockets):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._initdb()

    @staticmethod
    def _system_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceNotInstalled(
                "running as root needs the postgres system user; apt-get install postgresql"
            ) from None

    def _popen_user(self) -> dict:
        if not self.user:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.tmp,
            timeout=START_TIMEOUT * 2,
            **self._popen_user(),
        )

    def _initdb(self) -> None:
        result = self._run(
            str(self.bin / "initdb"),
            "--pgdata", str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceFailed(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@{LOOPBACK}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create database `name` (if new) and return its URL: one database per test subject."""
        if name in self.databases:
            return self.database_url(name)
        result = self._run(
            str(self.bin / "createdb"), "-h", LOOPBACK, "-p", str(self.port), "-U", "postgres", name
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise ServiceFailed(f"createdb {name} failed:\n{result.stdout}\n{result.stderr}")
        self.databases.add(name)
        return self.database_url(name)

    def _command(self) -> list[str]:
        # Durability is worthless for a test cluster; turning it off makes migrations fast.
        return [
            str(self.bin / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", LOOPBACK,
            "-k", str(self.sockets),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        # A bare TCP connect is not enough: during recovery postgres accepts, then refuses.
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", LOOPBACK, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        )
        return result.returncode == 0

    # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, no waiting for them to leave.
    _stop_signal = signal.SIGINT


@contextlib.contextmanager
def started(make_server):
    """A server from `make_server()`, started, and closed at the end; the test is skipped (failed,
    under REQUIRE_SERVICES=1) when the server's binaries are not installed."""
    try:
        server = make_server()
    except ServiceNotInstalled as error:
        missing(str(error))
    try:
        server.start()
        yield server
    finally:
        server.close()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.close()
