"""Publishing from synchronous code: one event loop per process that lives on, in order, and a
layer that does not answer costs a write at most the publisher's timeout."""

import asyncio
import time
from unittest import mock

from channels.layers import BaseChannelLayer
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import TransactionTestCase, override_settings

from rest_live import layer_outage
from rest_live.broadcasting import connect_signals

connect_signals(Group)  # as a router registering a view of it does


class RecordingLayer(BaseChannelLayer):
    """A layer that is not the in-memory one, noting each group_send and the loop it ran on."""

    sent = []

    async def group_send(self, group, message):
        RecordingLayer.sent.append((group, message["type"], asyncio.get_running_loop()))


class SilentLayer(BaseChannelLayer):
    """A layer that never answers."""

    async def group_send(self, group, message):
        await asyncio.sleep(3600)


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "tests.test_publisher.RecordingLayer"}})
class PublisherTests(TransactionTestCase):
    def setUp(self):
        RecordingLayer.sent = []

    def test_writes_publish_in_order_from_one_loop_that_lives_on(self):
        for n in range(3):
            Group.objects.create(name=f"group {n}")
        self.assertEqual(
            [(group, kind) for group, kind, _loop in RecordingLayer.sent],
            [("rest_live.changes", "rest_live.wake")] * 3,
        )
        # async_to_sync would have run each on a loop of its own (and connected afresh each time).
        self.assertEqual(len({id(loop) for _group, _pks, loop in RecordingLayer.sent}), 1)
        self.assertFalse(RecordingLayer.sent[0][2].is_closed())

    def test_a_transaction_wakes_the_servers_once_when_it_commits(self):
        with transaction.atomic():
            for n in range(3):
                Group.objects.create(name=f"group {n}")
            self.assertEqual(RecordingLayer.sent, [])
        self.assertEqual(len(RecordingLayer.sent), 1)

    @override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "tests.test_publisher.SilentLayer"}})
    def test_a_layer_that_does_not_answer_costs_a_write_the_timeout_and_no_more(self):
        outage = layer_outage.Outage()  # this test's own, so no other test sees it end
        with override_settings(REST_LIVE_PUBLISH_TIMEOUT_SECONDS=0.2):
            with mock.patch.object(layer_outage, "outage", outage):
                with self.assertLogs("rest_live", "DEBUG") as logs:
                    started = time.monotonic()
                    group = Group.objects.create(name="kept")
                    waited = time.monotonic() - started
        self.assertLess(waited, 2)  # REST_LIVE_PUBLISH_TIMEOUT_SECONDS, not the default 5 s
        self.assertTrue(Group.objects.filter(pk=group.pk).exists())
        self.assertIn("could not announce", "\n".join(logs.output))
