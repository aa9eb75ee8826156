"""What a committed change is on its way to the sockets: one `Change`, for writers and readers.

Changes come from the change log (models.Change, written by the database's capture triggers and by
`broadcast()`), read by each server's feed (feed.py), or carried to it by PostgreSQL's NOTIFY.
The channel layer only wakes the feed up; a change the log cannot hold (a model in another
database) travels whole on the layer, as a `change_message`.
"""

from dataclasses import dataclass, field

CHANGE_MESSAGE = "rest_live.change"  # a whole change, for a model the log does not cover
WAKE_MESSAGE = "rest_live.wake"  # the log has new changes: read it now


@dataclass(frozen=True)
class Change:
    model: str  # the label of the model whose rows changed, "todos.Todo"
    pks: tuple  # their primary keys
    position: int | str  # the change log's id; a random string for a change not in the log
    created: frozenset = frozenset()  # the pks the write inserted
    # Foreign-key columns of the changed rows, before and after: {"todo_id": (3, 4)}. They lead
    # from a changed row to the rows of another view that show it (capture/dependencies.py).
    refs: dict = field(default_factory=dict, compare=False)
    # The columns an update changed, of those any view reads (None: any, or an insert or delete).
    columns: frozenset | None = None
    # The views it concerns (None: every view of `model`).
    views: frozenset | None = None
    # Every row may have changed (PostgreSQL's TRUNCATE): subscribers re-sync.
    truncated: bool = False
    # The feed's `through` once this change is handed out: the position clients are sent
    # (positions.py). None for a change the log does not hold.
    through: int | None = field(default=None, compare=False)

    def about(self, model, pks, views):
        """This change as it concerns `model`'s rows `pks`, shown by `views`, which show the
        changed rows. Its rows were not inserted by it, whatever happened to the rows it shows."""
        return Change(
            model, tuple(pks), self.position, views=frozenset(views), through=self.through
        )

    def concerns(self, view):
        return self.views is None or view in self.views

    def message(self):
        """The channel layer message that carries this change whole."""
        return {
            "type": CHANGE_MESSAGE,
            "model": self.model,
            "pks": list(self.pks),
            "change": self.position,
            "created": list(self.created),
        }

    @classmethod
    def from_message(cls, message):
        return cls(
            message["model"],
            tuple(message["pks"]),
            message["change"],
            frozenset(message.get("created") or ()),
        )


def wake_message():
    return {"type": WAKE_MESSAGE}
