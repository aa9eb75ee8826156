"""The change log (a transactional outbox): every announced change, written in the transaction of
the write it announces, so a change that commits is never lost, whatever happens to its broadcast.

Servers read it (feed.py) and deliver what the channel layer did not: a broadcast lost while the
layer was down, a writer killed between its commit and its publish, a write made by another process
where the layer is in-memory. Rows are kept for `REST_LIVE_CHANGE_LOG_SECONDS`.
"""

from django.db import models


class Change(models.Model):
    id = models.BigAutoField(primary_key=True)
    model = models.CharField(max_length=200)  # the model's label, "todos.Todo"
    pks = models.JSONField()  # the primary keys that changed, as JSON numbers or strings
    created = models.BooleanField(default=False)  # the write inserted these rows
    recorded = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.model} {self.pks} (change {self.id})"
