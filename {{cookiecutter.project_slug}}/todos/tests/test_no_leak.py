"""A subscriber never gets an object, or a field, that the same user would not get over REST.

Every subscription keeps the state its broadcasts describe. After each change, the broadcasts for
the changed todo are checked against what the view returns over REST for that user at that moment:
CREATED/UPDATED must carry exactly the REST representation, DELETED must come when REST stops
showing it, and nothing may come for a todo REST does not show.
"""

import asyncio
import json

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIRequestFactory, force_authenticate

from config.routing import websocket_urlpatterns
from tests.live import LiveTestCase
from todos.models import Todo
from todos.tests import views
from todos.views import TodoViewSet

application = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter(websocket_urlpatterns + views.websocket_urlpatterns))
)

# (path, view) of every live view of todos the project and its tests serve.
VIEWS = [
    ("/ws/subscribe/", TodoViewSet),
    ("/ws/owned/", views.OwnedTodoViewSet),
    ("/ws/staff/", views.StaffTodoViewSet),
    ("/ws/private/", views.MyTodoViewSet),
]


def rest_state(view, user, action, lookup_by=None, query_params=None):
    """{id: representation} of what `user` gets from `view` over REST right now."""
    if user is not None:
        user.refresh_from_db()
    request = APIRequestFactory().get("/", query_params or {})
    if user is not None and user.is_active:  # DRF's authentication refuses inactive users
        force_authenticate(request, user)
    else:
        request.user = AnonymousUser()
    if action == "list":
        response = view.as_view({"get": "list"})(request)
    else:
        response = view.as_view({"get": "retrieve"})(request, pk=lookup_by)
    if response.status_code != 200:
        return {}
    response.render()
    data = json.loads(response.content)
    items = data if action == "list" else [data]
    return {item["id"]: item for item in items}


class Subscription:
    def __init__(self, socket, request_id, view, user, action, lookup_by=None, query_params=None):
        self.socket, self.request_id, self.view, self.user = socket, request_id, view, user
        self.action, self.lookup_by, self.query_params = action, lookup_by, query_params
        self.state = {}

    def rest(self):
        return rest_state(self.view, self.user, self.action, self.lookup_by, self.query_params)

    def __repr__(self):
        user = self.user.username if self.user else "anonymous"
        return f"<{self.view.__name__} {self.action} {self.lookup_by or self.query_params} {user}>"


class NoLeakTests(LiveTestCase):
    application = application

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.alice = await self.create_user("alice", email="alice@example.com")
        self.bob = await self.create_user("bob", email="bob@example.com")
        self.first = await self.db(Todo.objects.create, title="milk", owner=self.alice)

    async def open_subscriptions(self):
        subscriptions = []
        for user in (None, self.alice, self.bob):
            for path, view in VIEWS:
                if user is None and view is views.MyTodoViewSet:
                    continue  # a private router closes anonymous sockets (tested elsewhere)
                for action, fields in [
                    ("list", {}),
                    ("list", {"query_params": {"search": "milk"}}),
                    ("retrieve", {"lookup_by": self.first.pk}),
                ]:
                    socket = await self.connect(user, path=path)
                    await socket.send_json_to(
                        {
                            "type": "subscribe",
                            "id": 1,
                            "model": "todos.Todo",
                            "action": action,
                            **fields,
                        }
                    )
                    # A 404 for an unknown id follows whatever the subscribe answered.
                    await socket.send_json_to({"type": "unsubscribe", "id": "barrier"})
                    reply = await self.receive(socket)
                    subscription = Subscription(socket, 1, view, user, action, **fields)
                    if reply["id"] != "barrier":
                        await self.assertError(socket, 404, id="barrier")
                        # Refused at subscribe: only where REST refuses this user too.
                        self.assertEqual(reply["code"], 403, (subscription, reply))
                        self.assertEqual(await self.db(subscription.rest), {}, subscription)
                        continue
                    subscription.state = await self.db(subscription.rest)
                    subscriptions.append(subscription)
        return subscriptions

    async def check_change(self, subscriptions, pk, logged_out=None):
        """The broadcasts for a change to `pk` are exactly what REST now implies. The
        subscriptions of `logged_out`, whose login ended, re-sync instead."""
        for subscription in subscriptions:
            if logged_out is not None and subscription.user == logged_out:
                await self.check_resync(subscription)
                continue
            now = (await self.db(subscription.rest)).get(pk)
            before = pk in subscription.state
            if now is not None:
                expected = "UPDATED" if before else "CREATED"
                message = await self.assertBroadcast(subscription.socket, expected, id=1)
                self.assertEqual(message["instance"], now, subscription)
                subscription.state[pk] = now
            elif before:
                message = await self.assertBroadcast(subscription.socket, "DELETED", id=1)
                self.assertEqual(message["instance"], {"id": pk, "pk": pk}, subscription)
                del subscription.state[pk]
        await asyncio.gather(*(self.assertNothing(s.socket, timeout=0.1) for s in subscriptions))

    async def check_resync(self, subscription):
        """A reset, then the re-sync a client makes: the state is REST's (nothing, where it is
        refused now)."""
        await self.assertReset(subscription.socket, 1)
        fields = {"lookup_by": subscription.lookup_by} if subscription.lookup_by else {}
        if subscription.query_params:
            fields["query_params"] = subscription.query_params
        reply = await self.resubscribe(
            subscription.socket, 1, "todos.Todo", subscription.action, **fields
        )
        if reply["type"] == "snapshot":
            subscription.state = {item["id"]: item for item in reply["instances"]}
        else:
            self.assertEqual(reply.get("code"), 403, (subscription, reply))
            subscription.state = {}
        self.assertEqual(subscription.state, await self.db(subscription.rest), subscription)

    async def test_every_view_every_user_every_kind_of_change(self):
        subscriptions = await self.open_subscriptions()
        second = await self.db(Todo.objects.create, title="bread", owner=self.bob)
        await self.check_change(subscriptions, second.pk)

        async def change(todo, logged_out=None, **fields):
            for name, value in fields.items():
                setattr(todo, name, value)
            await self.db(todo.save)
            await self.check_change(subscriptions, todo.pk, logged_out)

        await change(second, title="milk bread")  # enters the search filter
        await change(self.first, owner=self.bob)  # ownership moves
        await change(self.first, owner=None)
        await change(self.first, owner=self.alice)

        self.alice.is_staff = True  # a permission change: seen at the next change
        await self.db(self.alice.save)
        await change(second, done=True)
        self.alice.is_staff = False
        await self.db(self.alice.save)
        await change(second, done=False)

        self.bob.is_active = False  # deactivated: anonymous from the next change, which resets
        await self.db(self.bob.save)  # his subscriptions; re-synced, they hold what REST shows
        await change(second, logged_out=self.bob, title="bread")  # and leaves the search filter
        await change(second, title="bread, again")

        pk = second.pk
        await self.db(second.delete)
        await self.check_change(subscriptions, pk)
