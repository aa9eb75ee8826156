"""Whether this process reaches the channel layer: one log line when it stops answering, one when
it answers again, whichever part of the process noticed, and no traceback.

An unreachable layer (Redis stopped or restarting) is an expected condition: writes go on, and
the changes it cannot carry are in the change log, which every server reads at least every
`REST_LIVE_CHANGE_POLL_SECONDS`. What notices: a write that cannot announce its change
(broadcasting.py), the hub that cannot join its group or receive (hub.py), and channels_redis's
pub/sub receive loop, which never raises to its caller but logs a traceback a second while Redis
is down: `ReceiveLoopFilter` takes those records in place of the tracebacks. While the layer is
down the hub asks it every poll whether it answers again (hub.py), so the end is logged even when
nothing is written.
"""

import logging
import threading
import time

logger = logging.getLogger("rest_live")

# What channels_redis's pub/sub receive loop logs, with the error, each time it fails.
_RECEIVE_LOOP_LOGGER = "channels_redis.pubsub"
_RECEIVE_LOOP_MESSAGE = "Unexpected exception in receive task"


class Outage:
    """The process's record of the layer's outage (`outage`, below). Written from the event
    loop and from threads that write, so under a lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._since = None  # time.monotonic() when the layer stopped answering, while it does
        self._unannounced = 0  # changes a write could not announce meanwhile

    def is_down(self):
        return self._since is not None

    def failed(self, error, announcing=None):
        """The layer did not answer. `announcing`: what a write could not announce ("a change
        to todos.Todo"), counted."""
        with self._lock:
            if announcing is not None:
                self._unannounced += 1
            starting = self._since is None
            if starting:
                self._since = time.monotonic()
        if not starting:
            if announcing is not None:
                logger.debug("rest_live could not announce %s", announcing)
            return
        logger.error(
            "rest_live cannot reach the channel layer (%s)%s. Writes go on; until it answers, "
            "servers read their changes from the change log every REST_LIVE_CHANGE_POLL_SECONDS",
            f"{type(error).__name__}: {error}" if str(error) else type(error).__name__,
            "" if announcing is None else f" and could not announce {announcing}",
        )

    def answered(self):
        """The layer answered: if it was down, say so, once."""
        if self._since is None:  # the usual case, read without the lock
            return
        with self._lock:
            since, unannounced = self._since, self._unannounced
            self._since, self._unannounced = None, 0
        if since is not None:
            logger.warning(
                "rest_live reached the channel layer again after %.1f s; %d changes could not "
                "be announced meanwhile, and were read from the change log",
                time.monotonic() - since,
                unannounced,
            )


outage = Outage()


class ReceiveLoopFilter(logging.Filter):
    """Drops channels_redis's receive-loop traceback when the error is the connection's (Redis
    down), recording the outage instead; any other error it logs still gets through."""

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if record.msg != _RECEIVE_LOOP_MESSAGE or not _is_connection_error(error):
            return True
        outage.failed(error)
        return False


def install_filter():
    """Put `ReceiveLoopFilter` on channels_redis's logger (once)."""
    receive_loop = logging.getLogger(_RECEIVE_LOOP_LOGGER)
    if not any(isinstance(f, ReceiveLoopFilter) for f in receive_loop.filters):
        receive_loop.addFilter(ReceiveLoopFilter())


def _is_connection_error(error):
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # no Redis layer: nothing of channels_redis to filter
        return False
    return isinstance(error, RedisConnectionError | RedisTimeoutError | OSError)
