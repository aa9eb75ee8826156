"""CPython's full garbage collections, run between changes rather than in the middle of one.

CPython collects its oldest generation by itself once enough objects have been promoted into it.
In a server holding a thousand sockets that collection scans a few hundred thousand objects and
stops the process for 100 to 200 ms, and it starts wherever the allocations cross the line,
which is mostly during a change's fan-out, where the allocations are: at 1,000 distinct
subscriptions (benchmarks/distinct.py) one write in ten reached its subscriber 130 to 200 ms
late. While a hub runs, the process's automatic full collections are off, and the hub runs one
when no change is being handed out, by CPython's own rule (enough young collections since the
last full one, and the oldest generation grown by a quarter), so that the garbage of sockets
that come and go is collected about as often as CPython would. A hub that stays busy collects
anyway, `LATEST_SECONDS` late.

Young collections are untouched. A process that turned the collector off, or on Python 3.14 and
later (an incremental collector, with other thresholds), is left as it is.
"""

import asyncio
import gc
import sys
import time

CHECK_SECONDS = 0.5  # how often the collector looks whether a collection is due
IDLE_CHECK_SECONDS = 0.02  # then, how often it looks at the hub until it is idle
LATEST_SECONDS = 5.0  # a collection that is due waits at most this long for an idle hub
GROWTH = 0.25  # as CPython: due once the oldest generation grew by a quarter
LOOK_SPACING = 100  # counting the oldest generation took t seconds: the next count, 100 t later

_NEVER = 2**30
_running = 0  # hubs running a collector in this process
_thresholds = None  # the process's own, restored when the last hub stops
_smallest = None  # objects in the oldest generation, the fewest counted since the last collection
_next_look = 0.0  # time.monotonic() before which the oldest generation is not counted again


async def collect_between_changes(idle):
    """Until cancelled, run the full collections, each when `idle()` is true or overdue."""
    if not _take_over():
        return
    try:
        while True:
            if _due():
                deadline = time.monotonic() + LATEST_SECONDS
                while not idle() and time.monotonic() < deadline:
                    await asyncio.sleep(IDLE_CHECK_SECONDS)
                _collect()
            await asyncio.sleep(CHECK_SECONDS)
    finally:
        _hand_back()


def _due():
    """As CPython decides: enough middle-generation collections since the last full one (cheap
    to read), and the oldest generation a quarter larger than it has been since (a count of it,
    made at most a hundredth of the time: 15 ms for 400,000 objects). From its smallest, not from
    its size after the last collection: when sockets close their objects leave it, and the
    garbage that sockets coming and going leave behind is growth from there."""
    global _next_look, _smallest
    if gc.get_count()[2] <= _thresholds[2] or time.monotonic() < _next_look:
        return False
    started = time.monotonic()
    size = len(gc.get_objects(2))
    _next_look = time.monotonic() + LOOK_SPACING * (time.monotonic() - started)
    if _smallest is not None and size <= _smallest * (1 + GROWTH):
        _smallest = min(_smallest, size)
        return False
    return True


def _collect():
    global _smallest
    gc.collect()
    _smallest = len(gc.get_objects(2))


def _take_over():
    global _running, _thresholds
    if sys.version_info >= (3, 14) or not gc.isenabled():
        return False
    if _running == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_thresholds[0], _thresholds[1], _NEVER)
    _running += 1
    return True


def _hand_back():
    global _running
    _running -= 1
    if _running == 0:
        # A process whose sockets come and go starts and stops its hub again and again: the
        # measure outlives each hub, and one stopping (nothing is handed out) collects if due.
        if _due():
            _collect()
        gc.set_threshold(*_thresholds)
