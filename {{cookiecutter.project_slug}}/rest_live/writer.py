"""What a consumer sends to its socket: in order, and never more than a bounded backlog.

A client that stops reading must not cost the server without limit. Uvicorn's `send` waits while
the socket's write buffer is full, which would stall the consumer while the channel layer queues
up behind it; Daphne's returns at once and Twisted buffers whatever the client does not read. So
the writer asks the transport whether it can take more (Twisted's producer API on Daphne, the
asyncio transport's buffer size elsewhere). While it can, a frame goes straight through; while it
cannot, frames wait in the writer's backlog, flushed by a task of its own as the client reads.

Frames are handed out by the process's hub (hub.py), one socket after another, so a `send` that
waits would hold up every socket after it. Daphne's never waits. Uvicorn's may (for buffer space,
or for a closing handshake), so there every frame goes through the backlog and its task.

Once more than `REST_LIVE_MAX_PENDING_BYTES` wait, the socket is too slow: the backlog is dropped,
and the socket is closed with 4029 as soon as the transport takes a frame again, so a client that
reads again learns to reconnect and re-sync. One still connected `REST_LIVE_SLOW_CLOSE_SECONDS`
later (10) is cut off (its client sees 1006), rather than left to the server's ping timeout with
megabytes in its buffers. Either way the socket costs at most the cap, plus the buffers of the
server and the kernel, for at most that long. A send that fails because the socket went away ends
the writer quietly, dropping what was waiting: a client leaving mid-stream is not an error.
"""

import asyncio
import logging
from collections import deque

from rest_live import conf, metrics
from rest_live.protocol import CLOSE_TOO_SLOW

logger = logging.getLogger(__name__)

# An asyncio transport's low-water mark, when it does not say (asyncio's default is 16 KiB).
_LOW_WATER = 16 * 1024


class SocketWriter:
    """Stands in for a consumer's ASGI `send`."""

    def __init__(self, send, limit):
        self._send = send
        self._limit = limit
        self._backlog = deque()
        self._pending = 0  # bytes of the frames in the backlog
        self._flushing = None  # the task that empties the backlog, while there is one
        self._transport = _transport_of(send)
        self.closing = False  # a close is on its way: nothing more is taken
        self._cut_off = None  # the timer that aborts a socket closed as too slow

    async def send(self, message):
        if self.closing:
            return
        if message["type"] == "websocket.close":
            self.closing = True
        inline = self._transport.never_waits or message["type"] != "websocket.send"
        if inline and not self._backlog and self._transport.writable():
            await self._deliver(message)
            return
        if message["type"] == "websocket.send":
            size = _size(message)
            if self._pending + size > self._limit:
                self._too_slow()
                return
            self._pending += size
        self._backlog.append(message)
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())

    def stop(self):
        """The socket is gone: drop the backlog, and end the flushing."""
        self.closing = True
        self._drop_backlog()
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        if self._cut_off is not None:
            self._cut_off.cancel()
            self._cut_off = None

    def _too_slow(self):
        self._transport.closing_slowly()
        logger.info(
            "rest_live is closing a socket that fell more than %d bytes behind (close code %d)",
            self._limit,
            CLOSE_TOO_SLOW,
        )
        metrics.FRAMES_DROPPED.inc()  # the frame that did not fit
        self._drop_backlog()
        self._backlog.append({"type": "websocket.close", "code": CLOSE_TOO_SLOW})
        self.closing = True
        # The close may never reach the transport (it takes nothing more), and then no close
        # timeout of the server's starts: this ends the socket. With the defaults it also comes
        # before the close timeout set above (10 s against pings timing out at 20 or 30 s).
        seconds = conf.setting("SLOW_CLOSE_SECONDS")
        self._cut_off = asyncio.get_running_loop().call_later(seconds, self._cut, seconds)

    def _cut(self, seconds):
        """Still open `seconds` after it was closed as too slow: the client reads nothing."""
        self._cut_off = None
        logger.info(
            "rest_live cut off a socket still open %g s after it was closed as too slow",
            seconds,
        )
        self._transport.abort()

    def _drop_backlog(self):
        metrics.FRAMES_DROPPED.inc(sum(m["type"] == "websocket.send" for m in self._backlog))
        self._backlog.clear()
        self._pending = 0

    async def _flush(self):
        while self._backlog:
            await self._transport.wait_writable()
            message = self._backlog.popleft()
            if message["type"] == "websocket.send":
                self._pending -= _size(message)
            if not await self._deliver(message):
                return
        self._flushing = None

    async def _deliver(self, message):
        """Hand `message` to the server; False if the socket is gone."""
        try:
            await self._send(message)
        except Exception:
            # The socket closed under us (a reset, a ping timeout): nothing to report.
            logger.debug("rest_live dropped a frame for a closed socket", exc_info=True)
            self.stop()
            return False
        if message["type"] == "websocket.send":
            metrics.FRAMES_SENT.inc()
        return True


