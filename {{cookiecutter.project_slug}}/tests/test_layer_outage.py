"""A channel layer outage is logged in one line when it starts and one when it ends, per process,
whichever part of the process noticed it, and never as a traceback."""

import asyncio
import logging
from unittest import mock

from channels.layers import InMemoryChannelLayer
from django.test import SimpleTestCase

from rest_live import layer_outage
from rest_live.hub import Hub


def receive_loop_failure(error):
    """Log what channels_redis's pub/sub receive loop logs each second while Redis is down."""
    try:
        raise error
    except type(error):
        logging.getLogger("channels_redis.pubsub").exception("Unexpected exception in receive task")


class DownLayer(InMemoryChannelLayer):
    async def group_send(self, group, message):
        raise ConnectionRefusedError("Redis is down")


class OutageTests(SimpleTestCase):
    def setUp(self):
        patcher = mock.patch.object(layer_outage, "outage", layer_outage.Outage())
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_the_receive_loops_tracebacks_become_one_line(self):
        with self.assertLogs("channels_redis.pubsub", "DEBUG") as receive_loop:
            with self.assertLogs("rest_live", "DEBUG") as ours:
                for _second in range(3):
                    receive_loop_failure(ConnectionRefusedError("Connection refused"))
                logging.getLogger("channels_redis.pubsub").info("something else")
        self.assertEqual(receive_loop.output, ["INFO:channels_redis.pubsub:something else"])
        self.assertEqual(len(ours.records), 1, ours.output)
        self.assertIn("cannot reach the channel layer", ours.records[0].getMessage())
        self.assertIn("ConnectionRefusedError: Connection refused", ours.records[0].getMessage())
        self.assertIsNone(ours.records[0].exc_info)

    def test_another_error_of_the_receive_loop_is_still_logged_in_full(self):
        with self.assertLogs("channels_redis.pubsub", "ERROR") as receive_loop:
            receive_loop_failure(KeyError("a bug"))
        self.assertIn("Traceback", receive_loop.output[0])
        self.assertFalse(layer_outage.outage.is_down())

    def test_the_hub_says_once_when_the_layer_answers_again(self):
        async def scenario(layer):
            await Hub(layer)._probe()

        with self.assertLogs("rest_live", "DEBUG") as logs:
            receive_loop_failure(ConnectionRefusedError("Connection refused"))
            asyncio.run(scenario(DownLayer()))  # still down: nothing more to say
            asyncio.run(scenario(InMemoryChannelLayer()))
            asyncio.run(scenario(InMemoryChannelLayer()))  # up: nothing more either
        self.assertEqual([record.levelname for record in logs.records], ["ERROR", "WARNING"])
        self.assertIn("reached the channel layer again after", logs.records[1].getMessage())
        self.assertFalse(layer_outage.outage.is_down())
