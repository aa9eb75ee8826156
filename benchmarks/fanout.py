"""Fan-out benchmark: rest_live against the floor of the same stack, in the same run.

For N subscribers of one `todos.Todo` list on one server process, K successive writes are made from
another process. Each write is timed from just before `save()` until the N-th subscriber holds
that state. The floor is a bare Channels consumer in one group receiving `group_send`s of a frame
of the same size from another process, through the same server and Redis. Queries per write are
counted from PostgreSQL's statement log (the server's connections only).

    python -m benchmarks.fanout                      # Daphne and Uvicorn, N = 1 ... 1000, K = 30
    python -m benchmarks.fanout --clients 1 10 --writes 10 --layer core --server uvicorn

Prints a table and writes benchmarks/results/fanout.json and fanout.png.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

from benchmarks import bench_project
from benchmarks.measure import LoggingPostgres, summarize
from harness import baking
from harness.appserver import AppServer
from harness.results import RESULTS_DIR, write_report
from harness.services import RedisServer

PEER_RATIO_AT_200 = 6.5  # django-rest-live 0.7 on this method: one evaluation per socket per change


class Writer:
    """The other process: makes each write on request and reports when it started."""

    def __init__(self, process):
        self.process = process

    @classmethod
    async def start(cls, project, env, todo_pk):
        process = await bench_project.start_script(project, "bench_writer.py", todo_pk, env=env)
        assert (await process.stdout.readline()).strip() == b"ready"
        return cls(process)

    async def write(self, mode: str, seq: int) -> float:
        self.process.stdin.write(f"{mode} {seq}\n".encode())
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())

    async def stop(self):
        self.process.stdin.close()
        await self.process.wait()


class Subscribers:
    """N websocket clients; each remembers the newest write it holds."""

    def __init__(self, sockets):
        self.sockets = sockets
        self.newest = [0] * len(sockets)
        self.target, self.reached, self.done, self.finished_at = 0, 0, asyncio.Event(), 0.0
        self.tasks = [asyncio.ensure_future(self._listen(i)) for i in range(len(sockets))]

    @classmethod
    async def open(cls, server, path, n, subscribe):
        semaphore = asyncio.Semaphore(100)  # connect in waves, not 1000 handshakes at once

        async def one():
            async with semaphore:
                socket = await connect(
                    server.ws_url + path, origin=server.http_url, open_timeout=60, max_queue=None
                )
                if subscribe:
                    await socket.send(
                        json.dumps(
                            {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list"}
                        )
                    )
                    await socket.send(json.dumps({"type": "unsubscribe", "id": "barrier"}))
                    reply = json.loads(await socket.recv())
                    assert reply["code"] == 404, reply  # the barrier: the subscribe is set up
                return socket

        return cls(await asyncio.gather(*(one() for _ in range(n))))

    async def _listen(self, index):
        async for raw in self.sockets[index]:
            seq = int(json.loads(raw)["instance"]["title"][1:])
            if seq > self.newest[index]:
                before, self.newest[index] = self.newest[index], seq
                if before < self.target <= seq:
                    self.reached += 1
                    if self.reached == len(self.sockets):
                        self.finished_at = time.monotonic()
                        self.done.set()

    async def time_write(self, writer, mode, seq) -> float:
        self.target, self.reached = seq, 0
        self.done.clear()
        started = await writer.write(mode, seq)
        await asyncio.wait_for(self.done.wait(), 60)
        return self.finished_at - started

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)


async def run_mode(server, writer, postgres, mode, n, writes, seq):
    """(latencies of `writes` writes, server statements they caused) for N subscribers."""
    path = "/ws/subscribe/" if mode == "live" else "/ws/floor/"
    subscribers = await Subscribers.open(server, path, n, subscribe=mode == "live")
    try:
        await subscribers.time_write(writer, mode, next(seq))  # warm-up, not counted
        before = postgres.statements_by("bench-server")
        latencies = [await subscribers.time_write(writer, mode, next(seq)) for _ in range(writes)]
        return latencies, postgres.statements_by("bench-server") - before
    finally:
        await subscribers.close()


async def bench(args, project, postgres, workdir):
    results = []
    seq = iter(range(1, 10**9))
    for server_kind, layer in [(kind, layer) for kind in args.server for layer in args.layer]:
        server_env = {
            **project.env,
            "BENCH_LAYER": layer,
            "DATABASE_URL": project.env["DATABASE_URL"] + "?application_name=bench-server",
        }
        server = AppServer(
            project.path,
            project.venv,
            server_env,
            server_kind,
            workdir,
            module="bench_asgi:application",
        )
        server.start()
        writer = await Writer.start(project, {**project.env, "BENCH_LAYER": layer}, args.todo_pk)
        try:
            for n in args.clients:
                live, statements = await run_mode(
                    server, writer, postgres, "live", n, args.writes, seq
                )
                floor, _ = await run_mode(server, writer, postgres, "floor", n, args.writes, seq)
                row = {"server": server_kind, "layer": layer, "n": n, "writes": args.writes}
                row.update(live=live, floor=floor)
                row["live_median"], row["live_p95"], row["live_p99"] = summarize(live)
                row["floor_median"], row["floor_p95"], row["floor_p99"] = summarize(floor)
                row["ratio"] = row["live_median"] / row["floor_median"]
                row["messages_per_s"] = n * len(live) / sum(live)
                row["queries_per_write"] = statements / len(live)
                results.append(row)
                print_row(row)
        finally:
            await writer.stop()
            server.stop()
    return results


HEADER = (
    f"{'server':7} {'layer':7} {'N':>5} {'live p50 ms':>11} {'p95':>7} {'p99':>7} "
    f"{'floor p50':>9} {'p95':>7} {'p99':>7} {'ratio':>6} {'msg/s':>7} {'queries/write':>13}"
)


def print_row(row):
    if not getattr(print_row, "header_done", False):
        print(HEADER)
        print_row.header_done = True
    ms = {key: row[key] * 1000 for key in row if key.startswith(("live_", "floor_"))}
    print(
        f"{row['server']:7} {row['layer']:7} {row['n']:>5} {ms['live_median']:>11.1f} "
        f"{ms['live_p95']:>7.1f} {ms['live_p99']:>7.1f} {ms['floor_median']:>9.1f} "
        f"{ms['floor_p95']:>7.1f} {ms['floor_p99']:>7.1f} {row['ratio']:>6.2f} "
        f"{row['messages_per_s']:>7.0f} {row['queries_per_write']:>13.2f}",
        flush=True,
    )


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, ratio) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red"])
    for server, layer in sorted({(row["server"], row["layer"]) for row in results}):
        rows = [row for row in results if (row["server"], row["layer"]) == (server, layer)]
        ns, colour, name = [row["n"] for row in rows], next(colours), f"{server}, {layer}"
        latency.plot(
            ns, [r["live_median"] * 1000 for r in rows], "o-", color=colour,
            label=f"rest_live ({name})",
        )  # fmt: skip
        latency.plot(
            ns, [r["floor_median"] * 1000 for r in rows], "s--", color=colour, alpha=0.6,
            label=f"floor ({name})",
        )  # fmt: skip
        ratio.plot(ns, [r["ratio"] for r in rows], "o-", color=colour, label=name)
    latency.set(
        xscale="log",
        yscale="log",
        xlabel="subscribers N",
        ylabel="median last-subscriber latency (ms)",
        title="Latency per write",
    )
    ratio.axhline(1.0, color="grey", linestyle=":", label="the floor")
    ratio.set(
        xscale="log",
        xlabel="subscribers N",
        ylabel="rest_live / floor (median)",
        title="Ratio to the floor",
        ylim=(0, max(3.0, *[r["ratio"] for r in results])),
    )
    latency.legend(fontsize=8)
    ratio.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


async def prepare(project):
    project.manage("migrate", "--noinput")
    out = project.manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from todos.models import Todo; print(Todo.objects.create(title='w0').pk)",
    )
    return int(out.stdout.split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100, 200, 500, 1000])
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--layer", nargs="+", choices=["pubsub", "core"], default=["pubsub"])
    parser.add_argument(
        "--server", nargs="+", choices=["daphne", "uvicorn"], default=["daphne", "uvicorn"]
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-bench-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs, sockets
    path, venv = bench_project.bake(workdir, args.venv)
    with LoggingPostgres() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, args.layer[0])
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        args.todo_pk = asyncio.run(prepare(project))
        results = asyncio.run(bench(args, project, postgres, workdir))
    report = {"server": args.server, "peer_ratio_at_200": PEER_RATIO_AT_200, "results": results}
    drawn = None if args.no_plot else lambda figure: plot(results, figure)
    write_report(args.out, "fanout", argv, report, drawn)


if __name__ == "__main__":
    main()
