"""Sustained throughput: the highest write rate that 200 subscribers keep up with, live and floor.

A `production` bake (PostgreSQL, Redis pub/sub layer, DEBUG off) is served by one Daphne or
Uvicorn process, as in fanout.py. A run at rate R:

- live: N sockets (200) subscribe to the `todos.Todo` list with `"ack": true` and wait for
  `subscribed`. Writer processes (`--writers`, 2) save R todos a second between them for S seconds
  (30), each its own todo, titled `w<seq>` with one seq counting every write;
- floor: N sockets on the floor's `/ws/floor/` (a bare Channels consumer in one group, served by the
  same process), and one writer process group_sends, R times a second, the frame rest_live would
  send for such a save (same size), from one event loop that lives for the run.

Write J is due at BEGIN + J / R; a writer that falls behind writes at once, without sleeping, so
one too slow shows as a lower achieved rate: (writes - 1) / (last start - first start). Before
each run the writers make a warm-up write every socket must hold. The sockets offer
permessage-deflate, as browsers and fanout.py's do.

A frame shows the row as it is when evaluated, so its seq can skip ahead. Two latencies are taken
per write, both from just before the write (save or group_send) and both to the last socket:

- state latency (the issue's): until the socket holds that write's state or a later one of the same
  todo;
- frame latency: until the socket has received as many frames as writes made up to this one.

They differ when a server falls behind: rest_live evaluates each change (one query) as soon as it
hears of it, apart from sending it, and the evaluation reads the row as it is then; so a socket
soon holds the newest state while its frames, one per change, queue behind. (Seen here, on two busy
cores: at 200 writes/s to 200 Uvicorn sockets every write's state reached every socket within
50 ms, while frames kept coming for 11 s after the last write, the later ones all showing the
final state.) The state latency alone passes such a run.

A run passes when, all at once:

1. delivery: every socket received exactly one frame per write (none missing, none doubled), each
   socket's last frame of each todo shows that todo's last write, and no socket closed;
2. no growth, for each latency: its median over the last third of the writes is at most
   1.5 x its median over the first third + 2 ms;
3. the last write of each writer reached every socket within 1 s of being made, by both.

A run whose writers achieved less than 98% of R is "writer-limited", neither passed nor failed,
and bounds the search like a failure. Sockets are opened afresh for each run; after the last write
they are waited for (up to 10 s) until each holds it and has a frame per write, then until no
frame came for 0.5 s (to count extras).

The search, per (server, mode), on a server process started for it: a warm-up run (3 s at 10/s,
not counted; a fresh process's first run is its slowest), then R = start, 2 x start,
4 x start, ... until a run does not pass (or halving from the start, if that fails), then two
bisections between the highest pass and the lowest rate that did not pass. After a run that did not
pass, the server is restarted (and warmed up again), so no backlog spills into the next run. The
result is the highest passing rate, in writes/s and frames/s (R x N), with the p50/p99 latencies
of that run. The CPU that the server, this client and the writers used per second of the run is
reported with each run: a server near 1.0 is saturated; on a small machine they share the cores.

    python -m benchmarks.throughput                          # Daphne and Uvicorn, N = 200, 30 s
    python -m benchmarks.throughput --server uvicorn --seconds 10
    python -m benchmarks.throughput --quick                  # 10 sockets, 3 s runs
    python -m benchmarks.throughput --rates 50 100 --server daphne --mode floor

Prints a table and writes benchmarks/results/throughput.json (which capacity.py's figure shows).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks import bench_project, capacity_figure
from benchmarks.clients import close_all, open_subscribed
from benchmarks.measure import TICKS, cpu_ticks, percentile, serving_pid
from harness import baking
from harness.appserver import AppServer
from harness.results import RESULTS_DIR, write_report
from harness.services import PostgresServer, RedisServer

MODES = ("live", "floor")
ACHIEVED_SHARE = 0.98  # of the target rate, or the run is writer-limited
GROWTH_FACTOR, GROWTH_SLACK = 1.5, 0.002  # last third's median <= 1.5 x first third's + 2 ms
LAST_WRITE_WITHIN = 1.0  # seconds for the last write to reach every socket
DELIVERY_WAIT = 10.0  # seconds after the last write that the sockets are waited for
QUIET = 0.5  # then, seconds without a frame before the sockets are closed
WARMUP_RATE = 10  # writes/s of the warm-up run: low, so that it leaves no backlog


# --- clients ----------------------------------------------------------------------------------


async def open_floor(server, n, concurrency=100):
    semaphore = asyncio.Semaphore(concurrency)

    async def one():
        async with semaphore:
            url = server.ws_url + "/ws/floor/"
            return await connect(url, origin=server.http_url, open_timeout=60)

    return await asyncio.gather(*(one() for _ in range(n)))


class Audience:
    """N sockets reading every frame; for each write, when the last of them came to hold its
    state (or a later one), and when the last of them had received its frame (as many frames as
    writes up to it).

    Writes are numbered from 0: write J has seq FIRST + 1 + J and is a write of todo J % W.
    Frames of seq FIRST are the writers' warm-up writes.
    """

    def __init__(self, sockets, first, pks, writes):
        self.sockets, self.first, self.writes, self.width = sockets, first, writes, len(pks)
        self.todo_index = {pk: k for k, pk in enumerate(pks)}
        self.holding = [0] * writes  # sockets that hold write J's state or a later one
        self.held_at = [None] * writes  # when the last of them came to hold it
        self.counted = [0] * writes  # sockets that have received J + 1 frames or more
        self.counted_at = [None] * writes  # when the last of them received its (J + 1)th
        self.newest = [[first - 1] * len(pks) for _ in sockets]  # per socket, per todo
        self.last = [[None] * len(pks) for _ in sockets]  # seq of the last frame, per todo
        self.frames = [0] * len(sockets)  # frames of the timed writes
        self.backwards = 0  # frames older than one the socket had
        self.closed = 0
        self.last_frame_at = time.monotonic()
        self.tasks = [asyncio.ensure_future(self._listen(i)) for i in range(len(sockets))]

    async def _listen(self, i):
        newest, last, first, width = self.newest[i], self.last[i], self.first, self.width
        try:
            async for raw in self.sockets[i]:
                now = self.last_frame_at = time.monotonic()
                instance = json.loads(raw).get("instance")
                k = self.todo_index.get(instance["id"]) if instance else None
                if k is None:
                    continue
                seq = int(instance["title"][1:])
                last[k] = seq
                if seq > first:
                    count = self.frames[i] = self.frames[i] + 1
                    if count <= self.writes:
                        self.counted[count - 1] += 1
                        if self.counted[count - 1] == len(self.sockets):
                            self.counted_at[count - 1] = now
                if seq <= newest[k]:
                    self.backwards += seq < newest[k]
                    continue
                # The writes of todo k that this frame brings: seq in (newest[k], seq].
                lowest = max(0, newest[k] - first)
                lowest += (k - lowest) % width
                newest[k] = seq
                for number in range(lowest, min(seq - first, self.writes), width):
                    self.holding[number] += 1
                    if self.holding[number] == len(self.sockets):
                        self.held_at[number] = now
        except ConnectionClosed:
            pass
        self.closed += 1  # by the server, or by close() at the end

    def hold(self, seq_by_todo, frames=0) -> bool:
        """Every socket holds, for each todo k, seq_by_todo[k] or later, and has received
        `frames` frames of the timed writes or more."""
        return min(self.frames) >= frames and all(
            n >= s for newest in self.newest for n, s in zip(newest, seq_by_todo, strict=True)
        )

    async def wait(self, condition, deadline) -> bool:
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self):
        await close_all(self.sockets)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class PacedWriter:
    """One writing process (benchmarks/baked/bench_paced_writer.py)."""

    def __init__(self, process):
        self.process = process

    @classmethod
    async def start(cls, project, mode, pk, first, index, writers, rate, seconds):
        process = await bench_project.start_script(
            project, "bench_paced_writer.py", mode, pk, first, index, writers, rate, seconds
        )
        writer = cls(process)
        await writer._expect(b"ready")
        return writer

    async def _expect(self, word):
        line = await asyncio.wait_for(self.process.stdout.readline(), 120)
        assert line.strip() == word, f"the writer said {line!r}, not {word!r}"

    async def _say(self, text):
        self.process.stdin.write(f"{text}\n".encode())
        await self.process.stdin.drain()

    async def warm_up(self):
        await self._say("warm")
        await self._expect(b"warm")

    async def run(self, begin, timeout):
        await self._say(repr(begin))
        result = json.loads(await asyncio.wait_for(self.process.stdout.readline(), timeout))
        self.process.stdin.close()
        await self.process.wait()
        return result

    def kill(self):
        if self.process.returncode is None:
            self.process.kill()


# --- one run ----------------------------------------------------------------------------------


async def run(bench, mode, rate, seconds):
    """One run at `rate` writes/s: its measurements, status and the reasons it did not pass."""
    writes = int(rate * seconds)
    writers = bench.args.writers if mode == "live" else 1
    pks, first = bench.pks[:writers], bench.next_seq
    bench.next_seq += writes + 1
    if mode == "live":
        sockets, failures = await open_subscribed(bench.server, bench.args.subscribers)
        if failures:
            await close_all(sockets)
            raise RuntimeError(f"{len(failures)} sockets could not subscribe: {failures[:3]}")
    else:
        sockets = await open_floor(bench.server, bench.args.subscribers)
    audience = Audience(sockets, first, pks, writes)
    processes = []
    try:
        processes = await asyncio.gather(
            *(
                PacedWriter.start(bench.project, mode, pk, first, k, writers, rate, seconds)
                for k, pk in enumerate(pks)
            )
        )
        await asyncio.gather(*(writer.warm_up() for writer in processes))
        if not await audience.wait(lambda: audience.hold([first] * writers), time.monotonic() + 30):
            raise RuntimeError("the warm-up writes did not reach every socket within 30 s")
        begin, load = time.monotonic() + 0.1, os.getloadavg()[0]
        server_cpu, client_cpu = cpu_ticks(bench.pid) / TICKS, time.process_time()
        reports = await asyncio.gather(*(w.run(begin, seconds * 3 + 60) for w in processes))
        starts = [0.0] * writes
        for k, report in enumerate(reports):
            starts[k::writers] = report["starts"]
        # Writer k's last write is the highest number below `writes` that is k modulo `writers`.
        last_seqs = [first + writes - (writes - 1 - k) % writers for k in range(writers)]
        await audience.wait(lambda: audience.hold(last_seqs, writes), max(starts) + DELIVERY_WAIT)
        ended = time.monotonic()
        server_cpu = cpu_ticks(bench.pid) / TICKS - server_cpu
        client_cpu = time.process_time() - client_cpu
        await audience.wait(
            lambda: time.monotonic() - audience.last_frame_at >= QUIET, time.monotonic() + 10
        )
        row = measure(audience, rate, seconds, writers, starts, last_seqs)
    finally:
        for writer in processes:
            writer.kill()
        await audience.close()
    row["load_average"] = load  # of the machine, over the minute before the run
    row["cpu_per_second"] = {
        "server": server_cpu / (ended - begin),
        "client": client_cpu / (ended - begin),
        "writers": sum(report["cpu_seconds"] for report in reports) / (ended - begin),
    }
    return row


def measure(audience, rate, seconds, writers, starts, last_seqs):
    """The run's numbers, status and reasons, by the rules of the module docstring."""
    n, writes = len(audience.sockets), len(starts)
    achieved = (writes - 1) / (max(starts) - min(starts)) if writes > 1 else rate
    extra = [frames - writes for frames in audience.frames]
    last_right = sum(last == last_seqs for last in audience.last)
    reasons = []
    if min(extra) != 0 or max(extra) != 0:
        reasons.append(f"frames - writes per socket {min(extra)}..{max(extra)}, not 0")
    if last_right < n:
        reasons.append(f"{n - last_right} sockets' last frames are not the last writes")
    if audience.closed:
        reasons.append(f"{audience.closed} sockets were closed by the server")
    row = {
        "rate": rate,
        "seconds": seconds,
        "subscribers": n,
        "writers": writers,
        "writes": writes,
        "achieved_rate": achieved,
        "delivered": extra == [0] * n
        and last_right == n
        and None not in audience.held_at
        and None not in audience.counted_at,
        "frames_minus_writes": [min(extra), max(extra)],
        "frames_backwards": audience.backwards,
        "sockets_closed": audience.closed,
        "state_latency": judge("state", audience.held_at, starts, writers, reasons),
        "frame_latency": judge("frame", audience.counted_at, starts, writers, reasons),
    }
    if achieved < ACHIEVED_SHARE * rate:
        row["status"] = "writer-limited"
        reasons.insert(0, f"writers achieved {achieved:.1f}/s of {rate:g}/s")
    else:
        row["status"] = "fail" if reasons else "pass"
    row["reasons"] = reasons
    return row


