"""Sockets authenticated by a DRF token (rest_live/auth.py), wired as in config/asgi.py."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import Group
from django.urls import path
from rest_framework import permissions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from rest_live.auth import TokenAuthMiddleware
from rest_live.protocol import CLOSE_INVALID_TOKEN, CLOSE_UNAUTHENTICATED
from rest_live.routers import RealtimeRouter
from rest_live.testing import APICommunicator
from tests.live import LiveTestCase
from tests.test_rest_live import GroupViewSet

GROUP = "auth.Group"
FOREIGN_ORIGIN = (b"origin", b"https://elsewhere.example")


class TokenOnlyGroupViewSet(GroupViewSet):
    """A view that knows no session: it sees the socket's token as an Authorization header."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]


class SignedInGroupViewSet(GroupViewSet):
    """A view that takes sessions and tokens (DRF's default classes, as the project's views)."""

    permission_classes = [permissions.IsAuthenticated]


private_router = RealtimeRouter(public=False)  # closes anonymous sockets: shows who is signed in
private_router.register(GroupViewSet)
token_only_router = RealtimeRouter()
token_only_router.register(TokenOnlyGroupViewSet)
signed_in_router = RealtimeRouter()
signed_in_router.register(SignedInGroupViewSet)
routes = URLRouter(
    [
        path("ws/private/", private_router.as_consumer().as_asgi()),
        path("ws/token-only/", token_only_router.as_consumer().as_asgi()),
        path("ws/signed-in/", signed_in_router.as_consumer().as_asgi()),
    ]
)
cookie_sockets = AllowedHostsOriginValidator(AuthMiddlewareStack(routes))
application = TokenAuthMiddleware(routes, otherwise=cookie_sockets)
url_token_application = TokenAuthMiddleware(routes, otherwise=cookie_sockets, query_param="token")


def token_subprotocols(key):
    return ["rest-live", f"rest-live.token.{key}"]


class TokenAuthTests(LiveTestCase):
    application = application
    path = "/ws/private/"

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.alice = await self.create_user("alice")
        self.key = (await self.db(Token.objects.create, user=self.alice)).key

    async def assertSignedIn(self, socket):
        """The private router kept the socket open, and it serves subscriptions."""
        sub = await self.subscribe(socket, GROUP)
        await self.db(Group.objects.create, name="editors")
        await self.assertBroadcast(socket, "CREATED", {"name": "editors"}, id=sub)

    async def test_a_subprotocol_token_from_another_origin(self):
        socket = await self.connect(
            headers=[FOREIGN_ORIGIN], subprotocols=token_subprotocols(self.key)
        )
        self.assertEqual(socket.subprotocol, "rest-live")  # the token is never echoed
        await self.assertSignedIn(socket)

    async def test_an_authorization_header(self):
        header = (b"authorization", f"Token {self.key}".encode())
        socket = await self.connect(headers=[FOREIGN_ORIGIN, header])
        self.assertIsNone(socket.subprotocol)
        await self.assertSignedIn(socket)

    async def test_an_unknown_token_is_closed_with_4001(self):
        socket = await self.connect(subprotocols=token_subprotocols("0" * 40))
        self.assertEqual(socket.subprotocol, "rest-live")
        await self.assertClosed(socket, CLOSE_INVALID_TOKEN)

    async def test_the_token_of_an_inactive_user_is_closed_with_4001(self):
        self.alice.is_active = False
        await self.db(self.alice.save)
        socket = await self.connect(subprotocols=token_subprotocols(self.key))
        await self.assertClosed(socket, CLOSE_INVALID_TOKEN)

    async def test_without_a_token_the_session_is_used_and_the_origin_checked(self):
        await self.assertSignedIn(await self.connect(self.alice))
        anonymous = await self.connect()
        await self.assertClosed(anonymous, CLOSE_UNAUTHENTICATED)
        refused = APICommunicator(self.application, self.path, headers=[FOREIGN_ORIGIN])
        connected, _code = await refused.connect()
        self.assertFalse(connected)

    async def test_a_token_in_the_url_only_where_enabled(self):
        path = f"/ws/private/?token={self.key}"
        ignored = await self.connect(path=path)
        await self.assertClosed(ignored, CLOSE_UNAUTHENTICATED)
        self.application = url_token_application
        await self.assertSignedIn(await self.connect(path=path, headers=[FOREIGN_ORIGIN]))

    async def test_views_see_the_token(self):
        session_only = await self.connect(self.alice, path="/ws/token-only/")
        await session_only.send_json_to(
            {"type": "subscribe", "id": 1, "model": GROUP, "action": "list"}
        )
        await self.assertError(session_only, 403, id=1)
        socket = await self.connect(
            path="/ws/token-only/", subprotocols=token_subprotocols(self.key)
        )
        await self.assertSignedIn(socket)


