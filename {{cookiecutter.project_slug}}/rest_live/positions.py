"""Where a client is in the change log: the `position` on every broadcast and snapshot, from
which a client that reconnects resumes (resume.py).

A position is "<epoch>.<n>": every change with a log id up to n was sent to the socket for the
subscriptions it concerned (n is the feed's `through`, feed.py, which waits for ids handed out
to transactions that have not committed yet, so it only grows in commit order). The epoch names
one log: a random token kept in the database (made again when its row is missing, as after a
flush or in a new database) and, on PostgreSQL, the database's own identity, which a restore
into another database or cluster changes. A position from another epoch is never taken for one
in this log.
"""

import hashlib
import secrets

from django.db import IntegrityError, connections, transaction

from rest_live.models import Change, LogState


class Unresumable(Exception):
    """A position the server cannot resume from; `reason` is the one the client is told."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


def epoch(using):
    """The epoch of the change log in database `using` (a short string)."""
    identity = f"{_state(using).token}:{_database_identity(using)}"
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


def text(epoch, through):
    """The position clients are sent; None when there is none (a change the log does not hold)."""
    if epoch is None or through is None:
        return None
    return f"{epoch}.{through}"


def check(position, current_epoch, using):
    """The log id of `position`, a string a client sent, if this log can resume from it."""
    found_epoch, _, number = position.rpartition(".")
    if not found_epoch or not number.isdigit() or len(number) > 19:
        raise Unresumable("unknown", "This is not a position the server sent.")
    if found_epoch != current_epoch:
        raise Unresumable(
            "epoch", "The position is from another change log (reset, or the database restored)."
        )
    through = int(number)
    state = _state(using)
    if through < state.floor:
        raise Unresumable("expired", "The change log no longer holds the changes after it.")
    newest = Change.objects.using(using).order_by("-id").values_list("id", flat=True).first()
    if through > max(newest or 0, state.floor):
        raise Unresumable("unknown", "The position is ahead of the change log.")
    return through


def raise_floor(using, floor):
    """Record that the log no longer holds changes up to `floor` (the pruner calls it)."""
    _state(using)
    LogState.objects.using(using).filter(pk=1, floor__lt=floor).update(floor=floor)


def _state(using):
    state = LogState.objects.using(using).filter(pk=1).first()
    if state is not None:
        return state
    try:
        with transaction.atomic(using=using):
            return LogState.objects.using(using).create(pk=1, token=secrets.token_hex(8))
    except IntegrityError:  # another process made it first
        return LogState.objects.using(using).get(pk=1)


def _database_identity(using):
    """On PostgreSQL, what changes when the database is restored elsewhere: its oid, and the
    cluster's system identifier where this role may read it."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.oid, CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE') "
            "THEN (SELECT system_identifier FROM pg_control_system()) END "
            "FROM pg_database d WHERE d.datname = current_database()"
        )
        oid, system = cursor.fetchone()
    return f"{oid}:{system}"
