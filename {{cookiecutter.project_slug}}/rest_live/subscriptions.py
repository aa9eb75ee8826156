"""Identical subscriptions in one server process share one evaluation per change.

A `LiveSubscription` stands for every socket subscribed with the same view, action, lookup,
kwargs, query params and user. The first socket to receive a change evaluates it (one query, one
serialization); every other socket awaits that same result. Evaluations of one subscription run one
at a time, in the order the changes arrive, so its record of what is visible stays true.
"""

import asyncio
import weakref
from collections import OrderedDict

from channels.db import database_sync_to_async

# Changes whose outcome is kept for sockets that have not read it yet. A socket further behind
# than this re-evaluates, which costs a query but is still correct for it.
_KEPT_OUTCOMES = 256

_by_loop = weakref.WeakKeyDictionary()  # event loop -> {key: LiveSubscription}


class LiveSubscription:
    def __init__(self, key, subscriber):
        self.key = key
        self.subscriber = subscriber
        self.holders = 0
        self._visible = None  # {pk: lookup value}, loaded on start()
        self._lock = asyncio.Lock()
        self._outcomes = OrderedDict()  # change id -> [task, holders yet to read it]

    async def start(self):
        """Record what is visible now; the first holder does it, later ones find it done."""
        async with self._lock:
            if self._visible is None:
                self._visible = await database_sync_to_async(self.subscriber.visible_now)()

    async def changes(self, change_id, pks):
        """The broadcasts this change means for every holder, evaluated once."""
        entry = self._outcomes.get(change_id)
        if entry is None:
            # A task of its own, so a holder that disconnects mid-way cannot cancel it for the rest.
            task = asyncio.ensure_future(self._evaluate(pks))
            entry = self._outcomes[change_id] = [task, self.holders]
            if len(self._outcomes) > _KEPT_OUTCOMES:
                self._outcomes.popitem(last=False)
        entry[1] -= 1
        if entry[1] <= 0:
            self._outcomes.pop(change_id, None)
        return await asyncio.shield(entry[0])

    async def _evaluate(self, pks):
        async with self._lock:
            return await database_sync_to_async(self.subscriber.changes)(self._visible, pks)


def acquire(subscriber):
    """The shared subscription for `subscriber`, created on first use. Call `release` when done."""
    registry = _by_loop.setdefault(asyncio.get_running_loop(), {})
    key = subscriber.key()
    live = registry.get(key)
    if live is None:
        live = registry[key] = LiveSubscription(key, subscriber)
    live.holders += 1
    return live


def release(live):
    live.holders -= 1
    if live.holders <= 0:
        registry = _by_loop.get(asyncio.get_running_loop(), {})
        if registry.get(live.key) is live:
            del registry[live.key]


def shared_count():
    """How many distinct subscriptions this event loop holds (for tests and diagnostics)."""
    return len(_by_loop.get(asyncio.get_running_loop(), {}))
