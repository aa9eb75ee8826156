"""Never silently stale: clients converge on the database after faults, on real processes.

Every client here is a `Mirror` (tests/mirror.py): its state comes only from the frames it
received. Each test breaks something, writes, and ends with every mirror equal to what REST lists,
within a stated bound and with no later write or reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request

import pytest

from tests.appserver import APPLICATION_ERRORS, PRODUCTION_ENV, AppServer, served
from tests.baking import BakedProject, service_env
from tests.combos import BY_NAME, combo_params
from tests.mirror import Mirror, converged, rest_list
from tests.services import RedisServer

pytestmark = pytest.mark.timeout(300)

CLUSTER_COMBOS = combo_params("production_daphne", "production")
# docs/protocol.md: a committed change reaches every subscriber within the feed's poll interval
# (REST_LIVE_CHANGE_POLL_SECONDS, 1 s) of its commit, plus one evaluation, whatever happened to
# its broadcast. The tests allow 5 s, the bound the issue set for a layer outage.
RECOVERY_SECONDS = 5.0

PREPARE = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from todos.models import Todo
Todo.objects.all().delete()  # the database is the combo's, shared by this module's tests
user, _ = User.objects.get_or_create(username="writer")
print(Token.objects.get_or_create(user=user)[0].key)
"""


@pytest.fixture
def private_redis():
    """A Redis of this test's own, so stopping it disturbs no other test."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def cluster(combo, bake, baked_venv, postgres_server, private_redis, tmp_path):
    """The combo on PostgreSQL and a private Redis, served by two processes; a writer's token."""
    database = postgres_server.create_database(f"recovery_{combo.name}")
    env = {**service_env(combo, database, private_redis.url), **PRODUCTION_ENV}
    project = BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")
    token = project.manage("shell", "-c", PREPARE).stdout.strip().splitlines()[-1]
    # Redis is stopped under them, and channels_redis logs its reconnects with tracebacks; the
    # application itself must raise nothing.
    kind, errors = combo["asgi_server"], APPLICATION_ERRORS
    with (
        served(project.path, baked_venv, env, kind, tmp_path, log_problems=errors) as a,
        served(project.path, baked_venv, env, kind, tmp_path, log_problems=errors) as b,
    ):
        yield project, (a, b), token


def shell(project: BakedProject, code: str, check: bool = True):
    return project.manage("shell", "-c", code, check=check)


def create_over_rest(server: AppServer, token: str, title: str) -> None:
    request = urllib.request.Request(
        f"{server.http_url}/api/todos/",
        method="POST",
        data=json.dumps({"title": title}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


OUTAGE_WRITES = """
from todos.models import Todo
made = [Todo.objects.create(title=f"during the outage {n}") for n in range(10)]
made[0].done = True
made[0].save()
made[1].delete()
"""


@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_writes_made_while_redis_is_down_reach_every_client(cluster, private_redis):
    project, (a, b), token = cluster

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            mirrors = [await stack.enter_async_context(Mirror(s)) for s in (a, a, b, b)]
            private_redis.stop()
            written = await asyncio.to_thread(shell, project, OUTAGE_WRITES)
            assert "could not broadcast" in written.stderr
            await asyncio.to_thread(create_over_rest, a, token, "over REST on A")
            await asyncio.to_thread(create_over_rest, b, token, "over REST on B")
            private_redis.start()  # empty: this Redis keeps nothing across restarts
            await converged(mirrors, lambda: rest_list(a), RECOVERY_SECONDS, a.log)
            assert len(mirrors[0].state) == 11
            assert [mirror.connections for mirror in mirrors] == [1, 1, 1, 1]

    asyncio.run(scenario())


KILLED_BEFORE_PUBLISHING = """
import os, signal
from rest_live import broadcasting
# The test's hook: die at the point where the committed change would be published.
broadcasting._send = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
from todos.models import Todo
Todo.objects.create(title="its writer was killed")
"""


@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_a_change_whose_writer_was_killed_before_publishing_reaches_every_client(cluster):
    project, (a, b), _token = cluster

    async def scenario():
        async with Mirror(a) as on_a, Mirror(b) as on_b:
            killed = await asyncio.to_thread(shell, project, KILLED_BEFORE_PUBLISHING, False)
            assert killed.returncode == -9, killed.describe()
            assert [item["title"] for item in rest_list(a).values()] == ["its writer was killed"]
            await converged([on_a, on_b], lambda: rest_list(a), RECOVERY_SECONDS, a.log)

    asyncio.run(scenario())


@pytest.mark.parametrize("server", ["daphne", "runserver"])
@pytest.mark.xdist_group("defaults")
def test_a_shell_write_reaches_the_default_bake_without_any_service(
    server, bake, baked_venv, tmp_path
):
    """SQLite and the in-memory layer, as `make demo` runs: the shell's process cannot reach the
    server's in-memory layer, so the change log is what brings its writes."""
    combo = BY_NAME["defaults"]
    env = {**service_env(combo), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    project = BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")

    async def scenario(app):
        async with Mirror(app) as mirror:
            await asyncio.to_thread(
                shell, project, "from todos.models import Todo; Todo.objects.create(title='x')"
            )
            await converged([mirror], lambda: rest_list(app), RECOVERY_SECONDS, app.log)
            assert mirror.titles() == ["x"]

    with served(project.path, baked_venv, env, server, tmp_path) as app:
        asyncio.run(scenario(app))
