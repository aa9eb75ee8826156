"""A PostgreSQL restart under writes: every client ends equal to the database.

Two server processes share Redis and a PostgreSQL of this test's own, which is restarted (a fast
shutdown, as `pg_ctl restart -m fast` does) while another process keeps writing. The servers'
pooled connections die with it: evaluations that fail are retried on a fresh connection, and a
subscription that still cannot follow a change is told to re-sync (`reset`), whose snapshot
brings it back once the database answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from harness import programs
from harness.appserver import APPLICATION_ERRORS, LiveSocket, served
from harness.baking import BakedProject, clean_env
from harness.combos import combo_params
from harness.deployments import production_project, served_twice
from harness.mirror import Mirror, converged, rest_list

pytestmark = pytest.mark.timeout(300)

# A restart takes about a second here; clients re-sync with a short backoff once it is back.
CONVERGE_SECONDS = 20.0


async def started_writer(project: BakedProject, code: str):
    """`manage.py shell -c code` running in the project, once it printed "writing"."""
    writer = await asyncio.create_subprocess_exec(
        str(project.venv / "bin" / "python"), "manage.py", "shell", "-v", "0", "-c", code,
        cwd=project.path, env=clean_env(project.venv, project.env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"writing\n"
    return writer


@pytest.mark.parametrize("combo", combo_params("production_daphne", "production"))
def test_clients_converge_after_postgresql_restarts_under_writes(
    combo, bake, baked_venv, private_postgres, redis_server, tmp_path
):
    redis_server.start()
    database = private_postgres.create_database("restart")
    project = production_project(combo, bake(combo), baked_venv, database, redis_server.url)

    async def scenario(a, b):
        async with contextlib.AsyncExitStack() as stack:
            mirrors = [await stack.enter_async_context(Mirror(s)) for s in (a, a, a, b, b, b)]
            writer = await started_writer(project, programs.source("restart_writer"))
            await asyncio.sleep(1.0)  # let writes flow before the restart (not a proof)
            started = time.monotonic()
            await asyncio.to_thread(private_postgres.stop)
            await asyncio.to_thread(private_postgres.start)
            restart = time.monotonic() - started
            summary = (await asyncio.wait_for(writer.stdout.read(), 60)).decode()
            assert await writer.wait() == 0, summary
            took = await converged(mirrors, lambda: rest_list(a), CONVERGE_SECONDS, a.log)
            print(f"restart {restart:.1f}s; writer: {summary.strip()}; converged in {took:.1f}s")
            assert len(mirrors[0].state) > 10

    # The restart makes the servers log database errors, one line each; nothing may escape.
    with served_twice(project, tmp_path, log_problems=APPLICATION_ERRORS) as (a, b):
        asyncio.run(scenario(a, b))


LAG_SECONDS = 1.0  # the bound on a write's delivery...
RECOVERY_SECONDS = 2.0  # ...from this long after the database is back


@pytest.mark.parametrize("combo", combo_params("production_daphne", "production"))
def test_writes_after_a_short_restart_are_delivered_within_a_second(
    combo, bake, baked_venv, private_postgres, redis_server, tmp_path
):
    """PostgreSQL restarted in a fraction of a second under a stream of writes: every write
    reaches a subscriber, and from 2 s after the database is back, each arrives within a second
    of when the writer set out to make it, its wait for a connection included (writes waited 3 s
    while psycopg_pool waited a second before reconnecting, then two)."""
    redis_server.start()
    database = private_postgres.create_database("lag")
    project = production_project(combo, bake(combo), baked_venv, database, redis_server.url)

    async def scenario(server):
        socket = await LiveSocket.open(server)
        await socket.subscribe()
        arrivals = {}  # the time a write set out -> when its frame arrived

        async def receive():
            while True:
                message = await socket.receive(timeout=60)
                if message.get("action") == "CREATED":
                    arrivals[float(message["instance"]["title"])] = time.time()

        receiving = asyncio.create_task(receive())
        writer = await started_writer(project, programs.source("lag_writer"))
        await asyncio.sleep(2.0)  # let writes flow before the restart (not a proof)
        await asyncio.to_thread(private_postgres.stop)
        await asyncio.to_thread(private_postgres.start)
        back = time.time()
        made = int((await asyncio.wait_for(writer.stdout.read(), 60)).split()[-1])
        assert await writer.wait() == 0
        deadline = time.monotonic() + 10
        while len(arrivals) < made:
            assert time.monotonic() < deadline, f"{len(arrivals)} of {made} writes arrived"
            await asyncio.sleep(0.05)
        receiving.cancel()
        # From RECOVERY_SECONDS after the database is back, every write arrives within
        # LAG_SECONDS of when the writer set out to make it (its wait for a connection included).
        late = {
            f"{set_out - back:+.2f} s": f"{arrived - set_out:.2f} s"
            for set_out, arrived in arrivals.items()
            if arrived >= back + RECOVERY_SECONDS and arrived - set_out > LAG_SECONDS
        }
        assert not late, f"late writes (when each set out, from the restart; its lag): {late}"

    with served(
        project.path, baked_venv, project.env, combo["asgi_server"], tmp_path,
        log_problems=APPLICATION_ERRORS,
    ) as server:  # fmt: skip
        asyncio.run(scenario(server))
