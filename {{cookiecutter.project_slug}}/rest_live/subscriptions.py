"""Identical subscriptions in one server process share one evaluation per change, and distinct
ones are evaluated together.

A `LiveSubscription` stands for every socket subscribed with the same view, action, lookup,
kwargs, query params and login (`Subscriber.key`). A change is evaluated once for it; every socket
that holds it awaits that same result. The distinct subscriptions a change concerns are evaluated
in one batch: one query says which changed rows each one sees (multiplex.py), and only those
that see a row, or saw it, read and render it, so a write costs little for subscriptions that
cannot see it. Evaluations of one subscription run one at a time, in the order the changes
arrive, so its record of what is visible stays true. Snapshots take their turn in that same
order, so a socket can tell which outcomes are older than its snapshot.
"""

import asyncio
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import partial

from channels.db import database_sync_to_async
from django.db import DatabaseError, connections, router

from rest_live import identity, live_queries, metrics, multiplex, resume
from rest_live.subscriber import NOTHING, keys

activity = logging.getLogger("rest_live.activity")

# Changes whose outcome (the frames it means to this subscription) one subscription keeps for
# holders that have not read it yet; an outcome goes as soon as every holder has. A socket falls
# behind while it is busy (a snapshot, a slow send) and changes keep coming: at a hundred changes
# a second, 256 lets it be busy for 2.5 s. One further behind re-evaluates on its own each change
# it missed, a query each, still correct for it. Larger keeps more rendered frames in memory for
# a lagging socket; smaller makes lagging cost queries sooner. A constant: it bounds memory, not
# anything a client sees.
_KEPT_OUTCOMES = 256

_by_loop = weakref.WeakKeyDictionary()  # event loop -> {key: LiveSubscription}


@dataclass(frozen=True)
class Snapshot:
    instances: str  # a rendered JSON array
    truncated: bool
    pks: list  # the primary keys of `instances`, in their order
    visible: dict  # {pk: lookup value} of the whole list when the snapshot was taken
    after: int  # the evaluations it already includes: outcomes up to this one are older
    matches: bool  # the shared record of what is visible agreed with it


@dataclass(frozen=True)
class CatchUp:
    events: list  # [(action, pk, rendered instance)] of what changed after the client's position
    after: int  # the evaluations it already includes, as for a `Snapshot`
    carried: frozenset  # the change ids whose effects `events` shows


