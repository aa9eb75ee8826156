"""How changes reach a server process's sockets: through one hub per process, not one layer
channel per socket.

The hub reads the change log (feed.py) whenever something says it has news: PostgreSQL's NOTIFY
(capture/listener.py, which carries the logged row itself, so most often nothing is read), a
wake-up on the channel layer from a Django write, or the poll timer. Each
change it reads it hands, in one pass, to the sockets watching the changed model, and to those
watching a view that shows the changed rows (a tag renamed reaches the sockets watching todos:
capture/dependencies.py finds which todos, in one query per dependent view). The sockets start
their evaluations (each distinct subscription is evaluated once, subscriptions.py), then each
writes its frames straight to its socket.

A socket that is busy (setting up a subscription, say) gets the change queued behind what it is
doing, so each socket still handles its messages one at a time and in order.
"""

import asyncio
import logging
import time
import weakref
from typing import Protocol

from channels.layers import get_channel_layer
from django.db import DatabaseError

from rest_live import collector, conf, feed, layer_outage, live_queries, metrics
from rest_live.broadcasting import GROUP
from rest_live.capture import dependencies, listener, registry
from rest_live.capture.install import log_database
from rest_live.changes import CHANGE_MESSAGE, WAKE_MESSAGE, Change
from rest_live.feed import ChangeFeed

logger = logging.getLogger(__name__)
activity = logging.getLogger("rest_live.activity")

# How often the hub renews its group membership. The core Redis layer (channels_redis.core)
# drops members after its `group_expiry`, a day by default; the pub/sub layer the template
# configures and the in-memory one never do. An hour renews well inside a day for one group_add
# an hour per process. A core layer set to expire groups in less than an hour needs this lower:
# past its expiry the hub hears no wake-ups on the layer, and changes reach it by NOTIFY
# (PostgreSQL) or at the next poll (REST_LIVE_CHANGE_POLL_SECONDS): later, never lost. A
# constant, not a setting: only that rare configuration needs another value.
_REJOIN_SECONDS = 3600.0
# The longest a snapshot waits for the feed to read the log (`caught_up`); past it, the
# snapshot's position is older than it could be, which costs a resume from it more objects.
_CATCH_UP_SECONDS = 0.5
# The longest the last socket's leaving waits for the listener to close its connection (`_stop`).
_STOP_SECONDS = 2.0
_PROBE_GROUP = "rest_live.probe"  # nobody listens: a send to it only asks the layer to answer

_by_loop = weakref.WeakKeyDictionary()  # event loop -> Hub


class Watcher(Protocol):
    """What the hub asks of a socket (consumers.SubscriptionConsumer)."""

    def begin_change(self, change: Change) -> None:
        """Start evaluating `change` for the socket's subscriptions, without waiting."""

    async def take_change(self, change: Change) -> None:
        """Send the socket what `change` means to it, after what it is doing."""

    async def lose_change(self, label: str) -> None:
        """A change to `label`'s rows could not be followed: have its subscriptions re-sync."""

    async def end_transaction(self) -> None:
        """Every change of the transaction has been handed to the socket (after what it is
        doing): it marks the end of the frames it sent for them."""


