# The distinct-subscription and hostile-client benchmarks' writer (bench_project.TitleWriter):
# reads lines "PK TITLE", saves todo PK with that title (read first, outside the clock), and
# prints the monotonic time taken just before the save.

import json
import sys
import time

import django

django.setup()

from todos.models import Todo  # noqa: E402

print("ready", flush=True)
for line in sys.stdin:
    pk, title = line.rstrip("\n").split(" ", 1)
    todo = Todo.objects.get(pk=int(pk))
    todo.title = title
    started = time.monotonic()
    todo.save()
    print(json.dumps(started), flush=True)
