"""Hostile clients: whether one client that makes the server work hard costs everyone else.

One server process (Daphne, then Uvicorn) serves a `production` bake (PostgreSQL, Redis pub/sub
layer, DEBUG off). The victims are V anonymous sockets from 127.0.0.1 (default 100), each
subscribed to the todos list with `query_params: {"search": "victim"}`, `snapshot: true` and
`ack: true` (all the same subscription), each building its state from its frames alone: the
snapshot, then CREATED/UPDATED upserted by `instance["id"]`, DELETED removed. Another process
retitles one of the ten `victim` todos twice a second (W writes, default 40: 20 s; the title
keeps "victim" and carries a sequence number), and reports the monotonic time just before each
`save()`. A victim's latency for a write runs from then until a frame shows that title (or a
later one of the same todo). Meanwhile, in each scenario, an attacker of its own process does:

- `none`: nothing (the baseline);
- `distinct`: 10 anonymous sockets from 127.0.0.2, each sending 100 subscribes to the todos list,
  each with a search word of its own, at once (the socket's burst), then staying under its
  20 frames/s by replacing one subscription with a new one (unsubscribe, subscribe) at 18
  frames/s: every write is evaluated for 1,000 distinct subscriptions;
- `snapshots`: 5 sockets from 127.0.0.3, each alternating subscribe with `snapshot: true` to the
  plain todos list (1,011 rows: a truncated snapshot of 1,000) and unsubscribe, 19 frames/s in
  all, reading what comes back;
- `connects`: 10 sockets from 127.0.0.4 that connect and close again, at once, in a loop: what
  the other attacks' reconnecting costs by itself, which no setting of rest_live's bounds (a
  proxy in front limits connections per address).

Attackers whose socket is closed reconnect at once (or `--reconnect-after` seconds later) and
start again; their closes are counted by code, and connects that fail as refusals. Each attack
has an address of its own (Linux routes all of 127/8 to loopback), so the server sees it as a
client other than the victims, and an attack does not inherit what the one before it owes a
per-client budget on the same process; the script checks the server's end of their connections
(/proc/net/tcp).

Each server runs twice, as a fresh process: `bounds`, the shipped per-client work budget
(`REST_LIVE_EVALUATIONS_PER_SECOND`, `REST_LIVE_SNAPSHOT_ROWS_PER_SECOND`: a client over one has
its socket closed with 4013, and its new sockets too until its allowance refills), and
`unbounded`, which sets both to None (one settings module in the bake, over the benchmarks'
own, which turn the budget off; the values rest_live reads are checked and kept in the JSON). A
template without those settings runs the same in both.

On each process the scenarios run in order, none, distinct, snapshots, each on a quiet server
(its CPU time standing still, within a clock tick, for two windows of 0.15 s): the victims
connect and get their snapshots, the attack starts and runs ~3 s, the W writes are made with the
attack going on, every write is awaited at every victim (lost: not within 60 s), and the attack
stops. Per row:

- server CPU %: the serving process's user + system time (/proc/<pid>/stat) over the write
  window, as a share of one core;
- the victims' p50 and p99 latency over all (victim, write) pairs, and the pairs lost;
- whether every victim's state equals the REST list (`GET /api/todos/?search=victim`, as sets of
  (id, title)) at the end, and how many victims the server closed (it should close none);
- the attack: connects, closes by code, refused connects, frames sent, subscribes acknowledged,
  errors by code, snapshots and their rows.

    python -m benchmarks.hostile       # both servers and configurations, 3 scenarios, 40 writes
    python -m benchmarks.hostile --server uvicorn --writes 6 --victims 20
    python -m benchmarks.hostile --config unbounded --scenario none snapshots --no-plot
    python -m benchmarks.hostile --server uvicorn --config bounds --reconnect-after 1

Prints a table, with each scenario's p50 over its server and configuration's `none` p50 (the
goal: at most 1.5 with `bounds`), and writes benchmarks/results/hostile.json and hostile.png.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import string
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks import bench_project
from benchmarks.measure import TICKS, cpu_ticks, log_problems, quiet, serving_pid, summarize
from harness import baking
from harness.appserver import AppServer
from harness.combos import TEMPLATE_DIR
from harness.results import RESULTS_DIR, write_report
from harness.services import PostgresServer, RedisServer, die_with_parent

PATH = "/ws/subscribe/"
SCENARIOS = ("none", "distinct", "snapshots", "connects")
CONFIGS = ("bounds", "unbounded")
VICTIM_ADDRESS = "127.0.0.1"
ATTACKER_ADDRESSES = {"distinct": "127.0.0.2", "snapshots": "127.0.0.3", "connects": "127.0.0.4"}
ATTACK_SOCKETS = {"distinct": 10, "snapshots": 5, "connects": 10}
DISTINCT_SUBSCRIPTIONS = 100  # per socket: the most one socket may hold, sent as its burst
DISTINCT_RATE = 18.0  # frames/s per socket after the burst (the limit is 20)
SNAPSHOT_RATE = 19.0  # frames/s per socket, subscribes and unsubscribes alternating
VICTIM_TODOS = 10
BULK_TODOS = 1001
WRITE_RATE = 2.0  # writes per second
ATTACK_LEAD = 3.0  # seconds the attack runs before the first write
WRITE_DEADLINE = 60.0  # for every write to reach every victim, after the last write
SETUP_DEADLINE = 120.0  # for the victims to connect and subscribe, an attack to start or stop
STATE_DEADLINE = 30.0  # for every victim's state to equal the REST list

BUDGET_SETTINGS = ("EVALUATIONS_PER_SECOND", "SNAPSHOT_ROWS_PER_SECOND")


def budget_settings(project, env) -> dict:
    """The budget settings a server with `env` runs with, as rest_live reads them."""
    script = bench_project.program("hostile_probe.py")
    names = {"NAMES": ",".join(BUDGET_SETTINGS)}
    out = project.manage("shell", "-v", "0", "-c", script, env_overrides={**env, **names})
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(project) -> list[int]:
    """Migrate and make the todos; the victims' todos' pks."""
    project.manage("migrate", "--noinput")
    script = bench_project.program("hostile_prepare.py")
    counts = {"BULK": str(BULK_TODOS), "VICTIMS": str(VICTIM_TODOS)}
    out = project.manage("shell", "-v", "0", "-c", script, env_overrides=counts, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def victim_title(k: int, seq: int) -> str:
    return f"victim {k:02d} w{seq}"


def title_seq(title) -> int | None:
    try:
        return int(title.rsplit(" w", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


# --- the victims --------------------------------------------------------------------------------


@dataclass
class Write:
    pk: int
    seq: int
    started: float | None = None  # monotonic, just before save(), as the writer reports it
    arrivals: dict = field(default_factory=dict)  # victim index -> monotonic time


class Victims:
    """V sockets on the same subscription; each one's state, built from its frames alone."""

    def __init__(self, sockets):
        self.sockets = sockets
        self.states = [{} for _ in sockets]  # per victim: todo id -> title
        self.writes: dict[int, list[Write]] = {}  # todo pk -> its writes, in order
        self.pending = 0  # (victim, write) pairs not arrived yet
        self.changed = asyncio.Event()
        self.closed = {}  # victim index -> close code, for sockets the server closed
        self.odd = Counter()  # frames a victim did not expect
        self.tasks = [asyncio.ensure_future(self._listen(i)) for i in range(len(sockets))]

    @classmethod
    async def open(cls, server, n):
        semaphore = asyncio.Semaphore(50)
        subscribe = json.dumps(
            {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list",
             "query_params": {"search": "victim"}, "snapshot": True, "ack": True}
        )  # fmt: skip

        async def one(i):
            async with semaphore:
                socket = await connect(
                    server.ws_url + PATH,
                    origin=server.http_url,
                    open_timeout=60,
                    max_queue=None,
                    local_addr=(VICTIM_ADDRESS, 0),
                )
                try:
                    await socket.send(subscribe)
                    snapshot = json.loads(await asyncio.wait_for(socket.recv(), SETUP_DEADLINE))
                    ack = json.loads(await asyncio.wait_for(socket.recv(), SETUP_DEADLINE))
                    if snapshot.get("type") != "snapshot" or ack != {"type": "subscribed", "id": 1}:
                        raise RuntimeError(f"victim {i} was answered {snapshot!r:.300} {ack}")
                except BaseException:
                    await socket.close()
                    raise
                return socket, snapshot

        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            opened = [r[0] for r in results if not isinstance(r, BaseException)]
            await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
            raise RuntimeError(f"{len(failures)} of {n} victims failed: {failures[0]!r}")
        victims = cls([socket for socket, _ in results])
        for state, (_, snapshot) in zip(victims.states, results, strict=True):
            state.update((row["id"], row["title"]) for row in snapshot["instances"])
        return victims

    def expect(self, pk, seq) -> Write:
        write = Write(pk, seq)
        self.writes.setdefault(pk, []).append(write)
        self.pending += len(self.sockets)
        return write

    async def _listen(self, index):
        socket = self.sockets[index]
        try:
            async for raw in socket:
                self._take(index, json.loads(raw), time.monotonic())
        except ConnectionClosed:
            pass
        if socket.close_code is not None:
            self.closed[index] = socket.close_code
        self.changed.set()

    def _take(self, index, frame, now):
        state = self.states[index]
        if frame.get("type") != "broadcast" or frame.get("id") != 1:
            self.odd[frame.get("type")] += 1
            return
        instance = frame.get("instance") or {}
        if frame.get("action") == "DELETED":
            state.pop(instance.get("id"), None)
        else:
            state[instance["id"]] = instance.get("title")
        seq = title_seq(instance.get("title"))
        if seq is None:
            return
        # A frame shows the todo as it is when evaluated: it delivers this write and earlier ones.
        for write in self.writes.get(instance["id"], ()):
            if write.seq <= seq and index not in write.arrivals:
                write.arrivals[index] = now
                self.pending -= 1
        self.changed.set()

    async def delivered(self, deadline: float) -> None:
        """Until every write reached every victim, or the deadline (monotonic)."""
        while self.pending and time.monotonic() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.0, deadline - time.monotonic()))

    async def agree_with(self, server) -> tuple[int, list]:
        """(how many victims' states equal the REST list, once they do or at the deadline;
        samples of what differs)."""
        deadline = time.monotonic() + STATE_DEADLINE
        while True:
            rest = await asyncio.to_thread(rest_list, server)
            wrong = [i for i, state in enumerate(self.states) if set(state.items()) != rest]
            if not wrong or time.monotonic() > deadline:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.5)
        samples = [
            {"victim": i, "missing": sorted(rest - set(self.states[i].items()))[:3],
             "extra": sorted(set(self.states[i].items()) - rest)[:3]}
            for i in wrong[:3]
        ]  # fmt: skip
        return len(self.states) - len(wrong), samples

    def latencies(self) -> tuple[list[float], int, int]:
        """(every (victim, write) latency, pairs lost, writes lost to at least one victim)."""
        found, lost_pairs, lost_writes = [], 0, 0
        for writes in self.writes.values():
            for write in writes:
                found += [at - write.started for at in write.arrivals.values()]
                missing = len(self.sockets) - len(write.arrivals)
                lost_pairs += missing
                lost_writes += missing > 0
        return found, lost_pairs, lost_writes

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)


