"""How a write's process hands a change to the channel layer: on one event loop that lives on.

`async_to_sync(layer.group_send)`, called from plain synchronous code (the shell, a management
command, a WSGI worker, a job), runs each call on an event loop of its own, and channels_redis
connects to Redis afresh for each loop: 2.4 ms a publish, where one on a loop that lives on, over
the connection it already has, takes a fraction of a millisecond. So publishes run on one loop
per process, in a thread of its own, and the writing thread waits for each to be taken (in order,
and knowing whether it failed) for at most `REST_LIVE_PUBLISH_TIMEOUT_SECONDS` (conf.py).

The in-memory layer is the exception: its queues belong to the event loop of the server it runs in,
so it is published to from there, as Channels does.
"""

import asyncio
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer

from rest_live import conf

_lock = threading.Lock()
_loop = None
_loop_pid = None  # a forked child (a preforking server's worker) starts a loop of its own


def publish(layer, group, message):
    """Send `message` to `group` on `layer`; raises if the layer fails or does not answer."""
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(layer.group_send)(group, message)
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _publishing_loop())
    try:
        future.result(conf.setting("PUBLISH_TIMEOUT_SECONDS"))
    except TimeoutError:
        future.cancel()
        raise


def _publishing_loop():
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            thread = threading.Thread(
                target=_loop.run_forever, name="rest_live publisher", daemon=True
            )
            thread.start()
        return _loop