class LiveSubscription:
    def __init__(self, key, subscriber, visible=None):
        self.key = key
        self.subscriber = subscriber
        self.holders = 0
        self._visible = visible  # {pk: lookup value}, loaded on start() or the first snapshot
        self._turn = None  # a future done when the last evaluation or snapshot queued is
        self._outcomes = OrderedDict()  # change id -> [future of (clock, events), holders left]
        self._clock = 0  # evaluations so far, to order snapshots and outcomes

    async def start(self):
        """Record what is visible now; the first holder does it, later ones find it done."""

        async def load():
            if self._visible is None:
                self._visible = await database_sync_to_async(self.subscriber.visible_now)()

        await self._in_turn(load)

    async def snapshot(self, subscriber, limit):
        """The state as `subscriber` sees it now, taken in turn with the change evaluations."""

        async def take():
            taken = await database_sync_to_async(subscriber.snapshot)(limit)
            instances, truncated, visible, pks = taken
            if self._visible is None:
                self._visible = visible
            matches = visible == self._visible
            return Snapshot(instances, truncated, pks, visible, self._clock, matches)

        return await self._in_turn(take)

    async def catch_up(self, subscriber, position, epoch):
        """What changed after `position` for `subscriber`, taken in turn with the change
        evaluations (resume.py); raises `positions.Unresumable`."""

        async def take():
            if self._visible is None:
                self._visible = await database_sync_to_async(self.subscriber.visible_now)()
            events, carried = await database_sync_to_async(resume.catch_up)(
                subscriber, position, epoch, len(self._visible)
            )
            return CatchUp(events, self._clock, carried)

        return await self._in_turn(take)

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
        """Start evaluating a change, unless it is already: [future, holders yet to read it].

        A subscription with nothing queued joins the change's batch: every subscription that
        begins the change in this turn of the event loop is evaluated with it, together (one
        query for all, multiplex.py). One still busy (a snapshot, an earlier change) evaluates
        the change on its own once done, so its evaluations stay in order.
        """
        entry = self._outcomes.get(change_id)
        if entry is None:
            if self._turn is None or self._turn.done():
                outcome = self._turn = _Batch.join(change_id, pks, self)
            else:
                # A task of its own, so a holder that disconnects cannot cancel it for the rest.
                outcome = asyncio.ensure_future(
                    self._in_turn(partial(self._evaluate_alone, change_id, pks))
                )
            entry = self._outcomes[change_id] = [outcome, self.holders]
            if len(self._outcomes) > _KEPT_OUTCOMES:
                self._outcomes.popitem(last=False)
        return entry

    async def _in_turn(self, operation):
        """`operation()`, once every evaluation and snapshot queued before it is done."""
        previous = self._turn
        done = self._turn = asyncio.get_running_loop().create_future()
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
        except asyncio.CancelledError:
            # What is queued after this must still wait for what is queued before it.
            previous.add_done_callback(lambda _: done.done() or done.set_result(None))
            raise
        try:
            return await operation()
        finally:
            if not done.done():
                done.set_result(None)

    def is_held(self):
        """Whether any socket still holds it: one released (every holder closed or
        unsubscribed) is not evaluated again, however much is queued for it."""
        return self.holders > 0

    async def _evaluate_alone(self, change_id, pks):
        if not self.is_held():
            return self._clock, []
        with metrics.EVALUATION_SECONDS.time():
            try:
                # `changes` leaves the record untouched, so running it again is safe.
                outcome = await live_queries.run(
                    self.subscriber.changes, self._visible, keys(self.subscriber.model, pks)
                )
            except Exception as error:
                self._log_failure(change_id, error)
                raise
        return self.finish(change_id, outcome)

    def finish(self, change_id, outcome):
        """Apply a change's `Outcome` to the record: (this evaluation's number, its events)."""
        outcome.apply(self._visible)
        self._clock += 1
        if activity.isEnabledFor(logging.DEBUG):
            self._log_outcome(change_id, outcome.events)
        return self._clock, outcome.events

    def _log_failure(self, change_id, error):
        activity.debug(
            "change %s, %s: evaluation failed (%s: %s)",
            change_id,
            self.subscriber.describe(),
            type(error).__name__,
            error,
        )

    def _log_outcome(self, change_id, events):
        about = f"change {change_id}, {self.subscriber.describe()}"
        for action, pk, _instance in events:
            activity.debug("%s: sent %s pk %s to %d sockets", about, action, pk, self.holders)
        if self.subscriber.refusal:
            activity.debug("%s: refused by %s", about, self.subscriber.refusal)
        elif not events:
            activity.debug("%s: not visible before or after", about)


