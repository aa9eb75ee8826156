"""Live subscriptions to Django REST Framework views over one websocket.

The protocol is in docs/protocol.md. Public names: `rest_live.broadcast`, the broadcast actions
`rest_live.CREATED`, `UPDATED` and `DELETED` (importable here, as in django-rest-live 0.7),
`rest_live.mixins.RealtimeMixin`, `rest_live.routers.RealtimeRouter` and `rest_live.testing`.
"""

from rest_live.broadcasting import broadcast
from rest_live.protocol import CREATED, DELETED, UPDATED

# The template release this copy of rest_live comes from: see CHANGELOG.md in rest-live-template
# for what changed since, and what to do on upgrading. A cruft bake's .cruft.json has the commit.
__version__ = "0.1.0"

__all__ = ["CREATED", "DELETED", "UPDATED", "broadcast"]
