"""Each server process reads the change log (models.Change) and hands its hub what is new.

The log holds every committed change of every table a live view reads: the capture triggers
write it in the transaction of the write, whatever made it (capture/), and so does
`broadcast()`. The feed reads it when woken (a Django write's wake-up on the channel layer, sent
after the commit) and at least every `REST_LIVE_CHANGE_POLL_SECONDS`, so a lost wake-up (the layer
down, a writer killed after its commit, another process on the in-memory layer) delays a change,
and never loses it. On PostgreSQL each trigger's NOTIFY carries the row it logged, and PostgreSQL
delivers a transaction's notifications together at its commit: the feed hands those rows out
without reading the log, and reads it when a notification comes without its row (a row too long
for a payload, `broadcast()`'s, or the listener reconnecting).

Change ids are handed out when rows are written, not when they commit, so a row with a lower id
can appear after a higher one. The feed keeps reading such a gap until the row appears: at every
read while it is young (`_YOUNG_GAP_SECONDS`), since concurrent transactions commit out of order
by milliseconds, then once every `REST_LIVE_CHANGE_POLL_SECONDS` however often it is woken. A
gap whose writer rolled back never fills. On PostgreSQL every writer of the log has its
transaction id before it takes a change id (the capture triggers run after the write they log,
and `broadcast()` asks for one first), so once a gap is seen, the first transaction id not yet
handed out (the xmax of a snapshot taken after that) is above its writer's: the feed gives the
gap up once every transaction below that has ended and the row is still not there, a second or
two after a rollback, and at its first read for the old ones a feed starts above.
Elsewhere it gives a gap up after as long as the log keeps changes
(`REST_LIVE_CHANGE_LOG_SECONDS`), as it does a transaction open longer than that.

So the id of a change is not a place in the log a client can resume from: the feed's `through`
is. Every change with an id up to it has been handed out (or given up as rolled back), and each
change is handed out with the `through` that holds once it has been (positions.py).
"""

import asyncio
import json
import logging
import time
from datetime import timedelta

from channels.db import database_sync_to_async
from django.db import DatabaseError, connections, router
from django.utils import timezone

from rest_live import conf, live_queries, positions
from rest_live.capture import triggers
from rest_live.changes import Change
from rest_live.models import Change as LoggedChange

logger = logging.getLogger(__name__)

# Constants, not settings: each trades a little database work for a little latency in rare cases,
# and no deployment needs another trade than these (those that do are settings:
# REST_LIVE_CHANGE_POLL_SECONDS, REST_LIVE_CHANGE_LOG_SECONDS).
#
# How long a gap (an id below the newest, not read yet) is looked for at every read, not only at
# the timed polls. Concurrent transactions commit out of order by milliseconds; 2 s leaves room
# for a commit held up by a slow fsync, a lock or a pause of the writer. Longer: the reads that
# wake-ups cause look up more ids (a rolled-back write's for this long). Shorter: a transaction
# that commits more than this after its first write, and whose rows no NOTIFY carried (NOTIFY
# off, a row too long for a payload), waits for the next timed poll.
_YOUNG_GAP_SECONDS = 2.0
# Log rows one read takes at most. A longer backlog (what piled up while the database was away; on
# SQLite, where each changed row is a log row, a transaction of more rows) is read a batch a poll,
# and a transaction longer than a batch reaches clients in parts. Every evaluation waits behind
# these reads on the database thread: larger holds them up longer and more rows in memory at
# once; smaller drains a backlog more slowly.
_BATCH = 2000
# Seconds between a process's deletions of the rows older than REST_LIVE_CHANGE_LOG_SECONDS; the
# log's epoch (positions.py) is read again with each, so a restored database is noticed within
# this. A tenth of the default 600 s keeps the table at most a tenth larger than what the log
# keeps, for one DELETE a minute per process: shorter deletes more often, longer keeps more rows.
_PRUNE_EVERY = 60.0
_RECENT = 256  # ids below the newest that may still be in open transactions when a feed starts


