from django.core.exceptions import ImproperlyConfigured

from rest_live.protocol import ACTIONS


class RealtimeMixin:
    """Makes a DRF view subscribable: register it on a `RealtimeRouter`.

    Subscriptions are evaluated through the view itself (`get_queryset`, `filter_queryset`,
    permissions, `get_serializer_class`), as the subscriber, so they see what REST shows them.
    A view with only `get_queryset` names its model with `model = MyModel`.
    """

    model = None

    # True declares that the permission classes, get_queryset and the filter backends read
    # nothing but the request (its user, query parameters and URL kwargs): no clock, no other rows
    # read in Python. Each subscription then builds its view and compiles its queryset once, and
    # reuses them for as long as its login stays as it was (identity.py checks that at every
    # change, for all subscribers at once). Without it, a write costs each distinct subscription
    # of the view a view built and a queryset compiled (no query: they are asked together).
    live_cache_queryset = False
    # True declares that the serializer shows every user the same (it does not read
    # request.user): a changed object is then read and rendered once for every list subscription
    # with the same query parameters that sees it, rather than once per user.
    live_render_once = False

    @classmethod
    def get_live_model(cls):
        """The model whose changes this view's subscribers hear about."""
        if cls.model is not None:
            return cls.model
        queryset = getattr(cls, "queryset", None)
        if queryset is not None:
            return queryset.model
        raise ImproperlyConfigured(
            f"rest_live cannot tell which model {cls.__qualname__} serves: it has no `queryset`. "
            f"Set `model = YourModel` on {cls.__qualname__}."
        )

    @classmethod
    def get_live_actions(cls):
        """The subscription actions this view serves: of `list` and `retrieve`, those it has.

        A view that has one serves only that one, as over REST: a RetrieveAPIView that lists
        would show clients objects REST lets them fetch only by a known lookup value. A view with
        neither (a bare GenericAPIView) serves both, as django-rest-live 0.7 did.
        """
        return tuple(action for action in ACTIONS if hasattr(cls, action)) or ACTIONS
