"""The websocket consumer: one socket, any number of subscriptions, the protocol in protocol.py."""

import asyncio
import logging
from collections import Counter
from typing import NamedTuple

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions

from rest_live import budget, capacity, conf, metrics, positions, protocol, subscriptions
from rest_live.hub import hub
from rest_live.limits import MessageRate
from rest_live.positions import Unresumable
from rest_live.protocol import Hello, ProtocolError, Subscribe
from rest_live.subscriber import LoginChanged, Subscriber
from rest_live.subscriptions import CatchUp
from rest_live.writer import SocketWriter

logger = logging.getLogger(__name__)
activity = logging.getLogger("rest_live.activity")


class Held(NamedTuple):
    """A subscription this socket holds."""

    label: str  # the model's label, as the client named it
    source: str  # the label its changes are logged under (a proxy's concrete model's)
    live: subscriptions.LiveSubscription
    model: type
    after: int  # outcomes of evaluations up to this one are older than its snapshot
    snapshot: bool  # it started from a snapshot or a resume: the client holds its state
    # The changes its `resumed` frame carried, which the feed may hand out after it (when it
    # reads the log later than the catch-up did): their broadcasts would repeat the frame.
    carried: frozenset = frozenset()


class SubscriptionConsumer(AsyncWebsocketConsumer):
    """Serves the views of `router`; `RealtimeRouter.as_consumer()` makes one per router."""

    router = None
    # Changes reach the socket from its process's hub (hub.py), which holds the one layer channel
    # of the process: the socket needs none of its own.
    channel_layer_alias = None

    async def __call__(self, scope, receive, send):
        # Everything sent goes through a writer that bounds what a slow socket holds (writer.py).
        self._writer = SocketWriter(send, conf.setting("MAX_PENDING_BYTES"))
        self._turn = asyncio.Lock()
        self._waiting = 0  # messages waiting for their turn
        try:
            await super().__call__(scope, receive, self._writer.send)
        finally:
            self._writer.stop()

    async def dispatch(self, message):
        """Channels' dispatch, one message at a time, in the order they arrive. Unlike Channels'
        own, it does not close stale database connections before every message: every query here
        runs in `database_sync_to_async`, which closes them itself.

        A disconnect does not wait its turn behind a change the socket is handling: a socket
        that is gone lets go of its subscriptions at once, so the evaluations still queued for
        them are skipped (subscriptions.py) rather than costing everyone else."""
        if message["type"] == "websocket.disconnect":
            self._writer.stop()  # nothing more is sent to it
            await self.websocket_disconnect(message)
            return
        self._waiting += 1
        await self._in_turn(message)

    async def _in_turn(self, message, handler=None):
        """Handle `message` when the socket's turn comes; its caller counted it in `_waiting`."""
        try:
            await self._turn.acquire()
        finally:
            self._waiting -= 1
        try:
            handler = handler or getattr(self, get_handler_name(message), None)
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            await handler(message)
        finally:
            self._turn.release()

    # What the hub asks of a socket (hub.Watcher).

    def begin_change(self, change):
        """Start evaluating `change` for this socket's subscriptions, so that all of them, on
        every socket, are under way before any is awaited. Each evaluation is charged to the
        client's budget, split between the sockets that share it."""
        concerned = [
            held.live
            for held in self._subscriptions.values()
            if held.source == change.model and change.concerns(held.live.subscriber.view_class)
        ]
        if not concerned or self._over_budget("evaluations"):
            return
        for live in concerned:
            live.begin(change.position, change.pks)
        self._budget.evaluations.spend(sum(1 / max(1, live.holders) for live in concerned))

    async def take_change(self, change):
        """Handle the change now, or, if the socket is busy, after what it is doing, without
        holding up the hub's other sockets."""
        await self._when_free(self._apply_change, change)

    async def lose_change(self, label):
        """A change to `label` could not be followed: its subscriptions here re-sync."""
        await self._when_free(self._reset, label)

    async def end_transaction(self):
        """The transaction's changes have all been handed to this socket: its last frame goes
        out without `more`."""
        await self._when_free(self._end_transaction, None)

    async def _when_free(self, handler, argument):
        if self._turn.locked() or self._waiting:
            self._waiting += 1
            asyncio.ensure_future(self._later(handler, argument))
            return
        async with self._turn:
            await handler(argument)

    async def _later(self, handler, argument):
        try:
            await self._in_turn(argument, handler)
        except Exception:
            logger.exception("rest_live could not handle a change")

    async def connect(self):
        self._subscriptions = {}  # client's id -> Held
        self._watching = Counter()  # model -> subscriptions on this socket to it
        self._rate = MessageRate(conf.setting("MESSAGE_BURST"), conf.setting("MESSAGES_PER_SECOND"))
        self._budget = budget.open_for(self.scope)
        self._budget_closed = False
        self._shedding = False  # closing for the budget: nothing more is done for it
        # The last broadcast of the transaction being sent, held back until the next one (sent
        # with `more`) or the transaction's end (sent without): (request id, label, action,
        # rendered instance, pk, position).
        self._held_frame = None
        user = self.scope.get("user")
        self._admitted = capacity.admit(user)
        offered = self.scope.get("subprotocols") or ()
        await self.accept(protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in offered else None)
        metrics.OPEN_SOCKETS.inc()
        self._open = True
        activity.debug("%s connected", self._name())
        if self._admitted is None:
            await self.close(code=protocol.CLOSE_AT_CAPACITY)
        elif not self.router.public and not (user and user.is_authenticated):
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
        elif not self._budget.admits():
            activity.debug("%s: refused, its client is over budget", self._name())
            await self.close(code=protocol.CLOSE_AT_CAPACITY, reason=_OVER_BUDGET)

    async def disconnect(self, code):
        if getattr(self, "_open", False):
            self._open = False
            metrics.OPEN_SOCKETS.dec()
            activity.debug("%s closed (code %s)", self._name(), code)
        for request_id in list(getattr(self, "_subscriptions", ())):
            await self._drop(request_id)
        if getattr(self, "_admitted", None) is not None:
            capacity.release(self._admitted)
            self._admitted = None
        if getattr(self, "_budget", None) is not None and not self._budget_closed:
            budget.close(self._budget)
            self._budget_closed = True

    async def websocket_receive(self, message):
        """Enforce the socket's limits before a frame is read; over them, the socket is closed."""
        if self._writer.closing or self._shedding:
            return  # frames that were on their way when we closed
        if _too_big(message, conf.setting("MAX_FRAME_BYTES")):
            await self.close(code=protocol.CLOSE_TOO_BIG)
        elif not self._rate.allow():
            await self.close(code=protocol.CLOSE_TOO_FAST)
        else:
            await super().websocket_receive(message)

    async def receive(self, text_data=None, bytes_data=None):
        # A transaction's frames still on their way end here, before the answer to this frame:
        # nothing for a subscription may follow its `unsubscribed`, nor older state its snapshot.
        await self._end_transaction(None)
        try:
            if text_data is None:
                raise ProtocolError(protocol.BAD_REQUEST, "Frames must be JSON text, not binary.")
            request = protocol.parse(text_data, self.router.view_for)
            if isinstance(request, Subscribe):
                await self.subscribe(request)
            elif isinstance(request, Hello):
                await self.hello(request)
            else:
                await self.unsubscribe(request)
        except ProtocolError as error:
            activity.debug(
                "%s: request %r refused: %s %s",
                self._name(),
                error.request_id,
                error.code,
                error.message,
            )
            await self.send(protocol.error_frame(error.request_id, error.code, error.message))

    async def subscribe(self, request):
        """Start a subscription; success sends nothing back but the snapshot and ack if asked."""
        if request.id in self._subscriptions:
            raise ProtocolError(
                protocol.BAD_REQUEST,
                f"Subscription id {request.id!r} is already in use on this socket.",
                request.id,
            )
        most = conf.setting("MAX_SUBSCRIPTIONS")
        if len(self._subscriptions) >= most:
            raise ProtocolError(
                protocol.TOO_MANY,
                f"This socket holds {most} subscriptions, the most allowed; unsubscribe one first.",
                request.id,
            )
        found = self.router.view_for(request.model)
        if found is None:  # parse() refused it; a Subscribe made in code may still name one
            raise protocol.unknown_model(request.model, request.id)
        model, view_class = found
        actions = view_class.get_live_actions()
        if request.action not in actions:
            raise ProtocolError(
                protocol.BAD_REQUEST,
                f"{model._meta.label} has no {request.action!r} action here: use "
                f"{' or '.join(map(repr, actions))}.",
                request.id,
            )
        if self._over_budget("evaluations") or (
            (request.snapshot or request.resume) and self._over_budget("snapshot_rows")
        ):
            return
        # Watch first: changes committed from here on reach this socket, and it handles them only
        # after this subscription is set up, so none falls between reading state and listening.
        try:
            await self._watch(model)
        except Exception as error:
            _log_failure("start watching", model._meta.label, error)
            raise ProtocolError(
                protocol.SERVER_ERROR, "The subscription could not be started.", request.id
            ) from None
        try:
            subscriber = Subscriber(view_class, model, request, self.scope)
            live, state, position = await self._start(subscriber, request)
        except BaseException:
            await self._unwatch(model)
            raise
        label, source = model._meta.label, model._meta.concrete_model._meta.label
        after = state.after if state else 0
        carried = state.carried if isinstance(state, CatchUp) else frozenset()
        self._subscriptions[request.id] = Held(
            label, source, live, model, after, bool(state), carried
        )
        metrics.SUBSCRIPTIONS.inc()
        activity.debug("%s subscribed %r: %s", self._name(), request.id, subscriber.describe())
        # Sent before this handler returns, so before any broadcast this socket handles next.
        if isinstance(state, CatchUp):
            await self.send(protocol.resumed_frame(request.id, label, position, state.events))
        elif state is not None:
            frame = protocol.snapshot_frame(
                request.id, label, state.instances, state.truncated, state.pks, position
            )
            await self.send(frame)
        if request.ack:
            await self.send(protocol.subscribed_frame(request.id))

    async def hello(self, request):
        """Name the protocol version, the limits, and what this socket may subscribe to."""
        self._budget.evaluations.spend(1)
        models = await database_sync_to_async(self._subscribable)()
        feed = hub().feed
        position = positions.text(feed.epoch, feed.through)
        await self.send(protocol.hello_frame(position, _limits(), models))

    def _subscribable(self):
        """{model label: [actions]} that this socket's user may subscribe to."""
        found = {}
        for model, view_class in self.router.views():
            actions = [
                action
                for action in view_class.get_live_actions()
                if Subscriber(
                    view_class, model, Subscribe(0, model._meta.label, action), self.scope
                ).permits()
            ]
            if actions:
                found[model._meta.label] = actions
        return found

    async def unsubscribe(self, request):
        """End a subscription; success sends nothing back but the ack if asked."""
        if request.id not in self._subscriptions:
            raise ProtocolError(
                protocol.NOT_FOUND, f"No subscription has id {request.id!r}.", request.id
            )
        await self._drop(request.id)
        activity.debug("%s unsubscribed %r", self._name(), request.id)
        if request.ack:
            await self.send(protocol.unsubscribed_frame(request.id))

    async def _apply_change(self, change):
        """A committed change (changes.Change): send each subscription what it means to it."""
        if self._writer.closing or self._shedding:
            return
        for request_id, held in list(self._subscriptions.items()):
            if held.source != change.model or not change.concerns(held.live.subscriber.view_class):
                continue
            try:
                events = await held.live.changes(change.position, change.pks, held.after)
            except LoginChanged as change_of_login:
                activity.debug("%s: login changed (%s): re-sync", self._name(), change_of_login)
                reset = protocol.reset_frame(
                    request_id, held.label, "The subscriber's login changed; re-sync."
                )
                await self.send(reset)
                continue
            except Exception as error:
                _log_failure("evaluate a change for", held.live.key, error)
                reset = protocol.reset_frame(
                    request_id, held.label, "A change could not be evaluated; re-sync."
                )
                await self.send(reset)
                continue
            if held.carried:
                if change.position in held.carried:
                    continue
                if change.through is not None and change.through >= max(held.carried):
                    # Handed out up to the last: what comes now is newer than the frame.
                    if self._subscriptions.get(request_id) is held:  # not dropped meanwhile
                        self._subscriptions[request_id] = held._replace(carried=frozenset())
            position = positions.text(hub().feed.epoch, change.through)
            for action, pk, instance in events:
                if action == protocol.UPDATED and pk in change.created and not held.snapshot:
                    # The row was new, and this socket has been shown no state it could be
                    # in: the subscription only saw it because the write committed while the
                    # subscribe was being set up.
                    action = protocol.CREATED
                await self._send_broadcast((request_id, held.label, action, instance, pk, position))

    async def _send_broadcast(self, frame):
        """Send the frame held back, with `more`, and hold this one: a transaction's last frame
        is sent at its end (`_end_transaction`)."""
        held, self._held_frame = self._held_frame, frame
        if held is not None:
            await self.send(protocol.broadcast_frame(*held, more=True))

    async def _end_transaction(self, _):
        held, self._held_frame = self._held_frame, None
        if held is not None and not (self._writer.closing or self._shedding):
            await self.send(protocol.broadcast_frame(*held))

    def _over_budget(self, allowance):
        """Whether this socket is closing for its client's budget: it starts to, if the
        client's `allowance` ("evaluations" or "snapshot_rows") is overdrawn."""
        if not self._shedding and getattr(self._budget, allowance).overdrawn():
            self._shedding = True
            logger.info(
                "rest_live is closing %s, over its client's budget of %s (close code %d)",
                self._name(),
                allowance.replace("_", " "),
                protocol.CLOSE_AT_CAPACITY,
            )
            asyncio.ensure_future(self._shed())
        return self._shedding

    async def _shed(self):
        """Let go of every subscription at once, so none costs anything more, then close."""
        try:
            for request_id in list(self._subscriptions):
                await self._drop(request_id)
            await self.close(code=protocol.CLOSE_AT_CAPACITY, reason=_OVER_BUDGET)
        except Exception:
            logger.exception("rest_live could not close a socket over its budget")

    async def _reset(self, label):
        for request_id, held in list(self._subscriptions.items()):
            if held.source == label and not self._writer.closing:
                message = "A change could not be followed; re-sync."
                await self.send(protocol.reset_frame(request_id, held.label, message))

    async def _start(self, subscriber, request):
        """(LiveSubscription, Snapshot, CatchUp or None, the position of that state) for an
        authorized subscriber. A resume the server cannot serve is answered `resume_failed`,
        and then with a snapshot."""
        try:
            await self._refuse_unless_authorized(subscriber, request.id)
        except ProtocolError:
            self._budget.evaluations.spend(1)  # a refusal costs a check, of the client's asking
            raise
        # Read before the state is: every change up to it is in what the client is sent.
        if request.snapshot or request.resume is not None:
            await hub().caught_up()
        feed = hub().feed
        epoch, through = feed.epoch, feed.through
        try:
            if request.resume is not None:
                try:
                    live, caught = await subscriptions.acquire_caught_up(
                        subscriber, request.resume, epoch
                    )
                except Unresumable as why:
                    activity.debug("%s: cannot resume %r: %s", self._name(), request.id, why)
                    failed = protocol.resume_failed_frame(
                        request.id, subscriber.model._meta.label, why.reason, why.message
                    )
                    await self.send(failed)
                else:
                    self._budget.snapshot_rows.spend(len(caught.events))
                    self._budget.evaluations.spend(1 / live.holders)
                    # The client had every change up to its position, too.
                    since = int(request.resume.rpartition(".")[2])
                    return live, caught, positions.text(epoch, max(through, since))
            if request.snapshot or request.resume is not None:
                limit = conf.setting("SNAPSHOT_LIMIT")
                live, snapshot = await subscriptions.acquire_with_snapshot(subscriber, limit)
                self._budget.snapshot_rows.spend(min(len(snapshot.visible), limit))
            else:
                live, snapshot = await subscriptions.acquire_started(subscriber), None
            # Starting a subscription is an evaluation, shared like the later ones: the first
            # socket's reads what is visible, and the rest find it done.
            self._budget.evaluations.spend(1 / live.holders)
            return live, snapshot, positions.text(epoch, through)
        except Exception as error:
            _log_failure("start a subscription to", subscriber.key(), error)
            raise ProtocolError(
                protocol.SERVER_ERROR, "The subscription could not be started.", request.id
            ) from None

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
        held = self._subscriptions.pop(request_id, None)
        if held is None:
            return  # dropped already, by a close for the budget
        metrics.SUBSCRIPTIONS.dec()
        subscriptions.release(held.live)
        await self._unwatch(held.model)

    async def close(self, code=None, reason=None):
        activity.debug("%s: closing it with code %s", self._name(), code)
        await super().close(code, reason)

    def _name(self):
        """The socket in the log: `socket 10.0.0.7:53112 (ada)`."""
        client = self.scope.get("client") or ("?", "?")
        user = self.scope.get("user")
        who = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        return f"socket {client[0]}:{client[1]} ({who})"

    async def _watch(self, model):
        if not self._watching[model]:
            try:
                await hub().join(model, self)
            except BaseException:
                await hub().leave(model, self)
                raise
        self._watching[model] += 1

    async def _unwatch(self, model):
        self._watching[model] -= 1
        if not self._watching[model]:
            del self._watching[model]
            await hub().leave(model, self)


