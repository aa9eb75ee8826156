"""RealtimeRouter: which views a websocket URL serves, and the consumer class that serves them."""

from django.core.exceptions import ImproperlyConfigured
from rest_framework.generics import GenericAPIView

from rest_live.capture import registry
from rest_live.consumers import SubscriptionConsumer
from rest_live.mixins import RealtimeMixin


class RealtimeRouter:
    """Register live views, then route a URL to `as_consumer()`. A router serves a model with one
    view, registered once; anything else is ImproperlyConfigured at `register`.

    `public=False` closes sockets without an authenticated user (close code 4003).
    """

    def __init__(self, public=True):
        self.public = public
        self._views = {}  # lowercased model label -> (model, view class)

    def register(self, view):
        name = getattr(view, "__qualname__", repr(view))
        if not (isinstance(view, type) and issubclass(view, GenericAPIView)):
            raise ImproperlyConfigured(
                f"{name} cannot be registered: a live view must be a DRF GenericAPIView "
                "or ViewSet class."
            )
        if not issubclass(view, RealtimeMixin):
            raise ImproperlyConfigured(
                f"{name} cannot be registered: add RealtimeMixin to its bases, "
                f"e.g. class {name}(RealtimeMixin, viewsets.ModelViewSet)."
            )
        model = view.get_live_model()
        label = model._meta.label_lower
        registered = self._views.get(label)
        # A second registration is refused, even of the same view: as Django's admin refuses a
        # model registered twice (AlreadyRegistered) and DRF's routers a basename, and as 0.7
        # did (RuntimeWarning). The second line is a leftover or, more often, a copy of the first
        # that should have named another view, which would otherwise go unserved in silence.
        if registered is not None and registered[1] is view:
            raise ImproperlyConfigured(
                f"{name} is already registered on this router; register each view once."
            )
        if registered is not None:
            raise ImproperlyConfigured(
                f"{model._meta.label} is already served by {registered[1].__qualname__} on this "
                f"router; one view per model per router. Serve {name} from a second "
                "RealtimeRouter at its own URL."
            )
        self._views[label] = (model, view)
        registry.add(view)

    def register_all(self, views):
        for view in views:
            self.register(view)

    def view_for(self, label):
        """(model, view class) serving `label` ('app_label.ModelName'), or None."""
        return self._views.get(label.lower())

    def views(self):
        """[(model, view class)] of every view this router serves, in the order registered."""
        return list(self._views.values())

    def as_consumer(self):
        """A consumer class for this router; route it with `.as_asgi()`."""
        return type("SubscriptionConsumer", (SubscriptionConsumer,), {"router": self})
