"""rest_live's settings, read in one place: `REST_LIVE_<NAME>` in Django settings, else the default.

| setting | default | what it limits |
| --- | --- | --- |
| REST_LIVE_MAX_FRAME_BYTES | 65536 | a larger client frame closes the socket with 4009 |
| REST_LIVE_MAX_SUBSCRIPTIONS | 100 | subscriptions one socket may hold; more is an error 429 |
| REST_LIVE_MESSAGE_BURST | 100 | client frames a socket may send at once ... |
| REST_LIVE_MESSAGES_PER_SECOND | 20 | ... and on average; faster closes the socket with 4008 |
| REST_LIVE_SNAPSHOT_LIMIT | 1000 | objects in a list snapshot (the view's page size if smaller) |
| REST_LIVE_CHANGE_POLL_SECONDS | 1.0 | how often servers read the change log (feed.py) |
| REST_LIVE_CHANGE_LOG_SECONDS | 600 | how long the change log keeps a change |
| REST_LIVE_MAX_PENDING_BYTES | 1048576 | bytes waiting for a slow socket; more closes it (4029) |
| REST_LIVE_SLOW_CLOSE_SECONDS | 10.0 | a socket closed with 4029 but open this long is cut off |
| REST_LIVE_MAX_CONNECTIONS | 5000 | sockets one server process holds; more are closed with 4013 |
| REST_LIVE_MAX_CONNECTIONS_PER_USER | None | sockets one signed-in user holds in one process |
| REST_LIVE_EVALUATIONS_PER_SECOND | 100 | one client's evaluations (budget.py); past it, 4013 |
| REST_LIVE_SNAPSHOT_ROWS_PER_SECOND | 2000 | objects one client's snapshots render; past it, 4013 |
| REST_LIVE_NOTIFY | True | PostgreSQL: captured writes send NOTIFY, and servers read them at once |

Each is a whole number of at least 1, but the rates and the two durations, numbers above 0, and
NOTIFY, True or False; the rates and the connection limits may also be None, for no limit.
NOTIFY takes a lock at commit that every notifying transaction waits for: measured with 8
writers of one-row updates, 4,600-6,700 commits/s with it, 8,700-8,900 without. Turned off (then
run `migrate`), a write that Django did not make waits for the poll.

Keep the burst at least MAX_SUBSCRIPTIONS: a client that reconnects (rest-live.js) subscribes
again to everything at once.
"""

from django.conf import settings

DEFAULTS = {
    "MAX_FRAME_BYTES": 64 * 1024,
    "MAX_SUBSCRIPTIONS": 100,
    "MESSAGE_BURST": 100,
    "MESSAGES_PER_SECOND": 20,
    "SNAPSHOT_LIMIT": 1000,
    "CHANGE_POLL_SECONDS": 1.0,
    "CHANGE_LOG_SECONDS": 600,
    "MAX_PENDING_BYTES": 1024 * 1024,
    "SLOW_CLOSE_SECONDS": 10.0,
    "MAX_CONNECTIONS": 5000,
    "MAX_CONNECTIONS_PER_USER": None,
    "EVALUATIONS_PER_SECOND": 100,
    "SNAPSHOT_ROWS_PER_SECOND": 2000,
    "NOTIFY": True,
}
# None turns these limits off.
OPTIONAL = {
    "MESSAGE_BURST",
    "MESSAGES_PER_SECOND",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_USER",
    "EVALUATIONS_PER_SECOND",
    "SNAPSHOT_ROWS_PER_SECOND",
}
FRACTIONAL = {
    "MESSAGES_PER_SECOND",
    "CHANGE_POLL_SECONDS",
    "SLOW_CLOSE_SECONDS",
    "EVALUATIONS_PER_SECOND",
    "SNAPSHOT_ROWS_PER_SECOND",
}
BOOLEAN = {"NOTIFY"}


def setting(name):
    return getattr(settings, f"REST_LIVE_{name}", DEFAULTS[name])


def problems():
    """A sentence for each setting whose value cannot work."""
    found = []
    for name in DEFAULTS:
        value = setting(name)
        if value is None and name in OPTIONAL:
            continue
        if name in BOOLEAN:
            valid, rule = isinstance(value, bool), "True or False"
        elif name in FRACTIONAL:
            valid, rule = _is_number(value) and value > 0, "a number above 0"
        else:
            valid, rule = _is_number(value, int) and value >= 1, "a whole number of at least 1"
        if not valid:
            rule += ", or None" if name in OPTIONAL else ""
            found.append(f"REST_LIVE_{name} is {value!r}; it must be {rule}.")
    return found


def _is_number(value, kind=int | float):
    return isinstance(value, kind) and not isinstance(value, bool)
