# Reads "live SEQ" or "floor SEQ" lines; prints the monotonic time taken just before each write.

import json
import sys
import time

import django

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402

from rest_live.protocol import broadcast_frame  # noqa: E402
from todos.models import Todo  # noqa: E402
from todos.serializers import TodoSerializer  # noqa: E402

# Tags read once: the floor's frames are built without a query, as a cached render would be.
todo = Todo.objects.select_related("owner").prefetch_related("tags").get(pk=int(sys.argv[1]))
group_send = async_to_sync(get_channel_layer().group_send)


def floor_frame(title):
    """What rest_live would send for this write, byte for byte the same size."""
    todo.title = title
    instance = JSONRenderer().render(TodoSerializer(todo).data).decode()
    return broadcast_frame(1, "todos.Todo", "UPDATED", instance, todo.pk, "0000000000.0")


print("ready", flush=True)
for line in sys.stdin:
    mode, seq = line.split()
    title = f"w{seq}"
    if mode == "live":
        todo.title = title
        started = time.monotonic()
        todo.save()
    else:
        text = floor_frame(title)
        started = time.monotonic()
        group_send("bench.floor", {"type": "floor.message", "text": text})
    print(json.dumps(started), flush=True)
