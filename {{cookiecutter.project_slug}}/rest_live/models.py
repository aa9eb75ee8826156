"""The change log (a transactional outbox): every change of a table a live view reads, written in
the transaction of the write by the database's capture triggers (capture/), whoever wrote it, and
by `broadcast()`. A change that commits is in the log; one that rolls back never was.

Servers read it (feed.py) and deliver each change to their sockets. Rows are kept for
`REST_LIVE_CHANGE_LOG_SECONDS`.
"""

from django.db import models


class Change(models.Model):
    id = models.BigAutoField(primary_key=True)
    model = models.CharField(max_length=200)  # the model's label, "todos.Todo"
    pks = models.JSONField()  # the primary keys that changed, as JSON numbers or strings
    created = models.BooleanField(default=False)  # the write inserted these rows
    # Foreign-key columns of the changed rows, before and after: {"todo_id": [3, 4]}. They lead
    # to the rows of other views that show these (capture/dependencies.py).
    refs = models.JSONField(null=True, blank=True)
    # For an update of a table only some of whose columns a view reads: which of those changed.
    columns = models.JSONField(null=True, blank=True)
    # The writing transaction's id (PostgreSQL's triggers), so that a transaction's rows are one
    # change; ANNOUNCED for a row `broadcast()` wrote, a change of its own; null from SQLite's.
    txid = models.BigIntegerField(null=True, blank=True)

    ANNOUNCED = -1
    recorded = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.model} {self.pks} (change {self.id})"


class LogState(models.Model):
    """One row: what a client's position in the log is relative to (positions.py).

    `token` is random, and made again whenever the row is missing (a flushed database, a new
    one), so positions from before cannot be taken for positions in this log. `floor` is the
    highest change id pruned from the log: a client that holds an older position has missed
    changes the log no longer has.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    token = models.CharField(max_length=32)
    floor = models.BigIntegerField(default=0)

    def __str__(self):
        return f"change log epoch token {self.token}, pruned through change {self.floor}"
