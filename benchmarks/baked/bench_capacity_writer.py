# The capacity benchmark's writer (benchmarks/capacity.py): saves one todo RATE times a second for
# SECONDS, titled "w<seq>", and every BULK_EVERY seconds (0: never) broadcasts every other todo,
# which gives each subscriber of the list a burst of large frames. It saves "w<FIRST>" first to
# open its database and channel layer connections, prints "ready", waits for a line on stdin,
# then writes, and prints one JSON line: the monotonic time just before each save, and of each
# bulk broadcast.

import json
import sys
import time

import django

django.setup()

from rest_live import broadcast  # noqa: E402
from todos.models import Todo  # noqa: E402

pk, first = int(sys.argv[1]), int(sys.argv[2])
rate, seconds, bulk_every = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
todo = Todo.objects.get(pk=pk)
others = Todo.objects.exclude(pk=pk)
todo.title = f"w{first}"
todo.save()
print("ready", flush=True)
sys.stdin.readline()

starts, bulks = [], []
begin = time.monotonic()
next_bulk = begin + bulk_every / 2 if bulk_every else float("inf")
for number in range(1, int(rate * seconds) + 1):
    if time.monotonic() >= next_bulk:
        bulks.append(time.monotonic())
        broadcast(others)
        next_bulk += bulk_every
    delay = begin + (number - 1) / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    todo.title = f"w{first + number}"
    starts.append(time.monotonic())
    todo.save()
print(json.dumps({"starts": starts, "bulks": bulks, "took": time.monotonic() - begin}))
