"""Distinct subscriptions: how a write's server cost grows with subscriptions that differ.

The fan-out benchmark's N sockets share one subscription. Here each of N sockets holds a
subscription of its own, on one server process (Daphne, then Uvicorn), with PostgreSQL and Redis
and DEBUG off, in three shapes:

- `search`: N anonymous sockets on the todos list, each with a search of its own
  (`query_params: {"search": [word]}`); each write retitles the todo whose title holds one
  socket's word, so exactly one socket can see it.
- `tokens`: N users, each on a socket with their own DRF token, on the same todos list; every
  write is visible to all of them.
- `owner`: N users with their own tokens on a view whose `get_queryset` filters by
  `request.user` (`MineViewSet`, at /ws/mine/ in the benchmark's own ASGI application); each write
  is to one user's todo.
- `shared`, the baseline for `tokens`: N anonymous sockets on the same todos list, so one
  subscription; every write is visible to all of them. What `tokens` costs beyond it is what
  distinct logins cost; the rest is sending N frames.

The users, their tokens and one todo each are made in bulk, once. For each N, K successive writes
are made from another process after a warm-up write, each timed from just before `save()` until
every socket that can see it holds the new title. Each write is made on a quiet server, and the
next waits until the server is quiet again ("quiet": its CPU time stands still, within a clock
tick, for two windows of 0.15 s in a row), so a write's latency and cost are its own, not also
the rest of the previous write's evaluations, which go on after its one subscriber got the frame.
With `--gap S` the writes are a stream instead: each follows S seconds after the last one reached
its sockets, whatever the server is still doing, so a write can meet the previous one's leftover
work or a garbage collection, as writes do in production. The targets of the writes are spread
over the sockets in the order their subscriptions were acknowledged, from the first to the last.
The client freezes its sockets' objects once they are open, so that its own full collections
(which `--gc-log` counts, with the server's) do not pass for the server's latency. Per row:

- server CPU per write: the server process's user + system time (/proc/<pid>/stat, in clock
  ticks of 10 ms) from the quiet server before the first write to the quiet server after the
  K-th, over K (each write's own, to the tick, is in the JSON);
- queries per write: the server's statements in PostgreSQL's log over the same span, over K
  (those of the 1 s change-log poll that fall in it included, as in the fan-out benchmark);
- latency p50/p95/p99 to the (last) socket that sees the write;
- delivery: after the run, a barrier on every socket (an unsubscribe its server answers in order),
  then every socket's frames are checked against the writes it can see. `lost` writes never
  reached a socket that sees them within the deadline; `wrong` frames reached a socket that
  cannot see that write (or a frame arrived twice, or was not a broadcast of a write).

    python -m benchmarks.distinct          # both servers, the 4 shapes, N = 1 ... 1000, K = 20
    python -m benchmarks.distinct --clients 1 20 --writes 3 --server daphne --shape search
    python -m benchmarks.distinct --clients 1000 --writes 100 --gap 0.2 --out results/stream

Prints a table and writes benchmarks/results/distinct.json and distinct.png.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks import bench_project
from benchmarks.measure import TICKS, LoggingPostgres, log_problems, quiet, serving_pid, summarize
from harness import baking
from harness.appserver import AppServer
from harness.results import RESULTS_DIR, write_report
from harness.services import RedisServer

SHAPES = ("search", "tokens", "owner", "shared")
PATHS = {
    "search": "/ws/subscribe/",
    "tokens": "/ws/subscribe/",
    "owner": "/ws/mine/",
    "shared": "/ws/subscribe/",
}
SIGNED_IN = {"tokens", "owner"}
SEEN_BY_ALL = {"tokens", "shared"}
APPLICATION = "bench-server"  # the server's connections, in PostgreSQL's log
WRITE_DEADLINE = 120.0  # seconds for a write to reach every socket that sees it
SETUP_DEADLINE = 120.0  # for a socket to connect and have its subscription acknowledged
CLIENT_GCS = []  # [monotonic start, seconds] of this process's own full collections


def _log_full_collections(phase, info, started=[0.0]):  # noqa: B006 (kept between calls)
    if info["generation"] == 2:
        if phase == "start":
            started[0] = time.monotonic()
        else:
            CLIENT_GCS.append([started[0], time.monotonic() - started[0]])


gc.callbacks.append(_log_full_collections)


@dataclass(frozen=True)
class Fixture:
    """What socket i of every shape uses: user i's token, and user i's todo, whose title holds
    the word only socket i of `search` searches for."""

    todo: int
    word: str
    token: str


def word(i: int) -> str:
    # Fixed width between two letters: no socket's word is part of another's title.
    return f"s{i:05d}s"


def prepare(project, count) -> list[Fixture]:
    project.manage("migrate", "--noinput")
    script = bench_project.program("distinct_prepare.py")
    out = project.manage(
        "shell", "-v", "0", "-c", script, env_overrides={"COUNT": str(count)}, timeout=600
    )
    fixtures = [Fixture(*row) for row in json.loads(out.stdout.strip().splitlines()[-1])]
    assert [f.word for f in fixtures] == [word(i) for i in range(count)]
    return fixtures


def log_end(postgres) -> int:
    """Where PostgreSQL's log ends now, as `statements` takes it: at its last newline."""
    return max(0, postgres.log_path.stat().st_size - 1)


