"""Baked projects on real servers: PostgreSQL, Redis, two ASGI processes, real websocket clients.

Writes come from other processes (`manage.py shell`, REST on the other server) and must reach
subscribers on both servers, only after commit, after long idle, and again after Redis restarts.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from harness import programs
from harness.appserver import (
    OUTAGE_ENDED,
    OUTAGE_STARTED,
    AppServer,
    LiveSocket,
    create_over_rest,
    served,
)
from harness.baking import clean_env
from harness.combos import combo_params
from harness.deployments import production_project, served_twice
from harness.services import RedisServer

LIVE_COMBOS = combo_params("production_daphne", "production")


@pytest.fixture
def deployment(combo, bake, baked_venv, postgres_server, redis_server, tmp_path):
    """The combo migrated on PostgreSQL, served by two processes sharing Redis."""
    database = postgres_server.create_database(f"live_{combo.name}")
    project = production_project(combo, bake(combo), baked_venv, database, redis_server.url)
    project.shell("from todos.models import Todo; Todo.objects.all().delete()")
    # Their logs are not checked (log_problems=()): these tests check what the clients receive.
    with served_twice(project, tmp_path, log_problems=()) as servers:
        yield project, servers


async def in_thread(function, *args):
    return await asyncio.to_thread(function, *args)


async def subscribed(*servers: AppServer) -> list[LiveSocket]:
    """A socket on each server, subscribed to the todos list."""
    sockets = [await LiveSocket.open(server) for server in servers]
    for socket in sockets:
        await socket.subscribe()
    return sockets


@pytest.mark.parametrize("combo", LIVE_COMBOS)
def test_a_write_from_another_process_reaches_both_servers(deployment):
    project, (a, b) = deployment

    async def scenario():
        sockets = await subscribed(a, b)
        await in_thread(project.create_in_shell, "from shell")
        for socket in sockets:
            message = await socket.receive()
            assert (message["action"], message["instance"]["title"]) == ("CREATED", "from shell")
            await socket.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("combo", LIVE_COMBOS)
def test_the_first_write_after_a_server_starts_is_not_left_to_the_poll(
    combo, bake, baked_venv, postgres_server, redis_server, tmp_path
):
    """The first click after a deploy: a server just started, a client subscribed, and the very
    first write, over REST on the server itself, then one from another process, each arrive by
    their wake-up, well before a poll of the log could bring them."""
    database = postgres_server.create_database(f"first_{combo.name}")
    project = production_project(combo, bake(combo), baked_venv, database, redis_server.url)
    token = project.shell_answer(programs.source("writer_token"))
    shutil.copy(programs.path("slow_poll_settings"), tmp_path / "slow_poll_settings.py")
    served_env = {
        **project.env,
        "PYTHONPATH": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "slow_poll_settings",
    }

    async def scenario(server):
        socket = await LiveSocket.open(server)
        await socket.subscribe()
        for write in (
            lambda: create_over_rest(server, token, "first, over REST"),
            lambda: project.create_in_shell("then from the shell"),
        ):
            started = time.monotonic()
            await in_thread(write)
            message = await socket.receive(timeout=10)  # the poll would take up to 30 s
            took = time.monotonic() - started
            assert message["action"] == "CREATED", message
            assert took < 10, f"{took:.1f} s"
        await socket.close()

    for _start in range(2):  # a start, and a restart
        with served(project.path, baked_venv, served_env, combo["asgi_server"], tmp_path) as app:
            asyncio.run(scenario(app))


@pytest.mark.parametrize("combo", LIVE_COMBOS)
def test_a_rest_create_with_a_token_on_one_server_reaches_the_other(deployment):
    project, (a, b) = deployment
    token = project.shell_answer(programs.source("writer_token"))

    async def scenario():
        socket = await LiveSocket.open(a)
        await socket.subscribe()
        await in_thread(create_over_rest, b, token, "over REST")
        message = await socket.receive()
        assert message["action"] == "CREATED"
        assert (message["instance"]["title"], message["instance"]["owner"]) == (
            "over REST",
            "writer",
        )
        await socket.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("combo", LIVE_COMBOS)
def test_nothing_arrives_before_commit_and_rollbacks_send_nothing(deployment):
    project, (a, _b) = deployment

    async def scenario():
        socket = await LiveSocket.open(a)
        await socket.subscribe()
        writer = await asyncio.create_subprocess_exec(
            str(project.venv / "bin" / "python"),
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            programs.source("held_transaction"),
            cwd=project.path,
            env=clean_env(project.venv, project.env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            line = await asyncio.wait_for(writer.stdout.readline(), 60)
            assert line.strip() == b"written", (line, await writer.stderr.read())
            # The transaction stays open 1.5 s from here: nothing may arrive meanwhile.
            await socket.assert_silent(1.0)
            message = await socket.receive()
            assert (message["action"], message["instance"]["title"]) == ("CREATED", "committed")
        finally:
            await writer.wait()
        assert writer.returncode == 0

        # The transaction saved twice: its two rows of the change log are read together, and
        # evaluated once, so no second frame follows.
        await in_thread(project.shell, programs.source("rolled_back"))
        message = await socket.receive()
        # The rolled-back row sent nothing: the next broadcast is the write made after it.
        assert (message["action"], message["instance"]["title"]) == (
            "CREATED",
            "after the rollback",
        )
        await socket.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("combo", LIVE_COMBOS)
def test_a_broadcast_arrives_after_long_idle(deployment):
    project, (a, b) = deployment

    async def scenario():
        sockets = await subscribed(a, b)
        # Longer than redis-py 8's 5 s socket timeout twice over: idle consumers must survive it.
        await asyncio.gather(*(socket.assert_silent(11.0) for socket in sockets))
        await in_thread(project.create_in_shell, "after idle")
        for socket in sockets:
            message = await socket.receive()
            assert message["instance"]["title"] == "after idle"
            await socket.close()

    asyncio.run(scenario())


def group_channels(redis: RedisServer) -> list[str]:
    """The pub/sub channels someone is subscribed to (the servers' groups), via redis-cli."""
    result = subprocess.run(
        ["redis-cli", "-p", str(redis.port), "PUBSUB", "CHANNELS", "*"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.stdout.split()


@pytest.mark.parametrize("combo", LIVE_COMBOS)
def test_writes_survive_a_redis_outage_and_broadcasts_resume(
    combo, bake, baked_venv, postgres_server, private_redis, tmp_path
):
    database = postgres_server.create_database(f"outage_{combo.name}")
    project = production_project(combo, bake(combo), baked_venv, database, private_redis.url)
    server = AppServer(project.path, baked_venv, project.env, combo["asgi_server"], tmp_path)
    server.start()

    async def scenario():
        socket = await LiveSocket.open(server)
        await socket.subscribe()
        channels_before = group_channels(private_redis)
        assert channels_before, "the server subscribed to no group channel"

        private_redis.stop()
        result = await in_thread(project.create_in_shell, "during outage")
        assert "could not announce" in result.stderr
        count = programs.source("count_titled")
        titled = programs.env(title="during outage")
        assert await asyncio.to_thread(project.shell_answer, count, env_overrides=titled) == "1"

        # The change log brings it, with Redis still down.
        message = await socket.receive(timeout=10)
        assert (message["action"], message["instance"]["title"]) == ("CREATED", "during outage")

        private_redis.start()
        # The server re-subscribes on its own; wait for that (a condition, with a deadline).
        deadline = time.monotonic() + 30
        while set(group_channels(private_redis)) < set(channels_before):
            assert time.monotonic() < deadline, f"never re-subscribed:\n{server.log()}"
            await asyncio.sleep(0.1)
        await in_thread(project.create_in_shell, "after outage")
        message = await socket.receive(timeout=10)
        assert (message["action"], message["instance"]["title"]) == ("CREATED", "after outage")
        assert socket.connection.close_code is None
        await socket.close()
        # The server said once that the layer was gone and once that it was back; channels_redis's
        # receive loop, which failed every second meanwhile, logged no traceback.
        await in_thread(server.wait_for_log, OUTAGE_ENDED)
        assert len(server.lines_with(OUTAGE_STARTED)) == 1, server.log()
        assert len(server.lines_with(OUTAGE_ENDED)) == 1, server.log()
        server.assert_clean_log()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
