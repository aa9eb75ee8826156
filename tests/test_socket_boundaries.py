"""Every socket boundary, proven on the servers users deploy: real Daphne and real Uvicorn
processes with DEBUG off, driven by a real websocket client.

For each case the test asserts what the client actually receives (a close code, an error frame,
a refused handshake) and that the server's log shows no exception: Channels' in-process
communicator reported 1008 and 1009 while Daphne, refusing those codes from an application,
logged a traceback and sent the client 1011.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness import programs
from harness.appserver import AppServer, LiveSocket, served
from harness.baking import BakedProject
from harness.combos import BY_NAME

pytestmark = [pytest.mark.xdist_group("boundaries"), pytest.mark.timeout(300)]

SERVERS = ["daphne", "uvicorn"]
BAKED_MODULES = Path(__file__).parent / "baked"
PRIVATE = "/ws/private/"  # a RealtimeRouter(public=False): tests/baked/private_router.py

# The defaults of rest_live/conf.py, which the served project keeps.
MAX_FRAME_BYTES = 64 * 1024
MAX_SUBSCRIPTIONS = 100
MESSAGE_BURST = 100


@pytest.fixture(scope="module")
def boundary_project(bake, baked_venv, tmp_path_factory):
    """A private bake of the defaults with a private router, migrated, with an active and an
    inactive user, each holding a token and a signed-in session."""
    combo = BY_NAME["defaults"]
    path = bake(combo, fresh=True)
    shutil.copy(BAKED_MODULES / "private_router.py", path / "private_router.py")
    database = tmp_path_factory.mktemp("boundaries") / "db.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": ""}
    project = BakedProject(path=path, combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")
    users = json.loads(project.shell_answer(programs.source("users_signed_in")))
    return project, users


@pytest.fixture(scope="module", params=SERVERS)
def app(request, boundary_project, tmp_path_factory):
    """The project under `daphne` or `uvicorn`, as deployed; its whole log is checked at the end."""
    project, _users = boundary_project
    log_dir = tmp_path_factory.mktemp(f"boundaries-{request.param}")
    with served(
        project.path, project.venv, project.env, request.param, log_dir,
        module="private_router:application",
    ) as server:  # fmt: skip
        yield server


@pytest.fixture(autouse=True)
def clean_log(app):
    """Each test leaves no exception in the server's log."""
    since = app.log_size()
    yield
    app.assert_clean_log(since)


@pytest.fixture
def users(boundary_project):
    return boundary_project[1]


async def open_socket(app: AppServer, path="/ws/subscribe/", origin=None, **options):
    """A connection to `app`; cookie sockets need an allowed `origin`, token sockets none."""
    return await connect(app.ws_url + path, origin=origin, open_timeout=10, **options)


