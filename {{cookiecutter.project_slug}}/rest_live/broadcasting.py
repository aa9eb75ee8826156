"""How a committed change leaves the writing process.

The database's capture triggers (capture/) write each change of every table a live view reads to
the change log, in the transaction of the write, whatever made it: `save()`, `QuerySet.update()`,
bulk operations, raw SQL, another program. Django's own writes also announce themselves through
model signals (`post_save`, `post_delete`, `m2m_changed` of each captured model): once the
transaction commits, a wake-up goes out on the channel layer, so servers read the log at once
rather than at their next poll. `broadcast()` logs changes that no table records.
"""

import logging
import uuid
from functools import partial

from channels.layers import get_channel_layer
from django.db import DatabaseError, models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from rest_live import layer_outage, metrics
from rest_live.capture import listener
from rest_live.capture.triggers import NOTIFY_CHANNEL
from rest_live.changes import Change, wake_message
from rest_live.publisher import publish

logger = logging.getLogger(__name__)

# The layer group of every server process that has sockets watching anything.
GROUP = "rest_live.changes"


def broadcast(target, pks=None):
    """Announce changes that no captured table records: what a view shows from elsewhere (a
    cache, a file, a table in another database), or rows a `SerializerMethodField` reads.

    Writes to the tables a live view reads need no call: the capture sees every one of them.
    `target` is a model instance, a queryset (every row in it), or a model class with `pks`. Each
    subscriber then gets CREATED, UPDATED or DELETED as the rows now look to it; a pk whose row is
    gone is a deletion. Sent when the current transaction commits, or at once outside one.

        broadcast(Todo, [todo.pk for todo in todos_whose_weather_changed])
    """
    if isinstance(target, models.Model):
        model, pks, using = type(target), [target.pk], router.db_for_write(type(target))
    elif isinstance(target, models.QuerySet):
        model, using = target.model, target.db
        pks = list(target.values_list("pk", flat=True))
    elif isinstance(target, type) and issubclass(target, models.Model) and pks is not None:
        model, pks, using = target, list(pks), router.db_for_write(target)
    else:
        raise TypeError(
            "broadcast() takes a model instance, a queryset, or a model class with a list of pks."
        )
    _announce(model, pks, using)


def _announce(model, pks, using):
    if pks:
        pks = [pk if isinstance(pk, int) else str(pk) for pk in pks]
        position = _record(model, pks, using)
        if isinstance(position, int):
            _wake_after_commit(using)
        else:
            change = Change(model._meta.label, tuple(pks), position)
            transaction.on_commit(partial(_send, change.message(), model), using=using)


def _record(model, pks, using, created=False):
    """Write the change to the log, in the write's transaction; its id, or a random one if the log
    cannot take it (then only the layer carries it)."""
    # Imported here: this module loads with the app (rest_live/__init__.py), before models can.
    from rest_live.models import Change

    if using != router.db_for_write(Change):
        return uuid.uuid4().hex  # the feed reads the log in one database only
    log = Change.objects.using(using)
    try:
        fields = {"model": model._meta.label, "pks": pks, "created": created}
        fields["txid"] = Change.ANNOUNCED
        # In a transaction of its own, or in a savepoint of the write's: should the insert fail
        # (the log's table not migrated yet, say), the write's own transaction goes on unharmed.
        with transaction.atomic(using=using):
            return _logged(log, fields, using)
    except DatabaseError as error:
        _log_unrecorded(model, error)
        return uuid.uuid4().hex


def _logged(log, fields, using):
    """Insert the log row, and notify the listening servers as the capture triggers do."""
    connection = transaction.get_connection(using)
    if connection.vendor == "postgresql":
        # The transaction's id before the row's change id, as the triggers' writes have it:
        # the feed gives up a change id that never appears once every transaction that might
        # have taken it has ended, which it can tell only so (feed.py).
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
    position = log.create(**fields).pk
    if listener.can_listen(using):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return position


_unrecorded = set()  # models whose changes the log could not take, already logged once


def _log_unrecorded(model, error):
    level = logging.DEBUG if model._meta.label in _unrecorded else logging.ERROR
    _unrecorded.add(model._meta.label)
    logger.log(
        level,
        "rest_live could not write a change to %s to the change log (%s); it is broadcast, but "
        "not recovered if the broadcast is lost. Has `manage.py migrate` run?",
        model._meta.label,
        error,
    )


def _send(message, model=None):
    try:
        publish(get_channel_layer(), GROUP, message)
    except Exception as error:
        # The write is committed and stays so, and so is its row in the change log, from which the
        # servers' feeds deliver it.
        metrics.PUBLISH_FAILURES.inc()
        what = "a change" if model is None else f"a change to {model._meta.label}"
        layer_outage.outage.failed(error, announcing=what)
    else:
        layer_outage.outage.answered()


def _wake():
    _send(wake_message())


def _wake_after_commit(using):
    """Wake the servers once this transaction commits (once, however many rows it writes)."""
    connection = transaction.get_connection(using)
    if connection.in_atomic_block and any(entry[1] is _wake for entry in connection.run_on_commit):
        return
    transaction.on_commit(_wake, using=using)


def _log_database():
    from rest_live.models import Change as LoggedChange

    return router.db_for_write(LoggedChange)


def _on_write(sender, using, instance=None, **kwargs):
    if using == _log_database():
        _wake_after_commit(using)  # the capture logged it; the servers need only hear of it
    elif instance is not None and kwargs.get("signal") is not m2m_changed:
        # A database without the log: the change travels whole, on the layer only.
        _announce(sender, [instance.pk], using)


def connect_signals(model):
    """Wake the servers after every Django write to `model`; safe to call more than once."""
    uid = f"rest_live.{model._meta.label_lower}"
    post_save.connect(_on_write, sender=model, dispatch_uid=uid)
    post_delete.connect(_on_write, sender=model, dispatch_uid=uid)
    m2m_changed.connect(_on_write, sender=model, dispatch_uid=uid)
