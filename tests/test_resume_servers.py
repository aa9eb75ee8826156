"""Resuming on real servers (docs/protocol.md, "Positions and resuming"): a client that lost its
socket comes back with its position and is sent only the objects that changed, after a dropped
connection, after a write that rolled back and after the server was killed, and a snapshot once
the log was pruned past it.

The client keeps its state only from the frames it received, by `pk`, and compares it with what
REST lists after each step.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from harness import programs
from harness.appserver import PRODUCTION_ENV, LiveSocket, served
from harness.baking import BakedProject, service_env
from harness.combos import combo_params
from harness.mirror import rest_list

pytestmark = pytest.mark.timeout(300)

TODOS = 50


class Client:
    """One subscription's state, built from the frames received, by `pk`; the latest position."""

    def __init__(self) -> None:
        self.state: dict = {}
        self.position = None
        self.frames: list[dict] = []

    async def subscribe(self, server, resume=False) -> dict:
        """Subscribe on a new socket (resuming if asked); returns the first answer."""
        self.socket = await LiveSocket.open(server)
        frame = {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list"}
        frame |= {"resume": self.position} if resume else {"snapshot": True}
        await self.socket.send(frame)
        answer = await self.receive()
        if answer["type"] == "resume_failed":
            await self.receive()  # the snapshot that follows
        return answer

    async def receive(self) -> dict:
        frame = await self.socket.receive(timeout=20)
        self.frames.append(frame)
        if frame["type"] == "snapshot":
            self.state = dict(zip(frame["pks"], frame["instances"], strict=True))
        elif frame["type"] == "resumed":
            for item in frame["broadcasts"]:
                self.apply(item)
        elif frame["type"] == "broadcast":
            self.apply(frame)
        if frame.get("position"):
            self.position = frame["position"]
        return frame

    def apply(self, item: dict) -> None:
        if item["action"] == "DELETED":
            self.state.pop(item["pk"], None)
        else:
            self.state[item["pk"]] = item["instance"]

    def matches(self, server) -> bool:
        return self.state == rest_list(server)


@pytest.fixture
def project(combo, bake, baked_venv, postgres_server, redis_server):
    database = postgres_server.create_database(f"resume_{combo.name}")
    env = {**service_env(combo, database, redis_server.url), **PRODUCTION_ENV}
    project = BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")
    return project


def rename_first(project: BakedProject, title: str, roll_back: int = 0) -> None:
    params = programs.env(title=title, roll_back=roll_back)
    project.shell(programs.source("rename_first"), env_overrides=params)


def change_three(project: BakedProject, start: int) -> set[int]:
    params = programs.env(start=start)
    out = project.shell(programs.source("three_changes"), env_overrides=params).stdout
    return {int(pk) for pk in out.split()[-3:]}


@pytest.mark.parametrize("combo", combo_params("production_daphne", "production"))
def test_a_client_resumes_with_only_what_changed_then_falls_back_once_pruned(
    combo, project, tmp_path
):
    project.shell(programs.source("resume_seed"), env_overrides=programs.env(todos=TODOS))
    with served(project.path, project.venv, project.env, combo["asgi_server"], tmp_path) as app:

        async def scenario():
            client = Client()
            assert (await client.subscribe(app))["type"] == "snapshot"
            assert len(client.state) == TODOS and client.matches(app)
            await client.socket.close()

            # Away while three todos change; back on the same server.
            changed = change_three(project, 0)
            resumed = await client.subscribe(app, resume=True)
            assert resumed["type"] == "resumed", resumed
            assert {item["pk"] for item in resumed["broadcasts"]} == changed
            assert client.matches(app)

            # Live from there: one more write arrives as a broadcast.
            later = change_three(project, 10)
            while not client.matches(app):
                frame = await client.receive()
                assert frame["type"] == "broadcast", frame
                assert frame["pk"] in later

            # A write that rolled back holds positions below its change id only until its
            # transaction is seen to have ended (seconds, not the log's 10 minutes): soon a
            # client away after a later write resumes with nothing, not with what it has.
            rename_first(project, "renamed after a rollback", roll_back=1)
            deadline = time.monotonic() + 60
            for tick in itertools.count():
                frame = await client.receive()
                assert (frame["type"], frame["action"]) == ("broadcast", "UPDATED"), frame
                await client.socket.close()
                resumed = await client.subscribe(app, resume=True)
                assert resumed["type"] == "resumed", resumed
                assert client.matches(app)
                if not resumed["broadcasts"]:
                    break
                assert time.monotonic() < deadline, "positions stay below the rolled-back id"
                rename_first(project, f"tick {tick}")

            # The server killed while the client is away: another process resumes it.
            app.kill()
            changed = change_three(project, 20)
            app.start()
            resumed = await client.subscribe(app, resume=True)
            assert resumed["type"] == "resumed", resumed
            assert {item["pk"] for item in resumed["broadcasts"]} == changed
            assert client.matches(app)
            await client.socket.close()

            # The log pruned past the client's position: it is told, then sent a snapshot.
            change_three(project, 30)
            project.shell(programs.source("prune_nearly_all"))
            failed = await client.subscribe(app, resume=True)
            assert (failed["type"], failed["reason"]) == ("resume_failed", "expired"), failed
            assert client.frames[-1]["type"] == "snapshot"
            assert client.matches(app)
            await client.socket.close()

            snapshots = [frame for frame in client.frames if frame["type"] == "snapshot"]
            assert len(snapshots) == 2  # the first subscribe, and after the prune

        asyncio.run(scenario())
