"""What one client may make this server process do, per second, across all its sockets.

A client is a signed-in user, or, for anonymous sockets, the address they come from (behind a
proxy, the one it forwards: run the server with `--proxy-headers`, as the Procfile does). Two
allowances bound it: `REST_LIVE_EVALUATIONS_PER_SECOND` (starting a subscription is one, and so
is each change evaluated for a subscription of its, split between the sockets that share that
subscription: a thousand sockets on one list pay a thousandth each) and
`REST_LIVE_SNAPSHOT_ROWS_PER_SECOND` (the objects its snapshots render). Each may be used
`BURST_SECONDS` ahead. A socket whose client overdraws one is closed with 4013 when it next
asks for work, and the client's new sockets are closed at once with 4013 until it has paid the
debt back and has a second's worth again: its cost stays bounded however many sockets it
opens, and a well-behaved client never notices.
"""

import asyncio
import weakref

from rest_live import conf
from rest_live.limits import Allowance

BURST_SECONDS = 10  # how far ahead a client may use its allowances: a reconnect's subscribes
_SWEEP_EVERY = 1000  # budgets made between two sweeps of those no longer needed

_by_loop = weakref.WeakKeyDictionary()  # event loop -> {client: Budget}


class Budget:
    def __init__(self):
        self.evaluations = _allowance(conf.setting("EVALUATIONS_PER_SECOND"))
        self.snapshot_rows = _allowance(conf.setting("SNAPSHOT_ROWS_PER_SECOND"))
        self.sockets = 0

    def admits(self):
        """Whether a new socket of this client is let in: each allowance holds a second's worth,
        so that one closed for overdrawing is not let in only to be closed again at once."""
        return all(
            allowance.holds(allowance.per_second)
            for allowance in (self.evaluations, self.snapshot_rows)
            if allowance.per_second is not None
        )

    def paid_up(self):
        return self.evaluations.full() and self.snapshot_rows.full()


def _allowance(per_second):
    return Allowance(per_second, None if per_second is None else per_second * BURST_SECONDS)


def client(scope):
    """Who `scope`'s socket belongs to, as far as budgets go."""
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return ("user", user.pk)
    return ("address", (scope.get("client") or (None,))[0])


def open_for(scope):
    """The budget of `scope`'s client, counting one more socket on it; `close` it after."""
    budgets = _by_loop.setdefault(asyncio.get_running_loop(), {})
    key = client(scope)
    budget = budgets.get(key)
    if budget is None:
        if len(budgets) % _SWEEP_EVERY == _SWEEP_EVERY - 1:
            _sweep(budgets)
        budget = budgets[key] = Budget()
    budget.sockets += 1
    return budget


def close(budget):
    budget.sockets -= 1


def _sweep(budgets):
    """Forget the clients with no socket left that owe nothing: a new budget starts as full."""
    for key, budget in list(budgets.items()):
        if not budget.sockets and budget.paid_up():
            del budgets[key]