def judge(kind, reached_at, starts, writers, reasons):
    """Latency figures (ms) of one kind, from each write's start to `reached_at` it; the reasons
    they break the rules are added to `reasons`."""
    latencies = [
        None if reached is None else reached - started
        for reached, started in zip(reached_at, starts, strict=True)
    ]
    known = sorted(latency for latency in latencies if latency is not None)
    if len(known) < len(latencies):
        missing = len(latencies) - len(known)
        reasons.append(f"{missing} of {len(latencies)} writes' {kind}s never reached every socket")
    if not known:
        return None
    third = max(1, len(latencies) // 3)
    early = [x for x in latencies[:third] if x is not None]
    late = [x for x in latencies[-third:] if x is not None]
    last_writes = latencies[-writers:]
    figures = {
        "p50_ms": percentile(known, 0.50) * 1000,
        "p90_ms": percentile(known, 0.90) * 1000,
        "p99_ms": percentile(known, 0.99) * 1000,
        "max_ms": known[-1] * 1000,
        "first_third_p50_ms": statistics.median(early) * 1000 if early else None,
        "last_third_p50_ms": statistics.median(late) * 1000 if late else None,
        "last_write_ms": None if None in last_writes else max(last_writes) * 1000,
        "p50_ms_by_second": by_second(latencies, starts),
    }
    early_ms, late_ms = figures["first_third_p50_ms"], figures["last_third_p50_ms"]
    if early_ms is not None and late_ms is not None:
        allowed = GROWTH_FACTOR * early_ms + GROWTH_SLACK * 1000
        if late_ms > allowed:
            reasons.append(f"{kind} latency grew: last third p50 {late_ms:.1f} ms > {allowed:.1f}")
    last_ms = figures["last_write_ms"]
    if last_ms is None or last_ms > LAST_WRITE_WITHIN * 1000:
        reasons.append(f"the last write's {kind} took {format_ms(last_ms)} (> 1 s)")
    return figures


def by_second(latencies, starts):
    """The median latency (ms) of the writes made in each second of the run."""
    seconds = {}
    for latency, started in zip(latencies, starts, strict=True):
        if latency is not None:
            seconds.setdefault(int(started - starts[0]), []).append(latency)
    return [round(statistics.median(seconds[s]) * 1000, 2) for s in sorted(seconds)]


def format_ms(value):
    return "never" if value is None else f"{value:.1f} ms"


def print_run(server, mode, row, label=""):
    cpu = row.get("cpu_per_second", {})
    extra = row["frames_minus_writes"]

    def latency(kind):
        figures = row[f"{kind}_latency"]
        if figures is None:
            return f"{kind}: none"
        thirds = [format_ms(figures[f"{third}_third_p50_ms"]) for third in ("first", "last")]
        return (
            f"{kind} p50 {figures['p50_ms']:.1f} p99 {figures['p99_ms']:.1f} ms, thirds "
            f"{thirds[0]} -> {thirds[1]}, last {format_ms(figures['last_write_ms'])}"
        )

    print(
        f"{server:8} {mode:5} {row['rate']:>6g}/s{label}: {row['status']} (achieved "
        f"{row['achieved_rate']:.1f}/s, frames-writes {extra[0]}..{extra[1]}, load "
        f"{row['load_average']:.1f}, CPU/s server {cpu.get('server', 0):.2f} client "
        f"{cpu.get('client', 0):.2f} writers {cpu.get('writers', 0):.2f})\n{'':16}"
        f"{latency('state')}; {latency('frame')}"
        + "".join(f"\n{'':16}- {reason}" for reason in row["reasons"]),
        flush=True,
    )


# --- the search -------------------------------------------------------------------------------


class Bench:
    """One server process for one (server, mode) search, restarted after a run that fails."""

    def __init__(self, args, project, workdir, server_kind, pks):
        self.args, self.project, self.pks = args, project, pks
        self.next_seq = 10**6
        self.server = AppServer(
            project.path, project.venv, project.env, server_kind, workdir,
            module="bench_asgi:application",
        )  # fmt: skip
        self.pid = None
        self.spoilt = False  # a run did not pass: restart before the next

    async def fresh(self, mode):
        """Start the server anew, and run the warm-up that is not counted."""
        self.server.stop()
        self.spoilt = False
        self.server.start()
        self.pid, note = serving_pid(self.server)
        print(note, flush=True)
        if self.args.warmup:
            row = await run(self, mode, min(WARMUP_RATE, self.args.start), self.args.warmup)
            print_run(self.server.server, mode, row, " (warm-up)")

    async def measure(self, mode, rate):
        if self.spoilt:
            await self.fresh(mode)
        row = await run(self, mode, rate, self.args.seconds)
        print_run(self.server.server, mode, row)
        self.spoilt = row["status"] != "pass"
        return row

    def stop(self):
        self.server.stop()


async def search(bench, mode, args):
    """The runs of one (server, mode): the given rates, or the search of the module docstring."""
    await bench.fresh(mode)
    runs = []

    async def passes(rate):
        runs.append(await bench.measure(mode, rate))
        return runs[-1]["status"] == "pass"

    if args.rates:
        for rate in args.rates:
            await passes(rate)
        return runs
    passed, bound = None, None
    if await passes(args.start):
        passed = args.start
        while bound is None and passed * 2 <= args.max_rate:
            if await passes(passed * 2):
                passed *= 2
            else:
                bound = passed * 2
    else:
        bound = args.start
        while passed is None and bound / 2 >= 1:
            if await passes(bound / 2):
                passed = bound / 2
            else:
                bound /= 2
    for _ in range(args.bisections if passed is not None and bound is not None else 0):
        rate = round((passed + bound) / 2)
        if rate in (passed, bound):
            break
        if await passes(rate):
            passed = rate
        else:
            bound = rate
    return runs


def summarize(server, mode, runs, subscribers):
    passing = [r for r in runs if r["status"] == "pass"]
    best = max(passing, key=lambda r: r["rate"]) if passing else None
    above = [r for r in runs if r["status"] != "pass" and r["rate"] > (best or {"rate": 0})["rate"]]
    bound = min(above, key=lambda r: r["rate"]) if above else None
    return {
        "server": server,
        "mode": mode,
        "sustained_writes_per_s": best["rate"] if best else 0,
        "sustained_frames_per_s": best["rate"] * subscribers if best else 0,
        # The latencies of the run at that rate: until every socket held the write's state, and
        # until every socket had received its frame.
        **{
            f"{kind}_{p}_ms": best[f"{kind}_latency"][f"{p}_ms"] if best else None
            for kind in ("state", "frame")
            for p in ("p50", "p99")
        },
        "first_not_sustained": (
            {"rate": bound["rate"], "status": bound["status"], "reasons": bound["reasons"]}
            if bound
            else None
        ),
        "runs": runs,
    }


async def bench_server(kind, args, project, workdir, pks):
    results = []
    for mode in args.mode:
        bench = Bench(args, project, workdir, kind, pks)
        try:
            runs = await search(bench, mode, args)
        finally:
            bench.stop()
        results.append(summarize(kind, mode, runs, args.subscribers))
    return results


def print_table(results, subscribers):
    print(f"\nSustained throughput, {subscribers} subscribers, one server process")
    print(f"{'':35} {'state latency ms':>16} {'frame latency ms':>16}")
    print(
        f"{'server':8} {'mode':5} {'writes/s':>8} {'frames/s':>9} {'p50':>7} {'p99':>8} "
        f"{'p50':>7} {'p99':>8}  first rate not sustained"
    )
    for r in results:
        bound = r["first_not_sustained"]
        why = "none of these runs failed"
        if bound:
            why = f"{bound['rate']:g}/s {bound['status']}: {'; '.join(bound['reasons'])}"
        ms = {
            key: "-" if value is None else f"{value:.1f}"
            for key, value in r.items()
            if key.endswith("_ms")
        }
        print(
            f"{r['server']:8} {r['mode']:5} {r['sustained_writes_per_s']:>8g} "
            f"{r['sustained_frames_per_s']:>9g} {ms['state_p50_ms']:>7} {ms['state_p99_ms']:>8} "
            f"{ms['frame_p50_ms']:>7} {ms['frame_p99_ms']:>8}  {why}"
        )


# --- setup ------------------------------------------------------------------------------------


def prepare(project, todos):
    """Migrate and create the writers' todos; their pks."""
    project.manage("migrate", "--noinput")
    script = (
        "from todos.models import Todo\n"
        f"print(*[Todo.objects.create(title='w0').pk for _ in range({todos})])\n"
    )
    out = project.manage("shell", "-v", "0", "-c", script)
    return [int(pk) for pk in out.stdout.split()[-todos:]]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server", nargs="+", choices=["daphne", "uvicorn"], default=["daphne", "uvicorn"]
    )
    parser.add_argument("--mode", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--quick", action="store_true", help="10 subscribers, 3 s runs")
    parser.add_argument("--subscribers", type=int, help="sockets (200; quick 10)")
    parser.add_argument("--seconds", type=float, help="seconds of writes per run (30; quick 3)")
    parser.add_argument("--start", type=float, default=25, help="first rate of the search")
    parser.add_argument("--rates", type=float, nargs="+", help="run these rates, no search")
    parser.add_argument("--bisections", type=int, default=2)
    parser.add_argument("--max-rate", type=float, default=12800, help="stop doubling above it")
    parser.add_argument("--writers", type=int, default=2, help="writer processes for live")
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of the uncounted first run (0: none)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--no-plot", action="store_true", help="do not redraw capacity.png with this result"
    )
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)
    if args.subscribers is None:
        args.subscribers = 10 if args.quick else 200
    if args.seconds is None:
        args.seconds = 3 if args.quick else 30
    args.warmup = min(args.warmup, args.seconds)

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-throughput-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs, sockets
    path, venv = bench_project.bake(workdir, args.venv)
    started = time.monotonic()
    with PostgresServer() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, "pubsub")
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        pks = prepare(project, max(1, args.writers))
        results = []
        for kind in args.server:
            results += asyncio.run(bench_server(kind, args, project, workdir, pks))
    print_table(results, args.subscribers)
    print(f"\ntotal {time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
    report = {
        "cores": os.cpu_count(),
        "layer": "pubsub",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "venv")},
        "results": results,
    }
    write_report(args.out, "throughput", argv, report)
    figure = args.out / "capacity.png"
    if args.no_plot or not (args.out / "capacity.json").exists():
        return
    capacity_figure.plot(json.loads((args.out / "capacity.json").read_text())["results"], figure)
    print(f"redrew {figure} with it")


if __name__ == "__main__":
    main()
