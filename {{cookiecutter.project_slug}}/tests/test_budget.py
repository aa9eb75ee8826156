"""What one client may make the server do per second (rest_live/budget.py)."""

import asyncio
import time

from django.contrib.auth.models import Group
from django.test import SimpleTestCase, override_settings

from rest_live.checks import check_settings
from rest_live.limits import Allowance
from rest_live.protocol import CLOSE_AT_CAPACITY
from rest_live.testing import APICommunicator
from tests.groups import served_at
from tests.live import LiveTestCase

application = served_at("ws/")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class AllowanceTests(SimpleTestCase):
    def test_work_is_charged_after_it_is_done_so_the_balance_can_fall_below_zero(self):
        clock = Clock()
        allowance = Allowance(2, 20, clock)  # 2 a second, 20 at once
        self.assertTrue(allowance.spend(20))
        self.assertFalse(allowance.overdrawn())
        self.assertFalse(allowance.spend(5))  # one piece of work larger than what was left
        self.assertTrue(allowance.overdrawn())
        clock.now = 2.0  # 4 paid back of 5
        self.assertTrue(allowance.overdrawn())
        clock.now = 2.5
        self.assertFalse(allowance.overdrawn())
        self.assertFalse(allowance.holds(2))  # a new socket waits for a second's worth
        clock.now = 3.5
        self.assertTrue(allowance.holds(2))
        self.assertFalse(allowance.full())
        clock.now = 1000.0
        self.assertTrue(allowance.full())
        self.assertTrue(allowance.spend(20))  # never more than 10 seconds' worth at once

    def test_none_is_no_limit(self):
        allowance = Allowance(None, 20)
        self.assertTrue(allowance.spend(10**9))
        self.assertFalse(allowance.overdrawn())
        self.assertTrue(allowance.full())


class SettingsTests(SimpleTestCase):
    def test_the_budgets_are_numbers_above_0_or_none(self):
        for name in ["REST_LIVE_EVALUATIONS_PER_SECOND", "REST_LIVE_SNAPSHOT_ROWS_PER_SECOND"]:
            for value in [0, -1, "100", True]:
                with override_settings(**{name: value}):
                    problems = [p for p in check_settings(None) if p.id == "rest_live.E002"]
                    self.assertIn(name, problems[0].msg)
            for value in [None, 0.5, 100]:
                with override_settings(**{name: value}):
                    ids = [problem.id for problem in check_settings(None)]
                    self.assertNotIn("rest_live.E002", ids)


