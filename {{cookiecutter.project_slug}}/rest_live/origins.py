"""Which pages may open a cookie-authenticated socket: the defence against cross-site websocket
hijacking. A browser sends the session cookie with a socket whichever page opens it, so a page on
another site could otherwise subscribe as the visitor.

A socket without a token is refused at the handshake (HTTP 403, which browsers report as 1006)
when its `Origin` is not allowed, or when it has none: browsers always send one, other clients
(scripts, apps) rarely do, and must authenticate with a token instead (rest_live/auth.py). Each
refusal is logged at INFO with its reason, which the client itself is never told.
"""

import logging

from channels.security.websocket import OriginValidator
from django.conf import settings

from rest_live import conf

logger = logging.getLogger(__name__)


def AllowedOriginsValidator(application):  # noqa: N802 (named like the channels validators)
    """Refuse handshakes whose `Origin` is not allowed: by default a host in ALLOWED_HOSTS (and
    localhost with DEBUG on and no ALLOWED_HOSTS, as Channels' AllowedHostsOriginValidator), or
    exactly the entries of `settings.WEBSOCKET_ALLOWED_ORIGINS` when that is set (channels'
    patterns: "https://app.example.com", "example.com", ".example.com" for its subdomains)."""
    origins, source = conf.allowed_origins(), "WEBSOCKET_ALLOWED_ORIGINS"
    if not origins:
        origins, source = settings.ALLOWED_HOSTS, "ALLOWED_HOSTS"
        if settings.DEBUG and not origins:
            origins = ["localhost", "127.0.0.1", "[::1]"]
    return _LoggedOriginValidator(application, list(origins), source)


class _LoggedOriginValidator(OriginValidator):
    def __init__(self, application, allowed_origins, source):
        super().__init__(application, allowed_origins)
        self.source = source  # the setting `allowed_origins` came from, for the log

    def valid_origin(self, parsed_origin):
        if super().valid_origin(parsed_origin):
            return True
        if parsed_origin is None:
            logger.info(
                "rest_live refused a websocket handshake without an Origin header or a token: "
                "a client outside a browser must send a token (docs/protocol.md, Authentication)"
            )
        else:
            logger.info(
                "rest_live refused a websocket handshake from Origin %s without a token: not in %s",
                parsed_origin.geturl(),
                self.source,
            )
        return False