def statements(postgres, since: int) -> tuple[int, int]:
    """(the server's statements in PostgreSQL's log from byte `since` to its last newline, where
    that newline is). A statement is counted by the newline before it, so no line is counted
    twice or missed, however the reads cut the log."""
    with open(postgres.log_path, "rb") as log:
        log.seek(since)
        text = log.read()
    end = max(0, text.rfind(b"\n"))
    return text[:end].count(f"\n{APPLICATION}|LOG:  statement:".encode()), since + end


def subscribe_frame(shape: str, fixture: Fixture) -> dict:
    frame = {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list", "ack": True}
    if shape == "search":
        frame["query_params"] = {"search": [fixture.word]}
    return frame


class Clients:
    """N sockets of one shape, each with its own subscription; every frame each one gets."""

    def __init__(self, sockets, joined):
        self.sockets = sockets
        self.joined = joined  # socket indices, in the order their subscriptions were acknowledged
        self.frames = [[] for _ in sockets]  # per socket: (todo pk, seq) of each broadcast
        self.expected = {}  # seq -> (todo pk, indices of the sockets that see it)
        self.pending, self.target = set(), None
        self.windows = []  # (monotonic start, end) of each timed write that arrived
        self.done, self.finished_at = asyncio.Event(), 0.0
        self.barriers = [asyncio.Event() for _ in sockets]
        self.closed = {}  # socket index -> close code, for sockets the server closed
        self.tasks = [asyncio.ensure_future(self._listen(i)) for i in range(len(sockets))]

    @classmethod
    async def open(cls, server, shape, fixtures):
        semaphore = asyncio.Semaphore(100)  # connect in waves, not 1000 handshakes at once
        joined = []

        async def one(i):
            async with semaphore:
                token = fixtures[i].token if shape in SIGNED_IN else None
                headers = None if token is None else {"Authorization": f"Token {token}"}
                socket = await connect(
                    server.ws_url + PATHS[shape],
                    origin=server.http_url,
                    additional_headers=headers,
                    open_timeout=60,
                    max_queue=None,
                )
                try:
                    await socket.send(json.dumps(subscribe_frame(shape, fixtures[i])))
                    reply = json.loads(await asyncio.wait_for(socket.recv(), SETUP_DEADLINE))
                    if reply != {"type": "subscribed", "id": 1}:
                        raise RuntimeError(f"socket {i} ({shape}) was answered {reply}")
                except BaseException:
                    await socket.close()
                    raise
                joined.append(i)
                return socket

        results = await asyncio.gather(
            *(one(i) for i in range(len(fixtures))), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            opened = [r for r in results if not isinstance(r, BaseException)]
            await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
            raise RuntimeError(f"{len(failures)} of {len(results)} sockets failed: {failures[0]!r}")
        return cls(results, joined)

    async def _listen(self, index):
        try:
            async for raw in self.sockets[index]:
                self._take(index, json.loads(raw))
        except ConnectionClosed:
            pass
        self.closed[index] = self.sockets[index].close_code

    def _take(self, index, frame):
        if frame.get("type") == "error" and frame.get("id") == "barrier":
            self.barriers[index].set()
            return
        instance = (frame.get("instance") or {}) if frame.get("type") == "broadcast" else {}
        try:
            seq = int(instance["title"].rsplit(" w", 1)[1])
        except (KeyError, IndexError, ValueError, AttributeError):
            seq = None  # not a broadcast of a write: a reset, an error, a deletion...
        pk = instance.get("id") if seq is not None else json.dumps(frame)[:300]
        self.frames[index].append((pk, seq))
        if self.target == (pk, seq) and index in self.pending:
            self.pending.discard(index)
            if not self.pending:
                self.finished_at = time.monotonic()
                self.done.set()

    async def time_write(self, writer, fixture, seq, seers) -> float | None:
        """Seconds from just before the save until every socket in `seers` holds it; None if
        one did not within the deadline (a lost write)."""
        self.expected[seq] = (fixture.todo, seers)
        self.target, self.pending = (fixture.todo, seq), set(seers)
        self.done.clear()
        started = await writer.write(fixture.todo, f"{fixture.word} w{seq}")
        try:
            await asyncio.wait_for(self.done.wait(), WRITE_DEADLINE)
        except TimeoutError:
            print(f"  write {seq} did not reach sockets {sorted(self.pending)[:10]}", flush=True)
            return None
        finally:
            self.target = None
        self.windows.append((started, self.finished_at))
        return self.finished_at - started

    async def barrier(self) -> int:
        """Every socket has every frame the server sent it before it answered this; how many
        sockets did not answer within the deadline."""
        for socket in self.sockets:
            await socket.send(json.dumps({"type": "unsubscribe", "id": "barrier"}))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(event.wait() for event in self.barriers)), SETUP_DEADLINE
            )
        except TimeoutError:
            unanswered = [i for i, event in enumerate(self.barriers) if not event.is_set()]
            print(f"  {len(unanswered)} sockets did not answer the barrier", flush=True)
            return len(unanswered)
        return 0

    def check(self) -> dict:
        """Each socket's frames against the writes it sees: exactly one frame of each."""
        missing = wrong = 0
        for index, frames in enumerate(self.frames):
            got = Counter(frames)
            want = {(pk, seq) for seq, (pk, seers) in self.expected.items() if index in seers}
            missing += len(want - got.keys())
            wrong += sum(count - (frame in want) for frame, count in got.items())
        samples = [
            (index, frame)
            for index, frames in enumerate(self.frames)
            for frame in frames
            if frame[1] is None or index not in self.expected.get(frame[1], (None, ()))[1]
        ]
        return {
            "missing_frames": missing,
            "wrong_frames": wrong,
            "wrong_samples": samples[:5],
            "closed_sockets": len(self.closed),
        }

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)


