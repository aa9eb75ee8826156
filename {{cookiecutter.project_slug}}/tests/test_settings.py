"""Settings read from the environment fail at startup with a sentence that says how to fix them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from config.env import env_bool, env_int, env_list

PROJECT = Path(__file__).resolve().parent.parent


def load_settings(*command, **environ):
    """Import the settings in a fresh interpreter with `environ`; (exit code, output)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **environ}
    result = subprocess.run(
        command or [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr


class EnvReaderTests(SimpleTestCase):
    def test_booleans(self):
        for text, value in [("on", True), ("TRUE", True), ("0", False), ("off", False)]:
            with mock.patch.dict(os.environ, {"FLAG": text}):
                self.assertIs(env_bool("FLAG", not value), value)
        with mock.patch.dict(os.environ, {"FLAG": ""}):
            self.assertIs(env_bool("FLAG", True), True)
        with mock.patch.dict(os.environ, {"FLAG": "maybe"}):
            with self.assertRaisesMessage(ImproperlyConfigured, "FLAG='maybe' is not a boolean"):
                env_bool("FLAG", True)

    def test_integers_and_lists(self):
        with mock.patch.dict(os.environ, {"N": "12", "HOSTS": " a.com, ,b.com "}):
            self.assertEqual(env_int("N", 0), 12)
            self.assertEqual(env_list("HOSTS"), ["a.com", "b.com"])
        with mock.patch.dict(os.environ, {"N": "twelve"}):
            with self.assertRaisesMessage(ImproperlyConfigured, "N='twelve' is not a whole number"):
                env_int("N", 0)


class StartupTests(SimpleTestCase):
    production = {"DJANGO_DEBUG": "off", "DJANGO_ALLOWED_HOSTS": "example.com"}

    def test_debug_off_requires_a_secret_key(self):
        code, output = load_settings(**self.production, DJANGO_SECRET_KEY="")
        self.assertNotEqual(code, 0)
        self.assertIn("DJANGO_SECRET_KEY is not set and DJANGO_DEBUG is off", output)

    def test_debug_off_refuses_a_weak_secret_key(self):
        code, output = load_settings(**self.production, DJANGO_SECRET_KEY="short")
        self.assertNotEqual(code, 0)
        self.assertIn("DJANGO_SECRET_KEY is too weak", output)

    def test_debug_off_requires_allowed_hosts(self):
        code, output = load_settings(
            DJANGO_DEBUG="off", DJANGO_ALLOWED_HOSTS="", DJANGO_SECRET_KEY="k" * 60
        )
        self.assertNotEqual(code, 0)
        self.assertIn("DJANGO_ALLOWED_HOSTS is empty", output)

    def test_production_settings_pass_the_deployment_checks(self):
        code, output = load_settings(
            sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING",
            **self.production, DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        )  # fmt: skip
        self.assertEqual(code, 0, output)

    def test_a_bad_database_url_is_explained(self):
        code, output = load_settings(DATABASE_URL="nosuchdb://x")
        self.assertNotEqual(code, 0)
        self.assertIn("DATABASE_URL is not a database URL Django can use", output)

    def test_a_bad_boolean_is_explained(self):
        code, output = load_settings(DJANGO_DEBUG="maybe")
        self.assertNotEqual(code, 0)
        self.assertIn("DJANGO_DEBUG='maybe' is not a boolean", output)
