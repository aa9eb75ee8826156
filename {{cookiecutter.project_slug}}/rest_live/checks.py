"""rest_live's system checks, registered by the app's `ready()`: settings that cannot work, live
views no router serves, relations the capture cannot follow, and tables whose change capture is
missing or stale."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.urls import URLPattern, URLResolver, get_resolver

from rest_live import conf
from rest_live.capture import install, registry, triggers
from rest_live.mixins import RealtimeMixin


def check_settings(app_configs, **kwargs):
    """A router list that is empty (W001), no channel layer (E001), a limit that cannot work
    (E002)."""
    problems = []
    if not conf.router_paths():
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


def url_views(patterns):
    """The view classes of every URL pattern under `patterns`, in URLconf order, once each."""
    found = {}
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found.update(dict.fromkeys(url_views(pattern.url_patterns)))
        elif isinstance(pattern, URLPattern):
            # DRF's as_view() (views and viewsets) sets `cls`; Django's sets `view_class`.
            callback = pattern.callback
            view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
            if view is not None:
                found[view] = None
    return list(found)


def check_live_views_are_routed(app_configs, **kwargs):
    """Warn about a RealtimeMixin view in the URLconf whose model no router in
    REST_LIVE_ROUTERS serves: REST answers, but every subscription to its model gets a 404.

    A model served by another view (a subclass, say) is fine: its subscriptions go to that view.
    Settings without ROOT_URLCONF (a library's test settings, say) have no URLconf to look in:
    skipped, as Django's own URL checks are.
    """
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    routers = conf.routers()
    problems = []
    for view in url_views(get_resolver().url_patterns):
        if not (isinstance(view, type) and issubclass(view, RealtimeMixin)):
            continue
        try:
            label = view.get_live_model()._meta.label
        except ImproperlyConfigured:  # no model to name; registering the view says why
            label = None
        if label and any(router.view_for(label) for router in routers):
            continue
        problems.append(
            checks.Warning(
                f"{view.__qualname__} is a live view (RealtimeMixin) in the URLconf, but no "
                f"router in REST_LIVE_ROUTERS serves {label or 'its model'}: subscriptions to it "
                "will be answered with a 404 error.",
                hint=f"Register it where your RealtimeRouter is made (config/routing.py): "
                f"router.register({view.__qualname__}). If it is not meant to be live, remove "
                "RealtimeMixin from its bases.",
                obj=view,
                id="rest_live.W002",
            )
        )
    return problems


def check_live_views_are_followed(app_configs, **kwargs):
    """Warn about what a live view shows that the capture cannot follow to its table."""
    problems = []
    for reading in registry.readings():
        for sentence in reading.unfollowed:
            name = reading.view.__qualname__
            problems.append(
                checks.Warning(
                    f"{name}: {sentence}, so rest_live cannot tell which table's changes change "
                    "it; its subscribers are not sent such changes.",
                    hint=f"Declare what it reads as lookups from the view's model, e.g. "
                    f"{name}.live_dependencies = ['owner__profile'] (an empty list if it reads "
                    "nothing of other tables), or call rest_live.broadcast() where it changes.",
                    obj=reading.view,
                    id="rest_live.W003",
                )
            )
    return problems


def check_capture_installed(app_configs, databases=None, **kwargs):
    """An error for each table a live view reads whose change capture is missing or stale:
    changes to it would reach no subscriber."""
    using = install.log_database()
    if not databases or using not in databases or install.check_deferred(using):
        return []
    vendor = connections[using].vendor
    if not triggers.is_supported(vendor):
        return [
            checks.Error(
                f"rest_live captures changes on PostgreSQL and SQLite; the change log's database "
                f"({using!r}) is {vendor}, so no change would reach a live subscriber.",
                hint="Use PostgreSQL or SQLite for the database that holds rest_live's tables.",
                id="rest_live.E004",
            )
        ]
    try:
        found = install.status(using)
    except DatabaseError:
        return []  # not migrated yet
    problems = []
    for item in found:
        if item.state == "installed":
            continue
        problems.append(
            checks.Error(
                f"The change capture of {item.table.label} (table {item.table.name}) is "
                f"{item.state}: changes to it reach no live subscriber. It is read by: "
                f"{'; '.join(item.why)}.",
                hint="Run `python manage.py migrate`, which installs it (or `python manage.py "
                "live_capture install`).",
                id="rest_live.E003",
            )
        )
    return problems
