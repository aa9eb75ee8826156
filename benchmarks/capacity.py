"""Capacity benchmark: what sockets cost one server process, and whether slow sockets hurt others.

A `production` bake (PostgreSQL, Redis pub/sub layer, DEBUG off) is served by one Daphne or
Uvicorn process (neither forks: the process started is the one that serves, which the script
checks). Every websocket subscribes to the `todos.Todo` list with `"ack": true` and waits for
`subscribed`. Memory is the server's VmRSS from /proc/<pid>/status.

1. Idle sockets: RSS before and after opening N subscribed sockets (in waves of 100) that then
   sit idle; KB per socket. Twice, on fresh processes: with the client offering permessage-deflate
   (as browsers do; Uvicorn accepts it and keeps a zlib context per socket, Daphne does not), and
   without.
2. Churn: R rounds of M sockets that connect and subscribe, then all disconnect; RSS after each
   round. CPython keeps memory it freed, so a plateau after the first rounds is the good result;
   growth after round 2 would be a leak. Then C connect/subscribe/disconnect cycles, about 200 at
   a time, and RSS before and after.
3. Slow sockets, on a fresh process: 20 fast clients read everything while another process saves
   one todo 50 times a second for 10 s and, every second, broadcasts the ~500 other todos
   (`rest_live.broadcast` of a queryset; their titles are 200 characters, so each round is about
   200 KB of frames per socket). After a 3 s run that is not counted (a fresh process's first
   run is the slowest), once without and once with 5 slow sockets that subscribe and never read
   again. The frames are made big this way; the cap is the shipped one,
   `REST_LIVE_MAX_PENDING_BYTES` = 1 MiB (`--pending-bytes` lowers it through a settings module).
   A slow socket has a 4 KB receive buffer, a 1460-byte segment size (so the server's kernel
   buffers for it what it would for a remote client, ~200 KB, not the ~4 MB it allows a loopback
   connection with 64 KB segments), no permessage-deflate (which shrinks these repetitive frames
   some 20 times on the wire), websockets' `max_queue=1` and no pings of its own. For each fast
   client and each save, latency runs from just before `save()` to the first frame showing that
   save or a later one (a frame shows the row as it is when evaluated, so two quick saves can
   give two frames of the later state; "complete" counts clients that saw every save's state or a
   later one, and the last; "in order" those whose frames never went back; "frames-writes" the
   range over clients of frames received less saves made: +1 when the writer's warm-up save was
   evaluated after its first timed one). At the end each slow socket is read
   until it closes, and its close code reported: 4029 is rest_live's "too slow"; 1006 would mean
   the server dropped it without a close frame; "open" that it was never closed.

    python -m benchmarks.capacity                       # both servers, ~6 minutes on 2 cores
    python -m benchmarks.capacity --quick --server uvicorn
    python -m benchmarks.capacity --server uvicorn --idle 20 --rounds 2 --round-sockets 10 \
        --cycles 20 --fast 3 --slow 1 --rate 20 --seconds 1 --bulk-todos 20 --no-plot  # a smoke run

Prints tables and writes benchmarks/results/capacity.json and capacity.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks import bench_project, capacity_figure
from benchmarks.clients import PATH, close_all, open_subscribed, subscribe
from benchmarks.measure import percentile, rss_kb, serving_pid
from harness import baking
from harness.appserver import PRODUCTION_ENV, AppServer
from harness.combos import BY_NAME
from harness.results import RESULTS_DIR, write_report
from harness.services import LOOPBACK, PostgresServer, RedisServer

BULK_PREFIX = "bulk-"  # titles of the todos the bulk broadcasts carry
TOO_SLOW = 4029
SETTLE = 1.5  # seconds for the server to finish handling closes before RSS is read

# --- the server's log -----------------------------------------------------------------------------


def log_count(server: AppServer, text: str, since: int = 0) -> int:
    with open(server.log_path, "rb") as log:
        log.seek(since)
        return log.read().decode(errors="replace").count(text)


# --- clients ----------------------------------------------------------------------------------


async def cycles(server, n, concurrency):
    """N connect/subscribe/disconnect cycles, `concurrency` at a time; the failures."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one():
        async with semaphore:
            ws = await connect(server.ws_url + PATH, origin=server.http_url, open_timeout=60)
            try:
                await asyncio.wait_for(subscribe(ws), 60)
            finally:
                await ws.close()

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    return [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]


