from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate, pre_migrate
from django.utils.module_loading import import_string

from rest_live import conf


class RestLiveConfig(AppConfig):
    name = "rest_live"
    verbose_name = "REST live"

    def ready(self):
        # Importing the routers registers their views, which connects the model signals. Doing it
        # here, not only where the ASGI routing is imported, makes writes from every process that
        # loads Django broadcast: the shell, management commands, admin-only workers.
        from rest_live.routers import RealtimeRouter

        for dotted_path in getattr(settings, "REST_LIVE_ROUTERS", ()):
            try:
                router = import_string(dotted_path)
            except ImportError as error:
                raise ImproperlyConfigured(
                    f"REST_LIVE_ROUTERS names {dotted_path!r}, which cannot be imported ({error}). "
                    "List the dotted paths of your RealtimeRouter instances, "
                    "e.g. 'config.routing.router'."
                ) from error
            if not isinstance(router, RealtimeRouter):
                raise ImproperlyConfigured(
                    f"REST_LIVE_ROUTERS names {dotted_path!r}, which is a "
                    f"{type(router).__name__}, not a RealtimeRouter instance."
                )
        checks.register(check_settings)
        # A view left off every router answers REST and 404s every subscription; say so early.
        from rest_live.checks import (
            check_capture_installed,
            check_live_views_are_followed,
            check_live_views_are_routed,
        )

        checks.register(check_live_views_are_routed, checks.Tags.urls)
        checks.register(check_live_views_are_followed)
        checks.register(check_capture_installed, checks.Tags.database)
        # `migrate` (and `flush`) keep the change capture in step with the registered views.
        from rest_live.capture import install

        pre_migrate.connect(install.before_migrate, sender=self)
        post_migrate.connect(install.after_migrate, sender=self)
        # A Redis outage is logged once when it starts and once when it ends, not as a
        # traceback a second from channels_redis's receive loop.
        from rest_live import layer_outage

        layer_outage.install_filter()


def check_settings(app_configs, **kwargs):
    problems = []
    if not getattr(settings, "REST_LIVE_ROUTERS", ()):
        problems.append(
            checks.Warning(
                "REST_LIVE_ROUTERS is empty, so writes from processes that do not import your "
                "websocket routing (manage.py shell, workers) will not broadcast.",
                hint="Set REST_LIVE_ROUTERS = ['config.routing.router'] in settings.",
                id="rest_live.W001",
            )
        )
    if "default" not in getattr(settings, "CHANNEL_LAYERS", {}):
        problems.append(
            checks.Error(
                "rest_live needs a channel layer, and CHANNEL_LAYERS has no 'default'.",
                hint="Use channels.layers.InMemoryChannelLayer for one process, "
                "channels_redis for several.",
                id="rest_live.E001",
            )
        )
    for message in conf.problems():
        problems.append(
            checks.Error(message, hint="See rest_live/conf.py for each limit.", id="rest_live.E002")
        )
    return problems