def targets(joined, writes):
    """Which socket each write goes to: spread over the join order, first to last."""
    n = len(joined)
    if n <= writes:
        return [joined[k % n] for k in range(writes)]
    return [joined[round(k * (n - 1) / max(1, writes - 1))] for k in range(writes)]


async def run_row(server, pid, writer, postgres, shape, fixtures, writes, seq, gap=None):
    n = len(fixtures)
    opened = time.monotonic()
    clients = await Clients.open(server, shape, fixtures)
    setup_s = time.monotonic() - opened
    # The N sockets' objects, here in the client, live as long as the row: frozen, this
    # process's own full collections (a second at 10,000 sockets) leave them out, so that they
    # do not hold up the reading of frames and show as the server's latency.
    gc.collect()
    gc.freeze()
    CLIENT_GCS.clear()
    everyone = range(n)
    try:

        def seers(index):
            return everyone if shape in SEEN_BY_ALL else (index,)

        warm = clients.joined[0]
        await clients.time_write(writer, fixtures[warm], next(seq), seers(warm))  # not counted
        cpu_before = cpu = await quiet(pid)
        log_at = log_end(postgres)
        latencies, cpu_ms, queries, aims = [], [], [], targets(clients.joined, writes)
        for index in aims:
            latencies.append(
                await clients.time_write(writer, fixtures[index], next(seq), seers(index))
            )
            if gap is not None:
                # A stream: the next write follows `gap` seconds after this one arrived,
                # whatever the server is still doing (evaluations, a garbage collection).
                await asyncio.sleep(gap)
                continue
            # Each write starts on a quiet server and is followed until the server is quiet
            # again: what it costs, and its latency, are its own, not the previous write's too.
            cpu, before = await quiet(pid), cpu
            cpu_ms.append((cpu - before) / TICKS * 1000)
            count, log_at = statements(postgres, log_at)
            queries.append(count)
        if gap is not None:
            cpu = await quiet(pid)
            count, log_at = statements(postgres, log_at)
            queries.append(count)
        unanswered = await clients.barrier()
        delivered = [latency for latency in latencies if latency is not None]
        row = {
            "shape": shape,
            "n": n,
            "writes": writes,
            "gap_s": gap,  # None: each write on a quiet server
            "setup_s": setup_s,
            "latencies": latencies,
            "target_join_ranks": [clients.joined.index(index) for index in aims],
            "cpu_ms_per_write": (cpu - cpu_before) / TICKS * 1000 / writes,
            "queries_per_write": sum(queries) / writes,
            "cpu_ms": cpu_ms,  # each write's, to the clock tick (none in a stream)
            "queries": queries,
            "lost_writes": len(latencies) - len(delivered),
            "unanswered_barriers": unanswered,
            **clients.check(),
        }
        row.update(collections_met(clients.windows, server, CLIENT_GCS))
        if delivered:
            row["p50"], row["p95"], row["p99"] = summarize(delivered)
        else:
            row["p50"] = row["p95"] = row["p99"] = None
        return row
    finally:
        await clients.close()
        gc.unfreeze()


