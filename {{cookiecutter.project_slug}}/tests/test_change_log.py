"""The change log and the feed: a change that commits reaches its subscribers even when the
channel layer loses its wake-up, exactly once, and a write never fails because of the log."""

import asyncio
import time
import uuid
from datetime import timedelta
from unittest import mock

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from rest_live import feed
from rest_live.capture import install
from rest_live.changes import Change as LiveChange
from rest_live.feed import ChangeFeed
from rest_live.hub import Hub
from rest_live.models import Change
from tests.groups import served_at
from tests.live import LiveTestCase


class LosingLayer(InMemoryChannelLayer):
    """Delivers nothing sent to a group, as a layer that is down or a writer killed would."""

    async def group_send(self, group, message):
        pass


class SlowLeavingLayer(InMemoryChannelLayer):
    """Takes its time to let a channel leave a group: until `release` is set."""

    def __init__(self):
        super().__init__()
        self.leaving, self.release = asyncio.Event(), asyncio.Event()

    async def group_discard(self, group, channel):
        self.leaving.set()
        await self.release.wait()
        await super().group_discard(group, channel)


QUICK_FEED = {"REST_LIVE_CHANGE_POLL_SECONDS": 0.05}
LOSING_LAYER = {"default": {"BACKEND": "tests.test_change_log.LosingLayer"}}


