"""While a server process's hub runs, CPython's full garbage collections run between changes,
not in the middle of one (rest_live/collector.py), and the process gets its own back after."""

import asyncio
import gc
import sys
import time
import unittest
import weakref
from unittest import mock

from django.contrib.auth.models import Group

from rest_live import collector
from rest_live.hub import hub
from tests.groups import served_at
from tests.live import LiveTestCase

# Looks often, and takes every one that CPython's count makes due.
QUICK = {
    "CHECK_SECONDS": 0.01,
    "IDLE_CHECK_SECONDS": 0.005,
    "LOOK_SPACING": 0,
    "YOUNG_MOST": -1,
    "_next_look": 0.0,
    "_frozen_after_all": 0,
    "_froze": False,
}


class Cycle:
    """Garbage only a collection frees: it refers to itself."""

    def __init__(self):
        self.me = self


async def frozen_garbage(collection):
    """A weak reference to a cycle that the collector froze while it was alive, then dropped:
    as a socket's objects, frozen by a collection while it was open, are once it closes."""
    cycle = Cycle()
    await collection()
    return weakref.ref(cycle)


@unittest.skipIf(sys.version_info >= (3, 14), "Python 3.14's incremental collector is left as is")
class CollectorTests(LiveTestCase):
    application = served_at("ws/")
    path = "/ws/"

    def setUp(self):
        super().setUp()
        self.thresholds = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *self.thresholds)
        self.addCleanup(gc.unfreeze)
        for name, value in QUICK.items():
            patcher = mock.patch.object(collector, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)

    async def test_the_process_collects_by_itself_again_once_no_hub_runs(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        self.assertEqual(gc.get_threshold()[:2], self.thresholds[:2])  # young ones untouched
        self.assertGreater(gc.get_threshold()[2], 10**6)  # no automatic full collection
        await self.unsubscribe(socket, sub)
        await self.until(lambda: gc.get_threshold() == self.thresholds)

    async def test_a_due_collection_runs_while_no_change_is_handed_out(self):
        socket = await self.connect()
        await self.subscribe(socket, "auth.Group")
        collections = gc.get_stats()[2]["collections"]
        self.make_one_due()
        await self.until(lambda: gc.get_stats()[2]["collections"] > collections)

    async def test_a_busy_hub_collects_anyway_once_overdue(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        collections = gc.get_stats()[2]["collections"]
        with mock.patch.object(collector, "LATEST_SECONDS", 0.5):
            async with hub()._handling:  # a change being handed out, for as long as it takes
                self.make_one_due()
                due = time.monotonic()
                await self.until(lambda: gc.get_stats()[2]["collections"] > collections)
                self.assertGreaterEqual(time.monotonic() - due, 0.5)
        # The change that waited behind the collection is delivered.
        await self.db(Group.objects.create, name="after")
        await self.assertBroadcast(socket, "CREATED", {"name": "after"}, id=sub)

    async def test_survivors_are_frozen_and_collected_again_once_the_frozen_grew_by_a_quarter(self):
        socket = await self.connect()
        await self.subscribe(socket, "auth.Group")
        await self.collection()  # with nothing frozen yet, one of everything
        closed = await frozen_garbage(self.collection)
        await self.collection()
        # Left out: what survived stays frozen, so the next collection did not scan it.
        self.assertIsNotNone(closed())
        # Once what is frozen grew by a quarter, a collection takes everything again.
        grown = [[] for _ in range(gc.get_freeze_count() // 3)]
        gc.freeze()
        await self.collection()
        self.assertIsNone(closed())
        del grown

    async def test_a_hub_that_stops_hands_what_it_froze_back_to_cpython(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        await self.collection()
        closed = await frozen_garbage(self.collection)
        await self.unsubscribe(socket, sub)  # the last subscription: the hub stops
        await self.until(lambda: gc.get_freeze_count() == 0)
        gc.collect()  # as CPython's own would, in its time
        self.assertIsNone(closed())

    async def test_a_process_that_turned_the_collector_off_is_left_as_it_is(self):
        gc.disable()
        self.addCleanup(gc.enable)
        socket = await self.connect()
        await self.subscribe(socket, "auth.Group")
        self.assertEqual(gc.get_threshold(), self.thresholds)

    async def collection(self):
        """Make one due, and wait until it ran."""
        collections = gc.get_stats()[2]["collections"]
        self.make_one_due()
        await self.until(lambda: gc.get_stats()[2]["collections"] > collections)

    def make_one_due(self):
        # CPython considers a full collection once there have been more collections of the
        # middle generation than its third threshold since the last one.
        for _ in range(self.thresholds[2] + 1):
            gc.collect(1)

    async def until(self, condition, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not condition():
            self.assertLess(time.monotonic(), deadline, "the condition did not hold in time")
            await asyncio.sleep(0.01)
