"""Settings read from the environment fail at startup with a sentence that says how to fix them."""

import json
import os
import secrets
import subprocess
import sys
import tempfile
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


def read_settings(*names, **environ):
    """The values of settings `names`, as loaded in a fresh interpreter with `environ`."""
    code, output = load_settings(sys.executable, "-c", PRINT_SETTINGS, *names, **environ)
    if code != 0:
        raise AssertionError(output)
    return json.loads(output.strip().splitlines()[-1])


PRINT_SETTINGS = """
import json, sys, django
from django.conf import settings
django.setup()
json.dump({name: getattr(settings, name, None) for name in sys.argv[1:]}, sys.stderr)
"""


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


class HstsTests(SimpleTestCase):
    production = {
        **StartupTests.production,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        # Empty beats a value in .env, so these tests see the settings' own defaults.
        "DJANGO_SECURE_HSTS_SECONDS": "",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "",
        "DJANGO_SECURE_HSTS_PRELOAD": "",
    }
    year = "31536000"

    def env(self, **overrides):
        return {**self.production, **overrides}

    def test_defaults_send_an_hour_of_hsts_without_preload(self):
        self.assertEqual(
            read_settings(
                "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
                **self.production,
            ),
            {
                "SECURE_HSTS_SECONDS": 3600,
                "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
                "SECURE_HSTS_PRELOAD": False,
            },
        )  # fmt: skip

    def test_preload_with_less_than_a_year_is_refused(self):
        code, output = load_settings(**self.env(DJANGO_SECURE_HSTS_PRELOAD="on"))
        self.assertNotEqual(code, 0)
        self.assertIn(
            "DJANGO_SECURE_HSTS_PRELOAD=on needs DJANGO_SECURE_HSTS_SECONDS=31536000", output
        )

    def test_preload_without_subdomains_is_refused(self):
        code, output = load_settings(
            **self.env(
                DJANGO_SECURE_HSTS_PRELOAD="on",
                DJANGO_SECURE_HSTS_SECONDS=self.year,
                DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="off",
            )
        )
        self.assertNotEqual(code, 0)
        self.assertIn("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=on", output)

    def test_a_year_with_preload_passes_the_deployment_checks_unsilenced(self):
        preload = self.env(DJANGO_SECURE_HSTS_PRELOAD="on", DJANGO_SECURE_HSTS_SECONDS=self.year)
        values = read_settings("SECURE_HSTS_PRELOAD", "SILENCED_SYSTEM_CHECKS", **preload)
        self.assertEqual(values, {"SECURE_HSTS_PRELOAD": True, "SILENCED_SYSTEM_CHECKS": []})
        code, output = load_settings(
            sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING", **preload
        )
        self.assertEqual(code, 0, output)


class StaticFilesTests(SimpleTestCase):
    def test_debug_off_collects_hashed_compressed_files_where_told(self):
        with tempfile.TemporaryDirectory() as static_root:
            code, output = load_settings(
                sys.executable, "manage.py", "collectstatic", "--noinput",
                **StartupTests.production,
                DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
                DJANGO_STATIC_ROOT=static_root,
            )  # fmt: skip
            self.assertEqual(code, 0, output)
            manifest = json.loads((Path(static_root) / "staticfiles.json").read_text())
            hashed = manifest["paths"]["rest_live/rest-live.js"]
            self.assertRegex(hashed, r"^rest_live/rest-live\.[0-9a-f]{12}\.js$")
            for suffix in ["", ".gz", ".br"]:
                self.assertTrue((Path(static_root) / f"{hashed}{suffix}").is_file(), suffix)

    def test_debug_on_serves_the_source_files_without_collecting(self):
        # Debug is on here when the test runner loads the settings, before it turns debug off.
        self.assertEqual(
            read_settings("STORAGES", "SERVESTATIC_USE_FINDERS", DJANGO_DEBUG="on"),
            {
                "STORAGES": {
                    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                    "staticfiles": {
                        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
                    },
                },
                "SERVESTATIC_USE_FINDERS": True,
            },
        )