async def close_code(connection, app: AppServer, timeout: float = 10.0):
    """(the close code the client received, the frames that came before it)."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            frames.append(json.loads(await asyncio.wait_for(connection.recv(), remaining)))
    except ConnectionClosed:
        return connection.close_code, frames
    except TimeoutError:
        raise AssertionError(f"still open after {timeout}s; server log:\n{app.log()}") from None


def run(scenario):
    asyncio.run(scenario())


def test_a_frame_over_the_size_limit_closes_with_4009(app):
    async def scenario():
        socket = await LiveSocket.open(app)
        await socket.connection.send("x" * MAX_FRAME_BYTES)  # at the limit: read, not JSON
        assert (await socket.receive())["code"] == 400
        await socket.connection.send("x" * (MAX_FRAME_BYTES + 1))
        assert await close_code(socket.connection, app) == (4009, [])

    run(scenario)


def test_a_socket_over_its_message_rate_closes_with_4008(app):
    async def scenario():
        socket = await LiveSocket.open(app)
        # Three bursts' worth at once: at 20 refills a second, the server would need far longer
        # than it takes to read them to keep up.
        try:
            for number in range(3 * MESSAGE_BURST):
                await socket.send({"type": "unsubscribe", "id": number})
        except ConnectionClosed:
            pass  # closed while we were still sending: what the test wants
        code, answered = await close_code(socket.connection, app)
        assert code == 4008
        assert len(answered) >= MESSAGE_BURST, "closed before the burst was spent"
        assert {frame["code"] for frame in answered} == {404}

    run(scenario)


def test_too_many_subscriptions_is_an_error_and_the_socket_stays_usable(app):
    async def scenario():
        socket = await LiveSocket.open(app)
        started = time.monotonic()
        ids = [f"sub-{number}" for number in range(MAX_SUBSCRIPTIONS)]
        for request_id in ids:
            await socket.send(
                {"type": "subscribe", "id": request_id, "model": "todos.Todo", "action": "list",
                 "ack": True}
            )  # fmt: skip
        for request_id in ids:
            assert await socket.receive() == {"type": "subscribed", "id": request_id}
        # The burst is spent: let the documented 20 frames a second earn the three frames below.
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        await socket.send(
            {"type": "subscribe", "id": "one more", "model": "todos.Todo", "action": "list"}
        )
        error = await socket.receive()
        assert (error["type"], error["id"], error["code"]) == ("error", "one more", 429)
        await socket.send({"type": "unsubscribe", "id": ids[0], "ack": True})
        assert await socket.receive() == {"type": "unsubscribed", "id": ids[0]}
        await socket.subscribe()
        await socket.close()

    run(scenario)


MALFORMED = [
    "not JSON",
    "[1, 2]",
    '{"type": "subscribe"}',
    '{"type": "publish", "id": 1}',
    '{"type": "subscribe", "id": 2, "model": 5, "action": "list"}',
    '{"type": "subscribe", "id": 3, "model": "todos.Todo", "action": "destroy"}',
    '{"type": "subscribe", "id": 4, "model": "todos.Todo", "action": "retrieve"}',
    '{"type": "subscribe", "id": 5, "model": "todos.Todo", "action": "list", "ack": "yes"}',
    '{"type": "subscribe", "id": 6, "model": "todos.Todo", "action": "list", '
    '"query_params": {"search": {"title__startswith": "a"}}}',
    "[" * 30_000,  # nested deeper than the JSON parser goes
]


def test_malformed_frames_within_the_burst_each_get_a_400(app):
    async def scenario():
        socket = await LiveSocket.open(app)
        for text in MALFORMED:
            await socket.connection.send(text)
        for text in MALFORMED:
            reply = await socket.receive()
            assert (reply["type"], reply["code"]) == ("error", 400), (text[:80], reply)
        await socket.subscribe()  # still open, still usable
        await socket.close()

    run(scenario)


def test_a_binary_frame_gets_a_400_and_the_socket_stays_usable(app):
    async def scenario():
        socket = await LiveSocket.open(app)
        await socket.connection.send(b'{"type": "subscribe"}')
        reply = await socket.receive()
        assert (reply["type"], reply["id"], reply["code"]) == ("error", None, 400)
        assert "binary" in reply["message"]
        await socket.subscribe()
        await socket.close()

    run(scenario)


def test_a_foreign_origin_is_refused_at_the_handshake(app):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(app, origin="http://evil.example")
        assert refused.value.response.status_code == 403

    run(scenario)


def test_no_credentials_on_a_private_router_closes_with_4003(app):
    async def scenario():
        connection = await open_socket(app, PRIVATE, origin=app.http_url)
        assert await close_code(connection, app) == (4003, [])

    run(scenario)


def test_a_bad_token_closes_with_4001_as_a_header_or_a_subprotocol(app):
    async def scenario():
        by_header = await open_socket(app, additional_headers={"Authorization": "Token nope"})
        assert await close_code(by_header, app) == (4001, [])
        by_subprotocol = await open_socket(app, subprotocols=["rest-live", "rest-live.token.no"])
        assert by_subprotocol.subprotocol == "rest-live"
        assert await close_code(by_subprotocol, app) == (4001, [])

    run(scenario)


def test_an_inactive_user_is_refused_by_token_and_by_session(app, users):
    def cookie(name):
        return {"Cookie": f"sessionid={users[name]['session']}"}

    def token(name):
        return {"Authorization": f"Token {users[name]['token']}"}

    async def scenario():
        # The same credentials of an active user work, so the refusals below are for inactivity.
        for headers, origin in [(token("active"), None), (cookie("active"), app.http_url)]:
            connection = await open_socket(app, PRIVATE, origin, additional_headers=headers)
            await LiveSocket(connection, app).subscribe()
            await connection.close()

        by_token = await open_socket(app, PRIVATE, additional_headers=token("inactive"))
        assert await close_code(by_token, app) == (4001, [])
        by_session = await open_socket(
            app, PRIVATE, origin=app.http_url, additional_headers=cookie("inactive")
        )
        assert await close_code(by_session, app) == (4003, [])

    run(scenario)