@override_settings(**QUICK_FEED)
class FeedDeliveryTests(LiveTestCase):
    application = served_at("ws/")
    path = "/ws/"

    @override_settings(CHANNEL_LAYERS=LOSING_LAYER)
    async def test_a_change_the_layer_lost_arrives_from_the_log(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        group = await self.db(Group.objects.create, name="lost by the layer")
        await self.assertBroadcast(socket, "CREATED", {"name": "lost by the layer"}, id=sub)
        group.name = "renamed"
        await self.db(group.save)
        await self.assertBroadcast(socket, "UPDATED", {"name": "renamed"}, id=sub)
        await self.db(group.delete)
        await self.assertBroadcast(socket, "DELETED", id=sub)

    async def test_a_change_is_sent_once_however_often_the_feed_is_woken(self):
        socket = await self.connect()
        await self.subscribe(socket, "auth.Group")
        await self.db(Group.objects.create, name="once")
        await self.assertBroadcast(socket, "CREATED", {"name": "once"})
        await self.assertNothing(socket, timeout=0.5)  # ten polls of the log

    @override_settings(CHANNEL_LAYERS=LOSING_LAYER)
    async def test_changes_announced_by_broadcast_are_logged_too(self):
        from rest_live import broadcast

        socket = await self.connect()
        await self.subscribe(socket, "auth.Group")
        pk = (await self.db(Group.objects.create, name="before")).pk
        await self.assertBroadcast(socket, "CREATED")
        await self.db(broadcast, Group, [pk])  # a change no table records (nothing changed)
        await self.assertBroadcast(socket, "UPDATED", {"name": "before"})


@override_settings(REST_LIVE_CHANGE_POLL_SECONDS=3600)
class WakeUpTests(LiveTestCase):
    """With the log's timed polls an hour apart, what wakes the feed is what delivers."""

    application = served_at("ws/")
    path = "/ws/"

    async def test_the_first_subscription_hears_the_first_write_at_once(self):
        # The process's first subscription starts the hub: its layer receiver must be listening
        # as soon as the group is joined, not after a poll interval.
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        await self.db(Group.objects.create, name="woken")
        await self.assertBroadcast(socket, "CREATED", {"name": "woken"}, id=sub)

    if connection.vendor == "postgresql":  # NOTIFY is PostgreSQL's; SQLite's feed hears the layer

        @override_settings(CHANNEL_LAYERS=LOSING_LAYER)
        async def test_postgresql_notifies_of_every_change_broadcast_included(self):
            from rest_live import broadcast

            socket = await self.connect()
            sub = await self.subscribe(socket, "auth.Group")
            group = await self.db(Group.objects.create, name="created")
            await self.assertBroadcast(socket, "CREATED", id=sub)
            # No signal, no layer, no poll: the capture triggers' NOTIFY (or, had the listener not
            # connected yet, its read on connecting), after which the listener surely listens.
            await self.db(Group.objects.filter(pk=group.pk).update, name="updated")
            await self.assertBroadcast(socket, "UPDATED", {"name": "updated"}, id=sub)
            await self.db(broadcast, group)  # a log row no trigger wrote: broadcast() notifies
            await self.assertBroadcast(socket, "UPDATED", {"name": "updated"}, id=sub)


def run(scenario):
    """Run `scenario`, then close the connection its reads of the log opened on the database
    thread (a server keeps it open), so that the test database can be dropped."""

    async def closing():
        try:
            return await scenario
        finally:
            await database_sync_to_async(connections.close_all)()

    return asyncio.run(closing())


class Recorder:
    """What the feed delivers to, in place of the hub."""

    def __init__(self):
        self.changes = []

    async def __call__(self, changes):
        self.changes.extend(changes)


class FeedReadingTests(TransactionTestCase):
    """The feed's reading of the log, with rows written by hand."""

    def setUp(self):
        Change.objects.all().delete()  # what the test database's set-up logged

    def log(self, change_id):
        Change.objects.create(
            id=change_id, model="auth.Group", pks=[change_id], txid=Change.ANNOUNCED
        )

    def delivered(self, consumer):
        return [(change.position, set(change.pks)) for change in consumer.changes]

    def test_rows_committed_out_of_id_order_are_all_delivered_once(self):
        self.log(1)

        async def scenario():
            consumer = Recorder()
            feed = ChangeFeed(consumer)
            await feed.poll()  # starts after the newest change: 1
            await database_sync_to_async(self.log)(2)
            await database_sync_to_async(self.log)(4)  # 3 is written but not committed yet
            await feed.poll()
            self.assertEqual(self.delivered(consumer), [(2, {2}), (4, {4})])
            await database_sync_to_async(self.log)(3)
            await database_sync_to_async(self.log)(5)
            await feed.poll()
            await feed.poll()
            self.assertEqual(self.delivered(consumer), [(2, {2}), (4, {4}), (3, {3}), (5, {5})])

        run(scenario())

    def test_the_rows_of_one_transaction_are_one_change_per_model(self):
        self.log(1)

        async def scenario():
            consumer = Recorder()
            feed = ChangeFeed(consumer)
            await feed.poll()

            def one_transaction():
                with transaction.atomic():
                    group = Group.objects.create(name=f"first {uuid.uuid4()}")
                    group.name += ", renamed"
                    group.save()
                    Group.objects.create(name=f"second {uuid.uuid4()}")

            await database_sync_to_async(one_transaction)()
            await feed.poll()
            groups = [change for change in consumer.changes if change.model == "auth.Group"]
            self.assertEqual([len(change.pks) for change in groups], [2])

        run(scenario())

    def test_a_feed_started_while_a_transaction_is_open_delivers_its_change(self):
        self.log(1)
        self.log(3)  # 2 is written, and its transaction still open, when the feed starts

        async def scenario():
            consumer = Recorder()
            feed = ChangeFeed(consumer)
            await feed.start()
            await database_sync_to_async(self.log)(2)
            await feed.poll()
            self.assertEqual(self.delivered(consumer), [(2, {2})])

        run(scenario())

    @override_settings(REST_LIVE_CHANGE_LOG_SECONDS=60)
    def test_old_changes_are_pruned(self):
        self.log(1)
        self.log(2)
        Change.objects.filter(id=1).update(recorded=timezone.now() - timedelta(seconds=61))

        async def scenario():
            feed = ChangeFeed(Recorder())
            await feed.poll()
            with mock.patch.object(feed, "_pruned", 0.0):  # as if a minute had gone by
                await feed.poll()

        run(scenario())
        self.assertEqual(list(Change.objects.values_list("id", flat=True)), [2])


if connection.vendor == "postgresql":

    class NotifiedRowTests(TransactionTestCase):
        """PostgreSQL's notifications carry the rows they announce: a feed that hears them hands
        the changes out without reading the log, and reads it when a payload cannot say."""

        def setUp(self):
            Change.objects.all().delete()

        def hand_out(self, write, told=lambda payloads: payloads, logged=True):
            """What a started feed delivers once `write` is made, woken by the notifications
            it made (as `told` changes them); `logged=False` empties the log first, so that only
            what the payloads carry can be delivered. Returns (payloads, changes delivered)."""
            import psycopg

            from rest_live.capture import listener

            def notified():
                params = listener._connection_params("default")
                with psycopg.connect(autocommit=True, **params) as conn:
                    conn.execute("LISTEN rest_live")
                    write()
                    # The row logged, and the commit marker after it.
                    payloads = [n.payload for n in conn.notifies(timeout=5, stop_after=2)]
                if not logged:
                    Change.objects.all().delete()
                return payloads

            async def scenario():
                consumer = Recorder()
                feed = ChangeFeed(consumer)
                await feed.start()
                payloads = await database_sync_to_async(notified)()
                for payload in told(payloads):
                    feed.wake(payload)
                await feed.poll(woken=True)
                return payloads, consumer.changes

            return run(scenario())

        def test_a_notification_carries_the_row_it_logged(self):
            groups = []
            _, changes = self.hand_out(
                lambda: groups.append(Group.objects.create(name="told")), logged=False
            )
            (change,) = changes
            self.assertEqual((change.model, change.pks), ("auth.Group", (groups[0].pk,)))
            self.assertEqual(change.created, {groups[0].pk})

        def test_the_log_is_read_when_a_payload_cannot_hold_the_row(self):
            many = [Group(name=f"group {i}") for i in range(1500)]
            payloads, (change,) = self.hand_out(lambda: Group.objects.bulk_create(many))
            # 1,500 keys are longer than a payload may be; then the transaction's commit marker
            self.assertEqual(payloads[0], "")
            self.assertRegex(payloads[-1], r'^\["committed", \d+\]$')
            self.assertEqual(len(change.pks), 1500)

        def test_a_payload_that_is_not_a_logged_row_makes_the_feed_read_the_log(self):
            for stranger in ("", "[1, 2]", "not json", '[1, "x", 3, true, null, null, 4]'):
                with self.subTest(stranger=stranger):
                    name = f"read {uuid.uuid4()}"
                    _, (change,) = self.hand_out(
                        lambda name=name: Group.objects.create(name=name),
                        told=lambda payloads, stranger=stranger: [stranger, *payloads],
                    )
                    self.assertEqual(change.pks, (Group.objects.get(name=name).pk,))
                    _, changes = self.hand_out(
                        lambda name=name: Group.objects.create(name=name + " again"),
                        told=lambda payloads, stranger=stranger: [stranger],
                    )
                    self.assertEqual(len(changes), 1)  # read: the log has it


if connection.vendor == "postgresql":

    @override_settings(REST_LIVE_CHANGE_POLL_SECONDS=0)
    class GapTests(TransactionTestCase):
        """A change id below the newest that has not appeared: a transaction still open, or one
        that rolled back. (Every poll reads the gaps here, as the timed polls do.)"""

        def test_a_rolled_back_write_holds_positions_back_only_until_it_has_ended(self):
            def rolled_back():
                with transaction.atomic():
                    Group.objects.create(name="never")  # logged, and its log row rolled back
                    transaction.set_rollback(True)

            async def scenario():
                changes = ChangeFeed(Recorder())
                await changes.start()
                await database_sync_to_async(rolled_back)()
                await database_sync_to_async(Group.objects.create)(name="kept")
                await changes.poll()
                head = await database_sync_to_async(feed.log_head)()
                self.assertLess(changes.through, head)  # the rolled-back id: it might commit
                # The first read notes which transactions its writer could be among, a later one
                # finds them all ended (at once here, unless another program's are open); and so
                # does a feed that starts below the id, as a server process's does.
                for reader in [changes, ChangeFeed(Recorder())]:
                    await reader.start()
                    deadline = time.monotonic() + 30
                    while reader.through < head:
                        self.assertLess(time.monotonic(), deadline, "the rolled-back id is kept")
                        await reader.poll()

            run(scenario())

        def test_a_long_transaction_is_waited_for_and_reaches_a_feed_always_woken(self):
            import psycopg

            from rest_live.capture import listener

            params = listener._connection_params("default")
            with psycopg.connect(**params) as writer:  # a transaction open in another program
                writer.execute("INSERT INTO auth_group (name) VALUES ('long')")

                async def scenario():
                    consumer = Recorder()
                    changes = ChangeFeed(consumer)
                    await changes.start()
                    await database_sync_to_async(Group.objects.create)(name="short")
                    for _ in range(3):
                        await changes.poll()
                    head = await database_sync_to_async(feed.log_head)()
                    self.assertLess(changes.through, head)  # still open: not given up
                    await database_sync_to_async(writer.commit)()
                    # Woken by a write whose row no notification carried, as a busy server
                    # always is: the old gap is read too.
                    changes.wake()
                    await changes.poll(woken=True)
                    long = await database_sync_to_async(Group.objects.get)(name="long")
                    models = [(change.model, change.pks) for change in consumer.changes]
                    self.assertIn(("auth.Group", (long.pk,)), models)
                    self.assertEqual(changes.through, head)

                run(scenario())


class Watcher:
    """A consumer as the hub sees it, recording the changes it is handed."""

    def __init__(self):
        self.begun, self.taken = [], []

    def begin_change(self, change):
        self.begun.append(change.position)

    async def take_change(self, change):
        self.taken.append(change.position)

    async def lose_change(self, label):
        self.taken.append(f"lost {label}")

    async def end_transaction(self):
        pass


class HubTests(TransactionTestCase):
    def test_each_change_goes_once_to_the_sockets_watching_its_model(self):
        async def scenario():
            hub, watcher = Hub(layer=None), Watcher()
            await hub.join(Group, watcher)
            await hub.handle([LiveChange("auth.Permission", (1,), 10)])
            await hub.handle([LiveChange("auth.Group", (1,), 11)])
            await hub.leave(Group, watcher)
            await hub.handle([LiveChange("auth.Group", (1,), 12)])
            self.assertEqual((watcher.begun, watcher.taken), ([11], [11]))

        run(scenario())

    @override_settings(**QUICK_FEED)
    def test_a_socket_that_joins_while_the_last_one_leaves_is_handed_changes(self):
        layer = SlowLeavingLayer()

        async def scenario():
            hub, first, second = Hub(layer), Watcher(), Watcher()
            await hub.join(Group, first)
            leaving = asyncio.ensure_future(hub.leave(Group, first))
            await layer.leaving.wait()  # in the middle of leaving the layer's group
            joining = asyncio.ensure_future(hub.join(Group, second))
            await asyncio.sleep(0.01)
            layer.release.set()
            await leaving
            await joining
            await database_sync_to_async(Group.objects.create)(name="after the join")
            deadline = time.monotonic() + 10
            while not second.taken:
                self.assertLess(time.monotonic(), deadline, "the hub stopped under a watcher")
                await asyncio.sleep(0.01)
            await hub.leave(Group, second)

        run(scenario())

    def test_the_last_socket_cancelled_as_it_leaves_still_stops_the_hub(self):
        layer = SlowLeavingLayer()

        async def scenario():
            hub, watcher = Hub(layer), Watcher()
            await hub.join(Group, watcher)
            tasks = hub._tasks
            leaving = asyncio.ensure_future(hub.leave(Group, watcher))
            await layer.leaving.wait()  # in the middle of leaving the layer's group
            leaving.cancel()
            layer.release.set()
            deadline = time.monotonic() + 5
            while not all(task.done() for task in tasks):
                self.assertLess(time.monotonic(), deadline, "the hub reads on for nobody")
                await asyncio.sleep(0.01)
            self.assertFalse(hub.feed.started)

        run(scenario())

    def test_a_hub_stopped_just_as_a_commit_wakes_it_stops_reading_the_log(self):
        # Python 3.11's asyncio.wait_for, cancelled just as what it waits for arrives, returns
        # it: the poll outlived the hub's stop, and read where the log ended before the next
        # join, which then handed its socket changes older than the state it read.
        async def scenario():
            hub, watcher = Hub(layer=None), Watcher()
            for turns in range(6):  # how far the wake-up has got when the stop comes
                await hub.join(Group, watcher)
                await database_sync_to_async(Group.objects.create)(name=f"{turns} turns")
                # Once the poll has read it, it waits to be woken again.
                await hub.feed.read_up_to(await database_sync_to_async(feed.log_head)(), 5)
                tasks = hub._tasks
                hub.feed.wake()
                for _ in range(turns):
                    await asyncio.sleep(0)
                await hub.leave(Group, watcher)
                deadline = time.monotonic() + 5
                while not all(task.done() for task in tasks):
                    self.assertLess(time.monotonic(), deadline, f"still polling ({turns} turns)")
                    await asyncio.sleep(0.01)
                self.assertFalse(hub.feed.started)

        run(scenario())

    if connection.vendor == "postgresql":

        def test_the_last_socket_leaving_as_the_listener_starts_ends_its_query(self):
            # A subscribe refused at once (a bad filter, say) is a join and a leave while the
            # listener is still sending LISTEN; a slow query in front of it holds it there.
            import psycopg

            execute = psycopg.AsyncConnection.execute
            listening = asyncio.Event()

            async def slow_listen(conn, query, *args, **kwargs):
                if str(query).startswith("LISTEN"):
                    listening.set()
                    await execute(conn, "SELECT pg_sleep(10)")
                return await execute(conn, query, *args, **kwargs)

            def sleeping():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'"
                    )
                    return cursor.fetchone()[0]

            async def scenario():
                hub, watcher = Hub(layer=None), Watcher()
                await hub.join(Group, watcher)
                await asyncio.wait_for(listening.wait(), 10)
                deadline = time.monotonic() + 10
                while not await database_sync_to_async(sleeping)():  # the query has reached it
                    self.assertLess(time.monotonic(), deadline)
                await hub.leave(Group, watcher)
                # Once the last socket has left, nothing of the listener runs on the server,
                self.assertEqual(await database_sync_to_async(sleeping)(), 0)

            # and the loop's end, which cancels what is left, leaves psycopg nothing to abandon.
            with mock.patch.object(psycopg.AsyncConnection, "execute", slow_listen):
                with self.assertNoLogs("psycopg", "WARNING"):
                    run(scenario())


