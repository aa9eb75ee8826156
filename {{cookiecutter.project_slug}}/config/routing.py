"""Websocket routes. Register live views on `router`; settings.REST_LIVE_ROUTERS names it."""

from django.urls import path

from rest_live.routers import RealtimeRouter
{%- if cookiecutter.include_example_app == "y" %}
from todos.views import TodoViewSet
{%- endif %}

router = RealtimeRouter()
{%- if cookiecutter.include_example_app == "y" %}
router.register(TodoViewSet)
{%- endif %}

websocket_urlpatterns = [
    path("ws/subscribe/", router.as_consumer().as_asgi()),
]
