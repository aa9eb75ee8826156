"""Whether the subscribers of a change are still who their views last found them to be, checked
for all of them at once: at most three queries (their DRF tokens with their users, the users of
the other logins, their sessions) however many there are, rather than a login read again per
subscriber per change.

A subscriber's view authenticates it in full (its authentication classes, Django's sessions)
when it subscribes, and whenever this check cannot vouch for it; each time it records a `Proof`
of what it found. A proof still holds while the user's row is exactly as it was (a deactivation,
a password or permission flag change, a new login all end it), and the session (the same user,
the same password hash, not expired) or the DRF token (the same user) is still there. Logins this
cannot read in bulk (a session engine other than the database, a JWT) get no proof: those
subscribers are authenticated in full at every change, as REST authenticates every request.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import connections
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

_DATABASE_SESSIONS = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}


@dataclass(frozen=True)
class Proof:
    kind: str  # "anonymous", "session", "token" or "user" (subscriber.py's credential kinds)
    key: object  # the session key or the token key
    user_pk: object
    row: tuple  # the user's field values when proven
    auth: object  # what the view's authentication returned beside the user (the token)


ANONYMOUS = Proof("anonymous", None, None, (), None)


def prove(credential, user, auth):
    """A `Proof` of `user`, whom the view authenticated from `credential`; None if it cannot be
    checked in bulk."""
    kind = credential[0]
    if kind == "anonymous":
        return ANONYMOUS
    if not user.is_authenticated:
        return None  # logged out since subscribing: authenticated in full from now on
    if kind == "session" and settings.SESSION_ENGINE not in _DATABASE_SESSIONS:
        return None
    if kind == "token" and not _is_drf_token(auth):
        return None
    return Proof(kind, credential[1] if len(credential) > 1 else None, user.pk, _row(user), auth)


def check(proofs):
    """For each of `proofs` (None allowed): None if it no longer holds, else what vouches for
    the subscriber (`user_of` makes the user of it, for a view that needs one)."""
    # Token logins bring their users' rows along; the users of the others take a query more.
    tokens, rows = _token_users([p for p in proofs if p is not None and p.kind == "token"])
    pks = {
        proof.user_pk
        for proof in proofs
        if proof is not None and proof.kind != "anonymous" and proof.user_pk not in rows
    }
    if pks:
        model = get_user_model()
        names = [field.attname for field in model._meta.concrete_fields]
        pk_index = names.index(model._meta.pk.attname)
        users = _among(model._default_manager.all(), model._meta.pk, pks)
        rows.update((row[pk_index], row) for row in users.values_list(*names))
    sessions = _sessions([p.key for p in proofs if p is not None and p.kind == "session"])
    found = []
    for proof in proofs:
        if proof is None or proof.kind == "anonymous":
            found.append(proof)
            continue
        holds = rows.get(proof.user_pk) == proof.row
        if holds and proof.kind == "session":
            holds = _session_of(sessions.get(proof.key), proof)
        elif holds and proof.kind == "token":
            holds = tokens.get(proof.key) == proof.user_pk
        found.append(proof if holds else None)
    return found


def user_of(proof):
    """The user a proof that holds vouches for, as their row is now (it has not changed)."""
    model = get_user_model()
    return model.from_db(model._default_manager.db, None, proof.row)


def _row(user):
    return tuple(getattr(user, field.attname) for field in user._meta.concrete_fields)


def _is_drf_token(auth):
    if "rest_framework.authtoken" not in settings.INSTALLED_APPS:
        return False
    from rest_framework.authtoken.models import Token

    return isinstance(auth, Token)


def _sessions(keys):
    """{session key: its data} of the unexpired sessions among `keys`, in one query."""
    if not keys:
        return {}
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    model = store.get_model_class()
    rows = _among(model.objects.all(), model._meta.get_field("session_key"), keys).filter(
        expire_date__gt=timezone.now()
    )
    decoder = store()
    return {row.session_key: decoder.decode(row.session_data) for row in rows}


def _session_of(data, proof):
    """Whether session `data` still logs in the proof's user, as `django.contrib.auth.get_user`
    decides (a hash made with a fallback secret is not vouched for: the full path rotates it)."""
    if not data or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = user_of(proof)
    if data.get(SESSION_KEY) != user._meta.pk.value_to_string(user):
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    return bool(session_hash) and constant_time_compare(session_hash, user.get_session_auth_hash())


def _token_users(proofs):
    """({token key: its user's pk}, {user pk: the user's row, as `_row` makes it}) of the tokens
    of `proofs` that still exist, in one query."""
    if not proofs:
        return {}, {}
    model = type(proofs[0].auth)
    keys = [proof.key for proof in proofs]
    tokens = _among(model._default_manager.all(), model._meta.get_field("key"), keys)
    fields = [f"user__{field.name}" for field in get_user_model()._meta.concrete_fields]
    users, rows = {}, {}
    for key, user_pk, *row in tokens.values_list("key", "user_id", *fields):
        users[key], rows[user_pk] = user_pk, tuple(row)
    return users, rows


def _among(queryset, field, values):
    """`queryset`'s rows whose `field` is one of `values`. On PostgreSQL the values go as one
    array parameter: a thousand of them, one parameter each in an `IN`, took a third of the CPU
    of a change seen by a thousand signed-in subscribers to prepare and send."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.filter(**{f"{field.name}__in": list(values)})
    quote = connection.ops.quote_name
    column = f"{quote(queryset.model._meta.db_table)}.{quote(field.column)}"
    values = [field.get_db_prep_value(value, connection) for value in values]
    return queryset.filter(RawSQL(f"{column} = ANY(%s)", (values,), output_field=BooleanField()))
