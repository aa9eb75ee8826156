"""Token buckets, refilled continuously: how fast one socket may send, and how much work one
client may make the server do."""

import time


class Allowance:
    """`per_second` units on average, `most` at once; None for either: no limit.

    Work can be charged after it is done, when its size is known, so the balance can fall below
    zero: an overdrawn client waits until the debt is paid back, and on average does no more
    than `per_second`, however large each piece of work.
    """

    def __init__(self, per_second, most, clock=time.monotonic):
        self.per_second, self._clock = per_second, clock
        self.most = None if per_second is None else most
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

    def holds(self, amount):
        """Whether at least `amount` is left."""
        return self.most is None or self.balance() >= amount

    def full(self):
        return self.most is None or self.balance() >= self.most

    def balance(self):
        now = self._clock()
        self._balance = min(self.most, self._balance + (now - self._last) * self.per_second)
        self._last = now
        return self._balance


class MessageRate:
    """Allows `burst` messages at once and `per_second` on average; None for either: no limit."""

    def __init__(self, burst, per_second, clock=time.monotonic):
        self._tokens = Allowance(per_second, burst, clock)

    def allow(self):
        """Take one message's token; False if the socket is over its rate."""
        if not self._tokens.holds(1):
            return False
        self._tokens.spend(1)
        return True
