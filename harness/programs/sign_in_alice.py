# User "alice", signed in twice: prints her new DRF token and a session key, on one line.
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token

alice = get_user_model().objects.create_user("alice", password="wonderland-42")
session = SessionStore()
session[SESSION_KEY] = str(alice.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = alice.get_session_auth_hash()
session.create()
print(Token.objects.create(user=alice).key, session.session_key)