_OVER_BUDGET = "This client asked for more work than its budget allows; reconnect later."


def _limits():
    """The limits a hello names (docs/protocol.md, "Limits"); None where one is off."""
    names = (
        "MAX_FRAME_BYTES",
        "MAX_SUBSCRIPTIONS",
        "MESSAGE_BURST",
        "MESSAGES_PER_SECOND",
        "MAX_PENDING_BYTES",
        "SNAPSHOT_LIMIT",
        "EVALUATIONS_PER_SECOND",
        "SNAPSHOT_ROWS_PER_SECOND",
        "CHANGE_LOG_SECONDS",
    )
    return {name.lower(): conf.setting(name) for name in names}


def _log_failure(doing, key, error):
    if isinstance(error, DatabaseError):
        # Expected while the database restarts: one line, not a traceback per socket.
        logger.error("rest_live could not %s %r: %s", doing, key, error)
    else:
        logger.exception("rest_live could not %s %r", doing, key)


def _too_big(message, limit):
    """Whether a received frame is over `limit` bytes on the wire (UTF-8 for text)."""
    text = message.get("text")
    if text is None:
        return len(message.get("bytes") or b"") > limit
    if len(text) > limit or len(text) * 4 <= limit:  # a character is 1 to 4 bytes
        return len(text) > limit
    return len(text.encode("utf-8", "surrogatepass")) > limit


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
