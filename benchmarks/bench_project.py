"""The benchmarks' own bake: a `production` bake plus a floor consumer, a layer choice and the
writers, and the environment to run it on.

These files are written into a temporary bake only; nothing here ships in the template.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests import baking
from tests.appserver import PRODUCTION_ENV
from tests.combos import BY_NAME

COMBO = BY_NAME["production"]  # PostgreSQL, Redis, DEBUG off

SETTINGS = """
import os

from config.settings import *  # noqa: F403

_LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYERS["default"]["BACKEND"] = _LAYERS[os.environ["BENCH_LAYER"]]  # noqa: F405
# Benchmarks go past the shipped cap of sockets per process (5,000) to measure where it lies.
REST_LIVE_MAX_CONNECTIONS = 20_000
# Every benchmark client connects from 127.0.0.1, which the per-client budgets
# (rest_live/budget.py) would take for one client of thousands of subscriptions. The
# hostile-client benchmark turns them back on.
REST_LIVE_EVALUATIONS_PER_SECOND = None
REST_LIVE_SNAPSHOT_ROWS_PER_SECOND = None

if os.environ.get("BENCH_GC_LOG"):
    # Each full collection, to the log: "bench-gc <monotonic start> <seconds>".
    import gc
    import sys
    import time

    def _log_full_collections(phase, info, started=[0.0]):  # noqa: B006 (kept between calls)
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.monotonic()
        else:
            took = time.monotonic() - started[0]
            print(f"bench-gc {started[0]:.4f} {took:.4f}", file=sys.stderr, flush=True)

    gc.callbacks.append(_log_full_collections)
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

# Tags read once: the floor's frames are built without a query, as a cached render would be.
todo = Todo.objects.select_related("owner").prefetch_related("tags").get(pk=int(sys.argv[1]))
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

# The throughput benchmark's writer (benchmarks/throughput.py), one of WRITERS processes that
# share the writes: write number J (from 0) has seq FIRST + 1 + J, is made by writer J % WRITERS
# and falls due at BEGIN + J / RATE. "live" saves this writer's todo titled "w<seq>". "floor"
# group_sends the frame rest_live would send for that save (rendered before the run) to the floor's
# group, on one event loop that lives for the whole run: `async_to_sync(group_send)` would start a
# loop, and a Redis connection, per call. A write that falls due while the writer is behind is made
# at once, so a writer too slow for RATE shows as a lower achieved rate.
# On stdin, after it prints "ready": a line, then it makes a warm-up write of seq FIRST (which opens
# its connections) and prints "warm"; a line with BEGIN, a time.monotonic() (one clock for every
# process of the machine), then it writes. Prints one JSON line: the monotonic time just before
# each of its writes, and the CPU seconds they took.
PACED_WRITER = """
import asyncio
import json
import sys
import time

import django

django.setup()

from channels.layers import get_channel_layer  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402

from rest_live.protocol import broadcast_frame  # noqa: E402
from todos.models import Todo  # noqa: E402
from todos.serializers import TodoSerializer  # noqa: E402

mode, pk = sys.argv[1], int(sys.argv[2])
first, index, writers = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rate, seconds = float(sys.argv[6]), float(sys.argv[7])
# Tags read once here: the floor serializes it inside an event loop, where no query may run.
todo = Todo.objects.select_related("owner").prefetch_related("tags").get(pk=pk)
numbers = range(index, int(rate * seconds), writers)


def ready():
    print("ready", flush=True)
    sys.stdin.readline()


def warm():
    print("warm", flush=True)
    return float(sys.stdin.readline()), time.process_time()


def save_paced():
    ready()
    todo.title = f"w{first}"
    todo.save()
    begin, cpu = warm()
    starts = []
    for number in numbers:
        delay = begin + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        todo.title = f"w{first + 1 + number}"
        starts.append(time.monotonic())
        todo.save()
    return starts, time.process_time() - cpu


def floor_message(seq):
    todo.title = f"w{seq}"
    instance = JSONRenderer().render(TodoSerializer(todo).data).decode()
    return {"type": "floor.message", "text": broadcast_frame(1, "todos.Todo", "UPDATED", instance)}


async def send_paced():
    layer = get_channel_layer()
    messages = [floor_message(first + 1 + number) for number in numbers]
    ready()
    await layer.group_send("bench.floor", floor_message(first))
    begin, cpu = warm()
    starts = []
    for number, message in zip(numbers, messages):
        delay = begin + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        starts.append(time.monotonic())
        await layer.group_send("bench.floor", message)
    return starts, time.process_time() - cpu


starts, cpu = save_paced() if mode == "live" else asyncio.run(send_paced())
print(json.dumps({"starts": starts, "cpu_seconds": cpu}), flush=True)
"""