class ChangeFeed:
    """The change log as one process reads it; `deliver` is a coroutine function that takes
    the `Change`s of one transaction (one per model)."""

    def __init__(self, deliver):
        self._deliver = deliver
        self._newest = None  # the highest change id read so far
        self._gaps = {}  # ids below it that have not appeared yet -> when first missed
        self._ended_below = {}  # old gaps -> a transaction id that their writer's is below
        self._gaps_read = time.monotonic()  # when every gap was last read
        self._pruned = time.monotonic()  # the first prune a minute after starting
        self._woken = asyncio.Event()
        self._told = []  # log rows that notifications carried, since the last poll
        self._untold = False  # a wake-up came without its row: the next poll reads the log
        self.epoch = None  # the log's epoch (positions.py), read when the feed starts
        # PostgreSQL's commit markers (capture/triggers.py): the transactions whose every row's
        # notification has come, since the last poll; once one has been heard, a transaction's
        # rows are handed out only with its marker, so never in two parts.
        self._committed = set()
        self._marked = False
        self._reading = None  # a future done at the end of the next poll, for `read_up_to`

    @property
    def started(self):
        return self._newest is not None

    @property
    def through(self):
        """The highest change id up to which every change has been handed out; None before
        the feed starts."""
        if self._newest is None:
            return None
        return min(self._gaps, default=self._newest + 1) - 1

    async def start(self):
        """Read where the log ends, before any subscription reads its state: every change
        after this is delivered."""
        if self._newest is None:
            newest, present, epoch, marked, xmax = await database_sync_to_async(_newest_ids)()
            if self._newest is None:
                self.epoch = epoch
                self._marked = self._marked or marked
                now = time.monotonic()
                recent = range(max(newest - _RECENT, 0) + 1, newest)
                self._gaps = {i: now for i in recent if i not in present}
                if xmax is not None:  # a snapshot's taken after the reads: above their writers'
                    self._ended_below = dict.fromkeys(self._gaps, xmax)
                self._newest = newest

    def wake(self, payload=None):
        """Deliver what a commit logged now: the log row a notification carried (`payload`),
        or, without one, whatever the log holds."""
        marker = _marker(payload)
        if marker is not None:
            self._committed.add(marker)
            self._marked = True
        elif (row := _row(payload)) is None:
            self._untold = True
        else:
            self._told.append(row)
        self._woken.set()

    async def read_up_to(self, change_id, timeout):
        """Until the feed has read the log up to `change_id`, so that its `through` is as far as
        the log lets it be (True), or `timeout` seconds (False): a position sent with a state
        read now is then no older than that state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._newest is None or self._newest < change_id:
            self.wake()  # read the log itself: notifications may be on their way still
            if self._reading is None:
                self._reading = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self._reading)
            except TimeoutError:
                return False
        return True

    async def wait(self, timeout):
        """Until woken (True), or `timeout` seconds (False).

        With `asyncio.timeout`, not `wait_for`: on Python 3.11, `wait_for` cancelled just as
        what it waits for arrives returns it instead of raising, so a hub's poll stopped as a
        commit woke it went on polling, and read the next feed's start before its first join.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._woken.wait()
        except TimeoutError:
            return False
        return True

    async def poll(self, woken=False):
        """Deliver every change logged since the last poll. A poll that a commit `woken` looks
        only in the young gaps below the newest change, and not at all if the notifications
        carried their rows."""
        self._woken.clear()
        told, self._told = self._told, []
        untold, self._untold = self._untold, False
        committed, self._committed = self._committed, set()
        if self._newest is None:
            await self.start()
            return
        now = time.monotonic()
        # Gaps past their youth are read at the timed polls, and at least as often as those
        # come on a server woken more often: a long transaction's rows no notification
        # carried would otherwise wait for a quiet moment, or be given up.
        every_gap = not woken or now - self._gaps_read >= conf.setting("CHANGE_POLL_SECONDS")
        if woken and told and not untold and self._marked:
            # The rows of a transaction whose marker has not come yet wait for it (it is on
            # its way: a transaction's notifications come together, its marker last).
            self._told = [row for row in told if row[-1] not in committed]
            told = [row for row in told if row[-1] in committed]
        if woken and not untold and (told or self._told) and not (every_gap and self._gaps):
            # The rows that committed since the last poll are these: the others in the young
            # gaps will come with their own commits' notifications. (Without commit markers, a
            # transaction whose notifications fill more than one network read may be handed out
            # in two parts: each evaluation reads the rows as committed, so its subscribers stay
            # right, but a client cannot apply it in one step.)
            rows = sorted(told, key=_position)
            read, snapshot = [], None
        else:
            read = [
                change_id
                for change_id, since in self._gaps.items()
                if every_gap or now - since < _YOUNG_GAP_SECONDS
            ]
            if every_gap:
                self._gaps_read = now
            rows, snapshot = await live_queries.run(_read, self._newest, read)
            rows = sorted(rows + told, key=_position)  # a row read and told is handed out once
        fresh = []
        for row in rows:
            change_id = row[0]
            if change_id in self._gaps:
                del self._gaps[change_id]
                self._ended_below.pop(change_id, None)
            elif change_id > self._newest:
                for missing in range(self._newest + 1, change_id):
                    self._gaps[missing] = now
                self._newest = change_id
            else:
                continue
            fresh.append(row)
        if snapshot is not None:
            self._give_up_ended(read, snapshot)
        waiting = sorted(row[0] for row in fresh)  # ids not handed out yet, the lowest first
        handed = set()
        for rows in _by_transaction(fresh):
            handed.update(row[0] for row in rows)
            while waiting and waiting[0] in handed:
                waiting.pop(0)
            through = self.through if not waiting else min(self.through, waiting[0] - 1)
            await self._deliver(list(_coalesced(rows, through)))
        reading, self._reading = self._reading, None
        if reading is not None and not reading.done():
            reading.set_result(None)
        kept = conf.setting("CHANGE_LOG_SECONDS")
        for missing, since in list(self._gaps.items()):
            if now - since >= kept:
                del self._gaps[missing]  # open for too long: given up
                self._ended_below.pop(missing, None)
        if now - self._pruned > _PRUNE_EVERY:
            self._pruned = now
            self.epoch = await database_sync_to_async(_prune)()

    def _give_up_ended(self, read, snapshot):
        """Give up the gaps among those just `read` whose writer has ended without the row:
        it rolled back. `snapshot` is (xmin, xmax) of one taken before the read; every gap read
        was seen at an earlier read, so its writer's transaction id is below this xmax."""
        xmin, xmax = snapshot
        for missing in read:
            if missing not in self._gaps:
                continue  # it came
            below = self._ended_below.get(missing)
            if below is None:
                self._ended_below[missing] = xmax
            elif xmin >= below:
                del self._gaps[missing]  # its writer has ended, and the row is not there
                del self._ended_below[missing]