def rest_list(server) -> set:
    with urllib.request.urlopen(f"{server.http_url}/api/todos/?search=victim", timeout=30) as r:
        body = json.loads(r.read())
    rows = body["results"] if isinstance(body, dict) else body
    return {(row["id"], row["title"]) for row in rows}


# --- the attackers: a process of their own, so their work does not slow the victims' clock -----


@dataclass
class AttackStats:
    connects: int = 0
    refused: Counter = field(default_factory=Counter)  # exception type -> failed connects
    closes: Counter = field(default_factory=Counter)  # close code -> sockets the server closed
    frames_sent: int = 0
    subscribed: int = 0
    errors: Counter = field(default_factory=Counter)  # error code -> error frames
    snapshots: int = 0
    snapshot_rows: int = 0
    truncated: int = 0
    local_addresses: set = field(default_factory=set)


class Attack:
    """One scenario's sockets, each reconnecting at once whenever it is closed."""

    def __init__(self, scenario, ws_url, origin, reconnect_after):
        self.scenario, self.url, self.origin = scenario, ws_url + PATH, origin
        self.reconnect_after = reconnect_after
        self.address = ATTACKER_ADDRESSES[scenario]
        self.stats = AttackStats()
        self.first_rounds = asyncio.Semaphore(0)  # released once per socket's first round
        self.stopping = False

    async def run_socket(self, number):
        first_round = False

        def first_round_done():
            nonlocal first_round
            if not first_round:
                first_round = True
                self.first_rounds.release()

        while not self.stopping:
            try:
                socket = await connect(
                    self.url, origin=self.origin, open_timeout=30, max_queue=None,
                    local_addr=(self.address, 0),
                )  # fmt: skip
            except Exception as error:  # refused: an HTTP status, a reset, a timeout
                self.stats.refused[type(error).__name__] += 1
                first_round_done()
                await asyncio.sleep(0)
                continue
            self.stats.connects += 1
            self.stats.local_addresses.add(socket.local_address[0])
            round_done = asyncio.Event()
            if self.scenario == "connects":
                await socket.close()  # and again: what reconnecting costs by itself
                first_round_done()
                await asyncio.sleep(self.reconnect_after)
                continue
            reader = asyncio.ensure_future(self._read(socket, round_done, first_round_done))
            try:
                if self.scenario == "distinct":
                    await self._distinct(socket, number, round_done)
                else:
                    await self._snapshots(socket)
            except ConnectionClosed:
                pass
            await asyncio.gather(reader, return_exceptions=True)
            if not self.stopping:
                self.stats.closes[str(socket.close_code)] += 1
                await asyncio.sleep(self.reconnect_after)

    async def _send(self, socket, frame):
        await socket.send(json.dumps(frame))
        self.stats.frames_sent += 1

    async def _distinct(self, socket, number, round_done):
        def subscribe(sid):
            word = f"q{number:02d}" + "".join(random.choices(string.ascii_lowercase, k=10))
            return {"type": "subscribe", "id": sid, "model": "todos.Todo", "action": "list",
                    "query_params": {"search": word}, "ack": True}  # fmt: skip

        for sid in range(1, DISTINCT_SUBSCRIPTIONS + 1):  # the socket's burst
            await self._send(socket, subscribe(sid))
        # Once they are answered (or the socket closed), under the rate limit: replace the
        # oldest subscription with a new one, so that the socket always holds 100.
        await round_done.wait()
        begin, sent, sid = time.monotonic(), 0, DISTINCT_SUBSCRIPTIONS
        while not self.stopping and socket.close_code is None:
            sid += 1
            for frame in ({"type": "unsubscribe", "id": sid - DISTINCT_SUBSCRIPTIONS},
                          subscribe(sid)):  # fmt: skip
                sent += 1
                await asyncio.sleep(max(0.0, begin + sent / DISTINCT_RATE - time.monotonic()))
                await self._send(socket, frame)

    async def _snapshots(self, socket):
        subscribe = {"type": "subscribe", "model": "todos.Todo", "action": "list",
                     "snapshot": True}  # fmt: skip
        begin, sent, sid = time.monotonic(), 0, 0
        while not self.stopping:
            sid += 1
            for frame in ({**subscribe, "id": sid}, {"type": "unsubscribe", "id": sid}):
                await asyncio.sleep(max(0.0, begin + sent / SNAPSHOT_RATE - time.monotonic()))
                sent += 1
                await self._send(socket, frame)

    async def _read(self, socket, round_done, first_round_done):
        """Count what comes back. A round is done once the distinct attack's 100 subscribes
        are answered, or the snapshot attack's first snapshot came, or the socket closed."""
        answered = 0
        try:
            async for raw in socket:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "subscribed":
                    self.stats.subscribed += 1
                    answered += 1
                elif kind == "error":
                    self.stats.errors[str(frame.get("code"))] += 1
                    answered += 1
                elif kind == "snapshot":
                    self.stats.snapshots += 1
                    self.stats.snapshot_rows += len(frame.get("instances", ()))
                    self.stats.truncated += bool(frame.get("truncated"))
                    answered = DISTINCT_SUBSCRIPTIONS
                if answered >= DISTINCT_SUBSCRIPTIONS and not round_done.is_set():
                    round_done.set()
                    first_round_done()
        except ConnectionClosed:
            pass
        round_done.set()
        first_round_done()

    async def main(self):
        """Start, print "ready" once every socket did its first round (or failed it), run until
        a line (or EOF) on stdin, then print the stats."""
        count = ATTACK_SOCKETS[self.scenario]
        tasks = [asyncio.ensure_future(self.run_socket(i)) for i in range(count)]
        began = time.monotonic()
        for _ in range(count):
            await asyncio.wait_for(self.first_rounds.acquire(), SETUP_DEADLINE)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        self.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stats = {**vars(self.stats), "local_addresses": sorted(self.stats.local_addresses)}
        stats["seconds"] = time.monotonic() - began
        print(json.dumps({"scenario": self.scenario, "sockets": count, **stats}), flush=True)


