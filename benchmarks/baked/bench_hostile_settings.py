# The benchmarks' settings (the pub/sub layer), which turn the per-client budget off for every
# benchmark client from 127.0.0.1: `bounds` takes it back to the shipped defaults (rest_live's
# own, by leaving the settings out), `unbounded` turns it off.

import os

from bench_settings import *  # noqa: F403

for _name in ("REST_LIVE_EVALUATIONS_PER_SECOND", "REST_LIVE_SNAPSHOT_ROWS_PER_SECOND"):
    globals().pop(_name, None)
if os.environ["BENCH_BUDGET"] == "unbounded":
    REST_LIVE_EVALUATIONS_PER_SECOND = None
    REST_LIVE_SNAPSHOT_ROWS_PER_SECOND = None
