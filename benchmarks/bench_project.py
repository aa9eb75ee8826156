"""Files the benchmark adds to its own bake: a floor consumer, layer choice, and the writer.

They are written into a temporary bake only; nothing here ships in the template.
"""

SETTINGS = """
import os

from config.settings import *  # noqa: F403

_LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYERS["default"]["BACKEND"] = _LAYERS[os.environ["BENCH_LAYER"]]  # noqa: F405
"""

# The floor: a bare consumer in one group, forwarding each group message's text to its socket,
# served by the same process and application as the live subscriptions.
ASGI = """
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from config.asgi import django_application, websocket_application


class FloorConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add("bench.floor", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("bench.floor", self.channel_name)

    async def floor_message(self, message):
        await self.send(message["text"])


floor = AllowedHostsOriginValidator(URLRouter([path("ws/floor/", FloorConsumer.as_asgi())]))


async def websocket(scope, receive, send):
    app = floor if scope["path"] == "/ws/floor/" else websocket_application
    return await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_application, "websocket": websocket})
"""

# Reads "live SEQ" or "floor SEQ" lines; prints the monotonic time taken just before each write.
WRITER = '''
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

todo = Todo.objects.get(pk=int(sys.argv[1]))
group_send = async_to_sync(get_channel_layer().group_send)


def floor_frame(title):
    """What rest_live would send for this write, byte for byte the same size."""
    todo.title = title
    instance = JSONRenderer().render(TodoSerializer(todo).data).decode()
    return broadcast_frame(1, "todos.Todo", "UPDATED", instance)


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
'''

# The capacity benchmark's writer (benchmarks/capacity.py): saves one todo RATE times a second for
# SECONDS, titled "w<seq>", and every BULK_EVERY seconds (0: never) broadcasts every other todo,
# which gives each subscriber of the list a burst of large frames. It saves "w<FIRST>" first to
# open its database and channel layer connections, prints "ready", waits for a line on stdin,
# then writes, and prints one JSON line: the monotonic time just before each save, and of each
# bulk broadcast.
CAPACITY_WRITER = """
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
"""
