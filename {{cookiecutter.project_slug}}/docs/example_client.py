"""A live list kept from docs/protocol.md alone: a client to read, or to port to another language.

    python docs/example_client.py ws://127.0.0.1:8000/ws/subscribe/ todos.Todo

It needs `websockets` (in requirements-dev.txt). Set REST_LIVE_TOKEN to a DRF token to sign in with
it; without one it connects as an anonymous page of the site would, sending the site's Origin.
"""

import asyncio
import json
import os
import random
import sys
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

STOP = {1009, 4001, 4003, 4009}  # close codes after which reconnecting cannot help


class LiveList:
    """One list subscription, kept across reconnects; `on_frame(frame)` hears every frame."""

    def __init__(self, model, token=None, on_frame=None):
        self.model, self.token, self.on_frame = model, token, on_frame
        self.state = {}  # pk -> object, built only from frames
        self.position = None  # that of the last frame applied: where the next socket resumes
        self.id = 0  # a new one for each subscribe: late frames of an older one are ignored
        self.pending = []  # broadcasts of a transaction whose last frame has not come yet
        self.delay = 0.5  # before reconnecting: doubles up to 15 s, back to 0.5 once in sync

    async def run(self, url):
        """Connect, subscribe and apply what arrives; after any drop, reconnect and resume."""
        if self.token:  # see Connecting in docs/protocol.md
            options = {"additional_headers": {"Authorization": f"Token {self.token}"}}
        else:
            parts = urlsplit(url)
            options = {"origin": f"{parts.scheme.replace('ws', 'http')}://{parts.netloc}"}
        while True:
            socket = None
            try:  # max_size: a snapshot or a catch-up can exceed websockets' default 1 MiB
                async with connect(url, max_size=None, **options) as socket:
                    self.pending = []  # a transaction cut off with the last socket is resumed
                    await self.subscribe(socket)
                    async for text in socket:
                        await self.take(socket, json.loads(text))
            except (OSError, TimeoutError, WebSocketException):
                pass  # refused, dropped, or the server is down: try again
            code = socket and socket.close_code
            if code in STOP:
                raise RuntimeError(f"closed with {code}: see Close codes in docs/protocol.md")
            await asyncio.sleep((15 if code == 4013 else self.delay) * random.uniform(0.5, 1))
            self.delay = min(self.delay * 2, 15)

    async def subscribe(self, socket):
        self.id += 1
        frame = {"type": "subscribe", "id": self.id, "model": self.model, "action": "list"}
        frame.update({"resume": self.position} if self.position else {"snapshot": True})
        await socket.send(json.dumps(frame))

    async def take(self, socket, frame):
        kind, mine = frame["type"], frame.get("id") == self.id
        if kind == "broadcast":  # held while `more`, then the whole transaction at once
            self.pending.append(frame)
            if not frame.get("more"):
                done, self.pending = [f for f in self.pending if f["id"] == self.id], []
                self.apply(done)
                if done:  # null for a change the log does not hold: then no resume
                    self.position = done[-1]["position"]
        elif kind == "error" and frame["code"] < 500:
            raise RuntimeError(f"refused: {frame['code']} {frame['message']}")
        elif kind in ("snapshot", "resumed") and mine:
            if kind == "snapshot":
                self.state = dict(zip(frame["pks"], frame["instances"], strict=True))
            self.apply(frame.get("broadcasts", []))  # a resume's catch-up: one step
            self.position, self.delay = frame["position"], 0.5
        elif kind == "resume_failed" and mine:  # the snapshot that follows replaces all
            self.state, self.position = {}, None
        elif kind == "reset" and mine:  # the state may be stale: a new snapshot, not a resume
            self.position = None
            await socket.send(json.dumps({"type": "unsubscribe", "id": self.id}))
            await self.subscribe(socket)
        elif kind == "error" and mine:  # a 500: not started; reconnect after the backoff
            await socket.close()
        if self.on_frame:
            self.on_frame(frame)

    def apply(self, changes):
        for change in changes:  # CREATED and UPDATED alike mean "the object as it is now"
            if change["action"] == "DELETED":
                self.state.pop(change["pk"], None)
            else:
                self.state[change["pk"]] = change["instance"]


def main():
    url, model = sys.argv[1:3]
    client = LiveList(model, os.environ.get("REST_LIVE_TOKEN"))

    def show(frame):
        change = f" {frame['action']} {frame['pk']}" if frame["type"] == "broadcast" else ""
        print(f"{frame['type']}{change}: {len(client.state)} objects", flush=True)

    client.on_frame = show
    asyncio.run(client.run(url))


if __name__ == "__main__":
    main()
