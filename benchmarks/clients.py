"""Websocket clients of the served bake: sockets subscribed to the `todos.Todo` list with
`"ack": true`, each waiting for `subscribed`."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

PATH = "/ws/subscribe/"
SUBSCRIBE = json.dumps(
    {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list", "ack": True}
)


async def subscribe(socket_):
    await socket_.send(SUBSCRIBE)
    while True:
        reply = json.loads(await socket_.recv())
        if reply.get("type") == "subscribed":
            return socket_
        if reply.get("type") == "error":
            raise RuntimeError(f"subscribe refused: {reply}")


async def open_subscribed(server, n, concurrency=100, **kwargs):
    """N subscribed sockets, opened `concurrency` at a time; (sockets, failures)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one():
        async with semaphore:
            ws = await connect(
                server.ws_url + PATH, origin=server.http_url, open_timeout=60, **kwargs
            )
            try:
                return await asyncio.wait_for(subscribe(ws), 60)
            except BaseException:
                await ws.close()
                raise

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    sockets = [r for r in results if not isinstance(r, BaseException)]
    failures = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return sockets, failures


async def close_all(sockets):
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
