"""Which pages may open a cookie-authenticated socket: the defence against cross-site websocket
hijacking. A browser sends the session cookie with a socket whichever page opens it, so a page on
another site could otherwise subscribe as the visitor.
"""

from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from django.conf import settings


def AllowedOriginsValidator(application):  # noqa: N802 (named like the channels validators)
    """Refuse handshakes whose `Origin` is not allowed: by default a host in ALLOWED_HOSTS, or
    exactly the entries of `settings.WEBSOCKET_ALLOWED_ORIGINS` when that is set (channels'
    patterns: "https://app.example.com", "example.com", ".example.com" for its subdomains)."""
    origins = getattr(settings, "WEBSOCKET_ALLOWED_ORIGINS", None)
    if origins:
        return OriginValidator(application, list(origins))
    return AllowedHostsOriginValidator(application)
