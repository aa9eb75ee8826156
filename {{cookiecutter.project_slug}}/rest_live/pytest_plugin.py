"""pytest fixtures for live views: the pytest-django and pytest-asyncio side of LiveTestCase.

The project's conftest.py registers this module (`pytest_plugins = ["rest_live.pytest_plugin"]`).
A live client is a connected `rest_live.testing.APICommunicator`: `await client.subscribe(model)`,
`await client.expect_broadcast("CREATED", {...}, id=sub)`, `await client.expect_nothing()`. Those
are the same assertions LiveTestCase makes, so both styles wait, match and fail alike::

    async def test_new_note_is_broadcast(live_client):
        sub = await live_client.subscribe("notes.Note")
        await Note.objects.acreate(text="milk")
        await live_client.expect_broadcast("CREATED", {"text": "milk"}, id=sub)
        await live_client.expect_nothing()

Tests that use a live client get the transactional database (`transactional_db`), as broadcasts
are sent on commit, like LiveTestCase's TransactionTestCase.
"""

import pytest
import pytest_asyncio
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.utils.module_loading import import_string

from rest_live.testing import open_socket

SUBSCRIBE_PATH = "/ws/subscribe/"


def pytest_configure(config):
    # Django's runner adds "testserver" to ALLOWED_HOSTS before it imports test modules; pytest
    # imports them first. The ASGI module's origin check reads ALLOWED_HOSTS when it is imported,
    # so a test module importing the application at its top would get one that refuses the test
    # host. Add it up front, as Django's runner would.
    if settings.configured and "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test databases, then the system checks, as `manage.py test` runs them.

    A misconfiguration fails the run, and the checks that ask the database (JSONField's, on
    Django 6) have asked it before any SimpleTestCase, which may not query it, runs checks.
    """
    with django_db_blocker.unblock():
        call_command("check", databases=list(connections))


@pytest.fixture
def live_application():
    """The ASGI application live clients connect to: settings.ASGI_APPLICATION, the project's
    real one. Override this fixture (in a module, class or conftest.py) to test another."""
    return import_string(settings.ASGI_APPLICATION)


@pytest_asyncio.fixture
async def live_client_for(live_application, transactional_db):
    """`await live_client_for(user)`: a live client logged in as `user` (anonymous for None).

    Also takes `path` (default /ws/subscribe/), `headers` and `subprotocols`. Fails if the socket
    is refused; every client it made is disconnected after the test.
    """
    clients = []

    async def connect(user=None, path=SUBSCRIBE_PATH, headers=(), subprotocols=None):
        client = await open_socket(live_application, path, user, headers, subprotocols)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        # Quietly when a timed-out receive has already cancelled the application (asgiref does
        # that); a crashed one raises its exception here, so the test does not pass over it.
        await client.close()


@pytest_asyncio.fixture
async def live_client(live_client_for):
    """An anonymous live client, connected to /ws/subscribe/."""
    return await live_client_for()
