"""What a socket may cost: the writer's bounded backlog for slow sockets, and connection limits."""

import asyncio

from django.test import SimpleTestCase, override_settings

from rest_live import capacity
from rest_live.protocol import CLOSE_AT_CAPACITY, CLOSE_TOO_SLOW
from rest_live.writer import SocketWriter
from tests.groups import served_at
from tests.live import LiveTestCase


class Transport:
    def __init__(self):
        self.buffered = 0
        self.aborted = False

    def get_write_buffer_size(self):
        return self.buffered

    def abort(self):
        self.aborted = True


class Server:
    """The server side of one socket, as an asyncio server has it: `send` waits while the
    client does not read (`reading` cleared), and raises once the socket is gone."""

    def __init__(self):
        self.transport = Transport()
        self.sent = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.gone = False

    async def send(self, message):
        await self.reading.wait()
        if self.gone:
            raise RuntimeError("Attempt to send on a closed protocol")
        self.sent.append(message)

    def stop_reading(self):
        self.transport.buffered = 10**6
        self.reading.clear()

    def read_again(self):
        self.transport.buffered = 0
        self.reading.set()


def frame(text):
    return {"type": "websocket.send", "text": text}


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


class SocketWriterTests(SimpleTestCase):
    def run_with(self, scenario, limit=100):
        async def main():
            server = Server()
            writer = SocketWriter(server.send, limit)
            await scenario(server, writer)
            writer.stop()

        asyncio.run(main())

    def test_frames_reach_the_server_in_order(self):
        async def scenario(server, writer):
            for text in "abc":
                await writer.send(frame(text))
            await settle()
            self.assertEqual([m["text"] for m in server.sent], ["a", "b", "c"])

        self.run_with(scenario)

    def test_frames_wait_while_the_client_does_not_read_and_follow_in_order(self):
        async def scenario(server, writer):
            server.stop_reading()
            for text in ["1" * 30, "2" * 30, "3" * 30]:
                await writer.send(frame(text))  # returns at once: the consumer never waits
            await settle()
            self.assertEqual(server.sent, [])
            server.read_again()
            await settle()
            self.assertEqual([m["text"][0] for m in server.sent], ["1", "2", "3"])
            await writer.send(frame("4"))
            await settle()
            self.assertEqual(server.sent[-1]["text"], "4")

        self.run_with(scenario)

    def test_a_server_send_that_waits_does_not_hold_up_the_caller(self):
        # The hub hands frames to one socket after another: were it to wait for one socket's
        # closing handshake, or for its buffer to drain, every socket after it would wait too.
        async def scenario(server, writer):
            server.reading.clear()  # the send waits, though the buffer looks empty
            await asyncio.wait_for(writer.send(frame("x")), 1)
            self.assertEqual(server.sent, [])
            server.reading.set()
            await settle()
            self.assertEqual(server.sent, [frame("x")])

        self.run_with(scenario)

    def test_a_socket_over_the_limit_is_closed_with_4029_once_it_reads_again(self):
        async def scenario(server, writer):
            server.stop_reading()
            with self.assertLogs("rest_live", "INFO") as logs:
                for number in range(5):
                    await writer.send(frame(str(number) * 30))  # the fourth is over 100 bytes
            self.assertIn("fell more than 100 bytes behind", logs.output[0])
            self.assertTrue(writer.closing)
            await writer.send(frame("after"))  # dropped: the socket is closing
            server.read_again()
            await settle()
            # The backlog that overflowed is dropped, not delivered late: the close comes next.
            self.assertEqual(server.sent, [{"type": "websocket.close", "code": CLOSE_TOO_SLOW}])

        self.run_with(scenario)

    @override_settings(REST_LIVE_SLOW_CLOSE_SECONDS=0.05)
    def test_a_socket_closed_as_too_slow_that_stays_open_is_cut_off(self):
        async def scenario(server, writer):
            server.stop_reading()
            with self.assertLogs("rest_live", "INFO") as logs:
                for number in range(5):
                    await writer.send(frame(str(number) * 30))
                deadline = asyncio.get_running_loop().time() + 5
                while not server.transport.aborted:
                    self.assertLess(asyncio.get_running_loop().time(), deadline)
                    await asyncio.sleep(0.01)
            self.assertIn("cut off a socket still open 0.05 s after", logs.output[-1])

        self.run_with(scenario)

    @override_settings(REST_LIVE_SLOW_CLOSE_SECONDS=0.05)
    def test_a_socket_closed_as_too_slow_that_goes_is_not_cut_off(self):
        async def scenario(server, writer):
            server.stop_reading()
            with self.assertLogs("rest_live", "INFO"):
                for number in range(5):
                    await writer.send(frame(str(number) * 30))
            server.read_again()
            await settle()
            writer.stop()  # the client took its 4029 and left: the consumer is done
            await asyncio.sleep(0.1)
            self.assertFalse(server.transport.aborted)

        self.run_with(scenario)

    def test_a_close_follows_the_frames_before_it(self):
        async def scenario(server, writer):
            server.stop_reading()
            await writer.send(frame("last words"))
            await writer.send({"type": "websocket.close", "code": 4008})
            await writer.send(frame("too late"))
            server.read_again()
            await settle()
            self.assertEqual(
                server.sent, [frame("last words"), {"type": "websocket.close", "code": 4008}]
            )

        self.run_with(scenario)

    def test_a_socket_that_went_away_ends_the_writer_quietly(self):
        async def scenario(server, writer):
            server.gone = True
            with self.assertNoLogs("rest_live", "INFO"):
                await writer.send(frame("into the void"))
                await writer.send(frame("and again"))
                await settle()
            self.assertTrue(writer.closing)
            self.assertEqual(server.sent, [])

        self.run_with(scenario)


class ConnectionLimitTests(LiveTestCase):
    application = served_at("ws/")
    path = "/ws/"

    @override_settings(REST_LIVE_MAX_CONNECTIONS=2)
    async def test_sockets_over_the_process_limit_are_closed_with_4013(self):
        first = await self.connect()
        await self.connect()
        turned_away = await self.connect()
        await self.assertClosed(turned_away, CLOSE_AT_CAPACITY)
        await turned_away.disconnect()
        self._sockets.remove(turned_away)
        self.assertEqual(capacity.open_sockets(), 2)
        await first.disconnect()
        self._sockets.remove(first)
        admitted = await self.connect()
        await self.subscribe(admitted, "auth.Group")

    @override_settings(REST_LIVE_MAX_CONNECTIONS_PER_USER=1)
    async def test_a_user_over_their_limit_is_closed_with_4013_others_are_not(self):
        alice, bob = await self.create_user("alice"), await self.create_user("bob")
        await self.connect(alice)
        second = await self.connect(alice)
        await self.assertClosed(second, CLOSE_AT_CAPACITY)
        for socket in [await self.connect(bob), await self.connect(), await self.connect()]:
            await self.subscribe(socket, "auth.Group")