def attacker_main(argv):
    scenario, ws_url, origin, reconnect_after = argv
    asyncio.run(Attack(scenario, ws_url, origin, float(reconnect_after)).main())


_children = set()  # attacker processes still running, killed at exit


@atexit.register
def _kill_children():
    for process in list(_children):
        with contextlib.suppress(ProcessLookupError):
            process.kill()


class Attacker:
    """The attack's process, seen from the benchmark."""

    def __init__(self, process):
        self.process = process

    @classmethod
    async def start(cls, scenario, server, reconnect_after):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.hostile", "--attacker", scenario,
            server.ws_url, server.http_url, str(reconnect_after), cwd=TEMPLATE_DIR,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        _children.add(process)
        line = await asyncio.wait_for(process.stdout.readline(), SETUP_DEADLINE + 10)
        if line.strip() != b"ready":
            process.kill()
            raise RuntimeError(f"the {scenario} attack did not start: {line!r}")
        return cls(process)

    async def stop(self) -> dict:
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), SETUP_DEADLINE)
        await asyncio.wait_for(self.process.wait(), SETUP_DEADLINE)
        _children.discard(self.process)
        return json.loads(line)


def server_peers(port: int, address: str) -> int:
    """Established connections to the server's `port` whose other end is `address`, as the
    kernel gives them to the server (/proc/net/tcp, IPv4, little-endian hex)."""
    local_port = f"{port:04X}"
    remote = "".join(f"{int(part):02X}" for part in reversed(address.split(".")))
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        (_, lport), (raddr, _), state = fields[1].split(":"), fields[2].split(":"), fields[3]
        count += state == "01" and lport == local_port and raddr == remote
    return count


