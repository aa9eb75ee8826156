"""/metrics (config/metrics.py): off without a token, refused without the right one, and counting.

The metrics are process-global and other tests move them too, so the live test compares two
scrapes rather than reading absolute values.
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import SimpleTestCase, TestCase, override_settings
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.groups import served_at
from tests.live import LiveTestCase
from tests.test_settings import load_settings

TOKEN = secrets.token_urlsafe(32)
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}
# Every metric rest_live/metrics.py defines, by its family name.
FAMILIES = {
    "rest_live_open_sockets": "gauge",
    "rest_live_subscriptions": "gauge",
    "rest_live_distinct_subscriptions": "gauge",
    "rest_live_frames_sent": "counter",
    "rest_live_frames_dropped": "counter",
    "rest_live_changes": "counter",
    "rest_live_evaluation_seconds": "histogram",
    "rest_live_publish_failures": "counter",
}


def samples(body):
    """{(sample name, ((label, value), ...)): value} of a Prometheus text-format body."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def turned_away(test, headers=None):
    """GET /metrics expecting a refusal, which Django logs as a warning (kept out of the output)."""
    with test.assertLogs("django.request", "WARNING"):
        return test.client.get("/metrics", headers=headers)


@override_settings(METRICS_TOKEN=TOKEN)
class MetricsAccessTests(SimpleTestCase):
    def test_the_right_token_gets_every_metric_in_prometheus_format(self):
        response = self.client.get("/metrics", headers=AUTHORIZED)

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], CONTENT_TYPE_LATEST)
        families = {
            family.name: family.type
            for family in text_string_to_metric_families(response.content.decode())
        }
        self.assertEqual({name: families.get(name) for name in FAMILIES}, FAMILIES)

    def test_no_token_or_a_wrong_one_is_refused(self):
        for headers in [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Token {TOKEN}"},  # DRF's scheme is not this endpoint's
            {"Authorization": f"Basic {TOKEN}"},
        ]:
            with self.subTest(headers=headers):
                response = turned_away(self, headers)
                self.assertEqual(response.status_code, 401)
                self.assertTrue(response["WWW-Authenticate"].startswith("Bearer"), response)
                self.assertNotIn(b"rest_live", response.content)

    @override_settings(METRICS_TOKEN="")
    def test_without_a_token_configured_the_endpoint_is_off(self):
        for headers in [{}, {"Authorization": "Bearer "}, AUTHORIZED]:
            with self.subTest(headers=headers):
                self.assertEqual(turned_away(self, headers).status_code, 404)

    @override_settings(DEBUG=False, SECURE_SSL_REDIRECT=True)
    def test_a_scrape_over_plain_http_is_not_redirected(self):
        # Prometheus scrapes each process's own port, behind the TLS proxy: no HTTPS there.
        self.assertEqual(self.client.get("/metrics", headers=AUTHORIZED).status_code, 200)
        self.assertEqual(self.client.get("/api-auth/login/").status_code, 301)


@override_settings(METRICS_TOKEN=TOKEN)
class StaffTests(TestCase):
    def test_a_staff_session_is_not_a_token(self):
        staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
        self.client.force_login(staff)

        self.assertEqual(turned_away(self).status_code, 401)


class MetricsTokenSettingTests(SimpleTestCase):
    def test_a_weak_token_stops_startup_with_how_to_fix_it(self):
        for token in ["too-short", "é" * 40]:
            with self.subTest(token=token):
                code, output = load_settings(METRICS_TOKEN=token)
                self.assertNotEqual(code, 0, output)
                self.assertIn("METRICS_TOKEN must be at least 32 random ASCII characters", output)
                self.assertIn("secrets.token_urlsafe(32)", output)


@override_settings(METRICS_TOKEN=TOKEN)
class LiveMetricsTests(LiveTestCase):
    application = served_at("ws/")
    path = "/ws/"

    async def scrape(self):
        response = await self.async_client.get("/metrics", headers=AUTHORIZED)
        self.assertEqual(response.status_code, 200)
        return samples(response.content.decode())

    async def test_a_subscription_and_a_broadcast_are_counted(self):
        before = await self.scrape()
        socket = await self.connect()
        await self.subscribe(socket, "auth.Group", "list")
        await self.db(Group.objects.create, name="counted")
        await self.assertBroadcast(socket, "CREATED", {"name": "counted"})

        after = await self.scrape()

        def moved(name, **labels):
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0) - before.get(key, 0)

        self.assertEqual(moved("rest_live_open_sockets"), 1)
        self.assertEqual(moved("rest_live_subscriptions"), 1)
        self.assertEqual(moved("rest_live_distinct_subscriptions"), 1)
        # The subscribe's acknowledgement and the broadcast.
        self.assertGreaterEqual(moved("rest_live_frames_sent_total"), 2)
        self.assertEqual(moved("rest_live_frames_dropped_total"), 0)
        self.assertGreaterEqual(moved("rest_live_changes_total", source="change_log"), 1)
        self.assertGreaterEqual(moved("rest_live_evaluation_seconds_count"), 1)
        self.assertEqual(moved("rest_live_publish_failures_total"), 0)

        await socket.disconnect()
        self._sockets.remove(socket)
        closed = await self.scrape()
        for gauge in ["open_sockets", "subscriptions", "distinct_subscriptions"]:
            key = (f"rest_live_{gauge}", ())
            self.assertEqual(closed[key], before[key], gauge)
