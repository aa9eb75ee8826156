"""A login that ends ends live access too, on real Daphne and Uvicorn processes with PostgreSQL
and Redis: once a socket's DRF token is deleted, or its session is logged out, the next change
its per-user view hears resets the subscription, the client's re-sync is refused (it holds
nothing, as REST then shows the same credential nothing), and nothing private follows.

The view is the baked test suite's `ReusedMyTodoViewSet` (a todo list filtered by
`request.user`, declaring `live_cache_queryset`, so each subscription keeps its prepared view
while rest_live/identity.py vouches for its login), served as the project serves its own: DRF
tokens from any origin, session cookies from allowed origins.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request

import pytest

from harness import programs
from harness.appserver import AppServer, LiveSocket, served
from harness.baking import BakedProject, service_env
from harness.combos import combo_params

ENDS = {
    "token": "from rest_framework.authtoken.models import Token; Token.objects.all().delete()",
    # What `logout()` does to the database: the session row is gone.
    "session": "from django.contrib.sessions.models import Session; Session.objects.all().delete()",
}


@pytest.fixture
def private_server(combo, credential, bake, baked_venv, postgres_server, redis_server, tmp_path):
    """The combo migrated on PostgreSQL, serving the private view at /ws/private/: (project,
    server, token key, session key)."""
    database = postgres_server.create_database(f"login_{combo.name}_{credential}")
    env = service_env(combo, database, redis_server.url)
    for module in ("private_asgi", "private_urls"):
        shutil.copy(programs.path(module), tmp_path / f"{module}.py")
    env["PYTHONPATH"] = str(tmp_path)
    project = BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")
    token, session = project.shell(programs.source("sign_in_alice")).stdout.splitlines()[-1].split()
    with served(
        project.path,
        baked_venv,
        env,
        combo["asgi_server"],
        tmp_path,
        module="private_asgi:application",
    ) as server:
        yield project, server, token, session


@pytest.mark.parametrize("combo", combo_params("production_daphne", "production"))
@pytest.mark.parametrize("credential", ["token", "session"])
def test_a_login_that_ends_ends_live_access(private_server, credential):
    project, server, token, session = private_server
    headers = (
        {"Authorization": f"Token {token}"}
        if credential == "token"
        else {"Cookie": f"sessionid={session}"}
    )

    def save_hers(title, pk=""):
        params = programs.env(pk=pk, title=title)
        return int(project.shell_answer(programs.source("save_hers"), env_overrides=params))

    async def scenario():
        socket = await LiveSocket.open(server, "/ws/private/", headers=headers)
        sub = await socket.subscribe()
        pk = await asyncio.to_thread(save_hers, "mine")
        created = await socket.receive()
        assert (created["id"], created["action"]) == (sub, "CREATED"), created
        state = {created["instance"]["id"]: created["instance"]}  # the client's, from frames
        assert rest_list(server, headers) == (200, state)

        await asyncio.to_thread(project.manage, "shell", "-c", ENDS[credential])
        await asyncio.to_thread(save_hers, "still mine", pk)
        # The next change resets her subscription; re-syncing as a client does, she is refused
        # and holds nothing, as REST now shows her nothing.
        reset = await socket.receive()
        assert (reset["type"], reset["id"]) == ("reset", sub), reset
        await socket.send({"type": "unsubscribe", "id": sub})
        await socket.send({"type": "subscribe", "id": sub, "model": "todos.Todo",
                           "action": "list", "snapshot": True})  # fmt: skip
        while (reply := await socket.receive())["type"] == "broadcast":
            pass  # frames on their way before the re-sync, which the protocol says to skip
        assert (reply["type"], reply["id"], reply.get("code")) == ("error", sub, 403), reply
        state = {}  # refused: the client holds nothing of the subscription
        status, shown = rest_list(server, headers)
        assert status in (401, 403) and shown == state, status

        await asyncio.to_thread(save_hers, "private")
        await socket.assert_silent(1.0)
        await socket.close()

    asyncio.run(scenario())


def rest_list(server: AppServer, headers: dict) -> tuple[int, dict]:
    """(status, {pk: todo}) of the private list over REST, with the socket's credential."""
    request = urllib.request.Request(f"{server.http_url}/api/private/", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}
    todos = body["results"] if isinstance(body, dict) else body
    return response.status, {todo["id"]: todo for todo in todos}