def _size(message):
    return len(message.get("text") or message.get("bytes") or "")


def _transport_of(send):
    """How to ask the server's transport behind `send` whether it can take more."""
    send = _server_send(send)
    # Daphne passes `partial(server.handle_reply, protocol)`; Uvicorn a bound method of its
    # protocol. Anything else (a test communicator) is assumed always writable.
    protocol = next(iter(getattr(send, "args", ())), None) or getattr(send, "__self__", None)
    if callable(getattr(protocol, "registerProducer", None)):
        flow = _TwistedFlow(protocol)
        # After Daphne's upgrade, Twisted's HTTP channel stays the transport's producer, and
        # passes the transport's pauses on to a producer registered with it.
        consumer = getattr(getattr(protocol, "transport", None), "producer", None) or protocol
        try:
            consumer.registerProducer(flow, True)
        except Exception:  # a producer is registered already, or the transport is gone
            return _Unknown()
        return flow
    transport = getattr(protocol, "transport", None)
    if callable(getattr(transport, "get_write_buffer_size", None)):
        return _AsyncioFlow(transport, protocol)
    return _Unknown()


def _server_send(send):
    """The server's own `send`, from under the wrappers of Channels' middleware (the session
    middleware wraps it in a method that passes messages on to `real_send`)."""
    for _ in range(10):
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if inner is None:
            return send
        send = inner
    return send


class _Unknown:
    never_waits = True  # a test communicator's queue

    def writable(self):
        return True

    async def wait_writable(self):
        return None

    def closing_slowly(self):
        return None

    def abort(self):
        return None


class _AsyncioFlow:
    """An asyncio transport. Once its buffer passes the high-water mark it stays paused until the
    buffer falls below the low one, and its server's `send` waits meanwhile; so it is surely
    writable only below the low mark, and waiting is the send itself."""

    never_waits = False

    def __init__(self, transport, protocol):
        self._transport = transport
        self._protocol = protocol
        self._low = _low_water(transport)

    def writable(self):
        return self._transport.get_write_buffer_size() <= self._low

    async def wait_writable(self):
        return None

    def closing_slowly(self):
        # As for Daphne below: websockets (Uvicorn's) gives the close frame `close_timeout`, 10 s,
        # to get through buffers that hold megabytes for this client, then drops the connection
        # without a code. Give it as long as the ping timeout.
        close_timeout = getattr(self._protocol, "close_timeout", None)
        if isinstance(close_timeout, int | float):
            timeout = getattr(self._protocol, "ping_timeout", None) or 30
            self._protocol.close_timeout = max(close_timeout, timeout)

    def abort(self):
        self._transport.abort()


def _low_water(transport):
    try:
        return transport.get_write_buffer_limits()[0]
    except (AttributeError, NotImplementedError):
        return _LOW_WATER


class _TwistedFlow:
    """A Twisted push producer: the transport pauses it while its buffer is full."""

    never_waits = True  # Twisted buffers what it cannot write yet

    def __init__(self, protocol):
        self._protocol = protocol
        self._resumed = asyncio.Event()
        self._resumed.set()

    def writable(self):
        return self._resumed.is_set()

    async def wait_writable(self):
        await self._resumed.wait()

    def closing_slowly(self):
        # The close frame reaches the client only after everything the kernel buffered for it
        # (megabytes): give it as long as the ping timeout to read that far and answer, where
        # Autobahn's default of a second would drop it, and the client would see no code.
        timeout = getattr(self._protocol, "autoPingTimeout", None) or 30
        self._protocol.closeHandshakeTimeout = max(self._protocol.closeHandshakeTimeout, timeout)

    def abort(self):
        transport = getattr(self._protocol, "transport", None)
        if transport is not None:
            transport.abortConnection()

    def pauseProducing(self):  # noqa: N802 (Twisted's interface)
        self._resumed.clear()

    def resumeProducing(self):  # noqa: N802
        self._resumed.set()

    def stopProducing(self):  # noqa: N802
        self._resumed.set()  # the connection is gone: the next send finds out
