"""Never silently stale: clients converge on the database after faults, on real processes.

Every client here is a `Mirror` (harness/mirror.py): its state comes only from the frames it
received. Each test breaks something, writes, and ends with every mirror equal to what REST lists,
within a stated bound and with no later write or reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import re
import time
import urllib.parse
import urllib.request

import pytest

from harness import programs
from harness.appserver import (
    OUTAGE_ENDED,
    OUTAGE_STARTED,
    AppServer,
    create_over_rest,
    served,
)
from harness.baking import BakedProject, service_env
from harness.combos import BY_NAME, combo_params
from harness.demo_server import collect_static
from harness.deployments import production_project, served_twice
from harness.mirror import Mirror, converged, rest_list

pytestmark = pytest.mark.timeout(300)

CLUSTER_COMBOS = combo_params("production_daphne", "production")
# docs/protocol.md: a committed change reaches every subscriber within the feed's poll interval
# (REST_LIVE_CHANGE_POLL_SECONDS, 1 s) of its commit, plus one evaluation, whatever happened to
# its broadcast. The tests allow 5 s, the bound the issue set for a layer outage.
RECOVERY_SECONDS = 5.0


@pytest.fixture(scope="module")
def static_root(bake, baked_venv, tmp_path_factory):
    """Static files collected once for the module, as the release step does: with debug off the
    admin's pages need their manifest. The asgi_server answer changes no static file, so one
    collection serves both combos."""
    root = tmp_path_factory.mktemp("recovery-static")
    combo = BY_NAME["production"]
    env = {**service_env(combo), "DJANGO_STATIC_ROOT": str(root)}
    collect_static(BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env))
    return root


@pytest.fixture
def cluster_env(request):
    """What a test adds to its cluster's environment; parametrized indirectly with "admin", the
    collected static files (slow to collect, so only for the tests that serve the admin)."""
    if getattr(request, "param", None) == "admin":
        return {"DJANGO_STATIC_ROOT": str(request.getfixturevalue("static_root"))}
    return {}


@pytest.fixture
def cluster(combo, bake, baked_venv, postgres_server, private_redis, cluster_env, tmp_path):
    """The combo on PostgreSQL and a private Redis, served by two processes; a writer's token."""
    database = postgres_server.create_database(f"recovery_{combo.name}")
    project = production_project(
        combo, bake(combo), baked_venv, database, private_redis.url, cluster_env
    )
    token = project.shell_answer(programs.source("recovery_prepare"))
    # Redis is stopped under some of them: the logs must show no traceback even so.
    with served_twice(project, tmp_path) as servers:
        yield project, servers, token


def mixed_writes(project: BakedProject, title: str, creates: int):
    """From `manage.py shell`: `creates` todos titled `title` and a number, the first ticked and
    the second deleted: every kind of change."""
    params = programs.env(title=title, creates=creates)
    return project.shell(programs.source("mixed_writes"), env_overrides=params)


def outage_writes(project: BakedProject):
    return mixed_writes(project, "during the outage", 10)


@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_writes_made_while_redis_is_down_reach_every_client(cluster, private_redis):
    project, (a, b), token = cluster

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            mirrors = [await stack.enter_async_context(Mirror(s)) for s in (a, a, b, b)]
            private_redis.stop()
            written = await asyncio.to_thread(outage_writes, project)
            assert "could not announce" in written.stderr
            await asyncio.to_thread(create_over_rest, a, token, "over REST on A")
            await asyncio.to_thread(create_over_rest, b, token, "over REST on B")
            private_redis.start()  # empty: this Redis keeps nothing across restarts
            await converged(mirrors, lambda: rest_list(a), RECOVERY_SECONDS, a.log)
            assert len(mirrors[0].state) == 11
            assert [mirror.connections for mirror in mirrors] == [1, 1, 1, 1]
            for server in (a, b):  # one line each way per process
                await asyncio.to_thread(server.wait_for_log, OUTAGE_ENDED)
                assert len(server.lines_with(OUTAGE_STARTED)) == 1, server.log()
                assert len(server.lines_with(OUTAGE_ENDED)) == 1, server.log()

    asyncio.run(scenario())


@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_a_change_whose_writer_was_killed_before_publishing_reaches_every_client(cluster):
    project, (a, b), _token = cluster

    async def scenario():
        async with Mirror(a) as on_a, Mirror(b) as on_b:
            killed = await asyncio.to_thread(
                project.shell, programs.source("killed_before_publishing"), check=False
            )
            assert killed.returncode == -9, killed.describe()
            assert [item["title"] for item in rest_list(a).values()] == ["its writer was killed"]
            await converged([on_a, on_b], lambda: rest_list(a), RECOVERY_SECONDS, a.log)

    asyncio.run(scenario())


