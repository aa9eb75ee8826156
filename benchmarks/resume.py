"""Resume against snapshot: what a client that was away pays to be exact again.

The issue: "A list of 1,000 rows, a client offline for 10 s while 10 rows change. Compare the
bytes and the time to be exact again: resume against snapshot."

One server process (Daphne, then Uvicorn) serves a `production` bake (PostgreSQL, Redis pub/sub
layer, DEBUG off). For each case (ROWS x CHANGED, default 1000x10 and, one factor at a time,
100x10, 5000x10, 1000x100) another process empties the todos table and makes ROWS todos
(~60-character titles, no owner, so anonymous clients see them all). Two anonymous clients (the
`websockets` library, one socket each) subscribe to the `todos.Todo` list with a snapshot and
keep their state keyed by `pk`, and the latest `position` of any frame, as docs/protocol.md tells
a client to. Then, R times (default 10):

1. both clients close their sockets;
2. while they are away (A seconds, default 10) the other process makes CHANGED changes through the
   ORM, spread evenly over the first 90% of the window: one create, one delete and CHANGED - 2
   retitles, of rows the clients hold (the first SNAPSHOT_LIMIT of the list, in its order);
3. each client reconnects, one after the other, the `resume` arm with `"resume": <its latest
   position>`, the `snapshot` arm with `"snapshot": true`, which arm goes first alternating by
   repeat so that drift and warm caches hit both. Each reconnect starts on a quiet server (its
   CPU time standing still, within a clock tick, for two windows of 0.15 s);
4. both clients' states are checked against the REST list (GET /api/todos/, read once, after
   both reconnects: nothing changes meanwhile).

Per reconnect:

- bytes: the payload bytes of the frames received from the subscribe until the client is
  exact (the `resumed` frame; or `resume_failed` and then the `snapshot`; or the `snapshot`), and
  the wire bytes the socket read up to then (TCP payload: the handshake's response, frame headers,
  compressed when the server negotiated permessage-deflate, as Uvicorn does and Daphne does not);
- time to exact: from just before the socket is opened until the frame that makes the state
  whole is parsed and applied;
- server CPU: the serving process's user + system time (/proc/<pid>/stat, clock ticks of 10 ms)
  from the quiet server before the connect to the quiet server after it (a barrier, an
  unsubscribe the server answers in order, makes sure every frame it sent was read; frames after
  the state frame and before the barrier are counted as late);
- whether the server ran a full garbage collection while the client was getting exact (the
  bake's settings log each one): the few slow outliers (a p90 far above the p50) are mostly those,
  and whichever arm is running pays for them;
- whether the state ended exact: equal to REST; with a list longer than the snapshot limit
  (1,000) the snapshot is truncated, so no client holds the whole list, and the check is that
  every object it holds is what REST shows (and, for a snapshot, that it holds the first 1,000):
  "subset" in the table.

The table gives each arm's median and p90, and on the snapshot line the ratio of the medians,
snapshot over resume (bytes, wire bytes, time, server CPU). A resume the server cannot serve
(`resume_failed`, e.g. "too_many": more changed than a snapshot carries) is counted and its
reason shown; its bytes and time include the snapshot that follows.

    python -m benchmarks.resume           # both servers, 4 cases, 10 repeats, 10 s away
    python -m benchmarks.resume --server uvicorn --cases 100x10 --repeats 2 --away 1 --no-plot
    python -m benchmarks.resume --cases 1000x10 5000x100 --repeats 20

Prints a table and writes benchmarks/results/resume.json and resume.png.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from benchmarks import bench_project
from benchmarks.measure import TICKS, log_problems, percentile, quiet, serving_pid
from harness import baking
from harness.appserver import AppServer
from harness.results import RESULTS_DIR, write_report
from harness.services import PostgresServer, RedisServer

PATH = "/ws/subscribe/"
MODEL = "todos.Todo"
ARMS = ("resume", "snapshot")
DEFAULT_CASES = ("1000x10", "100x10", "5000x10", "1000x100")
FRAME_DEADLINE = 60.0  # seconds for the server to answer a subscribe or the barrier
SPREAD = 0.9  # the changes are made over this share of the time away


class Writer:
    """The other process, which makes the changes through the ORM."""

    def __init__(self, process):
        self.process = process

    @classmethod
    async def start(cls, project):
        return cls(await bench_project.start_ready(project, "bench_resume_writer.py"))

    async def do(self, **command):
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 600)
        if not line:
            raise RuntimeError(f"the writer died on {command}")
        return json.loads(line)

    async def stop(self):
        self.process.stdin.close()
        await self.process.wait()


class CountingConnection(ClientConnection):
    """A client connection that counts the bytes it reads off the socket."""

    bytes_in = 0

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        super().data_received(data)


class Client:
    """One client: its socket while it is online, and its state, built from its frames alone:
    {pk: instance}, the latest position, and whether its last snapshot was truncated."""

    def __init__(self, arm, server):
        self.arm, self.server = arm, server
        self.held: dict = {}
        self.position = None
        self.truncated = False
        self.socket = None
        self.snapshot_limit = None

    async def _open(self):
        return await connect(
            self.server.ws_url + PATH,
            origin=self.server.http_url,
            open_timeout=60,
            max_size=None,
            max_queue=None,
            create_connection=CountingConnection,
        )

    async def _recv(self):
        raw = await asyncio.wait_for(self.socket.recv(decode=False), FRAME_DEADLINE)
        return raw, json.loads(raw)

    def _note_position(self, frame):
        if frame.get("position") is not None:
            self.position = frame["position"]

    def _apply(self, frame, pending):
        """Apply one frame of subscription 1; True once it makes the state whole (a snapshot,
        a `resumed`)."""
        kind = frame.get("type")
        if frame.get("id") != 1:
            raise RuntimeError(f"the {self.arm} client got {frame!r:.300}")
        if kind == "snapshot":
            self.held = dict(zip(frame["pks"], frame["instances"], strict=True))
            self.truncated = bool(frame.get("truncated"))
        elif kind == "resumed":
            for item in frame["broadcasts"]:
                apply_one(self.held, item)
        elif kind == "broadcast":
            pending.append(frame)
            if not frame.get("more"):
                for item in pending:
                    apply_one(self.held, item)
                pending.clear()
        elif kind != "resume_failed":  # a snapshot follows that
            raise RuntimeError(f"the {self.arm} client got {frame!r:.300}")
        self._note_position(frame)
        return kind in ("snapshot", "resumed")

    async def setup(self):
        """Connect, learn the limits (hello), subscribe with a snapshot: the starting state."""
        self.socket = await self._open()
        await self.socket.send(json.dumps({"type": "hello"}))
        _, hello = await self._recv()
        if hello.get("type") != "hello":
            raise RuntimeError(f"hello was answered {hello!r:.300}")
        self.snapshot_limit = hello["limits"]["snapshot_limit"]
        await self.socket.send(json.dumps(subscribe_frame(snapshot=True)))
        _, frame = await self._recv()
        if frame.get("type") != "snapshot" or not self._apply(frame, []):
            raise RuntimeError(f"the subscribe was answered {frame!r:.300}")
        return self.snapshot_limit

    async def go_away(self):
        await self.socket.close()
        self.socket = None

    async def reconnect(self):
        """Reconnect as this client's arm does; what it took to be exact again."""
        started = time.monotonic()
        self.socket = await self._open()
        opened = time.monotonic()
        if self.arm == "resume":
            frame = subscribe_frame(resume=self.position)
        else:
            frame = subscribe_frame(snapshot=True)
        await self.socket.send(json.dumps(frame))
        payload, frames, pending, failed = 0, Counter(), [], None
        while True:
            raw, frame = await self._recv()
            payload += len(raw)
            frames[frame.get("type")] += 1
            if frame.get("type") == "resume_failed":
                failed = frame.get("reason")
            if self._apply(frame, pending):
                break
        exact_at = time.monotonic()
        wire = self.socket.bytes_in
        late = await self._barrier(pending)
        return {
            "window": [started, exact_at],  # monotonic, one clock for every process
            "payload_bytes": payload,
            "wire_bytes": wire,
            "seconds": exact_at - started,
            "handshake_seconds": opened - started,
            "frames": dict(frames),
            "resume_failed": failed,
            "late_frames": late,
            "held": len(self.held),
            "truncated": self.truncated,
        }

    async def _barrier(self, pending) -> int:
        """Read until the server answers an unsubscribe of an unknown id, which it does after
        every frame it sent before; how many frames came after the state frame."""
        await self.socket.send(json.dumps({"type": "unsubscribe", "id": "barrier"}))
        late = 0
        while True:
            _, frame = await self._recv()
            if frame.get("type") == "error" and frame.get("id") == "barrier":
                return late
            late += 1
            self._apply(frame, pending)

    def check(self, rest: list[dict]) -> str:
        """Whether the state is the REST list: "exact"; "subset" when truncated (every object
        held is as REST shows it, and a snapshot holds the head of the list); or "wrong"."""
        by_pk = {row["id"]: row for row in rest}
        if not self.truncated:
            return "exact" if self.held == by_pk else "wrong"
        if any(by_pk.get(pk) != instance for pk, instance in self.held.items()):
            return "wrong"
        if self.arm == "snapshot":
            head = {row["id"]: row for row in rest[: self.snapshot_limit]}
            return "subset" if self.held == head else "wrong"
        return "subset"

    async def close(self):
        if self.socket is not None:
            await self.socket.close()
            self.socket = None