def _by_transaction(rows):
    """The rows of each transaction, in the order of their first. PostgreSQL's triggers log the
    writing transaction's id. SQLite's cannot: its rows read together are taken as one (each
    evaluation reads the rows as they are now, so one of all their keys shows what several
    would). A row `broadcast()` wrote is a change of its own."""
    transactions = {}
    for row in rows:
        txid = row[-1]
        key = ("announced", row[0]) if txid == LoggedChange.ANNOUNCED else txid
        transactions.setdefault(key, []).append(row[:-1])
    return transactions.values()


def _coalesced(rows, through=None):
    """One `Change` per model for one transaction's rows: a row it wrote twice is one change.
    `through` is the feed's once they are handed out."""
    merged = {}
    for change_id, label, pks, created, refs, columns in rows:
        entry = merged.setdefault(
            label,
            {
                "pks": {},
                "position": 0,
                "created": set(),
                "refs": {},
                "columns": set(),
                "all": False,
            },
        )
        entry["position"] = max(entry["position"], change_id)
        if pks is None:  # a TRUNCATE
            entry["all"] = True
            continue
        pks = [pk for pk in pks if pk is not None]
        entry["pks"].update(dict.fromkeys(pks))
        if created:
            entry["created"].update(pks)
        if columns is None or entry["columns"] is None:
            entry["columns"] = None
        else:
            entry["columns"].update(_flat(columns))
        for column, values in (refs or {}).items():
            entry["refs"].setdefault(column, {}).update(dict.fromkeys(values))
    for label, entry in merged.items():
        refs = {column: tuple(values) for column, values in entry["refs"].items()}
        columns = None if entry["columns"] is None else frozenset(entry["columns"])
        created = frozenset(entry["created"])
        yield Change(
            label,
            tuple(entry["pks"]),
            entry["position"],
            created,
            refs,
            columns,
            truncated=entry["all"],
            through=through,
        )


