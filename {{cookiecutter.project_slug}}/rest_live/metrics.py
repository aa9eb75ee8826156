"""What a server process counts for Prometheus, when prometheus-client is installed.

The `metrics` baking option installs it and serves these at /metrics (config/metrics.py). Without
it each metric here is a stand-in that counts nothing, so rest_live's code records them the same
way either way. The numbers are per process: scrape each server process.
"""

try:
    from prometheus_client import Counter, Gauge, Histogram
except ImportError:  # not installed: nothing is counted
    Counter = Gauge = Histogram = None


class _Nothing:
    """Takes every call a metric takes, and keeps nothing."""

    def __getattr__(self, name):
        return self._ignore

    def _ignore(self, *args, **kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def _metric(kind, name, documentation, **kwargs):
    return _Nothing() if kind is None else kind(name, documentation, **kwargs)


OPEN_SOCKETS = _metric(Gauge, "rest_live_open_sockets", "Websockets open in this process.")
SUBSCRIPTIONS = _metric(
    Gauge, "rest_live_subscriptions", "Subscriptions held by this process's sockets."
)
DISTINCT_SUBSCRIPTIONS = _metric(
    Gauge,
    "rest_live_distinct_subscriptions",
    "Distinct subscriptions in this process; each is evaluated once per change.",
)
FRAMES_SENT = _metric(Counter, "rest_live_frames_sent", "Frames handed to the server to send.")
FRAMES_DROPPED = _metric(
    Counter,
    "rest_live_frames_dropped",
    "Frames dropped because their socket fell too far behind (it is closed with 4029).",
)
CHANGES = _metric(
    Counter,
    "rest_live_changes",
    "Changes this process handled, by where they came from: the change log, or whole on the "
    "channel layer (a model outside the log's database).",
    labelnames=["source"],
)
EVALUATION_SECONDS = _metric(
    Histogram,
    "rest_live_evaluation_seconds",
    "Time to evaluate one change for one distinct subscription (query and rendering).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PUBLISH_FAILURES = _metric(
    Counter,
    "rest_live_publish_failures",
    "Announcements this process could not publish on the channel layer (the change log has "
    "their changes).",
)
