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
| REST_LIVE_PUBLISH_TIMEOUT_SECONDS | 5.0 | how long a write waits for a silent channel layer |

Each is a whole number of at least 1, but the rates and the three durations, numbers above 0, and
NOTIFY, True or False; the rates and the connection limits may also be None, for no limit.
NOTIFY takes a lock at commit that every notifying transaction waits for: measured with 8
writers of one-row updates, 4,600-6,700 commits/s with it, 8,700-8,900 without. Turned off (then
run `migrate`), a write that Django did not make waits for the poll. The publish timeout is how
long the thread that wrote (a request, after its commit) waits for a layer that takes the message
but does not answer (Redis behind a lost network, where nothing else times out), at every write
until the layer answers again. The change is in the log, so giving up costs it only the poll's
delay (publisher.py): lower the timeout to keep requests fast through such an outage, but keep it
above the slowest answer of a healthy layer.

Keep the burst at least MAX_SUBSCRIPTIONS: a client that reconnects (rest-live.js) subscribes
again to everything at once.

Two more say what to serve rather than how much:

| setting | default | what it names |
| --- | --- | --- |
| REST_LIVE_ROUTERS | [] | the dotted paths of the RealtimeRouter instances every process imports |
| WEBSOCKET_ALLOWED_ORIGINS | [] | origins whose pages may open a cookie-authenticated socket |

REST_LIVE_ROUTERS is a list of dotted paths, each of a RealtimeRouter instance, or the app's
`ready()` fails; empty, it is a warning (W001). WEBSOCKET_ALLOWED_ORIGINS is a list of strings
(E002); empty, the pages of ALLOWED_HOSTS are allowed (origins.py). Django's and Channels' own
settings (ROOT_URLCONF, CHANNEL_LAYERS, ALLOWED_HOSTS, SESSION_ENGINE...) are read where they
are used, as Django's code does.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

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
    "PUBLISH_TIMEOUT_SECONDS": 5.0,
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
    "PUBLISH_TIMEOUT_SECONDS",
}
BOOLEAN = {"NOTIFY"}


def setting(name):
    return getattr(settings, f"REST_LIVE_{name}", DEFAULTS[name])


def router_paths():
    """REST_LIVE_ROUTERS: the dotted paths of the project's RealtimeRouter instances."""
    paths = getattr(settings, "REST_LIVE_ROUTERS", None) or []
    if not _is_list_of_strings(paths):
        raise ImproperlyConfigured(
            f"REST_LIVE_ROUTERS is {paths!r}; it must be a list of dotted paths of RealtimeRouter "
            "instances, e.g. ['config.routing.router']."
        )
    return list(paths)


def routers():
    """The RealtimeRouter instances REST_LIVE_ROUTERS names, imported (which registers their
    views); ImproperlyConfigured for a path that is not one."""
    from rest_live.routers import RealtimeRouter

    found = []
    for dotted_path in router_paths():
        try:
            router = import_string(dotted_path)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"REST_LIVE_ROUTERS names {dotted_path!r}, which cannot be imported ({error}). "
                "List the dotted paths of your RealtimeRouter instances, "
                "e.g. 'config.routing.router'."
            ) from error
        if not isinstance(router, RealtimeRouter):
            raise ImproperlyConfigured(
                f"REST_LIVE_ROUTERS names {dotted_path!r}, which is a "
                f"{type(router).__name__}, not a RealtimeRouter instance."
            )
        found.append(router)
    return found


def allowed_origins():
    """WEBSOCKET_ALLOWED_ORIGINS as a list, or None when it is not set or empty (origins.py then
    allows the hosts of ALLOWED_HOSTS)."""
    origins = getattr(settings, "WEBSOCKET_ALLOWED_ORIGINS", None)
    return list(origins) if origins and _is_list_of_strings(origins) else None


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
    origins = getattr(settings, "WEBSOCKET_ALLOWED_ORIGINS", None)
    if origins and not _is_list_of_strings(origins):
        found.append(
            f"WEBSOCKET_ALLOWED_ORIGINS is {origins!r}; it must be a list of origins, "
            "e.g. ['https://app.example.com']."
        )
    return found


def _is_list_of_strings(value):
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


def _is_number(value, kind=int | float):
    return isinstance(value, kind) and not isinstance(value, bool)
