"""What a subscription missed while its client was away: the objects that changed after the
client's position (positions.py), each as the view shows it to the subscriber now, so that a
client that reconnects catches up without a snapshot (docs/protocol.md, "Resuming").

A catch-up never carries more objects than a snapshot would: when it would, or when the log
cannot say what changed, the client is told why (`Unresumable`) and gets a snapshot instead.
"""

from django.db import router

from rest_live import conf, feed, positions
from rest_live.capture import dependencies, registry
from rest_live.capture.install import log_database
from rest_live.positions import Unresumable


def catch_up(subscriber, position, epoch, shown):
    """([(action, pk, rendered instance)] of what changed after `position` for `subscriber`, an
    authorized subscriber who sees `shown` objects now, and the change ids that covers). Raises
    `Unresumable`. Runs in the database thread."""
    if router.db_for_write(subscriber.model) != log_database():
        raise Unresumable(
            "unlogged", "This model's changes are not in the change log: here is a snapshot."
        )
    through = positions.check(position, epoch, log_database())
    most = min(conf.setting("SNAPSHOT_LIMIT"), shown)
    own = subscriber.model._meta.concrete_model._meta.label
    related = registry.dependencies_of(subscriber.view_class)
    labels = {own} | {dependency.model._meta.label for dependency in related}
    read = feed.changes_after(through, labels, most)
    if read is None:
        raise _too_many()
    changes, ids = read
    pks, created = {}, set()
    for change in changes:
        if change.truncated:
            raise Unresumable("expired", "Every row of a table changed since the position.")
        if change.model == own:
            pks.update(dict.fromkeys(change.pks))
            created.update(change.created)
        for dependency in related:
            if dependency.model._meta.label == change.model and dependency.concerns(change):
                pks.update(dict.fromkeys(dependencies.affected(dependency, change)))
        if len(pks) > most:
            raise _too_many()
    return subscriber.catch_up(list(pks), created), ids


def _too_many():
    return Unresumable(
        "too_many", "More changed since the position than a snapshot carries: here is one."
    )


def unresumable_retrieve():
    return Unresumable(
        "too_many", "The object this subscription showed may have changed its lookup: here it is."
    )
