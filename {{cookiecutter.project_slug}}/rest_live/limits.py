"""How fast one socket may send: a token bucket, refilled continuously."""

import time


class MessageRate:
    """Allows `burst` messages at once and `per_second` on average; None for either: no limit."""

    def __init__(self, burst, per_second, clock=time.monotonic):
        self.burst, self.per_second, self._clock = burst, per_second, clock
        self._tokens = burst or 0
        self._last = clock()

    def allow(self):
        """Take one message's token; False if the socket is over its rate."""
        if self.burst is None or self.per_second is None:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
