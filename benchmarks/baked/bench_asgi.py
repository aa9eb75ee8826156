# The floor: a bare consumer in one group, forwarding each group message's text to its socket,
# served by the same process and application as the live subscriptions.

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from config.asgi import django_application, websocket_application


class FloorConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add("bench.floor", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("bench.floor", self.channel_name)

    async def floor_message(self, message):
        await self.send(message["text"])


floor = AllowedHostsOriginValidator(URLRouter([path("ws/floor/", FloorConsumer.as_asgi())]))


async def websocket(scope, receive, send):
    app = floor if scope["path"] == "/ws/floor/" else websocket_application
    return await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_application, "websocket": websocket})