class WriteTests(TransactionTestCase):
    def test_each_write_logs_its_change_in_its_own_transaction(self):
        with transaction.atomic():
            group = Group.objects.create(name="logged")
            self.assertEqual(Change.objects.get(model="auth.Group").pks, [group.pk])
        try:
            with transaction.atomic():
                Group.objects.create(name="rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
        self.assertEqual(Change.objects.filter(model="auth.Group").count(), 1)

    def test_broadcast_succeeds_when_the_log_cannot_take_its_change(self):
        from rest_live import broadcast

        group = Group.objects.create(name="kept")
        install.remove()  # the capture writes to the log too
        with connection.schema_editor() as editor:
            editor.delete_model(Change)
        try:
            with self.assertLogs("rest_live", "ERROR") as logs:
                with transaction.atomic():  # the log's insert fails in a savepoint
                    broadcast(group)
                    group.save()
                broadcast(Group, [group.pk])
            # Once, not once per change.
            self.assertEqual(len(logs.output), 1, logs.output)
            self.assertIn("could not write a change to auth.Group", logs.output[0])
        finally:
            with connection.schema_editor() as editor:
                editor.create_model(Change)
            install.install()

    def test_unmigrating_rest_live_removes_the_capture_before_the_log(self):
        call_command("migrate", "rest_live", "zero", verbosity=0)
        try:
            Group.objects.create(name="written without a change log")
        finally:
            call_command("migrate", "rest_live", verbosity=0)
        self.assertEqual(
            [item.state for item in install.status()], ["installed"] * len(install.status())
        )
        Group.objects.create(name="captured again")
        self.assertTrue(Change.objects.filter(model="auth.Group").exists())
