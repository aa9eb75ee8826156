# The server's pruner, with a log that keeps a millisecond of changes.
from django.test import override_settings
from rest_live import feed

with override_settings(REST_LIVE_CHANGE_LOG_SECONDS=0.001):
    feed._prune()