class FastClient:
    """Reads every frame; remembers when each state of the tracked todo arrived."""

    def __init__(self, ws):
        self.ws = ws
        self.arrivals = []  # (seq, monotonic time) of each frame about the tracked todo
        self.newest = 0
        self.bulk_frames = 0
        self.close_code = None
        self.last_frame_at = time.monotonic()
        self.task = asyncio.ensure_future(self._listen())

    async def _listen(self):
        try:
            async for raw in self.ws:
                now = self.last_frame_at = time.monotonic()
                if BULK_PREFIX in raw:
                    self.bulk_frames += 1
                    continue
                frame = json.loads(raw)
                if frame.get("type") == "broadcast":
                    seq = int(frame["instance"]["title"][1:])
                    self.arrivals.append((seq, now))
                    self.newest = max(self.newest, seq)
        except ConnectionClosed:
            pass
        self.close_code = self.ws.close_code

    def latencies(self, first, starts):
        """Per save: from its start to the first frame showing it or a later save."""
        arrivals = [(seq, t) for seq, t in self.arrivals if seq > first]
        result, index = [], 0
        for number, started in enumerate(starts, first + 1):
            while index < len(arrivals) and arrivals[index][0] < number:
                index += 1
            if index == len(arrivals):
                break
            result.append(arrivals[index][1] - started)
        return result, arrivals

    async def close(self):
        await self.ws.close()
        self.task.cancel()


