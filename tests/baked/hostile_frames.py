"""Thousands of arbitrary frames: the consumer never dies, each malformed frame gets a 400, and a
valid subscription made afterwards works. Copied into a bake by the template's test suite.
"""

import json

from asgiref.sync import async_to_sync
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TransactionTestCase as HypothesisTransactionTestCase

from tests.live import LiveTestCase
from todos.models import Todo

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner),
    max_leaves=30,
)
FIELDS = ["id", "model", "action", "lookup_by", "view_kwargs", "query_params", "snapshot"]
near_valid = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe", "Subscribe", ""])},
    optional={field: json_values for field in FIELDS},
)
deep = st.integers(1, 30_000).map(lambda depth: "[" * depth + "]" * depth)
huge = st.integers(1, 60_000).map(lambda size: json.dumps({"type": "subscribe", "id": "x" * size}))
frames = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    near_valid.map(json.dumps),
    deep,
    huge,
    st.binary(),
)


# Thousands of frames in seconds: far over the per-socket rate limit, which has its own test.
@override_settings(REST_LIVE_MESSAGE_BURST=None)
class HostileFrameTests(HypothesisTransactionTestCase, LiveTestCase):
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(frames, min_size=40, max_size=120))
    def test_arbitrary_frames(self, batch):
        async_to_sync(self.send_batch)(batch)

    async def send_batch(self, batch):
        await self.asyncSetUp()
        try:
            socket = await self.connect()
            for frame in batch:
                kind = "bytes" if isinstance(frame, bytes) else "text"
                await socket.send_input({"type": "websocket.receive", kind: frame})
                # Each frame gets at most one answer, and the barrier's 404 comes after it.
                await socket.send_json_to({"type": "unsubscribe", "id": "barrier"})
                replies = [await self.receive(socket)]
                while replies[-1].get("id") != "barrier":
                    replies.append(await self.receive(socket))
                answers = replies[:-1]
                self.assertLessEqual(len(answers), 1, (frame, replies))
                if answers:
                    self.assertEqual(answers[0]["type"], "error", (frame, answers))
                    self.assertIn(answers[0]["code"], (400, 403, 404), (frame, answers))
                elif not _could_be_valid(frame):
                    self.fail(f"no answer to a malformed frame: {frame!r:.300}")
            sub = await self.subscribe(socket, "todos.Todo", id="after the storm")
            todo = await self.db(Todo.objects.create, title="still alive")
            await self.assertBroadcast(socket, "CREATED", {"id": todo.pk}, id=sub)
        finally:
            await self.asyncTearDown()


def _could_be_valid(frame):
    """A well-formed subscribe or unsubscribe: success sends nothing back."""
    try:
        message = json.loads(frame)
    except (TypeError, ValueError, RecursionError):
        return False
    return isinstance(message, dict) and message.get("type") in ("subscribe", "unsubscribe")