# --- one scenario ---------------------------------------------------------------------------


async def run_scenario(server, pid, writer, victim_pks, scenario, args, seq):
    await quiet(pid)
    victims = await Victims.open(server, args.victims)
    attacker, attack, peers = None, None, None
    try:
        if scenario != "none":
            attacker = await Attacker.start(scenario, server, args.reconnect_after)
            await asyncio.sleep(ATTACK_LEAD)  # the attack's own pace: it runs this long first
            peers = server_peers(server.port, ATTACKER_ADDRESSES[scenario])
        begin = time.monotonic()
        ticks_before = cpu_ticks(pid)
        attacker_ticks = None if attacker is None else cpu_ticks(attacker.process.pid)
        for k in range(args.writes):
            await asyncio.sleep(max(0.0, begin + k / WRITE_RATE - time.monotonic()))
            number = next(seq)
            pk = victim_pks[number % len(victim_pks)]
            write = victims.expect(pk, number)
            write.started = await writer.write(pk, victim_title(number % len(victim_pks), number))
        await asyncio.sleep(max(0.0, begin + args.writes / WRITE_RATE - time.monotonic()))
        window = time.monotonic() - begin
        cpu_percent = (cpu_ticks(pid) - ticks_before) / TICKS / window * 100
        if attacker is not None:  # on the same cores: what the attack itself took of them
            attacker_ticks = cpu_ticks(attacker.process.pid) - attacker_ticks
        await victims.delivered(time.monotonic() + WRITE_DEADLINE)
        if attacker is not None:
            attack = await attacker.stop()
            attacker = None
        agreeing, disagreements = await victims.agree_with(server)
        latencies, lost_pairs, lost_writes = victims.latencies()
        p50 = p99 = None
        if latencies:
            p50, _, p99 = summarize(latencies)
        return {
            "scenario": scenario,
            "victims": len(victims.sockets),
            "writes": args.writes,
            "window_s": window,
            "cpu_percent": cpu_percent,
            "p50": p50,
            "p99": p99,
            "lost_pairs": lost_pairs,
            "lost_writes": lost_writes,
            "victims_agreeing": agreeing,
            "state_ok": agreeing == len(victims.sockets),
            "state_samples": disagreements,
            "victims_closed": dict(Counter(str(code) for code in victims.closed.values())),
            "victim_odd_frames": dict(victims.odd),
            "attacker_connections_seen_by_server": peers,
            "attacker_cpu_percent": None
            if attacker_ticks is None
            else attacker_ticks / TICKS / window * 100,
            "attack": attack,
        }
    finally:
        if attacker is not None:
            with contextlib.suppress(Exception):
                await attacker.stop()
        await victims.close()


