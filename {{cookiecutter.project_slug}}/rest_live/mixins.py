from django.core.exceptions import ImproperlyConfigured


class RealtimeMixin:
    """Makes a DRF view subscribable: register it on a `RealtimeRouter`.

    Subscriptions are evaluated through the view itself (`get_queryset`, `filter_queryset`,
    permissions, `get_serializer_class`), as the subscriber, so they see what REST shows them.
    A view with only `get_queryset` names its model with `model = MyModel`.
    """

    model = None

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
