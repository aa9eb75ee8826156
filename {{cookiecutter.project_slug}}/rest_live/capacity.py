"""How many sockets this server process holds, in all and per user, against their limits.

Over a limit, a new socket is accepted and closed at once with 4013, which a client can tell from
a crash and answers by reconnecting much later (docs/protocol.md, "Close codes"), rather than
refused at the handshake, which a browser cannot tell from the server being down.
"""

import asyncio
import weakref
from collections import Counter

from rest_live import conf

ALL = "all"  # the count of every socket; signed-in users are also counted one by one
_by_loop = weakref.WeakKeyDictionary()  # event loop -> Counter of sockets by key


def admit(user):
    """Count a new socket of `user` in: the keys to `release` it by, or None if over a limit."""
    held = _held()
    keys = [ALL] if user is None or not user.is_authenticated else [ALL, ("user", user.pk)]
    limits = [conf.setting("MAX_CONNECTIONS"), conf.setting("MAX_CONNECTIONS_PER_USER")]
    if any(most is not None and held[key] >= most for key, most in zip(keys, limits, strict=False)):
        return None
    held.update(keys)
    return keys


def release(keys):
    """Count out a socket that `admit` let in."""
    held = _held()
    held.subtract(keys)
    for key in keys:
        if held[key] <= 0:
            del held[key]


def open_sockets():
    """How many sockets this process holds now (for tests and diagnostics)."""
    return _held()[ALL]


def _held():
    return _by_loop.setdefault(asyncio.get_running_loop(), Counter())