async def bench(args, project, victim_pks, workdir):
    results, problems = [], {}
    seq = iter(range(1, 10**9))
    for server_kind in args.server:
        for config in args.config:
            env = {
                **project.env,
                "DJANGO_SETTINGS_MODULE": "bench_hostile_settings",
                "BENCH_BUDGET": config,
            }
            budgets = budget_settings(project, env)
            print(f"{server_kind} {config}: {budgets}", flush=True)
            server = AppServer(project.path, project.venv, env, server_kind, workdir)
            server.start()
            writer = None
            try:
                pid, how = serving_pid(server)
                print(f"{config}: {how}", flush=True)
                writer = await bench_project.TitleWriter.start(project)
                for scenario in args.scenario:
                    row = await run_scenario(server, pid, writer, victim_pks, scenario, args, seq)
                    row.update(server=server_kind, config=config, budget_settings=budgets)
                    results.append(row)
                    print_row(row, results)
            finally:
                if writer is not None:
                    await writer.stop()
                server.stop()
            problems[f"{server_kind} {config}"] = found = log_problems(server)
            if found:
                print(f"the {server_kind} log ({config}) shows exceptions:\n{server.log()}")
    return results, problems


# --- output -----------------------------------------------------------------------------------


HEADER = (
    f"{'server':7} {'config':9} {'scenario':9} {'CPU %':>5} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'x none':>6} {'lost':>4} {'state':>5} {'v.closed':>8}  attack: closes / refused / rows"
)


