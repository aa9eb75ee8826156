"""PostgreSQL delivers `NOTIFY rest_live` (sent by the capture triggers, with the log row each
wrote) to every listening connection when the writing transaction commits; each server process
listens on a connection of its own and hands its feed what it hears at once, whatever made the
change."""

import asyncio
import logging

from django.db import connections

from rest_live import conf
from rest_live.capture.triggers import NOTIFY_CHANNEL

logger = logging.getLogger("rest_live")

_RETRY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0)  # between attempts to listen again


def can_listen(using):
    return connections[using].vendor == "postgresql" and conf.setting("NOTIFY")


async def listen(using, wake, hearing):
    """Call `wake(payload)` at each notification, forever; reconnect when the connection is lost.
    `hearing(True)` once listening, `hearing(False)` when the connection is lost.

    While not listening the feed still polls the log, so nothing is lost, only later.
    """
    import psycopg

    params = _connection_params(using)
    attempt, lost = 0, False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(autocommit=True, **params) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                if lost:
                    logger.warning("rest_live hears the database's notifications again")
                attempt, lost = 0, False
                hearing(True)
                wake()  # what committed while nobody listened
                async for notification in conn.notifies():
                    wake(notification.payload)
        except asyncio.CancelledError:
            hearing(False)
            raise
        except Exception as error:
            hearing(False)
            if not lost:
                logger.warning(
                    "rest_live cannot listen for the database's notifications (%s: %s); "
                    "changes arrive at each poll of the change log until it can",
                    type(error).__name__,
                    error,
                )
            lost = True
            await asyncio.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
            attempt += 1


def _connection_params(using):
    params = connections[using].get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(name, None)
    return params
