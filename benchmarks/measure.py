"""Measuring a served process, and summing up what was measured.

The process that holds the sockets, its memory (VmRSS) and CPU time (/proc/<pid>/stat), when it
has gone quiet, the exceptions its log shows, the statements it sent PostgreSQL; and the
percentiles of a run's latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from pathlib import Path

from harness.appserver import LOG_PROBLEMS, AppServer
from harness.services import PostgresServer

TICKS = os.sysconf("SC_CLK_TCK")
QUIET_DEADLINE = 120.0  # for the server to finish what the writes gave it
QUIET_WINDOW = 0.15  # seconds; the CPU time must stand still (<= one tick) for two of them


# --- the server process -----------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def serving_pid(server: AppServer) -> tuple[int, str]:
    """The process that holds the sockets: the one started, unless it forked a worker."""
    pid = server.process.pid
    kids = children(pid)
    if not kids:
        return pid, f"{server.server} runs in the process started ({pid}); it forked nothing"
    worker = max(kids, key=rss_kb)
    return worker, f"{server.server} ({pid}) forked {kids}; measuring {worker}"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of process `pid` (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat


async def quiet(pid: int) -> int:
    """Once the server's CPU time stands still (within a tick) for two windows in a row: it has
    finished what the writes gave it. Its CPU ticks then."""
    deadline = time.monotonic() + QUIET_DEADLINE
    last, still = cpu_ticks(pid), 0
    while still < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server was still busy after {QUIET_DEADLINE:.0f}s")
        await asyncio.sleep(QUIET_WINDOW)
        now = cpu_ticks(pid)
        still = still + 1 if now - last <= 1 else 0
        last = now
    return last


def log_problems(server) -> list[str]:
    """The lines of the server's log that show an exception."""
    text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    return [line for line in text.splitlines() if any(m in line for m in LOG_PROBLEMS)]


class LoggingPostgres(PostgresServer):
    """PostgreSQL that logs every statement with its application name, to count queries."""

    def _command(self):
        return [*super()._command(), "-c", "log_statement=all", "-c", "log_line_prefix=%a|"]

    def statements_by(self, application: str) -> int:
        return self.log_path.read_text(errors="replace").count(f"\n{application}|LOG:  statement:")


# --- the numbers ------------------------------------------------------------------------------


def percentile(ordered, fraction):
    """The value of rank round(fraction x N), from 1, of the N sorted values `ordered`: the
    first for a small fraction, the last for a fraction above 1."""
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summarize(latencies):
    """(p50, p95, p99) of `latencies`."""
    ordered = sorted(latencies)
    return statistics.median(ordered), percentile(ordered, 0.95), percentile(ordered, 0.99)
