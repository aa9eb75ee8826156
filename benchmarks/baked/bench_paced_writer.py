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
    frame = broadcast_frame(1, "todos.Todo", "UPDATED", instance, todo.pk, "0000000000.0")
    return {"type": "floor.message", "text": frame}


async def send_paced():
    layer = get_channel_layer()
    messages = [floor_message(first + 1 + number) for number in numbers]
    ready()
    await layer.group_send("bench.floor", floor_message(first))
    begin, cpu = warm()
    starts = []
    for number, message in zip(numbers, messages, strict=True):  # one message a number
        delay = begin + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        starts.append(time.monotonic())
        await layer.group_send("bench.floor", message)
    return starts, time.process_time() - cpu


starts, cpu = save_paced() if mode == "live" else asyncio.run(send_paced())
print(json.dumps({"starts": starts, "cpu_seconds": cpu}), flush=True)
