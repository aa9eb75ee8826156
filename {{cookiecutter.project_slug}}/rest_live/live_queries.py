"""Where a server process runs its live queries: the reads of the change log, of what a change
affects, and each subscription's evaluation, one after another on the database thread.

They run on the connection that thread already holds, not through `database_sync_to_async`,
whose check of the connection before each call (a round trip to the pool, and one to the server
with health checks on) costs more than most of these queries. Should that connection be one the
database dropped (a restart), the call fails with a `DatabaseError` and runs once more through
`database_sync_to_async`, which closes it first and connects afresh. So only read, or leave
nothing half done when raising.
"""

from functools import partial

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import DatabaseError

# The thread `database_sync_to_async` runs in.
_in_database_thread = partial(sync_to_async, thread_sensitive=True)


async def run(function, *args):
    """`function(*args)` on the database thread's connection; once more on a fresh one if the
    database dropped it."""
    try:
        return await _in_database_thread(function)(*args)
    except DatabaseError:
        return await database_sync_to_async(function)(*args)
