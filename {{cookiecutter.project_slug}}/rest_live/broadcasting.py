"""How a committed change leaves the writing process: model signals, the change log, `on_commit`,
the channel layer.

Any process that loads Django broadcasts (HTTP workers, admin, the shell, jobs): the signals are
connected when a router registers a view, and `AppConfig.ready` imports the routers. Each change is
written to the change log (models.Change) in the transaction of the write, then published on the
channel layer once that commits. Messages carry primary keys only; each server process evaluates
them per subscription (see subscriptions.py), and reads the log for any the layer lost (feed.py).
"""

import logging
import uuid
from functools import partial

from channels.layers import get_channel_layer
from django.db import DatabaseError, models, router, transaction
from django.db.models.signals import post_delete, post_save

from rest_live import metrics
from rest_live.publisher import publish

logger = logging.getLogger(__name__)

CHANGE_MESSAGE = "rest_live.change"  # dispatched to SubscriptionConsumer.rest_live_change


def group_name(model):
    """The channel layer group whose members hear about changes to `model`."""
    return f"rest_live.{model._meta.label_lower}"


def broadcast(target, pks=None):
    """Announce changes that bypass model signals, such as `QuerySet.update()` or `bulk_create()`.

    `target` is a model instance, a queryset (every row in it), or a model class with `pks`. Each
    subscriber then gets CREATED, UPDATED or DELETED as the rows now look to it; a pk whose row is
    gone is a deletion. Sent when the current transaction commits, or at once outside one.

        updated = list(Todo.objects.filter(done=False).values_list("pk", flat=True))
        Todo.objects.filter(pk__in=updated).update(done=True)
        broadcast(Todo, updated)
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


def _announce(model, pks, using, created=False):
    if pks:
        pks = [pk if isinstance(pk, int) else str(pk) for pk in pks]
        change = _record(model, pks, using, created)
        transaction.on_commit(partial(_send, model, pks, change, created), using=using)


def _record(model, pks, using, created):
    """Write the change to the log, in the write's transaction; its id, or a random one if the log
    cannot take it (then only the layer carries it)."""
    # Imported here: this module loads with the app (rest_live/__init__.py), before models can.
    from rest_live.models import Change

    if using != router.db_for_write(Change):
        return uuid.uuid4().hex  # the feed reads the log in one database only
    log = Change.objects.using(using)
    try:
        if not transaction.get_connection(using).in_atomic_block:
            return log.create(model=model._meta.label, pks=pks, created=created).pk
        # In a savepoint: should the insert fail (the log's table not migrated yet, say), the
        # write's own transaction goes on unharmed.
        with transaction.atomic(using=using):
            return log.create(model=model._meta.label, pks=pks, created=created).pk
    except DatabaseError as error:
        _log_unrecorded(model, error)
        return uuid.uuid4().hex


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


class _Outage:
    """Logs a channel layer outage once when it starts and once when it ends, not per write.

    One line each, without a traceback: an unreachable layer is an expected condition, and the
    changes it could not carry are in the change log.
    """

    def __init__(self):
        self.lost = 0

    def failed(self, model, pks, error):
        self.lost += 1
        if self.lost == 1:
            logger.error(
                "rest_live could not broadcast a change to %s %s: the channel layer is "
                "unreachable (%s: %s). Until it answers again, servers deliver changes from the "
                "change log (every REST_LIVE_CHANGE_POLL_SECONDS)",
                model._meta.label,
                pks,
                type(error).__name__,
                error,
            )
        else:
            logger.debug("rest_live could not broadcast %s %s", model._meta.label, pks)

    def ended(self):
        if self.lost:
            logger.warning(
                "rest_live reached the channel layer again; %d broadcasts could not be sent",
                self.lost,
            )
            self.lost = 0


_outage = _Outage()


def _send(model, pks, change, created):
    message = change_message(model._meta.label, pks, change, created)
    try:
        publish(get_channel_layer(), group_name(model), message)
    except Exception as error:
        # The write is committed and stays so, and so is its row in the change log, from which the
        # servers' feeds deliver it.
        metrics.PUBLISH_FAILURES.inc()
        _outage.failed(model, pks, error)
    else:
        _outage.ended()


def change_message(label, pks, change, created):
    """What the channel layer, or the feed, brings a consumer for one change.

    `created` says the write inserted these rows: subscribers that never saw them get CREATED.
    """
    return {
        "type": CHANGE_MESSAGE,
        "model": label,
        "pks": pks,
        "change": change,
        "created": created,
    }


def _on_save(sender, instance, created, using, **kwargs):
    _announce(sender, [instance.pk], using, created)


def _on_delete(sender, instance, using, **kwargs):
    _announce(sender, [instance.pk], using)


def connect_signals(model):
    """Broadcast every save and delete of `model`; safe to call more than once."""
    uid = f"rest_live.{model._meta.label_lower}"
    post_save.connect(_on_save, sender=model, dispatch_uid=uid)
    post_delete.connect(_on_delete, sender=model, dispatch_uid=uid)
