"""Token buckets, refilled continuously: how fast one socket may send, and how much work one
client may make the server do."""

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


class Allowance:
    """`per_second` units of work on average, `seconds` of them at once; None: no limit.

    Work is charged after it is done, when its size is known, so the balance can fall below
    zero: an overdrawn client waits until the debt is paid back, and on average does no more
    than `per_second`, however large each piece of work.
    """

    def __init__(self, per_second, seconds, clock=time.monotonic):
        self.per_second, self._clock = per_second, clock
        self.most = None if per_second is None else per_second * seconds
        self._balance = self.most
        self._last = clock()

    def spend(self, amount):
        """Charge `amount`; False if that overdraws the allowance."""
        if self.most is None:
            return True
        self._balance = self.balance() - amount
        return self._balance >= 0

    def overdrawn(self):
        return self.most is not None and self.balance() < 0

    def holds(self, seconds):
        """Whether at least `seconds` of work are left."""
        return self.most is None or self.balance() >= self.per_second * seconds

    def full(self):
        return self.most is None or self.balance() >= self.most

    def balance(self):
        now = self._clock()
        self._balance = min(self.most, self._balance + (now - self._last) * self.per_second)
        self._last = now
        return self._balance
