"""CPython's full garbage collections, run between changes rather than in the middle of one.

CPython collects its oldest generation by itself once enough objects have been promoted into it.
In a server holding a thousand sockets that collection scans a few hundred thousand objects and
stops the process for 100 to 200 ms, and it starts wherever the allocations cross the line,
which is mostly during a change's fan-out, where the allocations are: at 1,000 distinct
subscriptions (benchmarks/distinct.py) one write in ten reached its subscriber 130 to 200 ms
late. While a hub runs, the process's automatic full collections are off, and the hub runs one
when no change is being handed out. A hub that stays busy collects anyway, `LATEST_SECONDS`
late.

What survives a full collection is frozen (`gc.freeze()`): it is long-lived (sockets, their
subscriptions, the process's caches), so the next collection scans only what came after it, and
is due once that is `YOUNG_MOST` objects: a process that holds ten thousand idle sockets
(1.6 million objects) stops for about 15 ms, not for a second to scan them all again. The frozen
objects of sockets that closed since are garbage no such collection sees, so once what is
frozen has grown by a quarter (as CPython's own rule has it) since the last collection of
everything, the next one unfreezes it first and collects it all; a hub that stops when the last
socket leaves hands everything it froze back to CPython's own collections.

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
YOUNG_MOST = 25_000  # objects the oldest generation gains before they are collected (15 ms)
GROWTH = 0.25  # as CPython: all is collected once what is frozen grew by a quarter
LOOK_SPACING = 100  # counting the oldest generation took t seconds: the next count, 100 t later

_NEVER = 2**30
_running = 0  # hubs running a collector in this process
_thresholds = None  # the process's own, restored when the last hub stops
_next_look = 0.0  # time.monotonic() before which the oldest generation is not counted again
_frozen_after_all = 0  # objects frozen after the last collection of everything
_froze = False  # whether this collector froze objects that may have become garbage since


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
    """Once enough middle-generation collections ran since the last full one (cheap to read),
    as CPython decides, and the oldest generation, less what is frozen, holds `YOUNG_MOST`
    objects (a count of them, made at most a hundredth of the time)."""
    global _next_look
    if gc.get_count()[2] <= _thresholds[2] or time.monotonic() < _next_look:
        return False
    started = time.monotonic()
    size = len(gc.get_objects(2))
    _next_look = time.monotonic() + LOOK_SPACING * (time.monotonic() - started)
    return size > YOUNG_MOST


def _collect():
    global _frozen_after_all, _froze
    if not _frozen_after_all or gc.get_freeze_count() > _frozen_after_all * (1 + GROWTH):
        gc.unfreeze()  # what froze since the last time may hold closed sockets: collect it all
        gc.collect()
        gc.freeze()
        _frozen_after_all = gc.get_freeze_count()
    else:
        gc.collect()
        gc.freeze()
    _froze = True


def _take_over():
    global _running, _thresholds, _frozen_after_all
    if sys.version_info >= (3, 14) or not gc.isenabled():
        return False
    if _running == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_thresholds[0], _thresholds[1], _NEVER)
        # What is frozen already (config/asgi.py's start-up objects) was collected before.
        _frozen_after_all = gc.get_freeze_count()
    _running += 1
    return True


def _hand_back():
    global _running, _froze
    _running -= 1
    if _running == 0:
        # CPython's own collections never see what is frozen: what this collector froze goes
        # back to them (with what config/asgi.py froze at start-up; a hub that starts again
        # freezes it again at its first collection).
        if _froze:
            gc.unfreeze()
            _froze = False
        gc.set_threshold(*_thresholds)
