"""docs/example_client.py, the client every baked project ships as an example, on real servers.

The example is imported from the bake and run as it is; its state comes only from the frames it
received. Against Daphne and Uvicorn (PostgreSQL, Redis, debug off), it must end equal to what
REST shows the same user after each of: live writes, a multi-row transaction among them; a socket
dropped while rows change (it resumes: one `resumed` frame, no snapshot); the server killed and
started again (it resumes there too, the positions being in the database); a TRUNCATE (`reset`,
then a snapshot); the change log pruned past its position (`resume_failed`, then a snapshot). A
bad token and a refused subscribe end it. Its `main()` is run as its docstring says, anonymously.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import types

import pytest

from harness import programs
from harness.appserver import AppServer, create_over_rest, rest_write, served
from harness.baking import BakedProject, clean_env
from harness.combos import combo_params
from harness.deployments import production_project
from harness.mirror import rest_list

pytestmark = pytest.mark.timeout(300)

SECONDS = 20.0  # for the client to match REST after each step, reconnecting included

# One statement, so one committed transaction of several rows: its frames carry `more`.
BULK_SUFFIX = " (bulk)"


def load_example(project: BakedProject) -> types.ModuleType:
    """The bake's docs/example_client.py as a module (no __pycache__ left in the cached bake)."""
    path = project.path / "docs" / "example_client.py"
    module = types.ModuleType(f"example_client_{project.combo.name}")
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module


class Gate:
    """Stands in for the example's `connect`: holds new connections while `open` is clear (a
    client that lost its network), and keeps each socket so that the test can drop it."""

    def __init__(self, real_connect) -> None:
        self.real_connect = real_connect
        self.open = asyncio.Event()
        self.open.set()
        self.sockets = []

    @contextlib.asynccontextmanager
    async def __call__(self, *args, **kwargs):
        await self.open.wait()
        async with self.real_connect(*args, **kwargs) as socket:
            self.sockets.append(socket)
            yield socket

    async def drop(self) -> None:
        """Close the client's socket from its side and keep it from reconnecting."""
        self.open.clear()
        await self.sockets[-1].close()


async def in_thread(function, *args):
    return await asyncio.to_thread(function, *args)


@pytest.fixture
def deployment(combo, bake, baked_venv, postgres_server, redis_server, tmp_path):
    """The combo migrated on a PostgreSQL database of its own, Redis, debug off; three todos and a
    user's token. Served by one process of the combo's server."""
    database = postgres_server.create_database(f"example_client_{combo.name}")
    project = production_project(combo, bake(combo), baked_venv, database, redis_server.url)
    token = project.shell_answer(programs.source("example_client_prepare"))
    with served(project.path, baked_venv, project.env, combo["asgi_server"], tmp_path) as server:
        yield project, server, token