def collections_met(windows, server, client_gcs) -> dict:
    """The full collections, of the server (with --gc-log) and of this client, during the timed
    writes, and how many writes one of them overlapped."""
    text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    server_gcs = [
        [float(start), float(took)]
        for start, took in (
            line.split()[1:3] for line in text.splitlines() if line.startswith("bench-gc ")
        )
    ]
    if windows:
        first, last = windows[0][0], windows[-1][1]
        server_gcs = [g for g in server_gcs if first <= g[0] + g[1] and g[0] <= last]
        client_gcs = [g for g in client_gcs if first <= g[0] + g[1] and g[0] <= last]

    def met(gcs):
        return sum(any(s <= g[0] + g[1] and g[0] <= e for g in gcs) for s, e in windows)

    return {
        "server_full_gcs": server_gcs,
        "client_full_gcs": client_gcs,
        "writes_meeting_server_gc": met(server_gcs),
        "writes_meeting_client_gc": met(client_gcs),
    }


async def bench(args, project, postgres, fixtures, workdir):
    results, problems = [], {}
    seq = iter(range(1, 10**9))
    for server_kind in args.server:
        server_env = {
            **project.env,
            "DATABASE_URL": project.env["DATABASE_URL"] + f"?application_name={APPLICATION}",
            **({"BENCH_GC_LOG": "1"} if args.gc_log else {}),
        }
        server = AppServer(
            project.path,
            project.venv,
            server_env,
            server_kind,
            workdir,
            module="bench_distinct_asgi:application",
        )
        server.start()
        pid, how = serving_pid(server)
        print(how, flush=True)
        writer = await bench_project.TitleWriter.start(project)
        try:
            for shape in args.shape:
                for n in args.clients:
                    row = await run_row(
                        server, pid, writer, postgres, shape, fixtures[:n], args.writes, seq,
                        args.gap,
                    )  # fmt: skip
                    row["server"] = server_kind
                    results.append(row)
                    print_row(row)
        finally:
            await writer.stop()
            server.stop()
        problems[server_kind] = log_problems(server)
        if problems[server_kind]:
            print(f"the {server_kind} log shows exceptions:\n{server.log()}", flush=True)
    return results, problems


HEADER = (
    f"{'shape':6} {'server':7} {'N':>5} {'CPU ms/write':>12} {'queries/write':>13} "
    f"{'p50 ms':>8} {'p95':>8} {'p99':>8} {'lost':>4} {'wrong':>5} {'missing':>7} "
    f"{'met gc s/c':>10}"
)