def subscribe_frame(**fields) -> dict:
    return {"type": "subscribe", "id": 1, "model": MODEL, "action": "list", **fields}


def apply_one(held, item):
    if item["action"] == "DELETED":
        held.pop(item["pk"], None)
    else:
        held[item["pk"]] = item["instance"]


def rest_list(server) -> list[dict]:
    with urllib.request.urlopen(f"{server.http_url}/api/todos/", timeout=60) as response:
        body = json.loads(response.read())
    return body["results"] if isinstance(body, dict) else body


def parse_case(text: str) -> tuple[int, int]:
    rows, _, changed = text.lower().partition("x")
    try:
        case = int(rows), int(changed)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not ROWSxCHANGED, e.g. 1000x10") from None
    if case[0] < 2 or not 0 <= case[1] <= case[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 2 rows, and at most as many changed")
    return case


# --- the changes while the clients are away -----------------------------------------------------


def plan_changes(pks, held, changed, rng, seq) -> list[dict]:
    """`changed` changes of the rows a client holds (the first `held` of `pks`, in list order):
    one create, one delete, the rest retitles, in a random order."""
    window = pks[:held]
    creates = 1 if changed >= 2 else 0
    deletes = 1 if changed >= 2 else 0
    chosen = rng.sample(window, changed - creates)
    ops = [{"op": "delete", "pk": pk} for pk in chosen[:deletes]]
    ops += [{"op": "update", "pk": pk, "title": f"row {pk} edit {seq}"} for pk in chosen[deletes:]]
    ops += [{"op": "create", "title": f"new {seq}"} for _ in range(creates)]
    rng.shuffle(ops)
    return ops


async def make_changes(writer, ops, pks, away):
    """Make `ops` spread over the time away, then wait for it to end; `pks` follows them."""
    begin = time.monotonic()
    for k, op in enumerate(ops):
        await asyncio.sleep(max(0.0, begin + away * SPREAD * k / len(ops) - time.monotonic()))
        pk = await writer.do(**op)
        if op["op"] == "create":
            pks.append(pk)
        elif op["op"] == "delete":
            pks.remove(pk)
    await asyncio.sleep(max(0.0, begin + away - time.monotonic()))


# --- one case -----------------------------------------------------------------------------------


async def run_case(server, pid, writer, rows, changed, args, rng, seq):
    pks = await writer.do(op="reset", rows=rows)
    clients = {arm: Client(arm, server) for arm in ARMS}
    samples = {arm: [] for arm in ARMS}
    try:
        for client in clients.values():
            limit = await client.setup()
        rest = await asyncio.to_thread(rest_list, server)
        for client in clients.values():
            if client.check(rest) == "wrong":
                raise RuntimeError(f"the {client.arm} client's first snapshot is not REST's list")
        for repeat in range(args.repeats):
            for client in clients.values():
                await client.go_away()
            ops = plan_changes(pks, min(len(pks), limit), changed, rng, next(seq))
            await make_changes(writer, ops, pks, args.away)
            order = ARMS if repeat % 2 == 0 else ARMS[::-1]
            for arm in order:
                before = await quiet(pid)
                sample = await clients[arm].reconnect()
                sample["server_cpu_ms"] = (await quiet(pid) - before) / TICKS * 1000
                sample["first"] = arm == order[0]
                sample["server_full_gc_ms"] = full_collections(server, *sample["window"])
                samples[arm].append(sample)
            rest = await asyncio.to_thread(rest_list, server)
            for arm, client in clients.items():
                samples[arm][-1]["state"] = client.check(rest)
                samples[arm][-1]["rest_rows"] = len(rest)
    finally:
        for client in clients.values():
            await client.close()
    row = {
        "rows": rows,
        "changed": changed,
        "repeats": args.repeats,
        "away_s": args.away,
        "snapshot_limit": limit,
        "truncated": rows > limit,
    }
    for arm in ARMS:
        row[arm] = {"summary": summary(samples[arm]), "samples": samples[arm]}
    row["ratios"] = {
        key: ratio(row["snapshot"]["summary"][key]["p50"], row["resume"]["summary"][key]["p50"])
        for key in ("payload_bytes", "wire_bytes", "seconds", "server_cpu_ms")
    }
    return row


def full_collections(server, start, end) -> list[float]:
    """The milliseconds of each of the server's full collections that overlapped [start, end]
    (bench_settings logs them: "bench-gc <monotonic start> <seconds>")."""
    found = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("bench-gc "):
            began, took = map(float, line.split()[1:3])
            if began <= end and began + took >= start:
                found.append(took * 1000)
    return found


def percentiles(values) -> dict:
    ordered = sorted(values)
    return {
        "p50": statistics.median(ordered),
        "p90": percentile(ordered, 0.9),
    }


def summary(samples) -> dict:
    keys = ("payload_bytes", "wire_bytes", "seconds", "server_cpu_ms")
    found = {key: percentiles([s[key] for s in samples]) for key in keys}
    found["states"] = dict(Counter(s["state"] for s in samples))
    found["ok"] = sum(s["state"] != "wrong" for s in samples)
    failed = [s["resume_failed"] for s in samples if s["resume_failed"]]
    found["resume_failed"] = dict(Counter(failed))
    found["late_frames"] = sum(s["late_frames"] for s in samples)
    found["met_server_gc"] = sum(bool(s["server_full_gc_ms"]) for s in samples)
    return found


def ratio(a, b):
    return a / b if b else None


async def bench(args, project, workdir):
    results, problems, compression = [], {}, {}
    rng = random.Random(args.seed)
    seq = iter(range(1, 10**9))
    for server_kind in args.server:
        env = {**project.env, "BENCH_GC_LOG": "1"}  # its full collections, to its log
        server = AppServer(project.path, project.venv, env, server_kind, workdir)
        server.start()
        writer = None
        try:
            pid, how = serving_pid(server)
            print(how, flush=True)
            compression[server_kind] = await negotiated_extensions(server)
            writer = await Writer.start(project)
            for rows, changed in args.cases:
                row = await run_case(server, pid, writer, rows, changed, args, rng, seq)
                row["server"] = server_kind
                results.append(row)
                print_row(row)
        finally:
            if writer is not None:
                await writer.stop()
            server.stop()
        problems[server_kind] = found = log_problems(server)
        if found:
            print(f"the {server_kind} log shows exceptions:\n{server.log()}", flush=True)
    return results, problems, compression


async def negotiated_extensions(server) -> str | None:
    """The Sec-WebSocket-Extensions the server answers the client's offer with (None: none)."""
    socket = await connect(server.ws_url + PATH, origin=server.http_url, open_timeout=60)
    try:
        return socket.response.headers.get("Sec-WebSocket-Extensions")
    finally:
        await socket.close()


# --- output -----------------------------------------------------------------------------------


HEADER = (
    f"{'server':7} {'rows':>5} {'changed':>7} {'arm':8} {'bytes p50':>9} {'p90':>8} "
    f"{'wire p50':>8} {'ms p50':>7} {'p90':>7} {'CPU ms':>6} {'exact':>6} {'gc':>3} "
    f"{'x bytes':>8} {'x wire':>7} {'x time':>6} {'x CPU':>6}  note"
)


def format_rows(row) -> list[str]:
    lines = []
    for arm in ARMS:
        s = row[arm]["summary"]
        ok = f"{s['ok']}/{row['repeats']}"
        if arm == "snapshot":
            r = row["ratios"]
            ratios = " ".join(
                f"{r[key]:>{width}.1f}" if r[key] is not None else f"{'-':>{width}}"
                for key, width in (
                    ("payload_bytes", 8), ("wire_bytes", 7), ("seconds", 6), ("server_cpu_ms", 6)
                )
            )  # fmt: skip
        else:
            ratios = f"{'':8} {'':7} {'':6} {'':6}"
        notes = []
        if "subset" in s["states"]:
            notes.append(f"truncated: holds {row['snapshot_limit']:,} of {row['rows']:,}")
        for reason, count in sorted(s["resume_failed"].items()):
            notes.append(f"resume_failed {reason} x{count}")
        if s["late_frames"]:
            notes.append(f"{s['late_frames']} late frames")
        lines.append(
            f"{row['server']:7} {row['rows']:>5} {row['changed']:>7} {arm:8} "
            f"{s['payload_bytes']['p50']:>9.0f} {s['payload_bytes']['p90']:>8.0f} "
            f"{s['wire_bytes']['p50']:>8.0f} {s['seconds']['p50'] * 1000:>7.1f} "
            f"{s['seconds']['p90'] * 1000:>7.1f} {s['server_cpu_ms']['p50']:>6.0f} {ok:>6} "
            f"{s['met_server_gc']:>3} "
            f"{ratios}  {'; '.join(notes)}".rstrip()
        )
    return lines


def print_row(row):
    if not getattr(print_row, "header_done", False):
        print(HEADER)
        print_row.header_done = True
    print("\n".join(format_rows(row)), flush=True)


def print_table(results):
    print(f"\n{HEADER}")
    for row in sorted(results, key=lambda r: (r["server"], r["rows"], r["changed"])):
        print("\n".join(format_rows(row)))
    print(
        "bytes: frame payload bytes received from the subscribe until exact; wire: bytes read "
        "off the socket, handshake included; ms: from opening the socket until the state is "
        "whole; CPU: the server's, per reconnect (10 ms ticks); gc: reconnects that met a full "
        "collection of the server's; x: snapshot p50 / resume p50"
    )


def minor_label(value, _):
    """2 and 5 of each decade, on a log axis."""
    return f"{value:g}" if f"{value:.0e}"[0] in "25" else ""


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    figure, (size, took) = plt.subplots(1, 2, figsize=(13, 4.6))
    rows = sorted(results, key=lambda r: (r["server"], r["rows"], r["changed"]))
    labels = [f"{r['server']}\n{r['rows']}x{r['changed']}" for r in rows]
    colours = {"resume": "tab:blue", "snapshot": "tab:orange"}
    width = 0.38
    for offset, arm in ((-width / 2, "resume"), (width / 2, "snapshot")):
        xs = [i + offset for i in range(len(rows))]
        for axis, key, scale in ((size, "payload_bytes", 1 / 1024), (took, "seconds", 1000)):
            p50 = [r[arm]["summary"][key]["p50"] * scale for r in rows]
            p90 = [r[arm]["summary"][key]["p90"] * scale for r in rows]
            axis.bar(xs, p50, width, color=colours[arm], label=f"{arm} (p50, p90 whisker)")
            above = [high - low for low, high in zip(p50, p90, strict=True)]
            axis.errorbar(xs, p50, yerr=[[0] * len(p50), above], fmt="none", ecolor="black",
                          capsize=3, linewidth=0.8)  # fmt: skip
    for axis, ylabel, title in (
        (size, "KiB received until exact", "Bytes to be exact again"),
        (took, "ms from socket open until exact", "Time to be exact again"),
    ):
        axis.set_xticks(range(len(rows)), labels, fontsize=7)
        axis.set(yscale="log", ylabel=ylabel, title=f"{title} (rows x changed while away)")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(FuncFormatter(minor_label))
        axis.set_ylim(top=axis.get_ylim()[1] * 2.5)  # room for the legend
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server", nargs="+", choices=["daphne", "uvicorn"], default=["daphne", "uvicorn"]
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        type=parse_case,
        default=[parse_case(case) for case in DEFAULT_CASES],
        metavar="ROWSxCHANGED",
        help=f"list sizes and the rows changed while away (default: {' '.join(DEFAULT_CASES)})",
    )
    parser.add_argument("--repeats", type=int, default=10, help="reconnects per arm and case")
    parser.add_argument("--away", type=float, default=10.0, help="seconds each client is away")
    parser.add_argument("--seed", type=int, default=1, help="of the rows chosen to change")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.away < 0:
        parser.error("--repeats must be at least 1 and --away at least 0")

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="rest-live-resume-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the atexit hooks
    path, venv = bench_project.bake(workdir, args.venv)
    bench_project.copy_in(path, "bench_resume_writer.py")
    with PostgresServer() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, "pubsub")
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        project.manage("migrate", "--noinput")
        results, problems, compression = asyncio.run(bench(args, project, workdir))
    print_table(results)
    took = time.monotonic() - started
    print(f"\ntotal {took:.0f} s on {os.cpu_count()} cores; extensions negotiated: {compression}")
    report = {
        "cores": os.cpu_count(),
        "server": args.server,
        "cases": [f"{rows}x{changed}" for rows, changed in args.cases],
        "repeats": args.repeats,
        "away_s": args.away,
        "seed": args.seed,
        "took_s": took,
        "extensions": compression,
        "results": results,
        "server_log_problems": problems,
    }
    drawn = None if args.no_plot else lambda figure: plot(results, figure)
    write_report(args.out, "resume", argv, report, drawn)


if __name__ == "__main__":
    main()
