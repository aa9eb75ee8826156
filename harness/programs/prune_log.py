# What the server's pruner does every minute, with a log that keeps nothing: every change logged
# so far is deleted, and the floor raised past them (rest_live/feed.py, positions.py). Prints
# the new floor.
from django.test import override_settings
from rest_live import feed
from rest_live.models import LogState

with override_settings(REST_LIVE_CHANGE_LOG_SECONDS=0):
    feed._prune()
print(LogState.objects.get(pk=1).floor)
