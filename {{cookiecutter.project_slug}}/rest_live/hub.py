"""How changes reach a server process's sockets: through one hub per process, not one layer
channel per socket.

The hub holds one channel of the channel layer, joined to the group of each model that a socket
here watches, and reads the change log (feed.py) for what the layer loses. Each change it hears
of, from either, it hands to the consumers watching that model once, in one pass: the consumers
start their evaluations (each distinct subscription is evaluated once, subscriptions.py), then
each writes its frames straight to its socket. A socket costs no layer channel, no layer message
and no task wake-up per change.

A consumer that is busy (setting up a subscription, say) gets the change queued behind what it is
doing, so each socket still handles its messages one at a time and in order.

Should the layer be unreachable, joining a group fails quietly: the feed delivers that model's
changes meanwhile, and the hub joins again at each poll of the feed until the layer answers.
"""

import asyncio
import logging
import time
import weakref

from channels.layers import get_channel_layer
from django.db import DatabaseError

from rest_live import conf, metrics
from rest_live.broadcasting import group_name
from rest_live.feed import ChangeFeed, RecentIds

logger = logging.getLogger(__name__)
activity = logging.getLogger("rest_live.activity")

# The core Redis layer expires group memberships (a day, by default): they are renewed this often.
_REJOIN_SECONDS = 3600.0

_by_loop = weakref.WeakKeyDictionary()  # event loop -> Hub


class Hub:
    """The sockets of one process that watch each model, and the changes they are handed."""

    def __init__(self, layer):
        self._layer = layer
        self._watchers = {}  # model label -> {consumer: None}, in the order they joined
        self._groups = {}  # model label -> its layer group
        self._joined = {}  # model label -> when its group was joined
        self._membership = asyncio.Lock()  # one change of layer membership at a time
        self._handling = asyncio.Lock()  # one change handed out at a time (see `handle`)
        self._channel = None
        self._tasks = ()  # (receiving from the layer, polling the feed) while anyone watches
        self._seen = RecentIds(4096)  # changes handed out, so the other copy is dropped
        self._unreachable = False  # the layer failed, and has not answered since
        self.feed = ChangeFeed(self._handle_logged)

    async def join(self, model, consumer):
        """Hand `consumer` the changes to `model` from now on, whether or not the layer answers."""
        label = model._meta.label
        self._watchers.setdefault(label, {})[consumer] = None
        self._groups[label] = group_name(model)
        if not self._tasks:
            self._tasks = (
                asyncio.ensure_future(self._receive()),
                asyncio.ensure_future(self._poll()),
            )
        if label not in self._joined:
            async with self._membership:
                await self._join_layer(label)

    async def leave(self, model, consumer):
        label = model._meta.label
        watchers = self._watchers.get(label, {})
        watchers.pop(consumer, None)
        if watchers:
            return
        async with self._membership:
            if self._watchers.get(label):
                return  # someone joined while this waited
            self._watchers.pop(label, None)
            await self._leave_layer(label)
            if not self._watchers:
                self._stop()

    async def handle(self, message, source="layer"):
        """Hand one change, from the layer or the feed, to each consumer watching its model."""
        # One change at a time: were the feed's to overtake the layer's at some consumers, those
        # sockets would see the later change first.
        async with self._handling:
            await self._hand_out(message, source)

    async def _hand_out(self, message, source):
        if not self._seen.add(message["change"]):
            return  # the layer and the feed both brought it
        self.feed.handled(message["change"])
        metrics.CHANGES.labels(source).inc()
        consumers = list(self._watchers.get(message["model"], ()))
        activity.debug(
            "change %s: %s %s, from the %s, for %d sockets",
            message["change"],
            message["model"],
            message["pks"],
            source.replace("_", " "),
            len(consumers),
        )
        for consumer in consumers:
            consumer.begin_change(message)  # every evaluation starts before any is awaited
        for consumer in consumers:
            try:
                await consumer.take_change(message)
            except Exception:
                # A bug: the failures a change can meet are each consumer's to report.
                logger.exception("rest_live could not hand a change to a socket")

    async def _handle_logged(self, message):
        await self.handle(message, source="change_log")

    async def _join_layer(self, label):
        if self._layer is None or label in self._joined or label not in self._watchers:
            return
        try:
            if self._channel is None:
                self._channel = await self._layer.new_channel()
            await self._layer.group_add(self._groups[label], self._channel)
        except Exception as error:
            self._failed(error)
            return
        self._answered()
        self._joined[label] = time.monotonic()

    async def _leave_layer(self, label):
        if self._joined.pop(label, None) is None:
            return
        try:
            await self._layer.group_discard(self._groups[label], self._channel)
        except Exception as error:
            self._failed(error)

    async def _rejoin(self):
        """Join the groups the layer refused, and those whose membership may have expired."""
        stale = time.monotonic() - _REJOIN_SECONDS
        for label in list(self._watchers):
            if self._joined.get(label, stale) <= stale:
                self._joined.pop(label, None)
                async with self._membership:
                    await self._join_layer(label)

    async def _receive(self):
        while True:
            if self._channel is None or self._layer is None:
                await asyncio.sleep(conf.setting("CHANGE_POLL_SECONDS"))
                continue
            try:
                message = await self._layer.receive(self._channel)
            except Exception as error:
                self._failed(error)
                await asyncio.sleep(conf.setting("CHANGE_POLL_SECONDS"))
                continue
            self._answered()
            if message.get("type") == "rest_live.change":
                await self.handle(message)

    async def _poll(self):
        while True:
            try:
                await self.feed.poll()
            except DatabaseError as error:
                # The database is unreachable, or restarting: try again at the next poll.
                logger.warning("rest_live could not read the change log: %s", error)
            except Exception:
                logger.exception("rest_live could not read the change log")
            await self._rejoin()
            await asyncio.sleep(conf.setting("CHANGE_POLL_SECONDS"))

    def _stop(self):
        for task in self._tasks:
            task.cancel()
        self._tasks = ()
        # A cancelled receive may delete its channel (channels_redis's pubsub layer does).
        self._channel = None
        self.feed = ChangeFeed(self._handle_logged)

    def _failed(self, error):
        if not self._unreachable:
            self._unreachable = True
            logger.warning(
                "rest_live cannot reach the channel layer (%s: %s); this process delivers "
                "changes from the change log until it answers",
                type(error).__name__,
                error,
            )

    def _answered(self):
        if self._unreachable:
            self._unreachable = False
            logger.warning("rest_live reached the channel layer again")


def hub():
    """The hub of the running event loop: one per server process."""
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = Hub(get_channel_layer())
    return found