def baseline(row, results):
    for other in results:
        if (other["server"], other["config"], other["scenario"]) == (
            row["server"], row["config"], "none"
        ):  # fmt: skip
            return other["p50"]
    return None


def format_row(row, results):
    def ms(value):
        return f"{value * 1000:>7.0f}" if value is not None else f"{'-':>7}"

    base = baseline(row, results)
    ratio = f"{row['p50'] / base:>6.2f}" if base and row["p50"] is not None else f"{'-':>6}"
    attack = row["attack"]
    if attack is None:
        what = "-"
    else:
        closes = ",".join(f"{code}:{n}" for code, n in sorted(attack["closes"].items())) or "0"
        refused = sum(attack["refused"].values())
        what = f"{closes} / {refused} / {attack['snapshot_rows']}"
    state = "ok" if row["state_ok"] else f"{row['victims_agreeing']}/{row['victims']}"
    closed = sum(row["victims_closed"].values())
    return (
        f"{row['server']:7} {row['config']:9} {row['scenario']:9} {row['cpu_percent']:>5.0f} "
        f"{ms(row['p50'])} {ms(row['p99'])} {ratio} {row['lost_pairs']:>4} {state:>5} "
        f"{closed:>8}  {what}"
    )


def print_row(row, results):
    if not getattr(print_row, "header_done", False):
        print(HEADER)
        print_row.header_done = True
    print(format_row(row, results), flush=True)


