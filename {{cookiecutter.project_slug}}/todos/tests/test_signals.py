import subprocess
import sys
from pathlib import Path

from django.test import SimpleTestCase

PROJECT = Path(__file__).resolve().parents[2]

# Run in a fresh process that never imports the websocket routing, as `manage.py shell` or a
# worker would: the signals must be connected by rest_live's AppConfig.ready all the same.
CHECK = """
import sys, django
django.setup()
from django.db.models.signals import post_delete, post_save
from todos.models import Todo
print(post_save.has_listeners(Todo), post_delete.has_listeners(Todo), "config.asgi" in sys.modules)
"""


class SignalConnectionTests(SimpleTestCase):
    def test_writes_broadcast_from_processes_that_do_not_load_the_routing(self):
        result = subprocess.run(
            [sys.executable, "-c", CHECK],
            cwd=PROJECT,
            env={"DJANGO_SETTINGS_MODULE": "config.settings", "PATH": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["True", "True", "False"])
