import os

from config.settings import *  # noqa: F403

_LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYERS["default"]["BACKEND"] = _LAYERS[os.environ["BENCH_LAYER"]]  # noqa: F405
# Benchmarks go past the shipped cap of sockets per process (5,000) to measure where it lies.
REST_LIVE_MAX_CONNECTIONS = 20_000
# Every benchmark client connects from 127.0.0.1, which the per-client budgets
# (rest_live/budget.py) would take for one client of thousands of subscriptions. The
# hostile-client benchmark turns them back on.
REST_LIVE_EVALUATIONS_PER_SECOND = None
REST_LIVE_SNAPSHOT_ROWS_PER_SECOND = None

if os.environ.get("BENCH_GC_LOG"):
    # Each full collection, to the log: "bench-gc <monotonic start> <seconds>".
    import gc
    import sys
    import time

    def _log_full_collections(phase, info, started=[0.0]):  # noqa: B006 (kept between calls)
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.monotonic()
        else:
            took = time.monotonic() - started[0]
            print(f"bench-gc {started[0]:.4f} {took:.4f}", file=sys.stderr, flush=True)

    gc.callbacks.append(_log_full_collections)