class Hub:
    """The sockets of one process that watch each model, and the changes they are handed."""

    def __init__(self, layer):
        self._layer = layer
        self._watchers = {}  # model label -> {watcher: None}, in the order they joined
        self._membership = asyncio.Lock()  # one change of layer membership at a time
        self._handling = asyncio.Lock()  # one change handed out at a time (see `handle`)
        self._channel = None
        self._joined = None  # when the layer group was joined; None while it is not
        self._tasks = ()  # (layer, poll, collector[, listen]) while anyone watches
        self._listening = None  # the listen task among them, on PostgreSQL
        self._has_channel = None  # an asyncio.Event, set once the layer gave this process a channel
        self._notified = False  # the database's notifications reach this process (listener.py)
        self.feed = ChangeFeed(self._handle_logged)

    async def join(self, model, watcher):
        """Hand `watcher` the changes to `model` from now on, whether or not the layer answers.

        Returns once the feed knows where the log ends, so every change committed after the
        caller reads its state reaches `watcher`.
        """
        self._watchers.setdefault(_label(model), {})[watcher] = None
        if not self._tasks:
            self._has_channel = asyncio.Event()
            tasks = [
                self._receive(),
                self._poll(self.feed),
                collector.collect_between_changes(self._idle),
            ]
            self._tasks = tuple(asyncio.ensure_future(task) for task in tasks)
            if listener.can_listen(log_database()):
                listen = listener.listen(log_database(), self.feed.wake, self._hearing)
                self._listening = asyncio.ensure_future(listen)
                self._tasks += (self._listening,)
        async with self._membership:
            await self.feed.start()
            await self._join_layer()

    async def leave(self, model, watcher):
        label = _label(model)
        watchers = self._watchers.get(label, {})
        watchers.pop(watcher, None)
        if not watchers:
            self._watchers.pop(label, None)
        if self._watchers:
            return
        # Shielded: a socket cancelled as it leaves (its consumer's own timeout, say) would
        # otherwise leave the hub reading the log for nobody, and its next join would find a
        # feed that started long before it.
        await asyncio.shield(self._stop_unless_watched())

    async def _stop_unless_watched(self):
        async with self._membership:
            if not self._watchers:  # nobody joined while this waited
                await self._leave_layer()
                # Nor while it left the group: one who did found the tasks running, and joins
                # the group again once this is done.
                if not self._watchers:
                    await self._stop()

    async def caught_up(self):
        """Until the feed has read every change logged so far (at most `_CATCH_UP_SECONDS`): a
        snapshot taken then carries a position no older than the log, so a client that resumes
        from it is not sent again what the snapshot already had. Usually milliseconds: the
        feed is behind only while a commit's notification is on its way."""
        head = await live_queries.run(feed.log_head)
        await self.feed.read_up_to(head, _CATCH_UP_SECONDS)

    async def handle(self, changes, source="layer"):
        """Hand the changes of one transaction, and what they mean to the views that show their
        rows, to the watchers: one change per model and views, so a todo inserted and tagged in
        one transaction is one frame, not one per table."""
        # One batch at a time: were a later change handed out first at some sockets, those
        # sockets would see it before the earlier one.
        async with self._handling:
            targets, lost = [], set()
            for change in changes:
                targets += await self._targets(change, lost)
            handed = {}  # the watchers handed a change of it, in order
            for target in _merged(targets):
                await self._hand_out(target, source, handed)
            for watcher in handed:
                try:
                    await watcher.end_transaction()
                except Exception:
                    logger.exception("rest_live could not end a transaction's frames")

    async def _targets(self, change, lost):
        if change.truncated:
            await self._lose(change, lost)
            return []
        targets = [change] if change.model in self._watchers else []
        related = [
            dependency
            for dependency in registry.dependents(change.model)
            if _label(dependency.view_model) in self._watchers and dependency.concerns(change)
        ]
        if not related:
            return targets
        try:
            found = await live_queries.run(_affected, related, change)
        except Exception as error:
            logger.error(
                "rest_live could not find the rows that show change %s to %s (%s: %s); "
                "their subscriptions re-sync",
                change.position,
                change.model,
                type(error).__name__,
                error,
            )
            await self._lose(change, lost, related)
            return targets
        return targets + [
            change.about(label, pks, views) for label, (pks, views) in found.items() if pks
        ]

    async def _lose(self, change, lost, related=None):
        """Tell the watchers of `change`'s model, and of the views that show its rows, that
        they cannot follow it: their subscriptions re-sync, once per transaction (`lost`: the
        labels told so far), however many of its tables were truncated."""
        if related is None:
            related = registry.dependents(change.model)
        labels = {change.model} | {_label(dependency.view_model) for dependency in related}
        for label in labels - lost:
            lost.add(label)
            for watcher in list(self._watchers.get(label, ())):
                await watcher.lose_change(label)

    async def _hand_out(self, change, source, handed):
        metrics.CHANGES.labels(source).inc()
        watchers = list(self._watchers.get(change.model, ()))
        handed.update(dict.fromkeys(watchers))
        activity.debug(
            "change %s: %s %s, from the %s, for %d sockets",
            change.position,
            change.model,
            list(change.pks),
            source.replace("_", " "),
            len(watchers),
        )
        for watcher in watchers:
            watcher.begin_change(change)  # every evaluation starts before any is awaited
        for watcher in watchers:
            try:
                await watcher.take_change(change)
            except Exception:
                # A bug: the failures a change can meet are each watcher's to report.
                logger.exception("rest_live could not hand a change to a socket")

    async def _handle_logged(self, changes):
        await self.handle(changes, source="change_log")

    async def _join_layer(self):
        if self._layer is None or self._joined is not None or not self._watchers:
            return
        try:
            if self._channel is None:
                self._channel = await self._layer.new_channel()
                self._has_channel.set()
            await self._layer.group_add(GROUP, self._channel)
        except Exception as error:
            layer_outage.outage.failed(error)
            return
        layer_outage.outage.answered()
        self._joined = time.monotonic()

    async def _leave_layer(self):
        if self._joined is None:
            return
        self._joined = None
        try:
            await self._layer.group_discard(GROUP, self._channel)
        except Exception as error:
            layer_outage.outage.failed(error)

    async def _rejoin(self):
        """Join the group if the layer refused, or if the membership may have expired."""
        if self._joined is not None and time.monotonic() - self._joined < _REJOIN_SECONDS:
            return
        self._joined = None
        async with self._membership:
            await self._join_layer()

    async def _receive(self):
        while True:
            if self._layer is None:
                return
            if self._channel is None:
                # Not yet joined (the first subscription is joining now), or the layer refused:
                # receive as soon as there is a channel, and try again at each poll.
                self._has_channel.clear()
                try:
                    async with asyncio.timeout(conf.setting("CHANGE_POLL_SECONDS")):
                        await self._has_channel.wait()
                except TimeoutError:
                    pass
                continue
            try:
                message = await self._layer.receive(self._channel)
            except Exception as error:
                layer_outage.outage.failed(error)
                await asyncio.sleep(conf.setting("CHANGE_POLL_SECONDS"))
                continue
            layer_outage.outage.answered()
            if message.get("type") == WAKE_MESSAGE and not self._notified:
                # While the database notifies this process of every logged change, the
                # layer's wake-up for the same commit would only read the log a second time.
                self.feed.wake()
            elif message.get("type") == CHANGE_MESSAGE:
                await self.handle([Change.from_message(message)])

    async def _poll(self, feed):
        # Its own feed, never the next one: were it to outlive the hub's stop, it could read
        # where the log ends before the next join, which would then hand out what committed
        # in between, though the joiner reads it with its state.
        woken = False
        while True:
            try:
                await feed.poll(woken)
            except DatabaseError as error:
                # The database is unreachable, or restarting: try again at the next poll.
                logger.warning("rest_live could not read the change log: %s", error)
            except Exception:
                logger.exception("rest_live could not read the change log")
            await self._rejoin()
            await self._probe()
            woken = await feed.wait(conf.setting("CHANGE_POLL_SECONDS"))

    def _idle(self):
        return not self._handling.locked()

    def _hearing(self, notified):
        self._notified = notified

    async def _stop(self):
        tasks, self._tasks = self._tasks, ()
        listening, self._listening = self._listening, None
        for task in tasks:
            task.cancel()
        # A cancelled receive may delete its channel (channels_redis's pubsub layer does).
        self._channel = None
        self.feed = ChangeFeed(self._handle_logged)
        # A listener cancelled during its LISTEN has psycopg cancel that on the server, which
        # takes milliseconds; cancelled again meanwhile, as when the loop ends (a test's does
        # at once), psycopg abandons the connection with a warning. Let it finish. The others
        # need nothing done, and one reading the log may wait in a thread for the database.
        if listening is not None:
            await asyncio.wait([listening], timeout=_STOP_SECONDS)

    async def _probe(self):
        """While the layer is down, whether it answers again: channels_redis's pub/sub layer
        reconnects by itself, and says nothing when it has."""
        if self._layer is None or not layer_outage.outage.is_down():
            return
        try:
            async with asyncio.timeout(conf.setting("CHANGE_POLL_SECONDS")):
                await self._layer.group_send(_PROBE_GROUP, {"type": "rest_live.probe"})
        except Exception as error:
            layer_outage.outage.failed(error)
        else:
            layer_outage.outage.answered()


