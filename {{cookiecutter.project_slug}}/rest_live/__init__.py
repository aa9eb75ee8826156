"""Live subscriptions to Django REST Framework views over one websocket.

The protocol is in docs/protocol.md. Public names: `rest_live.broadcast`,
`rest_live.mixins.RealtimeMixin`, `rest_live.routers.RealtimeRouter` and `rest_live.testing`.
"""

from rest_live.broadcasting import broadcast

__all__ = ["broadcast"]
