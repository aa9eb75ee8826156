# The backpressure tests' settings, copied into the bake: limits a test may set through the
# environment (MAX_CONNECTIONS, EVALUATIONS_PER_SECOND, SLOW_CLOSE_SECONDS), and a quick poll.
import os

from config.settings import *  # noqa: F403

REST_LIVE_MAX_CONNECTIONS = int(os.environ["MAX_CONNECTIONS"])
REST_LIVE_EVALUATIONS_PER_SECOND = float(os.environ.get("EVALUATIONS_PER_SECOND", "100"))
# Sockets closed as too slow are cut off after this (10 s shipped): long enough here for the
# slow sockets to read their 4029, unless a test asks for less.
REST_LIVE_SLOW_CLOSE_SECONDS = float(os.environ.get("SLOW_CLOSE_SECONDS", "120"))
# The stream's broadcasts come from another process on the in-memory layer: read them from the
# change log four times a round, so that each round is its own change, as it is with Redis.
REST_LIVE_CHANGE_POLL_SECONDS = 0.05
