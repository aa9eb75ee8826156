"""Identical subscriptions in one server process share one evaluation per change.

A `LiveSubscription` stands for every socket subscribed with the same view, action, lookup,
kwargs, query params and login (`Subscriber.key`). The first socket to receive a change evaluates
it (one query, one serialization); every other socket awaits that same result. Evaluations of one
subscription run one at a time, in the order the changes arrive, so its record of what is visible
stays true. Snapshots take their turn in that same order, so a socket can tell which outcomes are
older than its snapshot.
"""

import asyncio
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace

from channels.db import database_sync_to_async

from rest_live import live_queries, metrics

activity = logging.getLogger("rest_live.activity")

# Changes whose outcome is kept for sockets that have not read it yet. A socket further behind
# than this re-evaluates, which costs a query but is still correct for it.
_KEPT_OUTCOMES = 256

_by_loop = weakref.WeakKeyDictionary()  # event loop -> {key: LiveSubscription}


@dataclass(frozen=True)
class Snapshot:
    instances: str  # a rendered JSON array
    truncated: bool
    visible: dict  # {pk: lookup value} of the whole list when the snapshot was taken
    after: int  # the evaluations it already includes: outcomes up to this one are older
    matches: bool  # the shared record of what is visible agreed with it


class LiveSubscription:
    def __init__(self, key, subscriber, visible=None):
        self.key = key
        self.subscriber = subscriber
        self.holders = 0
        self._visible = visible  # {pk: lookup value}, loaded on start() or the first snapshot
        self._lock = asyncio.Lock()
        self._outcomes = OrderedDict()  # change id -> [task, holders yet to read it]
        self._clock = 0  # evaluations so far, to order snapshots and outcomes

    async def start(self):
        """Record what is visible now; the first holder does it, later ones find it done."""
        async with self._lock:
            if self._visible is None:
                self._visible = await database_sync_to_async(self.subscriber.visible_now)()

    async def snapshot(self, subscriber, limit):
        """The state as `subscriber` sees it now, taken in turn with the change evaluations."""
        async with self._lock:
            take = database_sync_to_async(subscriber.snapshot)
            instances, truncated, visible = await take(limit)
            if self._visible is None:
                self._visible = visible
            return Snapshot(instances, truncated, visible, self._clock, visible == self._visible)

    async def changes(self, change_id, pks, after=0):
        """The broadcasts this change means for every holder, evaluated once.

        A holder whose snapshot was taken after evaluation number `after` gets nothing from the
        evaluations up to it: its snapshot is newer than they are.
        """
        entry = self.begin(change_id, pks)
        entry[1] -= 1
        if entry[1] <= 0:
            self._outcomes.pop(change_id, None)
        clock, events = await asyncio.shield(entry[0])
        return events if clock > after else []

    def begin(self, change_id, pks):
        """Start evaluating a change, unless it is already: [task, holders yet to read it]."""
        entry = self._outcomes.get(change_id)
        if entry is None:
            # A task of its own, so a holder that disconnects mid-way cannot cancel it for the rest.
            task = asyncio.ensure_future(self._evaluate(change_id, pks))
            entry = self._outcomes[change_id] = [task, self.holders]
            if len(self._outcomes) > _KEPT_OUTCOMES:
                self._outcomes.popitem(last=False)
        return entry

    async def _evaluate(self, change_id, pks):
        async with self._lock:
            try:
                with metrics.EVALUATION_SECONDS.time():
                    events = await self._changes(pks)
            except Exception as error:
                activity.debug(
                    "change %s, %s: evaluation failed (%s: %s)",
                    change_id,
                    self.subscriber.describe(),
                    type(error).__name__,
                    error,
                )
                raise
            self._clock += 1
            if activity.isEnabledFor(logging.DEBUG):
                self._log_outcome(change_id, events)
            return self._clock, events

    async def _changes(self, pks):
        # `changes` leaves the record untouched when it raises, so running it again is safe.
        return await live_queries.run(self.subscriber.changes, self._visible, pks)

    def _log_outcome(self, change_id, events):
        about = f"change {change_id}, {self.subscriber.describe()}"
        for action, pk, _instance in events:
            activity.debug("%s: sent %s pk %s to %d sockets", about, action, pk, self.holders)
        if self.subscriber.refusal:
            activity.debug("%s: refused by %s", about, self.subscriber.refusal)
        elif not events:
            activity.debug("%s: not visible before or after", about)


def acquire(subscriber):
    """The shared subscription for `subscriber`, created on first use. Call `release` when done."""
    registry = _by_loop.setdefault(asyncio.get_running_loop(), {})
    key = subscriber.key()
    live = registry.get(key)
    if live is None:
        live = registry[key] = LiveSubscription(key, subscriber)
    live.holders += 1
    return live


async def acquire_started(subscriber):
    """The shared subscription for `subscriber`, knowing what is visible now."""
    live = acquire(subscriber)
    try:
        await live.start()
    except BaseException:
        release(live)
        raise
    return live


async def acquire_with_snapshot(subscriber, limit):
    """(LiveSubscription, Snapshot) for `subscriber`: like `acquire`, plus the state now."""
    live = acquire(subscriber)
    try:
        snapshot = await live.snapshot(subscriber, limit)
    except BaseException:
        release(live)
        raise
    if snapshot.matches:
        return live, snapshot
    # The shared record is behind the database: changes on their way to the other holders will
    # update it. Overwriting it now would hide those changes from them, so this socket gets a
    # subscription of its own that starts from its snapshot, and its broadcasts agree with it.
    release(live)
    own = LiveSubscription(live.key, subscriber, visible=snapshot.visible)
    own.holders = 1
    return own, replace(snapshot, after=0, matches=True)


def release(live):
    live.holders -= 1
    if live.holders <= 0:
        registry = _by_loop.get(asyncio.get_running_loop(), {})
        if registry.get(live.key) is live:
            del registry[live.key]


def shared_count():
    """How many distinct subscriptions this event loop holds (for tests and diagnostics)."""
    return len(_by_loop.get(asyncio.get_running_loop(), {}))


metrics.DISTINCT_SUBSCRIPTIONS.set_function(
    lambda: sum(len(registry) for registry in list(_by_loop.values()))
)
