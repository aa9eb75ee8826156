"""Security boundaries and limits on the websocket, each a setting with a documented default."""

from importlib import import_module

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import checks
from django.test import SimpleTestCase, override_settings
from django.urls import path
from rest_framework import permissions, viewsets

from rest_live.limits import MessageRate
from rest_live.mixins import RealtimeMixin
from rest_live.origins import AllowedOriginsValidator
from rest_live.protocol import CLOSE_TOO_BIG, CLOSE_TOO_FAST
from rest_live.routers import RealtimeRouter
from rest_live.testing import APICommunicator
from tests.groups import GroupSerializer
from tests.live import LiveTestCase


class MembersOnlyGroupViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Group.objects.all()
    serializer_class = GroupSerializer
    permission_classes = [permissions.IsAuthenticated]


router = RealtimeRouter()
router.register(MembersOnlyGroupViewSet)
routes = URLRouter([path("ws/", router.as_consumer().as_asgi())])


class LimitTests(LiveTestCase):
    application = AuthMiddlewareStack(routes)
    path = "/ws/"

    @override_settings(REST_LIVE_MAX_FRAME_BYTES=1000)
    async def test_a_frame_over_the_size_limit_closes_the_socket_with_4009(self):
        socket = await self.connect()
        await socket.send_to(text_data="x" * 1000)  # at the limit: read, and refused as JSON
        await self.assertError(socket, 400)
        await socket.send_to(text_data="é" * 500)  # 1000 bytes in UTF-8
        await self.assertError(socket, 400)
        await socket.send_to(text_data="é" * 501)
        await self.assertClosed(socket, CLOSE_TOO_BIG)

    @override_settings(REST_LIVE_MAX_FRAME_BYTES=1000)
    async def test_a_binary_frame_over_the_limit_closes_too(self):
        socket = await self.connect()
        await socket.send_to(bytes_data=b"\0" * 1001)
        await self.assertClosed(socket, CLOSE_TOO_BIG)

    @override_settings(REST_LIVE_MAX_SUBSCRIPTIONS=2)
    async def test_subscriptions_per_socket_are_capped(self):
        user = await self.create_user("member")
        socket = await self.connect(user)
        first = await self.subscribe(socket, "auth.Group")
        await self.subscribe(socket, "auth.Group", query_params={"n": "2"})
        await socket.send_json_to(
            {"type": "subscribe", "id": "third", "model": "auth.Group", "action": "list"}
        )
        error = await self.assertError(socket, 429, id="third")
        self.assertIn("2 subscriptions, the most allowed", error["message"])
        await self.unsubscribe(socket, first)
        await self.subscribe(socket, "auth.Group", id="third")

    @override_settings(REST_LIVE_MESSAGE_BURST=5, REST_LIVE_MESSAGES_PER_SECOND=0.001)
    async def test_a_socket_over_its_message_rate_is_closed_with_4008(self):
        socket = await self.connect()
        for number in range(5):
            await socket.send_json_to({"type": "unsubscribe", "id": number})
            await self.assertError(socket, 404, id=number)
        await socket.send_json_to({"type": "unsubscribe", "id": 5})
        await self.assertClosed(socket, CLOSE_TOO_FAST)


class MessageRateTests(SimpleTestCase):
    # run_checks() runs Django's checks too, and on Django 6 one of them queries the database.
    databases = {"default"}

    def test_burst_then_steady_rate(self):
        now = [0.0]
        rate = MessageRate(burst=3, per_second=2, clock=lambda: now[0])
        self.assertEqual([rate.allow() for _ in range(4)], [True, True, True, False])
        now[0] += 0.5  # one message's worth
        self.assertEqual([rate.allow(), rate.allow()], [True, False])
        now[0] += 100  # refills to the burst, no further
        self.assertEqual([rate.allow() for _ in range(4)], [True, True, True, False])

    def test_none_means_no_limit(self):
        self.assertTrue(all(MessageRate(None, None).allow() for _ in range(10_000)))

    def test_bad_limits_fail_the_system_checks(self):
        with override_settings(REST_LIVE_MAX_SUBSCRIPTIONS=0, REST_LIVE_MESSAGE_BURST="many"):
            errors = [e for e in checks.run_checks() if e.id == "rest_live.E002"]
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("REST_LIVE_MAX_SUBSCRIPTIONS is 0", errors[0].msg)