class ProjectWiringTests(LiveTestCase):
    """config/asgi.py: token sockets from anywhere, cookie sockets from the site's hosts."""

    async def test_a_token_socket_from_another_origin_is_accepted(self):
        alice = await self.create_user("alice")
        token = await self.db(Token.objects.create, user=alice)
        socket = await self.connect(
            headers=[FOREIGN_ORIGIN], subprotocols=token_subprotocols(token.key)
        )
        self.assertEqual(socket.subprotocol, "rest-live")

    async def test_rest_live_is_echoed_when_offered(self):
        socket = await self.connect(subprotocols=["rest-live"])
        self.assertEqual(socket.subprotocol, "rest-live")


class TokenEndTests(LiveTestCase):
    """A token socket loses private data at the next change once its token or user ends, as the
    same request over REST would (rest_live/identity.py checks every login at each change)."""

    application = application
    path = "/ws/token-only/"

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.alice = await self.create_user("alice")
        self.token = await self.db(Token.objects.create, user=self.alice)
        self.socket = await self.connect(subprotocols=token_subprotocols(self.token.key))
        self.sub = await self.subscribe(self.socket, GROUP)
        self.group = await self.db(Group.objects.create, name="editors")
        await self.assertBroadcast(self.socket, "CREATED", {"name": "editors"}, id=self.sub)

    async def assert_access_ends(self):
        self.group.name = "still editors"
        await self.db(self.group.save)
        # The next change tells the subscription to re-sync, and she is refused, as over REST:
        # her client drops what it held, not only the row that changed.
        await self.assertReset(self.socket, self.sub)
        reply = await self.resubscribe(self.socket, self.sub, GROUP)
        self.assertEqual((reply["type"], reply.get("code")), ("error", 403), reply)
        await self.db(Group.objects.create, name="secret")
        await self.assertNothing(self.socket)

    async def test_a_revoked_token(self):
        await self.db(self.token.delete)
        await self.assert_access_ends()

    async def test_a_deactivated_user(self):
        self.alice.is_active = False
        await self.db(self.alice.save)
        await self.assert_access_ends()

    async def test_access_goes_on_while_the_token_holds(self):
        await self.create_user("bob")  # another user's row changes nothing here
        self.group.name = "renamed"
        await self.db(self.group.save)
        await self.assertBroadcast(self.socket, "UPDATED", {"name": "renamed"}, id=self.sub)


class TokenEndOnViewsThatTakeSessionsTooTests(TokenEndTests):
    """The same on a view with DRF's default authentication (sessions, then tokens): the
    socket's user is the token's, not a session's, so a deleted token ends access here too."""

    path = "/ws/signed-in/"


class TokenCheckCostTests(LiveTestCase):
    application = application
    path = "/ws/signed-in/"

    async def test_token_logins_are_checked_with_their_users_in_one_query(self):
        sockets = []
        for number in range(6):
            user = await self.create_user(f"user{number}")
            token = await self.db(Token.objects.create, user=user)
            socket = await self.connect(subprotocols=token_subprotocols(token.key))
            await self.subscribe(socket, GROUP)
            sockets.append(socket)
        async with self.captureQueries() as queries:
            await self.db(Group.objects.create, name="everyone's")
            for socket in sockets:
                await self.assertBroadcast(socket, "CREATED", {"name": "everyone's"})
        # Their tokens and their users' rows (rest_live/identity.py), for all six at once.
        logins = [sql for sql in queries if '"authtoken_token"' in sql or '"auth_user"' in sql]
        self.assertEqual(len(logins), 1, logins)
