"""Tools for testing live views: a communicator DRF views accept, async setup, logged-in headers."""

import functools
import itertools

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

_client_ports = itertools.count(50000)


def _test_host():
    """A host name the project's origin validation accepts under the test runner."""
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    if "testserver" in hosts or not hosts:
        return "testserver"
    return hosts[0].lstrip(".")


class APICommunicator(WebsocketCommunicator):
    """A websocket test client with a scope complete enough for DRF views.

    It sends `Host` and `Origin` for a test host, so an `AllowedHostsOriginValidator`-wrapped
    application accepts it, plus any `headers` given (pairs of str or bytes).
    """

    def __init__(self, application, path, headers=None, subprotocols=None, spec_version=None):
        host = _test_host()
        given = [(_bytes(name).lower(), _bytes(value)) for name, value in headers or ()]
        names = {name for name, _ in given}
        defaults = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
        headers = [pair for pair in defaults if pair[0] not in names] + given
        super().__init__(application, path, headers, subprotocols, spec_version)
        self.scope["server"] = (host, 80)
        self.scope["client"] = ("127.0.0.1", next(_client_ports))

    async def receive_nothing(self, timeout=0.1, interval=0.01):
        """True if nothing arrives in `timeout`; fails, rather than passing, if the app has died."""
        self.assert_alive()
        nothing = await super().receive_nothing(timeout, interval)
        self.assert_alive()
        return nothing

    def assert_alive(self):
        if self.future.done():
            if not self.future.cancelled() and self.future.exception() is not None:
                raise AssertionError("The websocket application crashed.") from (
                    self.future.exception()
                )
            raise AssertionError(
                "The websocket application has stopped (closed, or cancelled by a timed-out "
                "receive), so 'nothing arrived' would prove nothing."
            )


def _bytes(value):
    return value if isinstance(value, bytes) else str(value).encode("latin1")


def async_test(test):
    """Run `asyncSetUp()`, the test and `asyncTearDown()` in the test's own event loop."""

    @functools.wraps(test)
    async def run(self, *args, **kwargs):
        set_up = getattr(self, "asyncSetUp", None)
        if set_up is not None:
            await set_up()
        try:
            return await test(self, *args, **kwargs)
        finally:
            tear_down = getattr(self, "asyncTearDown", None)
            if tear_down is not None:
                await tear_down()

    return run


async def get_headers_for_user(user):
    """Headers carrying a logged-in session for `user`, for `APICommunicator(headers=...)`."""
    return await database_sync_to_async(_session_headers)(user)


def _session_headers(user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie.value}".encode())]