async def open_slow(server):
    """A subscribed socket that will never read again: a 4 KB receive buffer, one-frame queue."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    # A remote client's segment size: the server's kernel then sizes its send buffer for this
    # socket as it would across a network (~100 KB), not for loopback's 64 KB segments (~4 MB).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
    sock.setblocking(False)
    await loop.sock_connect(sock, (LOOPBACK, server.port))
    ws = await connect(
        server.ws_url + PATH,
        origin=server.http_url,
        sock=sock,
        max_queue=1,
        compression=None,  # bytes on the wire are the frames' bytes, not deflated ~20 times
        ping_interval=None,  # our own pings would time out, unanswered pongs unread
        open_timeout=60,
    )
    return await subscribe(ws)


async def drain(ws, idle=5.0):
    """Read a slow socket until it closes: (close code or "open", frames, bytes)."""
    frames = size = 0
    try:
        while True:
            raw = await asyncio.wait_for(ws.recv(), idle)
            frames, size = frames + 1, size + len(raw)
    except TimeoutError:
        await ws.close()
        return "open", frames, size
    except ConnectionClosed:
        return ws.close_code, frames, size


class Writer:
    """The writing process (benchmarks/baked/bench_capacity_writer.py)."""

    def __init__(self, process):
        self.process = process

    @classmethod
    async def start(cls, project, todo_pk, first, rate, seconds, bulk_every):
        process = await bench_project.start_script(
            project, "bench_capacity_writer.py", todo_pk, first, rate, seconds, bulk_every
        )
        line = await process.stdout.readline()
        assert line.strip() == b"ready", line
        return cls(process)

    async def run(self):
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()
        result = json.loads(await self.process.stdout.readline())
        self.process.stdin.close()
        await self.process.wait()
        return result


# --- the parts --------------------------------------------------------------------------------


async def idle_memory(server, pid, n, **connect_kwargs):
    # Imports, pools and caches the first sockets fill.
    warm, _ = await open_subscribed(server, 50, **connect_kwargs)
    await close_all(warm)
    await asyncio.sleep(SETTLE)
    before = rss_kb(pid)
    started = time.monotonic()
    sockets, failures = await open_subscribed(server, n, **connect_kwargs)
    opened_in = time.monotonic() - started
    await asyncio.sleep(3)  # idle
    after = rss_kb(pid)
    await close_all(sockets)
    await asyncio.sleep(SETTLE)
    row = {
        "sockets": len(sockets),
        "failures": failures[:5],
        "failed": len(failures),
        "open_seconds": opened_in,
        "rss_before_kb": before,
        "rss_idle_kb": after,
        "kb_per_socket": (after - before) / max(1, len(sockets)),
        "rss_after_close_kb": rss_kb(pid),
    }
    deflate = "no deflate" if "compression" in connect_kwargs else "deflate"
    print(
        f"{server.server:8} idle ({deflate}): {len(sockets)} sockets opened in {opened_in:.1f} s "
        f"({len(failures)} failed); RSS {before / 1024:.1f} -> {after / 1024:.1f} MB = "
        f"{row['kb_per_socket']:.1f} KB/socket; {row['rss_after_close_kb'] / 1024:.1f} MB "
        "after closing",
        flush=True,
    )
    return row


async def churn(server, pid, rounds, sockets_per_round, cycle_count):
    before = rss_kb(pid)
    series, failed, seconds = [], 0, []
    for number in range(1, rounds + 1):
        started = time.monotonic()
        sockets, failures = await open_subscribed(server, sockets_per_round)
        seconds.append(time.monotonic() - started)
        failed += len(failures)
        await close_all(sockets)
        await asyncio.sleep(SETTLE)
        series.append(rss_kb(pid))
        print(
            f"{server.server:8} churn round {number}: {len(sockets)} opened in "
            f"{seconds[-1]:.1f} s, RSS after closing {series[-1] / 1024:.1f} MB",
            flush=True,
        )
    growth = series[-1] - series[min(1, len(series) - 1)]
    cycles_before = rss_kb(pid)
    started = time.monotonic()
    cycle_failures = await cycles(server, cycle_count, 200)
    cycle_seconds = time.monotonic() - started
    await asyncio.sleep(SETTLE)
    cycles_after = rss_kb(pid)
    print(
        f"{server.server:8} {cycle_count} cycles in {cycle_seconds:.1f} s "
        f"({len(cycle_failures)} failed): RSS {cycles_before / 1024:.1f} -> "
        f"{cycles_after / 1024:.1f} MB",
        flush=True,
    )
    return {
        "rounds": rounds,
        "sockets_per_round": sockets_per_round,
        "rss_before_kb": before,
        "rss_after_round_kb": series,
        "round_open_seconds": seconds,
        "failed": failed,
        "growth_after_round_2_kb": growth,
        "cycles": cycle_count,
        "cycle_seconds": cycle_seconds,
        "cycles_failed": len(cycle_failures),
        "cycle_failures": cycle_failures[:5],
        "rss_before_cycles_kb": cycles_before,
        "rss_after_cycles_kb": cycles_after,
    }


async def latency_run(server, pid, project, args, todo_pk, first, slow_count, seconds, show=True):
    fast = [FastClient(ws) for ws in (await open_subscribed(server, args.fast))[0]]
    slow = [await open_slow(server) for _ in range(slow_count)]
    writer = await Writer.start(project, todo_pk, first, args.rate, seconds, args.bulk_every)
    deadline = time.monotonic() + 30
    while min(client.newest for client in fast) < first and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the writer's warm-up save reached every fast client
    log_from = server.log_size()
    rss_before, peak = rss_kb(pid), 0

    async def sample():
        nonlocal peak
        while True:
            peak = max(peak, rss_kb(pid))
            await asyncio.sleep(0.1)

    sampler = asyncio.ensure_future(sample())
    result = await writer.run()
    starts, last = result["starts"], first + len(result["starts"])
    deadline = time.monotonic() + 60
    while min(client.newest for client in fast) < last and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    # Then until no frame has come for a second: under load some changes arrive twice, by the
    # channel layer and by the change log's feed, and evaluations queued behind a bulk round
    # still send frames (of the last state) after every client has seen the last save.
    deadline = time.monotonic() + 30
    while time.monotonic() - max(c.last_frame_at for c in fast) < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    rss_end = rss_kb(pid)
    drained = await asyncio.gather(*(drain(ws) for ws in slow))
    sampler.cancel()
    latencies, complete, in_order, exact, skipped, extra = [], 0, 0, 0, 0, []
    for client in fast:
        own, arrivals = client.latencies(first, starts)
        latencies += own
        seqs = [seq for seq, _ in arrivals]
        complete += len(own) == len(starts) and client.newest == last
        in_order += seqs == sorted(seqs)
        exact += seqs == list(range(first + 1, last + 1))
        extra.append(len(seqs) - len(starts))
        skipped += len(set(range(first + 1, last + 1)) - set(seqs))
    for client in fast:
        await client.close()
    ordered = sorted(latencies)
    row = {
        "slow_sockets": slow_count,
        "fast_clients": len(fast),
        "writes": len(starts),
        "write_seconds": result["took"],
        "bulk_rounds": len(result["bulks"]),
        "bulk_frames_per_fast_client": statistics.mean(c.bulk_frames for c in fast),
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p95_ms": percentile(ordered, 0.95) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "fast_complete": complete,
        "fast_in_order": in_order,
        "fast_exact": exact,
        "fast_frames_minus_writes": extra,
        "states_skipped": skipped,
        "fast_closed": sum(c.close_code is not None for c in fast),
        "rss_before_kb": rss_before,
        "rss_peak_kb": peak,
        "rss_end_kb": rss_end,
        "slow_close_codes": [code for code, _, _ in drained],
        "slow_frames_read": [frames for _, frames, _ in drained],
        "slow_bytes_read": [size for _, _, size in drained],
        "too_slow_logged": log_count(server, "fell more than", log_from),
    }
    if show:
        print_latency(server.server, row)
    return row


async def bench_server(name, args, project, workdir, todo_pk):
    server = AppServer(project.path, project.venv, project.env, name, workdir)
    server.start()
    try:
        pid, note = serving_pid(server)
        print(note, flush=True)
        idle = await idle_memory(server, pid, args.idle)
        churned = await churn(server, pid, args.rounds, args.round_sockets, args.cycles)
    finally:
        server.stop()
    # Fresh processes, so RSS shows what each part costs, not what the one before left.
    server.start()
    try:
        plain = await idle_memory(server, serving_pid(server)[0], args.idle, compression=None)
    finally:
        server.stop()
    server.start()
    try:
        pid, _ = serving_pid(server)
        seq = 10**6 * (1 + list(args.server).index(name))
        # Not counted: the first run on a fresh process is slower, whichever it is.
        await latency_run(server, pid, project, args, todo_pk, seq, 0, 3, show=False)
        runs = []
        for slow_count in (0, args.slow):
            seq += 10**5
            runs.append(
                await latency_run(
                    server, pid, project, args, todo_pk, seq, slow_count, args.seconds
                )
            )
        errors = log_count(server, "Traceback")
    finally:
        server.stop()
    without, with_slow = runs
    return {
        "server": name,
        "process": note,
        "idle": idle,
        "idle_no_deflate": plain,
        "churn": churned,
        "latency": {
            "without_slow": without,
            "with_slow": with_slow,
            **{
                f"ratio_{p}": with_slow[f"{p}_ms"] / without[f"{p}_ms"]
                for p in ("p50", "p95", "p99")
            },
        },
        "tracebacks_in_log": errors,
        "log": str(server.log_path),
    }


# --- output -----------------------------------------------------------------------------------


def print_latency(server, row):
    codes = ",".join(map(str, row["slow_close_codes"])) or "-"
    print(
        f"{server:8} slow={row['slow_sockets']}: {row['writes']} writes in "
        f"{row['write_seconds']:.1f} s, {row['bulk_rounds']} bulk rounds; p50 {row['p50_ms']:.1f} "
        f"p95 {row['p95_ms']:.1f} p99 {row['p99_ms']:.1f} max {row['max_ms']:.0f} ms; "
        f"complete {row['fast_complete']}/{row['fast_clients']}, in order "
        f"{row['fast_in_order']}/{row['fast_clients']}; RSS {row['rss_before_kb'] / 1024:.0f} "
        f"-> peak {row['rss_peak_kb'] / 1024:.0f} MB; slow closes {codes}",
        flush=True,
    )


def print_tables(results):
    print(
        "\nIdle subscribed sockets (server RSS; the client offers permessage-deflate, as "
        "browsers do, or not)"
    )
    print(
        f"{'server':8} {'deflate':>7} {'N':>5} {'open s':>7} {'RSS before MB':>13} "
        f"{'RSS idle MB':>11} {'KB/socket':>9}"
    )
    for r in results:
        for label, i in (("yes", r["idle"]), ("no", r["idle_no_deflate"])):
            print(
                f"{r['server']:8} {label:>7} {i['sockets']:>5} {i['open_seconds']:>7.1f} "
                f"{i['rss_before_kb'] / 1024:>13.1f} {i['rss_idle_kb'] / 1024:>11.1f} "
                f"{i['kb_per_socket']:>9.1f}"
            )
    print("\nChurn: RSS (MB) after each round of connect+subscribe, then all disconnect")
    for r in results:
        c = r["churn"]
        series = " ".join(f"{kb / 1024:.0f}" for kb in c["rss_after_round_kb"])
        print(
            f"{r['server']:8} {c['rounds']}x{c['sockets_per_round']}: start "
            f"{c['rss_before_kb'] / 1024:.0f} | {series} | after round 2: "
            f"{c['growth_after_round_2_kb'] / 1024:+.1f} MB ({c['failed']} failed)"
        )
        print(
            f"{'':8} {c['cycles']} cycles ({c['cycle_seconds']:.0f} s, {c['cycles_failed']} "
            f"failed): {c['rss_before_cycles_kb'] / 1024:.1f} -> "
            f"{c['rss_after_cycles_kb'] / 1024:.1f} MB"
        )
    print("\nFast clients' latency per write (ms), without and with slow sockets")
    print(
        f"{'server':8} {'slow':>4} {'p50':>6} {'p95':>6} {'p99':>6} {'complete':>8} "
        f"{'in order':>8} {'frames-writes':>13} {'RSS MB before->peak':>19} "
        f"{'slow close codes':>24}"
    )
    for r in results:
        lat = r["latency"]
        for row in (lat["without_slow"], lat["with_slow"]):
            codes = ",".join(map(str, row["slow_close_codes"])) or "-"
            n = row["fast_clients"]
            rss = f"{row['rss_before_kb'] / 1024:.0f}->{row['rss_peak_kb'] / 1024:.0f}"
            extra = row["fast_frames_minus_writes"]
            extra = f"{min(extra)}..{max(extra)}" if extra else "-"
            print(
                f"{r['server']:8} {row['slow_sockets']:>4} {row['p50_ms']:>6.1f} "
                f"{row['p95_ms']:>6.1f} {row['p99_ms']:>6.1f} "
                f"{row['fast_complete']:>4}/{n:<3} {row['fast_in_order']:>4}/{n:<3} "
                f"{extra:>13} {rss:>19} {codes:>24}"
            )
        print(
            f"{'':8} ratio with/without: p50 {lat['ratio_p50']:.2f}, p95 "
            f"{lat['ratio_p95']:.2f}, p99 {lat['ratio_p99']:.2f} (goal: within 1.10); "
            f"{lat['with_slow']['too_slow_logged']} 'too slow' closes logged; "
            f"{r['tracebacks_in_log']} tracebacks in the server log"
        )


# --- setup ------------------------------------------------------------------------------------


def prepare(project, bulk_todos):
    """Migrate, create the tracked todo and the bulk todos; the tracked todo's pk."""
    project.manage("migrate", "--noinput")
    script = bench_project.program("capacity_prepare.py")
    todos = {"PREFIX": BULK_PREFIX, "BULK": str(bulk_todos)}
    out = project.manage("shell", "-v", "0", "-c", script, env_overrides=todos)
    return int(out.stdout.split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server", nargs="+", choices=["daphne", "uvicorn"], default=["daphne", "uvicorn"]
    )
    parser.add_argument("--quick", action="store_true", help="a small run, for development")
    parser.add_argument("--idle", type=int, help="idle sockets (1000; quick 200)")
    parser.add_argument("--rounds", type=int, help="churn rounds (10; quick 2)")
    parser.add_argument("--round-sockets", type=int, help="sockets per round (2000; quick 200)")
    parser.add_argument("--cycles", type=int, help="connect/disconnect cycles (10000; quick 400)")
    parser.add_argument("--fast", type=int, default=20, help="fast clients")
    parser.add_argument("--slow", type=int, default=5, help="slow sockets in the second run")
    parser.add_argument("--rate", type=float, default=50, help="writes per second")
    parser.add_argument("--seconds", type=float, help="seconds of writes (10; quick 5)")
    parser.add_argument(
        "--bulk-every", type=float, help="seconds between bulk broadcasts (1; quick 0.6; 0: none)"
    )
    parser.add_argument("--bulk-todos", type=int, default=500, help="todos in each bulk round")
    parser.add_argument(
        "--pending-bytes", type=int, help="REST_LIVE_MAX_PENDING_BYTES (default: the shipped 1 MiB)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)
    defaults = {
        "idle": (1000, 200),
        "rounds": (10, 2),
        "round_sockets": (2000, 200),
        "cycles": (10000, 400),
        "bulk_every": (1.0, 0.6),
        "seconds": (10, 5),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-capacity-"))
    combo = BY_NAME["production"]
    path = baking.bake(combo, workdir / "bake", baking.write_cookiecutter_config(workdir))
    bench_project.copy_in(path, "bench_capacity_writer.py", "bench_capacity_settings.py")
    venv = args.venv or baking.ensure_venv(baking.requirement_lines(path), baking.baked_python())
    started = time.monotonic()
    with PostgresServer() as postgres, RedisServer() as redis:
        env = {
            **baking.service_env(combo, postgres.url, redis.url),
            **PRODUCTION_ENV,
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        if args.pending_bytes:
            env["DJANGO_SETTINGS_MODULE"] = "bench_capacity_settings"
            env["BENCH_MAX_PENDING_BYTES"] = str(args.pending_bytes)
        project = baking.BakedProject(path=path, combo=combo, venv=venv, env=env)
        todo_pk = prepare(project, args.bulk_todos - 1)
        results = [
            asyncio.run(bench_server(name, args, project, workdir, todo_pk)) for name in args.server
        ]
    print_tables(results)
    print(f"\ntotal {time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
    report = {
        "cores": os.cpu_count(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "venv", "no_plot")},
        "max_pending_bytes": args.pending_bytes or 1024 * 1024,
        "results": results,
    }
    drawn = None if args.no_plot else lambda figure: capacity_figure.plot(results, figure)
    write_report(args.out, "capacity", argv, report, drawn)


if __name__ == "__main__":
    main()