def _flat(columns):
    """Column names from a log row: a list, or (PostgreSQL, a statement's rows) a list of lists."""
    for item in columns:
        if isinstance(item, list):
            yield from (column for column in item if column)
        elif item:
            yield item


def _position(row):
    return row[0]


def _marker(payload):
    """The transaction id of a commit marker's payload, or None if it is not one."""
    if not payload or not payload.startswith(f'["{triggers.COMMITTED}"'):
        return None
    try:
        _name, txid = json.loads(payload)
    except (TypeError, ValueError):
        return None
    return txid if isinstance(txid, int) else None


def _row(payload):
    """A log row as `_read` returns it, from a notification's payload (triggers.py writes it);
    None if the payload is not one, and then the log is read."""
    try:
        row = tuple(json.loads(payload))
    except (TypeError, ValueError):
        return None
    if len(row) != 7 or any(
        not isinstance(value, kinds) for value, kinds in zip(row, _PAYLOAD_TYPES, strict=True)
    ):
        return None
    return row


# id, model, pks (null: a TRUNCATE), created, refs, columns, txid
_PAYLOAD_TYPES = (int, str, (list, type(None)), bool, (dict, type(None)), (list, type(None)), int)


def _newest_ids():
    """(the highest change id, the ids present among the last `_RECENT` below it, the log's
    epoch, whether its commits are marked, on PostgreSQL the xmax of a snapshot taken after
    those reads: None elsewhere)."""
    newest = log_head()
    recent = set(LoggedChange.objects.filter(id__gt=newest - _RECENT).values_list("id", flat=True))
    snapshot = _snapshot()
    return (
        newest,
        recent,
        positions.epoch(_using()),
        triggers.commits_marked(_using(), LoggedChange._meta.db_table),
        None if snapshot is None else snapshot[1],
    )


def _snapshot():
    """(xmin, xmax) of a snapshot taken now, on PostgreSQL; None elsewhere."""
    connection = connections[_using()]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT txid_snapshot_xmin(s), txid_snapshot_xmax(s) FROM txid_current_snapshot() s"
        )
        return cursor.fetchone()


def _read(newest, gaps):
    """(changes after `newest` (the oldest first, at most _BATCH) and those among `gaps`, and
    on PostgreSQL (xmin, xmax) of a snapshot taken before them: None elsewhere)."""
    fields = ("id", "model", "pks", "created", "refs", "columns", "txid")
    # Its own statement, so the reads' snapshots come after it: a transaction below its xmin
    # had ended before they began, and they see what it wrote if it committed.
    snapshot = _snapshot() if gaps else None
    rows = list(LoggedChange.objects.filter(id__gt=newest).values_list(*fields)[:_BATCH])
    if gaps:
        rows += LoggedChange.objects.filter(id__in=gaps).values_list(*fields)
    return rows, snapshot


def log_head():
    """The highest change id in the log (0 when it is empty)."""
    return LoggedChange.objects.order_by("-id").values_list("id", flat=True).first() or 0


def changes_after(through, labels, most):
    """(the changes logged after id `through` to the models `labels`, one `Change` per model
    (all their rows merged), and the ids of the log rows read); None if they are more than
    `most` rows."""
    fields = ("id", "model", "pks", "created", "refs", "columns")
    found = LoggedChange.objects.filter(id__gt=through, model__in=labels).values_list(*fields)
    rows = list(found[: most + 1])
    if len(rows) > most:
        return None
    return list(_coalesced(rows)), frozenset(row[0] for row in rows)


def _prune():
    """Delete the changes older than the log keeps; returns the log's epoch, read again (a
    database restored under a running server has another)."""
    keep = timezone.now() - timedelta(seconds=conf.setting("CHANGE_LOG_SECONDS"))
    try:
        old = LoggedChange.objects.filter(recorded__lt=keep)
        floor = old.order_by("-id").values_list("id", flat=True).first()
        if floor is not None:
            # First: a client resuming from before these is told they are gone, never
            # caught up without them.
            positions.raise_floor(_using(), floor)
            old.filter(id__lte=floor).delete()
    except DatabaseError:
        logger.warning("rest_live could not prune the change log", exc_info=True)
    return positions.epoch(_using())


def _using():
    return router.db_for_write(LoggedChange)
