# Run with `manage.py shell -c`: what the server will run with, each of the settings NAMES
# (comma-separated, without REST_LIVE_) as rest_live reads it, or "unknown" to rest_live; one
# JSON object.
import json
import os

from rest_live import conf

names = os.environ["NAMES"].split(",")
print(json.dumps({n: conf.setting(n) if n in conf.DEFAULTS else "unknown" for n in names}))