class _Batch:
    """The subscriptions that begin one change in one turn of the event loop (the hub begins it
    for every socket before it awaits any), evaluated together in one call to the database
    thread: one query says which changed rows each of them sees, and only those that see one,
    or saw one, read and render it."""

    _gathering = weakref.WeakKeyDictionary()  # event loop -> {change id: _Batch}

    def __init__(self, key, change_id, pks):
        self.key = key
        self.change_id = change_id
        self.pks = pks
        self.members = []  # [(LiveSubscription, future of (clock, events))]

    @classmethod
    def join(cls, change_id, pks, live):
        """A future of `live`'s (clock, events) for this change."""
        loop = asyncio.get_running_loop()
        gathering = cls._gathering.setdefault(loop, {})
        # A change to a related row is handed out under that row's change id: the model and
        # the rows tell it from the change it came from.
        key = (change_id, live.subscriber.model._meta.label, tuple(pks))
        batch = gathering.get(key)
        if batch is None:
            batch = gathering[key] = cls(key, change_id, pks)
            asyncio.ensure_future(batch._run(gathering))  # runs once this turn is over
        future = loop.create_future()
        batch.members.append((live, future))
        return future

    async def _run(self, gathering):
        if gathering.get(self.key) is self:
            del gathering[self.key]
        members = [(live.subscriber, live._visible, live.is_held) for live, _future in self.members]
        try:
            with metrics.EVALUATION_SECONDS.time():
                outcomes = await live_queries.run(evaluate_together, members, self.pks)
        except BaseException as error:
            for live, future in self.members:
                live._log_failure(self.change_id, error)
                _settle(future, error=error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        for (live, future), outcome in zip(self.members, outcomes, strict=True):
            if not live.is_held():
                _settle(future, (live._clock, []))  # nobody reads it: nothing to record
            elif isinstance(outcome, Exception):
                live._log_failure(self.change_id, outcome)
                _settle(future, error=outcome)
            else:
                _settle(future, live.finish(self.change_id, outcome))


def _settle(future, result=None, error=None):
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
        future.exception()  # holders that left may never read it: not worth a warning


def evaluate_together(members, pks):
    """[an `Outcome`, or the exception its evaluation raised] for each (subscriber, record of
    what it sees, whether it is still held) in `members`, all subscribed to the changed model.
    Records are not touched.

    Runs in the database thread, and a change's batch may wait there behind others: those that
    no socket holds any more by then (a client that opened many and left) cost nothing. A
    subscription whose evaluation meets a `DatabaseError` (its connection dropped, say) is
    evaluated once more on a fresh connection.
    """
    pks = keys(members[0][0].model, pks)
    held = [i for i, (_subscriber, _visible, is_held) in enumerate(members) if is_held()]
    logins = identity.check([members[i][0].proof for i in held])
    prepared = [_DROPPED] * len(members)
    for i, vouched in zip(held, logins, strict=True):
        subscriber = members[i][0]
        prepared[i] = _retried(subscriber, subscriber.prepare, vouched)
    asking = [
        i
        for i, ready in enumerate(prepared)
        if ready is not _DROPPED
        and not isinstance(ready, Exception)
        and ready.visibility is not None
    ]
    seen = {}
    if len(asking) > 1 and len(pks) <= multiplex.MAX_KEYS:
        try:
            found = multiplex.seen([prepared[i].visibility for i in asking], pks)
        except DatabaseError as error:
            # Each is then asked on its own, as if it were alone.
            connections[prepared[asking[0]].visibility.using].close()
            activity.debug("the subscriptions could not be asked together (%s)", error)
        else:
            seen = {asking[j]: rows for j, rows in found.items()}
    shared = {}  # render key -> {pk: (lookup value, rendered)}, one rendering for all of them
    outcomes = []
    for i, (subscriber, visible, _held) in enumerate(members):
        ready = prepared[i]
        if ready is _DROPPED:
            ready = NOTHING
        elif not isinstance(ready, Exception):
            key = subscriber.render_key()
            renderings = None if key is None else shared.setdefault(key, {})
            ready = _retried(
                subscriber, subscriber.changes, visible, pks, ready, seen.get(i), renderings
            )
        outcomes.append(ready)
    return outcomes


_DROPPED = object()  # a member of a batch that no socket holds any more


def _retried(subscriber, function, *args):
    """`function(*args)`, once more on a fresh connection after a `DatabaseError`; the
    exception it raised the last time, if it did."""
    try:
        return function(*args)
    except DatabaseError:
        connections[router.db_for_read(subscriber.model)].close()
    except Exception as error:
        return error
    try:
        return function(*args)
    except Exception as error:
        return error


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


async def acquire_caught_up(subscriber, position, epoch):
    """(LiveSubscription, CatchUp) for `subscriber`, resuming from `position`: like `acquire`,
    plus what changed after it. Raises `positions.Unresumable`, having released it."""
    live = acquire(subscriber)
    try:
        return live, await live.catch_up(subscriber, position, epoch)
    except BaseException:
        release(live)
        raise


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
