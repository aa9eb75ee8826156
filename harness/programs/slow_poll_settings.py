# Settings whose timed read of the change log comes every 30 s: a change that arrives sooner
# came by the wake-up its write sends (NOTIFY, the channel layer), not by the poll. Copied into
# a folder on PYTHONPATH and named by DJANGO_SETTINGS_MODULE.
from config.settings import *  # noqa: F403

REST_LIVE_CHANGE_POLL_SECONDS = 30.0