class BudgetTests(LiveTestCase):
    application = application
    path = "/ws/"

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.groups = await self.db(
            lambda: [Group.objects.create(name=f"group {i:02d}") for i in range(25)]
        )

    async def connect_from(self, address):
        """An anonymous socket from another address: another client."""
        socket = APICommunicator(application, self.path)
        socket.scope["client"] = (address, 50000)
        connected, _ = await socket.connect(timeout=self.timeout)
        self.assertTrue(connected)
        self._sockets.append(socket)
        return socket

    async def closed_with(self, socket):
        """The code the server closes `socket` with, after any frames before it."""
        while True:
            message = await socket.receive_output(timeout=self.timeout)
            if message["type"] == "websocket.close":
                return message.get("code")

    async def retrieve_each(self, socket, groups):
        for group in groups:
            await self.subscribe(socket, "auth.Group", "retrieve", lookup_by=group.pk)

    async def assertAdmittedWithin(self, seconds):
        """A new anonymous socket of this client is let in again within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            socket = await self.connect()
            try:
                await self.subscribe(socket, "auth.Group")
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)

    @override_settings(REST_LIVE_EVALUATIONS_PER_SECOND=2)  # 20 at once
    async def test_a_client_that_starts_too_many_subscriptions_is_closed_and_kept_out(self):
        socket = await self.connect()
        with self.assertLogs("rest_live.consumers", "INFO") as logged:
            for group in self.groups:  # 25 distinct subscriptions, each starting costs one
                await socket.send_json_to(
                    {"type": "subscribe", "id": group.pk, "model": "auth.Group",
                     "action": "retrieve", "lookup_by": group.pk}
                )  # fmt: skip
            self.assertEqual(await self.closed_with(socket), CLOSE_AT_CAPACITY)
        self.assertIn("over its client's budget of evaluations (close code 4013)", logged.output[0])
        # Its new sockets too, at once, until the debt is paid back...
        again = await self.connect()
        await self.assertClosed(again, CLOSE_AT_CAPACITY)
        # ... while other clients are served: a signed-in user, another address.
        alice = await self.connect(await self.create_user("alice"))
        elsewhere = await self.connect_from("10.0.0.2")
        subs = [await self.subscribe(s, "auth.Group") for s in (alice, elsewhere)]
        group = await self.db(Group.objects.create, name="new")
        for s, sub in zip((alice, elsewhere), subs, strict=True):
            await self.assertBroadcast(s, "CREATED", {"id": group.pk, "name": "new"}, id=sub)
        # Paid back at 2 a second, it is let in again.
        await self.assertAdmittedWithin(10)

    @override_settings(REST_LIVE_EVALUATIONS_PER_SECOND=1)  # 10 at once
    async def test_each_change_evaluated_for_a_subscription_is_charged_to_its_client(self):
        socket = await self.connect()
        await self.retrieve_each(socket, self.groups[:9])  # 9 charged, 1 left
        group = self.groups[0]
        group.name = "renamed once"
        await self.db(group.save)  # 9 evaluations: 8 owed, 8 seconds to pay back
        await self.assertBroadcast(socket, "UPDATED", {"id": group.pk, "name": "renamed once"})
        group.name = "renamed twice"
        with self.assertLogs("rest_live.consumers", "INFO") as logged:
            await self.db(group.save)
            await self.assertClosed(socket, CLOSE_AT_CAPACITY)
        self.assertIn("over its client's budget of evaluations", logged.output[0])

    @override_settings(REST_LIVE_EVALUATIONS_PER_SECOND=1)  # 10 at once
    async def test_sockets_that_share_a_subscription_share_its_cost(self):
        # Twenty sockets of one client on one list: each change costs the client one evaluation
        # in all, not twenty; starting them cost 1 + 1/2 + ... + 1/20, about 3.6.
        sockets = [await self.connect() for _ in range(20)]
        subs = [await self.subscribe(socket, "auth.Group") for socket in sockets]
        for i in range(5):
            group = await self.db(Group.objects.create, name=f"shared {i}")
            for socket, sub in zip(sockets, subs, strict=True):
                await self.assertBroadcast(socket, "CREATED", {"id": group.pk}, id=sub)
        for socket in sockets:
            await self.assertNothing(socket, timeout=0.05)

    @override_settings(REST_LIVE_SNAPSHOT_ROWS_PER_SECOND=10)  # 100 rows at once
    async def test_a_client_whose_snapshots_render_too_many_rows_is_closed(self):
        socket = await self.connect()
        for _ in range(5):  # 125 rows: 25 owed, 2.5 seconds to pay back
            snapshot = await self.subscribe_with_snapshot(socket, "auth.Group")
            self.assertEqual(len(snapshot["instances"]), 25)
        # A subscription without a snapshot renders no rows...
        await self.subscribe(socket, "auth.Group", "retrieve", lookup_by=self.groups[0].pk)
        # ... one with a snapshot waits until the debt is paid.
        with self.assertLogs("rest_live.consumers", "INFO") as logged:
            await socket.send_json_to(
                {"type": "subscribe", "id": 99, "model": "auth.Group", "action": "list",
                 "snapshot": True}
            )  # fmt: skip
            await self.assertClosed(socket, CLOSE_AT_CAPACITY)
        self.assertIn("over its client's budget of snapshot rows", logged.output[0])
        await self.assertAdmittedWithin(10)
