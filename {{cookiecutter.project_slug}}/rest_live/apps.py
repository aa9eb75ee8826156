from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate, pre_migrate

from rest_live import conf


class RestLiveConfig(AppConfig):
    name = "rest_live"
    verbose_name = "REST live"

    def ready(self):
        # Importing the routers registers their views, which connects the model signals. Doing it
        # here, not only where the ASGI routing is imported, makes writes from every process that
        # loads Django broadcast: the shell, management commands, admin-only workers. A path in
        # REST_LIVE_ROUTERS that is not a router stops the start (ImproperlyConfigured).
        conf.routers()
        # Every system check is in checks.py. A view left off every router answers REST and 404s
        # every subscription: W002 says so at startup.
        from rest_live.checks import (
            check_capture_installed,
            check_live_views_are_followed,
            check_live_views_are_routed,
            check_settings,
        )

        checks.register(check_settings)
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
