"""A client that keeps a live list the way a real one does, built only from the frames it receives.

`Mirror` subscribes to a list with a snapshot over a real websocket, applies every frame as
rest-live.js does (a snapshot replaces the state, CREATED and UPDATED upsert, DELETED removes), and
when its socket closes it reconnects with a short backoff and subscribes again with a snapshot.
Like rest-live.js, a `reset` re-syncs the subscription (unsubscribe, subscribe with a snapshot,
ignore broadcasts until it arrives), and a subscribe that fails with a 5xx is sent again later.
Fault tests compare its state with what REST returns for the same user, with a deadline:

    async with Mirror(server) as mirror:
        ...break something, write...
        await converged([mirror], lambda: rest_list(server))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness.appserver import AppServer

RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0)  # then 1.0 s between attempts
RETRY_SECONDS = 0.2  # before subscribing again after a 5xx


class Mirror:
    """One socket's view of a list, kept by a task of its own until `close()`."""

    def __init__(self, server: AppServer, model: str = "todos.Todo", headers=None, **fields):
        self.server = server
        self.request = {"type": "subscribe", "id": 1, "model": model, "action": "list",
                        "snapshot": True, **fields}  # fmt: skip
        self.headers = headers
        self.state: dict[int, dict] = {}
        self.connections = 0  # sockets opened so far: 1 until something broke
        self.frames: list[dict] = []
        self.synced = asyncio.Event()  # set by every snapshot
        self._online = asyncio.Event()  # cleared while `offline()` keeps it from reconnecting
        self._online.set()
        self._task: asyncio.Task | None = None
        self._socket = None
        self._resyncing = False

    async def __aenter__(self) -> Mirror:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.synced.wait(), 30)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._socket is not None:
            await self._socket.close()

    async def disconnect(self) -> None:
        """Drop the socket (as a network failure would); the mirror reconnects by itself."""
        if self._socket is not None:
            await self._socket.close()

    @contextlib.asynccontextmanager
    async def offline(self):
        """Drop the socket and stay disconnected until the block ends (a laptop that lost its
        network); then reconnect, after the usual backoff, and subscribe again with a snapshot.

            async with mirror.offline():
                ...write...
        """
        self._online.clear()
        await self.disconnect()
        try:
            yield
        finally:
            self._online.set()

    def titles(self) -> list[str]:
        return sorted(item["title"] for item in self.state.values())

    async def _run(self) -> None:
        attempt = 0
        while True:
            await self._online.wait()
            try:
                async with connect(
                    self.server.ws_url + "/ws/subscribe/",
                    origin=self.server.http_url,
                    additional_headers=self.headers,
                    open_timeout=5,
                ) as socket:
                    self._socket = socket
                    self.connections += 1
                    attempt = 0
                    await socket.send(json.dumps(self.request))
                    async for text in socket:
                        frame = json.loads(text)
                        replies = self._apply(frame)
                        if frame.get("type") == "error":
                            await asyncio.sleep(RETRY_SECONDS)  # not at once: a little backoff
                        for reply in replies:
                            await socket.send(json.dumps(reply))
            except (OSError, ConnectionClosed, TimeoutError):
                pass
            except Exception as error:  # noqa: BLE001 (kept for the test to report)
                self.frames.append({"client error": repr(error)})
            self.synced.clear()
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1

    def _apply(self, frame: dict) -> list[dict]:
        """Take `frame` into the state; the frames to send back, if any."""
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "snapshot":
            self.state = {item["id"]: item for item in frame["instances"]}
            self._resyncing = False
            self.synced.set()
        elif kind == "reset":
            self._resyncing = True
            return [{"type": "unsubscribe", "id": self.request["id"]}, self.request]
        elif kind == "error" and frame.get("code", 0) >= 500:
            return [self.request]  # not started this time; the server may well start it later
        elif kind == "broadcast" and not self._resyncing:
            instance = frame["instance"]
            if frame["action"] == "DELETED":
                self.state.pop(instance["id"], None)
            else:
                self.state[instance["id"]] = instance
        return []


def rest_list(server: AppServer, headers=None) -> dict[int, dict]:
    """The todos list as REST shows it to a client with `headers`, keyed by id."""
    request = urllib.request.Request(f"{server.http_url}/api/todos/", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {item["id"]: item for item in json.loads(response.read())}


async def converged(mirrors, expected, timeout: float = 10.0, log=None) -> float:
    """Wait until every mirror's state equals `expected()` (run in a thread: it may do I/O);
    return how long it took. Fails with both sides and `log()` when the deadline passes."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        wanted = await asyncio.to_thread(expected)
        if all(mirror.state == wanted for mirror in mirrors):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            report = "\n".join(
                f"mirror {number}: {_difference(mirror.state, wanted)}"
                for number, mirror in enumerate(mirrors)
            )
            raise AssertionError(
                f"not converged within {timeout}s:\n{report}\n{log() if log else ''}"
            )
        await asyncio.sleep(0.05)


def _difference(state: dict, wanted: dict) -> str:
    missing = sorted(set(wanted) - set(state))
    extra = sorted(set(state) - set(wanted))
    stale = sorted(key for key in wanted if key in state and state[key] != wanted[key])
    return f"missing {missing}, extra {extra}, stale {stale}"
