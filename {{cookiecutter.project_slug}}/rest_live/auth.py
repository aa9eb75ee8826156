"""Token authentication for sockets that cannot use the site's session cookie.

Scripts, apps and pages on other origins authenticate with a DRF token (`rest_framework.authtoken`,
`POST /api/token/`), presented in one of these ways, best first:

1. An `Authorization: Token <key>` header, for clients that can set headers (browsers cannot).
2. The subprotocol `rest-live.token.<key>`, offered next to `rest-live`, which browsers can send:
   `new WebSocket(url, ["rest-live", "rest-live.token." + key])`. The server answers `rest-live`,
   never the token, and views then see the token as an `Authorization` header.
3. `?token=<key>` in the URL, only where enabled with `query_param="token"`, as a last resort: URLs
   are written to the access logs of servers and proxies and kept in histories, so a token there
   leaks far more easily than one in a header.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from rest_live.protocol import CLOSE_INVALID_TOKEN, SUBPROTOCOL

TOKEN_SUBPROTOCOL_PREFIX = f"{SUBPROTOCOL}.token."
# In the scope of a socket signed in by its token: the key. Its views authenticate it from the
# token (an Authorization header), as REST does; it has no session (subscriber.py).
TOKEN_SCOPE_KEY = "rest_live.token"


class TokenAuthMiddleware:
    """Sockets that present a DRF token go to `inner` as its user; the others go to `otherwise`.

        routes = URLRouter(websocket_urlpatterns)
        cookie_sockets = AllowedOriginsValidator(AuthMiddlewareStack(routes))
        application = TokenAuthMiddleware(routes, otherwise=cookie_sockets)

    A browser adds the session cookie to a socket whichever page opens it, so cookie sockets need
    the origin check. A token is a credential the client itself holds and sends, so a socket that
    presents one needs no origin check and no session. An unknown token, or one whose user is
    inactive, is accepted and closed at once with code 4001, which clients can tell from a network
    failure (and stop retrying).
    """

    def __init__(self, inner, otherwise=None, query_param=None):
        self.inner = inner
        self.otherwise = inner if otherwise is None else otherwise
        self.query_param = query_param

    async def __call__(self, scope, receive, send):
        key, scope = self._take_token(scope)
        if key is None:
            return await self.otherwise(scope, receive, send)
        user = await _user_for(key)
        if user is None:
            return await TokenRefused.as_asgi()(scope, receive, send)
        return await self.inner({**scope, "user": user, TOKEN_SCOPE_KEY: key}, receive, send)

    def _take_token(self, scope):
        """(key or None, scope): the token taken out of the subprotocols and the query string."""
        headers = list(scope.get("headers", ()))
        subprotocols = list(scope.get("subprotocols") or ())
        key = _header_token(headers)
        for offered in subprotocols:
            if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                subprotocols.remove(offered)  # never echoed back, never seen by consumers
                key = key or offered.removeprefix(TOKEN_SUBPROTOCOL_PREFIX)
                break
        if key is None and self.query_param:
            values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(self.query_param)
            key = values[0] if values else None
        if key is not None and _header_token(headers) is None:
            # Views authenticate subscribers with their own classes; let TokenAuthentication see it.
            headers.append((b"authorization", f"{TokenAuthentication.keyword} {key}".encode()))
        return key, {**scope, "headers": headers, "subprotocols": subprotocols}


class TokenRefused(AsyncWebsocketConsumer):
    """Accepts (so the client gets a close code, not a failed handshake) and closes with 4001."""

    async def connect(self):
        offered = self.scope.get("subprotocols") or ()
        await self.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await self.close(code=CLOSE_INVALID_TOKEN)


def _header_token(headers):
    keyword = TokenAuthentication.keyword.lower().encode() + b" "
    for name, value in headers:
        if name.lower() == b"authorization" and value.lower().startswith(keyword):
            return value[len(keyword) :].strip().decode("latin1") or None
    return None


@database_sync_to_async
def _user_for(key):
    try:
        user, _token = TokenAuthentication().authenticate_credentials(key)
    except exceptions.AuthenticationFailed:
        return None
    return user
