"""The websocket consumer: one socket, any number of subscriptions, the protocol in protocol.py."""

import logging
from collections import Counter

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from rest_framework import exceptions

from rest_live import protocol, subscriptions
from rest_live.broadcasting import group_name
from rest_live.protocol import ProtocolError, Subscribe
from rest_live.subscriber import Subscriber

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4003


class SubscriptionConsumer(AsyncWebsocketConsumer):
    """Serves the views of `router`; `RealtimeRouter.as_consumer()` makes one per router."""

    router = None

    async def connect(self):
        self._subscriptions = {}  # client's id -> (model label, LiveSubscription)
        self._groups = Counter()  # group -> subscriptions on this socket that need it
        await self.accept()
        user = self.scope.get("user")
        if not self.router.public and not (user and user.is_authenticated):
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code):
        for request_id in list(getattr(self, "_subscriptions", ())):
            await self._drop(request_id)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            if text_data is None:
                raise ProtocolError(protocol.BAD_REQUEST, "Frames must be JSON text, not binary.")
            request = protocol.parse(text_data)
            if isinstance(request, Subscribe):
                await self.subscribe(request)
            else:
                await self.unsubscribe(request.id)
        except ProtocolError as error:
            await self.send(protocol.error_frame(error.request_id, error.code, error.message))

    async def subscribe(self, request):
        """Start a subscription; success sends nothing back."""
        if request.id in self._subscriptions:
            raise ProtocolError(
                protocol.BAD_REQUEST,
                f"Subscription id {request.id!r} is already in use on this socket.",
                request.id,
            )
        found = self.router.view_for(request.model)
        if found is None:
            raise ProtocolError(
                protocol.NOT_FOUND, f"No live view serves model {request.model!r}.", request.id
            )
        model, view_class = found
        if not hasattr(view_class, request.action):
            raise ProtocolError(
                protocol.BAD_REQUEST,
                f"{model._meta.label} has no {request.action!r} action here.",
                request.id,
            )
        group = group_name(model)
        # Join first: changes committed from here on reach this socket, and it handles them only
        # after this subscription is set up, so none falls between reading state and listening.
        await self._join(group)
        try:
            live = await self._start(Subscriber(view_class, model, request, self.scope), request.id)
        except BaseException:
            await self._leave(group)
            raise
        self._subscriptions[request.id] = (model._meta.label, live, group)

    async def unsubscribe(self, request_id):
        """End a subscription; success sends nothing back."""
        if request_id not in self._subscriptions:
            raise ProtocolError(
                protocol.NOT_FOUND, f"No subscription has id {request_id!r}.", request_id
            )
        await self._drop(request_id)

    async def rest_live_change(self, message):
        """A committed change from broadcasting.py: send each subscription what it means to it."""
        for request_id, (label, live, _group) in list(self._subscriptions.items()):
            if label != message["model"]:
                continue
            try:
                events = await live.changes(message["change"], message["pks"])
            except Exception:
                logger.exception("rest_live could not evaluate a change for %r", live.key)
                await self.send(
                    protocol.error_frame(
                        request_id, protocol.SERVER_ERROR, "A change could not be evaluated."
                    )
                )
                continue
            for action, instance in events:
                await self.send(protocol.broadcast_frame(request_id, label, action, instance))

    async def _start(self, subscriber, request_id):
        await self._refuse_unless_authorized(subscriber, request_id)
        live = subscriptions.acquire(subscriber)
        try:
            await live.start()
        except Exception:
            subscriptions.release(live)
            logger.exception("rest_live could not start a subscription to %r", live.key)
            raise ProtocolError(
                protocol.SERVER_ERROR, "The subscription could not be started.", request_id
            ) from None
        return live

    async def _refuse_unless_authorized(self, subscriber, request_id):
        try:
            await database_sync_to_async(subscriber.authorize)()
        except (exceptions.PermissionDenied, exceptions.NotAuthenticated) as error:
            raise ProtocolError(protocol.FORBIDDEN, _detail(error), request_id) from None
        except (exceptions.NotFound, Http404) as error:
            raise ProtocolError(protocol.NOT_FOUND, _detail(error), request_id) from None
        except exceptions.APIException as error:
            code = protocol.BAD_REQUEST if error.status_code < 500 else protocol.SERVER_ERROR
            raise ProtocolError(code, _detail(error), request_id) from None
        except Exception:
            logger.exception("rest_live could not authorize a subscription")
            raise ProtocolError(
                protocol.SERVER_ERROR, "The subscription could not be checked.", request_id
            ) from None

    async def _drop(self, request_id):
        _label, live, group = self._subscriptions.pop(request_id)
        subscriptions.release(live)
        await self._leave(group)

    async def _join(self, group):
        if not self._groups[group]:
            await self.channel_layer.group_add(group, self.channel_name)
        self._groups[group] += 1

    async def _leave(self, group):
        self._groups[group] -= 1
        if not self._groups[group]:
            del self._groups[group]
            await self.channel_layer.group_discard(group, self.channel_name)


def _detail(error):
    """DRF's error detail as one readable sentence."""
    detail = getattr(error, "detail", None) or str(error) or "Refused."
    if isinstance(detail, dict):
        return "; ".join(f"{name}: {_detail_text(value)}" for name, value in detail.items())
    return _detail_text(detail)


def _detail_text(detail):
    if isinstance(detail, list):
        return " ".join(str(item) for item in detail)
    return str(detail)