def format_row(row):
    def ms(key):
        return f"{row[key] * 1000:>8.1f}" if row[key] is not None else f"{'-':>8}"

    return (
        f"{row['shape']:6} {row['server']:7} {row['n']:>5} {row['cpu_ms_per_write']:>12.1f} "
        f"{row['queries_per_write']:>13.2f} {ms('p50')} {ms('p95')} {ms('p99')} "
        f"{row['lost_writes']:>4} {row['wrong_frames']:>5} {row['missing_frames']:>7} "
        f"{row['writes_meeting_server_gc']:>5}/{row['writes_meeting_client_gc']:<4}"
    )


def print_row(row):
    if not getattr(print_row, "header_done", False):
        print(HEADER)
        print_row.header_done = True
    print(format_row(row), flush=True)


def print_table(results):
    """Every row again, one group per shape."""
    print(f"\n{HEADER}")
    for shape in SHAPES:
        rows = [row for row in results if row["shape"] == shape]
        for row in sorted(rows, key=lambda r: (r["server"], r["n"])):
            print(format_row(row))
        if rows:
            print()
    for row in results:
        for sample in row["wrong_samples"]:
            print(f"wrong frame, {row['server']} {row['shape']} N={row['n']}: {sample}")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cpu, latency, queries) = plt.subplots(1, 3, figsize=(15, 4.4))
    colours = {
        "search": "tab:blue", "tokens": "tab:orange", "owner": "tab:green", "shared": "tab:grey"
    }  # fmt: skip
    styles = {"daphne": "o-", "uvicorn": "s--"}
    for server, shape in sorted({(row["server"], row["shape"]) for row in results}):
        rows = [row for row in results if (row["server"], row["shape"]) == (server, shape)]
        rows.sort(key=lambda row: row["n"])
        ns, style = [row["n"] for row in rows], styles.get(server, "o-")
        kw = {"color": colours.get(shape), "label": f"{shape}, {server}"}
        cpu.plot(ns, [max(r["cpu_ms_per_write"], 0.1) for r in rows], style, **kw)
        timed = [r for r in rows if r["p50"] is not None]
        latency.plot([r["n"] for r in timed], [r["p50"] * 1000 for r in timed], style, **kw)
        queries.plot(ns, [max(r["queries_per_write"], 0.1) for r in rows], style, **kw)
    cpu.set(
        xscale="log", yscale="log", xlabel="distinct subscriptions N",
        ylabel="server CPU per write (ms)", title="Server CPU per write",
    )  # fmt: skip
    latency.set(
        xscale="log", yscale="log", xlabel="distinct subscriptions N",
        ylabel="p50 latency to the (last) socket that sees it (ms)", title="Latency per write",
    )  # fmt: skip
    queries.set(
        xscale="log", yscale="log", xlabel="distinct subscriptions N",
        ylabel="server queries per write", title="Queries per write",
    )  # fmt: skip
    # Issue 19's goal at N = 1,000, on one server process.
    for axes, goal in ((cpu, 50), (latency, 50), (queries, 5)):
        axes.axhline(goal, color="grey", linestyle=":", label="goal at N = 1,000")
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100, 500, 1000])
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument(
        "--gap",
        type=float,
        help="write a stream, the next write this many seconds after the last one arrived, "
        "rather than each on a quiet server",
    )
    parser.add_argument(
        "--server", nargs="+", choices=["daphne", "uvicorn"], default=["daphne", "uvicorn"]
    )
    parser.add_argument("--shape", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument(
        "--gc-log",
        action="store_true",
        help="have the server log its full collections, and count the writes they overlapped",
    )
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-distinct-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs, sockets
    path, venv = bench_project.bake(workdir, args.venv)
    with LoggingPostgres() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, "pubsub")
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        fixtures = prepare(project, max(args.clients))
        results, problems = asyncio.run(bench(args, project, postgres, fixtures, workdir))
    print_table(results)
    report = {
        "server": args.server,
        "shape": args.shape,
        "writes": args.writes,
        "gap_s": args.gap,
        "results": results,
        "server_log_problems": problems,
    }
    drawn = None if args.no_plot else lambda figure: plot(results, figure)
    write_report(args.out, "distinct", argv, report, drawn)


if __name__ == "__main__":
    main()