def print_table(results):
    print(f"\n{HEADER}")
    for row in results:
        print(format_row(row, results))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = sorted({row["server"] for row in results})
    figure, axes = plt.subplots(1, len(servers), figsize=(6.5 * len(servers), 4.4), squeeze=False)
    colours = {"bounds": "tab:blue", "unbounded": "tab:red"}
    for axis, server in zip(axes[0], servers, strict=True):
        rows = [row for row in results if row["server"] == server]
        scenarios = [s for s in SCENARIOS if any(row["scenario"] == s for row in rows)]
        configs = [c for c in CONFIGS if any(row["config"] == c for row in rows)]
        width = 0.8 / (2 * len(configs))
        bar = 0
        for config in configs:
            by_scenario = {row["scenario"]: row for row in rows if row["config"] == config}
            for key, alpha in (("p50", 1.0), ("p99", 0.45)):
                xs = [i - 0.4 + (bar + 0.5) * width for i in range(len(scenarios))]
                ys = [(by_scenario.get(s) or {}).get(key) or 0 for s in scenarios]
                axis.bar(xs, [y * 1000 for y in ys], width, color=colours.get(config),
                         alpha=alpha, label=f"{config} {key}")  # fmt: skip
                bar += 1
            base = (by_scenario.get("none") or {}).get("p50")
            if base and config == "bounds":
                axis.axhline(
                    base * 1500, color="grey", linestyle=":", label="1.5 x bounds none p50"
                )
        axis.set_xticks(range(len(scenarios)), scenarios)
        axis.set(yscale="log", ylabel="victims' latency per write (ms)",
                 title=f"{server}: victims' p50 / p99 beside a hostile client")  # fmt: skip
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--attacker"]:
        return attacker_main(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server", nargs="+", choices=["daphne", "uvicorn"], default=["daphne", "uvicorn"]
    )
    parser.add_argument("--config", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--writes", type=int, default=40, help="writes, 2 a second")
    parser.add_argument("--victims", type=int, default=100, help="victim sockets")
    parser.add_argument(
        "--reconnect-after",
        type=float,
        default=0.0,
        help="seconds an attacking socket waits after a close before it connects again "
        "(0: at once)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)
    # Scenarios always run in this order on a server process.
    args.scenario = [s for s in SCENARIOS if s in args.scenario]

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="rest-live-hostile-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the atexit hooks
    path, venv = bench_project.bake(workdir, args.venv)
    bench_project.copy_in(path, "bench_hostile_settings.py")
    with PostgresServer() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, "pubsub")
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        victim_pks = prepare(project)
        results, problems = asyncio.run(bench(args, project, victim_pks, workdir))
    print_table(results)
    took = time.monotonic() - started
    print(f"\ntotal {took:.0f} s on {os.cpu_count()} cores")
    report = {
        "cores": os.cpu_count(),
        "server": args.server,
        "config": args.config,
        "scenario": args.scenario,
        "writes": args.writes,
        "write_rate": WRITE_RATE,
        "victims": args.victims,
        "took_s": took,
        "results": results,
        "server_log_problems": problems,
    }
    drawn = None if args.no_plot else lambda figure: plot(results, figure)
    write_report(args.out, "hostile", argv, report, drawn)


if __name__ == "__main__":
    main()