async def until(condition, timeout: float, what: str) -> None:
    """Wait for `condition()` to hold, or fail saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_a_server_killed_and_restarted_brings_its_clients_back_to_the_same_state(cluster):
    project, (a, b), token = cluster

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            mirrors = [await stack.enter_async_context(Mirror(s)) for s in (a, a, b, b)]
            on_a, on_b = mirrors[:2], mirrors[2:]
            a.kill()  # SIGKILL: no shutdown, no close frame
            await until(
                lambda: not any(m.synced.is_set() for m in on_a), 5, "A's clients saw it die"
            )
            await asyncio.to_thread(mixed_writes, project, "while A was down", 5)
            await asyncio.to_thread(create_over_rest, b, token, "over REST on B")
            await converged(on_b, lambda: rest_list(b), RECOVERY_SECONDS, b.log)
            a.start()  # in the main thread, so the server dies with the test process
            await converged(mirrors, lambda: rest_list(a), RECOVERY_SECONDS, a.log)
            assert len(mirrors[0].state) == 5
            # A's clients reconnected once it served again; B's never noticed.
            assert [mirror.connections for mirror in mirrors] == [2, 2, 1, 1]

    asyncio.run(scenario())


@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_a_client_that_was_offline_is_reset_by_a_snapshot(cluster):
    project, (a, b), token = cluster

    async def scenario():
        async with Mirror(a) as away, Mirror(b) as online:
            await asyncio.to_thread(outage_writes, project)
            await converged([away, online], lambda: rest_list(a), RECOVERY_SECONDS, a.log)
            async with away.offline():
                seen, before = len(away.frames), dict(away.state)
                # Ten creates, an update and two deletes, from another process and over REST.
                await asyncio.to_thread(outage_writes, project)
                await asyncio.to_thread(
                    project.shell, "from todos.models import Todo; Todo.objects.first().delete()"
                )
                await asyncio.to_thread(create_over_rest, b, token, "while the client was away")
                await converged([online], lambda: rest_list(b), RECOVERY_SECONDS, b.log)
                assert away.state == before and away.connections == 1
            await converged([away], lambda: rest_list(a), RECOVERY_SECONDS, a.log)
            assert (away.connections, online.connections) == (2, 1)
            # Nothing in between: the first frame after the gap is a snapshot of the whole list.
            after = away.frames[seen:]
            assert after and after[0]["type"] == "snapshot", after[:3]
            snapshot = {item["id"]: item for item in after[0]["instances"]}
            assert snapshot == rest_list(a)
            assert len(snapshot) == 9 + 9 - 1 + 1

    asyncio.run(scenario())


ADMIN_USER, ADMIN_PASSWORD = "site-admin", "not a password anyone would guess 4921"


class AdminClient:
    """Django's admin over real HTTP, as a browser uses it: a cookie jar and the CSRF token of
    each form it fills in."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        cookies = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        self.opener = urllib.request.build_opener(cookies)

    def submit(self, path: str, **fields: str) -> str:
        """GET the form at `path`, POST `fields` with its CSRF token, follow the redirect;
        returns the path it ended on."""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self._open(path)[1])
        assert token, f"no CSRF token in {path}"
        ended, _ = self._open(path, {"csrfmiddlewaretoken": token.group(1), **fields})
        return ended.removeprefix(self.server.http_url)

    def _open(self, path: str, form: dict | None = None) -> tuple[str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self.opener.open(self.server.http_url + path, data=data, timeout=30) as response:
            return response.url, response.read().decode()


@pytest.mark.parametrize("cluster_env", ["admin"], indirect=True)
@pytest.mark.parametrize("combo", CLUSTER_COMBOS)
def test_a_todo_added_in_the_admin_while_redis_is_down_reaches_every_client(cluster, private_redis):
    project, (a, b), _token = cluster
    admin = programs.env(admin_user=ADMIN_USER, admin_password=ADMIN_PASSWORD)
    project.shell(programs.source("site_admin"), env_overrides=admin)
    admin = AdminClient(b)
    fields = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "next": "/admin/"}
    assert admin.submit("/admin/login/?next=/admin/", **fields) == "/admin/"

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            mirrors = [await stack.enter_async_context(Mirror(s)) for s in (a, b)]
            private_redis.stop()
            saved = await asyncio.to_thread(
                admin.submit, "/admin/todos/todo/add/", title="added in the admin", _save="Save"
            )
            assert saved == "/admin/todos/todo/"  # the change list: the form was accepted
            assert b.lines_with(OUTAGE_STARTED), b.log()
            private_redis.start()  # empty: RedisServer runs with --save "" --appendonly no
            await converged(mirrors, lambda: rest_list(a), RECOVERY_SECONDS, b.log)
            assert mirrors[0].titles() == ["added in the admin"]
            assert [mirror.connections for mirror in mirrors] == [1, 1]

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
            await asyncio.to_thread(project.create_in_shell, "x")
            await converged([mirror], lambda: rest_list(app), RECOVERY_SECONDS, app.log)
            assert mirror.titles() == ["x"]

    with served(project.path, baked_venv, env, server, tmp_path) as app:
        asyncio.run(scenario(app))
