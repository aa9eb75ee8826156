# The other process: reads JSON commands, one a line, and answers each with one JSON line.
# Every change goes through the ORM, in its own transaction, as an application's would.

import json
import sys

import django

django.setup()

from todos.models import Todo  # noqa: E402

FILLER = " buy milk, call the plumber, water the plants, file the taxes"


def title(text):
    return (text + FILLER)[:60]


print("ready", flush=True)
for line in sys.stdin:
    command = json.loads(line)
    op = command["op"]
    if op == "reset":
        Todo.objects.all().delete()
        todos = Todo.objects.bulk_create(
            [Todo(title=title(f"row {i:05d}")) for i in range(command["rows"])]
        )
        answer = [todo.pk for todo in todos]
    elif op == "update":
        todo = Todo.objects.get(pk=command["pk"])
        todo.title = title(command["title"])
        todo.save()
        answer = todo.pk
    elif op == "create":
        answer = Todo.objects.create(title=title(command["title"])).pk
    elif op == "delete":
        Todo.objects.filter(pk=command["pk"]).delete()
        answer = command["pk"]
    else:
        raise ValueError(op)
    print(json.dumps(answer), flush=True)
