"""How LiveTestCase's assertions fail: a failure shows what went wrong once, and nothing else.

Each test runs a small LiveTestCase whose test fails, in-process, and reads the report a developer
would read. A broadcast that never comes must read like a broadcast with the wrong value: one
AssertionError, with no `CancelledError` from the cleanup after it (asgiref cancels the
application when a receive times out, so the socket is closed already).
"""

import io
import unittest

from django.contrib.auth.models import Group
from django.test import TransactionTestCase

from tests.groups import served_at
from tests.live import LiveTestCase

NOISE = ["CancelledError", "During handling of the above exception"]


async def crashes_on_a_frame(scope, receive, send):
    """A websocket application with a bug: it accepts, then raises on the first frame."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await receive()
    raise ValueError("a bug in the consumer")


def failing_cases():
    """A LiveTestCase whose every test fails (made here, so that the runner does not find it)."""

    class FailingCases(LiveTestCase):
        application = served_at("ws/")
        path = "/ws/"
        timeout = 0.2

        async def test_a_broadcast_that_never_comes(self):
            socket = await self.connect()
            sub = await self.subscribe(socket, "auth.Group")
            await self.assertBroadcast(socket, "CREATED", {"name": "staff"}, id=sub)

        async def test_a_broadcast_with_the_wrong_value(self):
            socket = await self.connect()
            sub = await self.subscribe(socket, "auth.Group")
            await self.db(Group.objects.create, name="staff")
            await self.assertBroadcast(socket, "CREATED", {"name": "managers"}, id=sub)

        async def test_a_close_that_never_comes(self):
            socket = await self.connect()
            await self.assertClosed(socket, 4000)

        async def test_a_consumer_that_crashes_while_the_test_waits(self):
            self.application = crashes_on_a_frame
            socket = await self.connect()
            await socket.send_json_to({"type": "subscribe", "id": 1})
            await self.receive(socket)

    return FailingCases


class FailureReportTests(TransactionTestCase):
    def run_failing(self, name):
        """The report of FailingCases.`name` run alone: its only failure, and the whole output."""
        output = io.StringIO()
        result = unittest.TextTestRunner(stream=output, verbosity=2).run(failing_cases()(name))
        report = output.getvalue()
        self.assertEqual(
            (result.testsRun, len(result.failures), len(result.errors)), (1, 1, 0), report
        )
        for noise in NOISE:
            self.assertNotIn(noise, report)
        return result.failures[0][1], report

    def test_a_timed_out_broadcast_fails_as_cleanly_as_a_wrong_one(self):
        timed_out, report = self.run_failing("test_a_broadcast_that_never_comes")
        self.assertIn("AssertionError: nothing arrived within 0.2 s", timed_out, report)
        self.assertEqual(timed_out.count("Traceback"), 1, report)

        wrong, report = self.run_failing("test_a_broadcast_with_the_wrong_value")
        self.assertIn("AssertionError: expected a CREATED broadcast", wrong, report)
        self.assertIn("with name='managers', got name='staff'", wrong, report)
        self.assertEqual(wrong.count("Traceback"), 1, report)

    def test_a_close_that_never_comes_fails_with_an_assertion(self):
        failure, report = self.run_failing("test_a_close_that_never_comes")
        self.assertIn("AssertionError: the socket was not closed within 0.2 s", failure, report)
        self.assertEqual(failure.count("Traceback"), 1, report)

    def test_a_crash_is_reported_once(self):
        failure, report = self.run_failing("test_a_consumer_that_crashes_while_the_test_waits")
        self.assertIn("ValueError: a bug in the consumer", failure, report)
        self.assertIn("AssertionError: The websocket application crashed.", failure, report)
        self.assertEqual(failure.count("ValueError: a bug in the consumer"), 1, report)
