"""The capture latency benchmark's Django writer (benchmarks/capture_latency.py), copied into a
bake and run there by the bake's Python, with the bake's settings: a long-lived process that
writes the way a `manage.py shell`, a job or a worker would.

    python capture_writer.py WRITES BULK_ROWS

At start it makes what WRITES writes of each path need, outside any timing: a todo per write
path, BULK_ROWS todos for `bulk_update()`, a tag on the rename path's todo, and a tag for each
`tags.add()`. It prints one JSON line, {"todos": {path: pk}, "table": the todo table},
then reads one line per write from stdin, "PATH J" (J from 0), makes write J of that path, and
prints one JSON line: {"markers": [...], "committed": T}.

Each marker is a title or a tag name that the write puts in what a subscriber of the todo list is
sent; T is `time.monotonic()` (one clock for every process of the machine) taken right after the
write's COMMIT returned: each write runs in `transaction.atomic()` whose first `on_commit` callback
takes the time, before rest_live's own (the wake-up it publishes). `bulk_update()` and
`tags.add()` open that same atomic block themselves; for the others it adds a BEGIN to the one
statement.
"""

import json
import sys
import time

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from todos.models import Tag, Todo  # noqa: E402

PATHS = ("save", "update", "bulk_update", "raw_sql", "tags_add", "tag_rename")

writes, bulk_rows = int(sys.argv[1]), int(sys.argv[2])
todos = {path: Todo.objects.create(title=f"{path}-start") for path in (*PATHS, "external")}
bulk = [todos["bulk_update"]] + [
    Todo.objects.create(title=f"bulk_update-start-{row}") for row in range(1, bulk_rows)
]
renamed = Tag.objects.create(name="rename-start")
todos["tag_rename"].tags.add(renamed)
added = Tag.objects.bulk_create(Tag(name=f"add{number}") for number in range(writes))
table = connection.ops.quote_name(Todo._meta.db_table)


def save(number):
    todo = todos["save"]
    todo.title = f"save{number}"
    todo.save()
    return [todo.title]


def update(number):
    Todo.objects.filter(pk=todos["update"].pk).update(title=f"update{number}")
    return [f"update{number}"]


def bulk_update(number):
    for row, todo in enumerate(bulk):
        todo.title = f"bulk{number}.{row}"
    Todo.objects.bulk_update(bulk, ["title"])
    return [todo.title for todo in bulk]


def raw_sql(number):
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET title = %s WHERE id = %s", [f"raw{number}", todos["raw_sql"].pk]
        )
    return [f"raw{number}"]


def tags_add(number):
    todos["tags_add"].tags.add(added[number])
    return [added[number].name]


def tag_rename(number):
    renamed.name = f"rename{number}"
    renamed.save()
    return [renamed.name]


WRITES = {function.__name__: function for function in (save, update, bulk_update, raw_sql)}
WRITES.update(tags_add=tags_add, tag_rename=tag_rename)


def write(path, number):
    """(markers, the time right after the commit) of write `number` of `path`."""
    committed = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.monotonic()))
        markers = WRITES[path](number)
    return markers, committed[0]


print(json.dumps({"todos": {path: todo.pk for path, todo in todos.items()}, "table": table}))
sys.stdout.flush()
for line in sys.stdin:
    path, number = line.split()
    markers, committed = write(path, int(number))
    print(json.dumps({"markers": markers, "committed": committed}), flush=True)
