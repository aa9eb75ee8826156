"""Each server process reads the change log (models.Change) and delivers what the layer did not.

The channel layer is the fast path: a writer publishes each change after its commit, in
milliseconds. It can lose one: the layer was down, the writer was killed between its commit and
its publish, or (with the in-memory layer) the writer was another process. The log cannot: its row
is written in the transaction of the write. So every `REST_LIVE_CHANGE_POLL_SECONDS` the feed reads
the changes logged since its last read and hands each one the layer has not brought to this
process's hub (hub.py), which gives it to the sockets as it gives them the layer's.

Change ids are handed out when rows are written, not when they commit, so a row with a lower id
can appear after a higher one. The feed keeps reading from below such a gap until the row
appears, or for `_GAP_SECONDS` (a transaction open longer than that, or one that rolled back).
"""

import logging
import time
from collections import OrderedDict
from datetime import timedelta

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone

from rest_live import conf
from rest_live.broadcasting import change_message
from rest_live.models import Change

logger = logging.getLogger(__name__)

_GAP_SECONDS = 60.0
_BATCH = 500  # changes read at most per poll; a longer backlog takes several polls
_PRUNE_EVERY = 60.0  # seconds between deletions of rows older than the log keeps


class RecentIds:
    """The last `size` change ids something has handled, to drop the second copy of a change."""

    def __init__(self, size=1024):
        self.size = size
        self._ids = OrderedDict()

    def add(self, change_id):
        """Record `change_id`; False if it was already there."""
        if change_id in self._ids:
            return False
        self._ids[change_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, change_id):
        return change_id in self._ids


class ChangeFeed:
    """The change log as one process reads it; the hub (hub.py) polls it and fans out what it reads.

    `deliver` is a coroutine function that takes one change message.
    """

    def __init__(self, deliver):
        self._deliver = deliver
        self._newest = None  # the highest change id read so far
        self._handled = set()  # ids above it that the layer already brought here
        self._gaps = {}  # ids below it that have not appeared yet -> when first missed
        self._pruned = 0.0

    def handled(self, change_id):
        """The layer brought `change_id` to this process: the feed need not deliver it."""
        if not isinstance(change_id, int) or self._newest is None:
            return
        if change_id > self._newest:
            self._handled.add(change_id)
        else:
            self._gaps.pop(change_id, None)

    async def poll(self):
        """Deliver every change logged since the last poll that the layer has not brought."""
        if self._newest is None:
            # Sockets take their state from the database when they subscribe: only changes
            # after that can be missing.
            self._newest = await database_sync_to_async(_newest_id)()
            return
        rows = await database_sync_to_async(_read)(self._newest, list(self._gaps))
        now = time.monotonic()
        for change_id, label, pks, created in rows:
            if change_id in self._gaps:
                del self._gaps[change_id]
            elif change_id > self._newest:
                for missing in range(self._newest + 1, change_id):
                    self._gaps[missing] = now
                self._newest = change_id
                if change_id in self._handled:
                    self._handled.discard(change_id)
                    continue
            else:
                continue  # a gap the layer filled while we read
            await self._deliver(change_message(label, pks, change_id, created))
        for missing, since in list(self._gaps.items()):
            if now - since >= _GAP_SECONDS:
                del self._gaps[missing]  # rolled back, or open for too long: given up
        if now - self._pruned > _PRUNE_EVERY:
            self._pruned = now
            await database_sync_to_async(_prune)()


def _newest_id():
    return Change.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _read(newest, gaps):
    """Changes after `newest` (the oldest first, at most _BATCH), and those among `gaps`."""
    fields = ("id", "model", "pks", "created")
    rows = list(Change.objects.filter(id__gt=newest).values_list(*fields)[:_BATCH])
    if gaps:
        rows += Change.objects.filter(id__in=gaps).values_list(*fields)
    return rows


def _prune():
    keep = timezone.now() - timedelta(seconds=conf.setting("CHANGE_LOG_SECONDS"))
    try:
        Change.objects.filter(recorded__lt=keep).delete()
    except DatabaseError:
        logger.warning("rest_live could not prune the change log", exc_info=True)