# The distinct-subscription benchmark's application (benchmarks/distinct.py): the one above, plus
# a view of one's own todos, `get_queryset` filtered by `request.user`, served on its own router at
# /ws/mine/ (token sockets, as the project's own routes take them; a socket without one is closed).
DISTINCT_ASGI = """
# First: bench_asgi (config.asgi) sets Django up, which the imports below need.
from bench_asgi import django_application, websocket as bench_websocket

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path
from rest_framework import permissions

from rest_live.auth import TokenAuthMiddleware
from rest_live.origins import AllowedOriginsValidator
from rest_live.routers import RealtimeRouter
from todos.views import TodoViewSet


class MineViewSet(TodoViewSet):
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        queryset = super().get_queryset()
        if not self.request.user.is_authenticated:
            return queryset.none()
        return queryset.filter(owner=self.request.user)


mine_router = RealtimeRouter(public=False)
mine_router.register(MineViewSet)
mine_routes = URLRouter([path("ws/mine/", mine_router.as_consumer().as_asgi())])
mine = TokenAuthMiddleware(
    mine_routes, otherwise=AllowedOriginsValidator(AuthMiddlewareStack(mine_routes))
)


async def websocket(scope, receive, send):
    app = mine if scope["path"] == "/ws/mine/" else bench_websocket
    return await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_application, "websocket": websocket})
"""

# The distinct-subscription benchmark's writer: reads lines "PK TITLE", saves todo PK with that
# title (read first, outside the clock), and prints the monotonic time taken just before the save.
DISTINCT_WRITER = """
import json
import sys
import time

import django

django.setup()

from todos.models import Todo  # noqa: E402

print("ready", flush=True)
for line in sys.stdin:
    pk, title = line.rstrip("\\n").split(" ", 1)
    todo = Todo.objects.get(pk=int(pk))
    todo.title = title
    started = time.monotonic()
    todo.save()
    print(json.dumps(started), flush=True)
"""

FILES = {
    "bench_settings.py": SETTINGS,
    "bench_asgi.py": ASGI,
    "bench_writer.py": WRITER,
    "bench_paced_writer.py": PACED_WRITER,
    "bench_distinct_asgi.py": DISTINCT_ASGI,
    "bench_distinct_writer.py": DISTINCT_WRITER,
}


def bake(workdir: Path, venv: Path | None = None) -> tuple[Path, Path]:
    """A `production` bake in `workdir` with the files above, and a venv with its requirements
    (`venv`, if given): (project path, venv)."""
    path = baking.bake(COMBO, workdir / "bake", baking.write_cookiecutter_config(workdir))
    for name, text in FILES.items():
        (path / name).write_text(text)
    return path, venv or baking.ensure_venv(baking.requirement_lines(path), baking.baked_python())


async def start_script(project, script: str, *args, env=None):
    """`script` (one of the files above) run by the bake's Python, in the bake, with `args`,
    talking through pipes: the benchmarks' writer processes."""
    return await asyncio.create_subprocess_exec(
        str(project.venv / "bin" / "python"),
        script,
        *map(str, args),
        cwd=project.path,
        env=baking.clean_env(project.venv, project.env if env is None else env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


def environment(postgres_url: str, redis_url: str, layer: str) -> dict[str, str]:
    """What the bake runs with: its services, production settings, and the channel layer chosen."""
    return {
        **baking.service_env(COMBO, postgres_url, redis_url),
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "BENCH_LAYER": layer,
    }
