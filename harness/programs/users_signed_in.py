# Users "active" and "inactive" (is_active false), each with a DRF token and a signed-in session;
# prints {name: {"token": ..., "session": ...}} as JSON.
import json

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token


def signed_in(user):
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


users = {}
for name, active in [("active", True), ("inactive", False)]:
    user = User.objects.create_user(name, is_active=active)
    users[name] = {"token": Token.objects.create(user=user).key, "session": signed_in(user)}
print(json.dumps(users))
