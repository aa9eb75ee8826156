"""Capture latency: from a write's commit to its frame at a subscriber, per write path and database.

One server process serves a bake; one websocket client on the same machine subscribes to the
`todos.Todo` list (with `"ack": true`, and waits for `subscribed`). Other processes then write, in
turn, one write per path per round, WRITES rounds after an uncounted warm-up round:

- `save`: `todo.save()`; `update`: `QuerySet.update()`; `bulk_update`: `bulk_update()` of
  BULK_ROWS todos; `raw_sql`: an `UPDATE` through Django's cursor; `tags_add`: `todo.tags.add()`;
  `tag_rename`: a tag's `save()` with a new name, shown by a todo. All from one long-lived Django
  process (benchmarks/baked/capture_writer.py), as a shell, job or worker would write;
- `external`: an `UPDATE` from a long-lived `psql` session (PostgreSQL) or from Python's `sqlite3`
  module (SQLite), in a process of its own (benchmarks/baked/external_writer.py).

Each write puts markers in what the subscriber is sent (a title, a tag name); the writer takes
`time.monotonic()` right after the commit, the client when a frame holding a marker arrives (one
clock for every process of the machine), and the latency of a write is to its last marker
(`bulk_update`: the last of its rows). A random pause before each write, up to 50 ms on PostgreSQL
and up to the 1 s poll on SQLite, keeps writes from locking step with the server's poll.

The databases:

- `postgresql`: the `production` bake (PostgreSQL, the Redis pub/sub layer, DEBUG off) served by
  Daphne. The capture triggers send `NOTIFY` at commit; the server listens and reads the log at
  once, whoever wrote. Target: p50 at most 50 ms on every path.
- `sqlite`: the default bake (SQLite, the in-memory layer) served by Daphne (DEBUG off). A Django
  write in another process wakes only its own in-memory layer, so every path here is found at the
  server's poll of the log (REST_LIVE_CHANGE_POLL_SECONDS, 1 s). Target: within the poll, p95 at
  most 1.1 s (1 s between polls, plus the time to read the log, evaluate and send).

    python -m benchmarks.capture_latency                       # both databases, 30 writes a path
    python -m benchmarks.capture_latency --writes 10 --databases postgresql

Prints a table and writes benchmarks/results/capture_latency.json and capture_latency.png.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import bench_project
from benchmarks.measure import percentile
from harness import baking
from harness.appserver import LOG_PROBLEMS, PRODUCTION_ENV, AppServer, LiveSocket
from harness.combos import BY_NAME
from harness.results import RESULTS_DIR, write_report
from harness.services import PostgresServer, RedisServer, postgres_bin_dir

SCRIPTS = ("capture_writer.py", "external_writer.py")  # copied into each bake
DATABASES = ("postgresql", "sqlite")
PATHS = ("save", "update", "bulk_update", "raw_sql", "external", "tags_add", "tag_rename")
LABELS = {
    "save": "save()",
    "update": "QuerySet.update()",
    "bulk_update": "bulk_update()",
    "raw_sql": "raw SQL (Django cursor)",
    "external": "UPDATE from {program}",
    "tags_add": "tags.add()",
    "tag_rename": "tag rename",
}
# (statistic, limit in ms) each database's paths are held to. SQLite's: within the 1 s poll, and
# the 100 ms a poll may take to read the log, evaluate and send (the next poll waits 1 s after it).
TARGETS = {"postgresql": ("p50", 50.0), "sqlite": ("p95", 1100.0)}
PAUSES = {"postgresql": 0.05, "sqlite": 1.0}  # the longest random pause before a write, seconds
TIMEOUT = 10.0  # seconds a write's frames may take before it counts as lost


class Frames:
    """The subscriber: remembers when each title and tag name first arrived in a frame."""

    def __init__(self, socket):
        self.socket = socket
        self.seen = {}
        self.arrived = asyncio.Event()
        self.task = asyncio.ensure_future(self._listen())

    async def _listen(self):
        async for raw in self.socket.connection:
            now = time.monotonic()
            frame = json.loads(raw)
            instance = frame.get("instance") or {}
            for name in [instance.get("title"), *(instance.get("tags") or ())]:
                self.seen.setdefault(name, now)
            self.arrived.set()

    async def when(self, markers, timeout=TIMEOUT):
        """When the last of `markers` arrived, or None if one did not within `timeout`."""
        deadline = time.monotonic() + timeout
        while not all(marker in self.seen for marker in markers):
            if self.task.done():
                raise RuntimeError(f"the socket closed: {self.task.exception()!r}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                return None
        return max(self.seen[marker] for marker in markers)

    async def close(self):
        self.task.cancel()
        await self.socket.close()


class Writers:
    """The Django writer and the external writer, each a process talking through pipes."""

    def __init__(self, django, external):
        self.django, self.external = django, external

    @classmethod
    async def start(cls, project, writes, bulk_rows, external_args):
        django = await bench_project.start_script(project, "capture_writer.py", writes, bulk_rows)
        setup = json.loads(await django.stdout.readline())
        todo = setup["todos"]["external"]
        external = await bench_project.start_script(
            project, "external_writer.py", *external_args, setup["table"], todo
        )
        assert (await external.stdout.readline()).strip() == b"ready"
        return cls(django, external)

    async def write(self, path, number):
        """(markers, monotonic time right after the commit) of write `number` of `path`."""
        if path == "external":
            marker = f"external{number}"
            committed = await _ask(self.external, marker)
            return [marker], committed
        reply = await _ask(self.django, f"{path} {number}")
        return reply["markers"], reply["committed"]

    async def stop(self):
        for process in (self.django, self.external):
            process.stdin.close()
            await process.wait()


async def _ask(process, line):
    process.stdin.write(f"{line}\n".encode())
    await process.stdin.drain()
    reply = await process.stdout.readline()
    if not reply:
        raise RuntimeError(f"a writer exited with code {await process.wait()}")
    return json.loads(reply)


async def measure(server, project, database, args, external_args):
    """{path: [latency in seconds, or None for a write whose frames never came]}."""
    socket = await LiveSocket.open(server)
    await socket.subscribe("todos.Todo", "list")
    frames = Frames(socket)
    writers = await Writers.start(project, args.writes + 1, args.bulk_rows, external_args)
    latencies = {path: [] for path in args.paths}
    try:
        for number in range(args.writes + 1):  # round 0 warms up, and is not kept
            for path in args.paths:
                await asyncio.sleep(random.uniform(0, PAUSES[database]))
                markers, committed = await writers.write(path, number)
                arrived = await frames.when(markers)
                if number:
                    latencies[path].append(None if arrived is None else arrived - committed)
    finally:
        await writers.stop()
        await frames.close()
    return latencies


def run_database(database, project, workdir, args, external_args):
    project.manage("migrate", "--noinput")
    bench_project.copy_in(project.path, *SCRIPTS)
    server = AppServer(project.path, project.venv, project.env, "daphne", workdir)
    server.start()
    try:
        latencies = asyncio.run(measure(server, project, database, args, external_args))
    finally:
        server.stop()
    errors = [line for line in server.log().splitlines() if any(p in line for p in LOG_PROBLEMS)]
    return [summarize(database, path, latencies[path]) for path in args.paths], errors


def postgresql(workdir, args, path, venv):
    with PostgresServer() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, "pubsub")
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        external = ["psql", postgres_bin_dir() / "psql", postgres.url]
        return run_database("postgresql", project, workdir, args, external)


def sqlite(workdir, args, venv):
    combo = BY_NAME["defaults"]
    path = baking.bake(combo, workdir / "bake-sqlite", baking.write_cookiecutter_config(workdir))
    env = {
        **baking.service_env(combo),
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    project = baking.BakedProject(path=path, combo=combo, venv=venv, env=env)
    external = ["sqlite", path / "db.sqlite3"]
    return run_database("sqlite", project, workdir, args, external)


def summarize(database, path, latencies):
    delivered = sorted(latency * 1000 for latency in latencies if latency is not None)
    statistic, limit = TARGETS[database]
    row = {
        "database": database,
        "path": path,
        "label": LABELS[path].format(program="psql" if database == "postgresql" else "sqlite3"),
        "writes": len(latencies),
        "lost": len(latencies) - len(delivered),
        "latencies_ms": [None if x is None else x * 1000 for x in latencies],
        "target": f"{statistic} <= {limit:g} ms",
    }
    if delivered:
        row.update(
            p50_ms=statistics.median(delivered),
            p95_ms=percentile(delivered, 0.95),
            max_ms=delivered[-1],
        )
        row["meets_target"] = not row["lost"] and row[f"{statistic}_ms"] <= limit
    else:
        row.update(p50_ms=None, p95_ms=None, max_ms=None, meets_target=False)
    return row


def print_table(rows):
    print(
        f"{'database':10} {'path':27} {'writes':>6} {'lost':>4} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'max ms':>8}  target"
    )

    def ms(value):
        return f"{value:>8.1f}" if value is not None else f"{'-':>8}"

    for row in rows:
        verdict = "met" if row["meets_target"] else "MISSED"
        print(
            f"{row['database']:10} {row['label']:27} {row['writes']:>6} {row['lost']:>4} "
            f"{ms(row['p50_ms'])} {ms(row['p95_ms'])} {ms(row['max_ms'])}  "
            f"{row['target']}: {verdict}"
        )


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    databases = [database for database in DATABASES if any(r["database"] == database for r in rows)]
    figure, axes = plt.subplots(1, len(databases), figsize=(6 * len(databases), 4.2), squeeze=False)
    for axis, database in zip(axes[0], databases, strict=True):
        chosen = [r for r in rows if r["database"] == database and r["p50_ms"] is not None]
        positions = range(len(chosen))
        p50 = [r["p50_ms"] for r in chosen]
        p95 = [r["p95_ms"] - r["p50_ms"] for r in chosen]
        axis.bar(positions, p50, 0.6, yerr=[[0] * len(chosen), p95], capsize=4, label="p50")
        statistic, limit = TARGETS[database]
        axis.axhline(limit, color="grey", linestyle=":", label=f"target ({statistic})")
        axis.set_xticks(list(positions), [r["label"] for r in chosen], rotation=30, ha="right")
        axis.set(ylabel="commit to frame (ms)", title=database)
        axis.legend(fontsize=8)
    figure.suptitle("A write's commit to its frame at a subscriber: p50 (bars) and p95 (whiskers)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=30, help="counted writes per path")
    parser.add_argument("--databases", nargs="+", choices=DATABASES, default=list(DATABASES))
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--bulk-rows", type=int, default=10, help="rows per bulk_update()")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)
    args.venv = args.venv and args.venv.resolve()

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-capture-latency-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bakes, logs, sockets
    # The production bake's venv holds everything the default bake needs too.
    path, venv = bench_project.bake(workdir, args.venv)
    rows, errors = [], {}
    for database in args.databases:
        if database == "postgresql":
            found, errors[database] = postgresql(workdir, args, path, venv)
        else:
            found, errors[database] = sqlite(workdir, args, venv)
        rows += found
    print_table(rows)
    for database, lines in errors.items():
        if lines:
            print(f"the {database} server logged {len(lines)} errors, the first: {lines[0]}")
    settings = {"writes": args.writes, "bulk_rows": args.bulk_rows, "pauses_s": PAUSES}
    report = {**settings, "server_log_errors": errors, "results": rows}
    drawn = None if args.no_plot else lambda figure: plot(rows, figure)
    write_report(args.out, "capture_latency", argv, report, drawn)


if __name__ == "__main__":
    main()
