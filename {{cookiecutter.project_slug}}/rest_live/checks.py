"""System checks that need the URLconf: live views that no router serves."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.module_loading import import_string

from rest_live.mixins import RealtimeMixin


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
    """
    routers = [import_string(path) for path in getattr(settings, "REST_LIVE_ROUTERS", ())]
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