@pytest.mark.parametrize("combo", combo_params("production_daphne", "production"))
def test_the_example_client_matches_rest_after_writes_drops_restarts_and_pruning(deployment):
    project, server, token = deployment
    example = load_example(project)
    gate = example.connect = Gate(example.connect)
    frames: list[dict] = []
    bulk_views: list[tuple[int, int]] = []  # (objects titled "... (bulk)", objects) at each frame

    def heard(frame: dict) -> None:
        frames.append(frame)
        titles = [item["title"] for item in client.state.values()]
        bulk_views.append((sum(t.endswith(BULK_SUFFIX) for t in titles), len(titles)))

    client = example.LiveList("todos.Todo", token=token, on_frame=heard)
    as_rest = {"Authorization": f"Token {token}"}

    def kinds(since: int) -> list[str]:
        return [frame["type"] for frame in frames[since:]]

    async def scenario():
        running = asyncio.create_task(client.run(server.ws_url + "/ws/subscribe/"))

        async def matches_rest(what: str) -> None:
            """Until the client's state equals the list REST shows the same user, or fail."""
            deadline = time.monotonic() + SECONDS
            while True:
                if running.done():  # the client gave up: say why
                    raise AssertionError(f"the client stopped: {running.exception()!r}")
                wanted = await in_thread(rest_list, server, as_rest)
                if client.state == wanted:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{what}: the client does not match REST within {SECONDS}s\n"
                        f"client: {client.state}\nREST: {wanted}\nlast frames: {frames[-5:]}\n"
                        f"{server.log()}"
                    )
                await asyncio.sleep(0.05)

        try:
            await matches_rest("the first snapshot")
            assert kinds(0) == ["snapshot"] and len(client.state) == 3, frames

            # 1. Live writes over REST, then one transaction of several rows from another process.
            await in_thread(create_over_rest, server, token, "live")
            first, second = sorted(client.state)[:2]
            await in_thread(
                rest_write, server, token, "PATCH", f"/api/todos/{first}/", {"done": True}
            )
            await in_thread(rest_write, server, token, "DELETE", f"/api/todos/{second}/")
            await matches_rest("live writes over REST")
            before_bulk = len(frames)
            bulk_update = programs.source("bulk_update")
            suffix = programs.env(suffix=BULK_SUFFIX)
            answer = await asyncio.to_thread(
                project.shell_answer, bulk_update, env_overrides=suffix
            )
            assert answer == "3", answer
            await matches_rest("a multi-row UPDATE")
            transaction = [
                frame
                for frame in frames[before_bulk:]
                if frame.get("instance", {}).get("title", "").endswith(BULK_SUFFIX)
            ]
            assert [frame.get("more") for frame in transaction] == [True, True, None], transaction
            # Applied as one transaction: no frame ever saw some rows renamed and others not.
            assert all(bulk in (0, size) for bulk, size in bulk_views), bulk_views
            assert all(item["title"].endswith(BULK_SUFFIX) for item in client.state.values())

            # 2. The socket dropped (from the client's side) while rows change: it resumes.
            await gate.drop()
            away = len(frames)
            await in_thread(create_over_rest, server, token, "while the client was away")
            first, second = sorted(client.state)[:2]
            await in_thread(
                rest_write, server, token, "PATCH", f"/api/todos/{first}/", {"done": False}
            )
            await in_thread(rest_write, server, token, "DELETE", f"/api/todos/{second}/")
            gate.open.set()
            await matches_rest("a resume after the socket was dropped")
            assert_resumed(frames[away:])
            caught_up = sorted(entry["action"] for entry in frames[away]["broadcasts"])
            assert caught_up == ["CREATED", "DELETED", "UPDATED"], frames[away]

            # 3. The server killed and started again on its port, rows changed meanwhile: the
            # client resumes on the new process (positions are in the database).
            server.kill()
            away = len(frames)
            await in_thread(project.shell_answer, programs.source("rename_and_delete"))
            server.start()
            await matches_rest("a resume after the server was killed and started again")
            assert_resumed(frames[away:])
            assert len(frames[away]["broadcasts"]) == 3, frames[away]

            # 4. A TRUNCATE logs no keys: `reset` (one per truncated table the view reads), and
            # the client re-syncs from one snapshot.
            before_reset = len(frames)
            await in_thread(project.shell_answer, programs.source("truncate_todos"))
            await matches_rest("a re-sync after reset")
            seen = kinds(before_reset)
            assert seen[0] == "reset" and seen[-1] == "snapshot", frames[before_reset:]
            assert set(seen) == {"reset", "snapshot"} and seen.count("snapshot") == 1, seen
            assert client.state == {}
            await in_thread(create_over_rest, server, token, "after the reset")
            await matches_rest("a write after the re-sync")

            # 5. The change log pruned past the client's position while it was away: it is told
            # the resume failed, drops what it held, and takes the snapshot that follows.
            await gate.drop()
            away = len(frames)
            await in_thread(create_over_rest, server, token, "before the log was pruned")
            (gone,) = client.state
            await in_thread(rest_write, server, token, "DELETE", f"/api/todos/{gone}/")
            assert int(await in_thread(project.shell_answer, programs.source("prune_log"))) > 0
            gate.open.set()
            await matches_rest("a snapshot after the log was pruned")
            seen = kinds(away)
            assert seen[:2] == ["resume_failed", "snapshot"], frames[away:]
            assert set(seen[2:]) <= {"broadcast"}, frames[away:]  # nothing else, no resume
            assert frames[away]["reason"] == "expired", frames[away]
            titles = [item["title"] for item in client.state.values()]
            assert titles == ["before the log was pruned"], titles
            await in_thread(create_over_rest, server, token, "live again")
            await matches_rest("a write after the snapshot")

            # 6. What reconnecting cannot mend ends `run()`: an unknown token (4001), and a
            # subscribe refused for good (an error under 500).
            url = server.ws_url + "/ws/subscribe/"
            with pytest.raises(RuntimeError, match="closed with 4001"):
                await asyncio.wait_for(example.LiveList("todos.Todo", "0" * 40).run(url), SECONDS)
            with pytest.raises(RuntimeError, match="refused: 404"):
                await asyncio.wait_for(example.LiveList("todos.Nothing", token).run(url), SECONDS)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    asyncio.run(scenario())
    asyncio.run(run_main(project, server, token))


def assert_resumed(frames: list[dict]) -> None:
    """What a client that resumes gets on its new socket: one `resumed` frame first, then
    possibly broadcasts (of changes the server had not handed out yet), and no snapshot."""
    seen = [frame["type"] for frame in frames]
    assert seen[:1] == ["resumed"] and set(seen[1:]) <= {"broadcast"}, frames


async def run_main(project: BakedProject, server: AppServer, token: str) -> None:
    """`python docs/example_client.py <url> todos.Todo` in the bake, anonymously (it sends the
    site's Origin): it prints the snapshot's size, then each change."""
    process = await asyncio.create_subprocess_exec(
        str(project.venv / "bin" / "python"),
        "docs/example_client.py",
        server.ws_url + "/ws/subscribe/",
        "todos.Todo",
        cwd=project.path,
        env=clean_env(project.venv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed = []

    async def line() -> str:
        try:
            text = await asyncio.wait_for(process.stdout.readline(), SECONDS)
        except TimeoutError:
            raise AssertionError(f"the example printed nothing more: {printed}") from None
        printed.append(text.decode())
        return printed[-1].strip()

    try:
        size = len(await in_thread(rest_list, server))
        assert await line() == f"snapshot: {size} objects", printed
        await in_thread(create_over_rest, server, token, "seen by main()")
        assert re.fullmatch(rf"broadcast CREATED \d+: {size + 1} objects", await line()), printed
    finally:
        process.kill()
        await process.wait()
