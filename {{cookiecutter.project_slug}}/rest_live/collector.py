"""CPython's full garbage collections, run between changes rather than in the middle of one.

CPython collects its oldest generation by itself once enough objects have been promoted into it.
In a server holding a thousand sockets that collection scans a few hundred thousand objects and
stops the process for 100 to 200 ms, and it starts wherever the allocations cross the line,
which is mostly during a change's fan-out, where the allocations are: at 1,000 distinct
subscriptions (benchmarks/distinct.py) one write in ten reached its subscriber 130 to 200 ms
late. While a hub runs, the process's automatic full collections are off, and the hub runs one
when no change is being handed out: once CPython would consider one (enough young collections
since the last), and no sooner after the last than `SPACING` times as long as it took, so that
full collections take at most a fiftieth of the time however large the heap grows (CPython's own
measure, the growth of the oldest generation, costs a scan of it to read). A hub that stays busy
collects anyway, `LATEST_SECONDS` late.

Young collections are untouched. A process that turned the collector off, or on Python 3.14 and
later (an incremental collector, with other thresholds), is left as it is.
"""

import asyncio
import gc
import sys

CHECK_SECONDS = 0.5  # how often the collector looks whether a collection is due
IDLE_CHECK_SECONDS = 0.02  # then, how often it looks at the hub until it is idle
LATEST_SECONDS = 5.0  # a collection that is due waits at most this long for an idle hub
SPACING = 50  # a collection that took t seconds is followed by none for SPACING * t

_NEVER = 2**30
_running = 0  # hubs running a collector in this process
_thresholds = None  # the process's own, restored when the last hub stops


async def collect_between_changes(idle):
    """Until cancelled, run the full collections, each when `idle()` is true or overdue."""
    if not _take_over():
        return
    loop = asyncio.get_running_loop()
    try:
        not_before = loop.time()
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            if gc.get_count()[2] <= _thresholds[2] or loop.time() < not_before:
                continue
            deadline = loop.time() + LATEST_SECONDS
            while not idle() and loop.time() < deadline:
                await asyncio.sleep(IDLE_CHECK_SECONDS)
            started = loop.time()
            gc.collect()
            not_before = loop.time() + SPACING * (loop.time() - started)
    finally:
        _hand_back()


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
        gc.set_threshold(*_thresholds)