class OriginTests(LiveTestCase):
    """Cross-site websocket hijacking: a page elsewhere must not open a socket with our cookie."""

    async def handshake(self, origin):
        """Whether the handshake is accepted; `origin` None sends no Origin header."""
        application = AllowedOriginsValidator(AuthMiddlewareStack(routes))
        socket = APICommunicator(
            application, "/ws/", headers=[(b"origin", (origin or "").encode())]
        )
        if origin is None:
            socket.scope["headers"] = [h for h in socket.scope["headers"] if h[0] != b"origin"]
        connected, _ = await socket.connect()
        if connected:
            await socket.disconnect()
        return connected

    async def test_each_refusal_is_logged_with_its_reason(self):
        # The client only sees a 403 (a browser, 1006): the server's log says why.
        with self.assertLogs("rest_live.origins", "INFO") as logged:
            self.assertFalse(await self.handshake("https://evil.example"))
            self.assertFalse(await self.handshake(None))
        foreign, missing = logged.output
        self.assertIn(
            "from Origin https://evil.example without a token: not in ALLOWED_HOSTS", foreign
        )
        self.assertIn("without an Origin header or a token", missing)
        self.assertIn("must send a token", missing)

    async def test_a_foreign_origin_is_refused(self):
        self.assertTrue(await self.handshake("http://testserver"))
        with self.assertLogs("rest_live.origins", "INFO") as logged:
            self.assertFalse(await self.handshake("https://evil.example"))
            self.assertFalse(await self.handshake("null"))
        self.assertEqual(len(logged.output), 2, logged.output)

    @override_settings(WEBSOCKET_ALLOWED_ORIGINS=["https://app.example.com"])
    async def test_allowed_origins_are_a_setting(self):
        self.assertTrue(await self.handshake("https://app.example.com"))
        with self.assertLogs("rest_live.origins", "INFO") as logged:
            self.assertFalse(await self.handshake("http://testserver"))
            self.assertFalse(await self.handshake("https://evil.example"))
        self.assertIn("not in WEBSOCKET_ALLOWED_ORIGINS", logged.output[0])


class SessionEndTests(LiveTestCase):
    """Private data stops at the next change once the socket's session ends."""

    application = AuthMiddlewareStack(routes)
    path = "/ws/"

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.member = await self.create_user("member", password="old-password-1")
        self.socket = await self.connect(self.member)
        self.sub = await self.subscribe(self.socket, "auth.Group")
        self.group = await self.db(Group.objects.create, name="members")
        await self.assertBroadcast(self.socket, "CREATED", {"name": "members"}, id=self.sub)

    async def assert_access_ends(self):
        self.group.name = "still members"
        await self.db(self.group.save)
        # The next change tells the subscription to re-sync, and the member is refused, as over
        # REST: the client drops what it held, not only the row that changed.
        await self.assertReset(self.socket, self.sub)
        reply = await self.resubscribe(self.socket, self.sub, "auth.Group")
        self.assertEqual((reply["type"], reply.get("code")), ("error", 403), reply)
        await self.db(Group.objects.create, name="secret")
        await self.assertNothing(self.socket)

    async def test_logging_out(self):
        store = import_module(settings.SESSION_ENGINE).SessionStore
        session_key = self.socket.scope["headers"][-1][1].decode().split("=", 1)[1]
        await self.db(store(session_key).delete)  # what logout does to the session
        await self.assert_access_ends()

    async def test_changing_the_password(self):
        self.member.set_password("new-password-2")  # other sessions end, as Django does
        await self.db(self.member.save)
        await self.assert_access_ends()

    async def test_deactivation(self):
        self.member.is_active = False
        await self.db(self.member.save)
        await self.assert_access_ends()
