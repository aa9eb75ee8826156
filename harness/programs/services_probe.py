# Which database and channel layer the project really uses, and that both answer: prints one
# JSON line with the database's vendor, the layer's module, and the message a group sent.
import asyncio
import json

from channels.layers import get_channel_layer
from django.db import connection


async def round_trip(layer):
    channel = await layer.new_channel()
    await layer.group_add("probe", channel)
    await layer.group_send("probe", {"type": "probe.message"})
    return await asyncio.wait_for(layer.receive(channel), 10)


connection.ensure_connection()
layer = get_channel_layer()
message = asyncio.run(round_trip(layer))
print(json.dumps({"vendor": connection.vendor, "layer": type(layer).__module__, "got": message}))
