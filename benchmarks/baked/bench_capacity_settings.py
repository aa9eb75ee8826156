# Only with --pending-bytes: the project's settings with a lower backlog cap.

import os

from config.settings import *  # noqa: F403

REST_LIVE_MAX_PENDING_BYTES = int(os.environ["BENCH_MAX_PENDING_BYTES"])