def _label(model):
    """Changes are logged under the model that owns the table: a proxy's are its concrete's."""
    return model._meta.concrete_model._meta.label


def _merged(targets):
    """`targets` with the changes of one model and set of views made one: the model's own
    changes first (every view), then what other changes mean to the views that show them,
    less the rows its own changes already cover."""
    own, shown = {}, {}
    for target in targets:
        group = own if target.views is None else shown.setdefault(target.model, {})
        key = target.model if target.views is None else target.views
        if key in group:
            earlier = group[key]
            target = Change(
                target.model,
                tuple(dict.fromkeys(earlier.pks + target.pks)),
                max(earlier.position, target.position),
                earlier.created | target.created,
                views=target.views,
                through=target.through,
            )
        group[key] = target
    yield from own.values()
    for label, by_views in shown.items():
        covered = set(own[label].pks) if label in own else set()
        for change in by_views.values():
            pks = tuple(pk for pk in change.pks if pk not in covered)
            if pks:
                yield Change(
                    change.model, pks, change.position, views=change.views, through=change.through
                )


def _affected(related, change):
    """{view model label: (pks of its rows that show the changed rows, the views that do)}: one
    query per distinct path, however many views follow it."""
    found, by_path = {}, {}
    for dependency in related:
        if dependency.hops not in by_path:
            by_path[dependency.hops] = dependencies.affected(dependency, change)
        pks, views = found.setdefault(_label(dependency.view_model), ({}, set()))
        pks.update(dict.fromkeys(by_path[dependency.hops]))
        views.add(dependency.view)
    return found


def hub():
    """The hub of the running event loop: one per server process."""
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = Hub(get_channel_layer())
    return found
