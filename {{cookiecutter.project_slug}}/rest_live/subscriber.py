"""One subscription's view of the data: the DRF view it names, run as its user, for every change.

Everything here is synchronous ORM and DRF work; subscriptions.py runs it in a database thread.
"""

from dataclasses import dataclass
from http.cookies import SimpleCookie
from importlib import import_module
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, QueryDict
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import ForcedAuthentication
from rest_framework.viewsets import ViewSetMixin

from rest_live import identity, resume
from rest_live.auth import TOKEN_SCOPE_KEY
from rest_live.multiplex import Visibility
from rest_live.protocol import CREATED, DELETED, UPDATED, deleted_instance

_REFUSALS = (exceptions.PermissionDenied, exceptions.NotAuthenticated, Http404)


@dataclass(frozen=True)
class _Prepared:
    view: object
    queryset: object  # None when the view's permissions refuse the subscriber
    visibility: Visibility | None  # the queryset for multiplex.py, if it can take it
    refusal: str | None


@dataclass(frozen=True)
class Outcome:
    """What a change means to one subscription: its broadcasts, and how its record of what it
    sees changes (applied by the caller once every subscription's outcome is known)."""

    events: list  # [(action, pk, rendered instance)]
    entered: dict  # {pk: lookup value} now visible
    left: tuple  # pks no longer visible

    def apply(self, visible):
        visible.update(self.entered)
        for pk in self.left:
            del visible[pk]


class LoginChanged(Exception):
    """The subscriber is no longer who subscribed (logged out, a revoked token, deactivated): what
    their client holds was shown to someone else, so the subscription re-syncs as who they are
    now, rather than following changes one row at a time."""


NOTHING = Outcome((), {}, ())  # shared: never changed, applied changes nothing


class Subscriber:
    """Builds the subscriber's view and request, and says what a change means to them."""

    def __init__(self, view_class, model, subscribe, scope):
        self.view_class = view_class
        self.model = model
        self.action = subscribe.action
        self.lookup_by = subscribe.lookup_by
        self.view_kwargs = dict(subscribe.view_kwargs)
        self.query_params = subscribe.query_params
        self.lookup_field = getattr(view_class, "lookup_field", "pk")
        self._scope_user = scope.get("user") or AnonymousUser()
        self._token_socket = TOKEN_SCOPE_KEY in scope
        self._session = scope.get("session")
        self._credential = ("anonymous",)  # what the subscriber proved at subscribe
        self.who = "anonymous"  # their username, for the log
        self.refusal = None  # why the last evaluation's permissions refused them, if they did
        self._path = scope.get("path", "/")
        self._meta = _meta_from_scope(scope, subscribe.query_params)
        self.proof = None  # who the view last found them to be (identity.py)
        self._user_pk = None  # who the view found at subscribe
        self._prepared = None  # reused by views with `live_cache_queryset`

    def key(self):
        """Identical subscriptions share one evaluation; this is what makes them identical."""
        lookup = None if self.lookup_by is None else str(self.lookup_by)
        return (
            self.view_class,
            self.action,
            lookup,
            tuple(sorted(self.view_kwargs.items())),
            self.query_params,
            self._credential,
        )

    def describe(self):
        """The subscription in a few words, for the log: `todos.Todo list ?search=milk as ada`."""
        what = f"{self.model._meta.label} {self.action}"
        if self.action == "retrieve":
            what += f" {self.lookup_by!r}"
        if self.query_params:
            what += " ?" + urlencode([(k, v) for k, values in self.query_params for v in values])
        return f"{what} as {self.who}"

    def authorize(self):
        """Authenticate as the view does and check its permissions and inputs; raise if refused."""
        view = self._view(self._django_user())
        user = view.request.user
        self._credential = _credential(user, view.request.auth, self._session)
        self.proof = identity.prove(self._credential, user, view.request.auth)
        self.who = user.get_username() if user.is_authenticated else "anonymous"
        self._user_pk = user.pk  # who subscribed (None: nobody)
        view.check_permissions(view.request)
        self._queryset(view)  # filter backends and the lookup refuse bad values here
        if getattr(self.view_class, "live_cache_queryset", False):
            self.prepare()  # now, rather than at the first change

    def permits(self):
        """Whether the view's permissions admit the subscriber, before any lookup or filter."""
        return self._permitted(self._view(self._django_user()))

    def visible_now(self):
        """{pk: lookup value} of every object this subscription can see now."""
        view = self._view()
        if not self._permitted(view):
            return {}
        queryset = self._queryset(view)
        if self.action == "retrieve":
            return self._visible_in(self._retrievable(view, queryset))
        return self._listed(queryset)

    def snapshot(self, limit):
        """(instances as a JSON array, truncated, {pk: lookup value}, their pks in order): the
        state now, rendered.

        A list is in the view's order, cut to its page size when it paginates, and to `limit`.
        The visible set is the whole list's; every object in the snapshot is in it, and when
        nothing was cut the two are the same objects, from one query.
        """
        view = self._view()
        objects, truncated = [], False
        if self._permitted(view):
            queryset = self._queryset(view)
            if self.action == "retrieve":
                objects = self._retrievable(view, queryset)
            else:
                size = min(limit, _page_size(view) or limit)
                objects = list(queryset[: size + 1])
                truncated = len(objects) > size
        if not truncated:
            rendered = self._render(view, objects, many=True)
            return rendered, False, self._visible_in(objects), [obj.pk for obj in objects]
        # The list goes on past the cut: read all of it, and drop from the snapshot any object
        # that left it in between (its change is on its way and will find it gone).
        visible = self._listed(queryset)
        objects = [obj for obj in objects[:size] if obj.pk in visible]
        return self._render(view, objects, many=True), True, visible, [obj.pk for obj in objects]

    def catch_up(self, pks, created):
        """What the objects `pks`, which changed while a resuming client was away (`created`
        among them were inserted), are to this subscriber now: [(action, pk, rendered instance)].

        One that it sees is CREATED or UPDATED; one it does not is DELETED, with its primary key
        alone (the client may never have held it, so nothing else of it is shown). A retrieve by
        another field than the key that no longer sees one of them cannot say which object the
        client held: `resume.Unresumable`, and the client gets a snapshot.
        """
        view = self._view()
        pks, created = keys(self.model, pks), set(keys(self.model, created))
        found = {}
        if pks and self._permitted(view):
            for obj in _unordered(self._queryset(view)).filter(pk__in=pks):
                if self.action == "list" or self._object_permitted(view, obj):
                    found[obj.pk] = obj
        events, texts = [], self._render_each(view, found.values())
        for pk in pks:
            if pk in texts:
                events.append((CREATED if pk in created else UPDATED, pk, texts[pk]))
            elif self.action == "list" or self._is_looked_up(pk):
                events.append((DELETED, pk, self._render_data(view, {"id": pk, "pk": pk})))
            elif self.lookup_field not in ("pk", self.model._meta.pk.name):
                raise resume.unresumable_retrieve()
        return events

    def _is_looked_up(self, pk):
        """Whether a retrieve by primary key names `pk`."""
        if self.lookup_field not in ("pk", self.model._meta.pk.name):
            return False
        try:
            return self.model._meta.pk.to_python(self.lookup_by) == pk
        except ValidationError:
            return False

    def prepare(self, vouched=None):
        """What evaluating a change takes: the view, built as REST builds one for each request,
        its permissions checked, and its queryset.

        `vouched` is what `identity.check` found of the subscriber's login: still as it was, or
        None, and then the view authenticates them in full. A view that sets
        `live_cache_queryset = True` declares that its permissions, `get_queryset` and filters
        read nothing but the request: its subscriptions reuse all this for as long as their
        login stays as it was.
        """
        if vouched is not None and self._prepared is not None:
            return self._prepared
        self.refusal = None
        if vouched is None:
            view = self._view()
            if view.request.user.pk != self._user_pk:
                raise LoginChanged(f"now {view.request.user}, was {self.who}")
        elif vouched.kind == "anonymous":
            # The view's own authentication classes, which find nobody, as over REST.
            view = self._view(AnonymousUser())
        else:
            view = self._view(forced=identity.user_of(vouched))
        queryset = self._queryset(view) if self._permitted(view) else None
        visibility = None if queryset is None else Visibility.of(_unordered(queryset))
        prepared = _Prepared(view, queryset, visibility, self.refusal)
        if getattr(self.view_class, "live_cache_queryset", False):
            self._prepared = prepared
        return prepared

    def changes(self, visible, pks, prepared=None, seen=None, shared=None):
        """What a change to `pks` (as `keys` makes them) means to this subscriber: [(action, pk,
        rendered instance)], and the record `visible` as it is after them (`Outcome`). `visible`
        is not touched.

        `seen`, when given, holds the pks that the queryset returns now (multiplex.py asked it
        for many subscriptions at once); only those are read, to be rendered. `shared` holds
        what other subscriptions of the same rendering (`render_key`) rendered for this change.
        """
        prepared = prepared or self.prepare(identity.check([self.proof])[0])
        self.refusal = prepared.refusal
        view, found = prepared.view, {}
        if seen is None:
            wanted, shared = pks, None  # what others rendered may not be what this one sees
        else:
            wanted = [pk for pk in pks if pk in seen]
        if shared is not None:
            wanted = [pk for pk in wanted if pk not in shared]
        if prepared.queryset is not None and wanted:
            for obj in _unordered(prepared.queryset).filter(pk__in=wanted):
                if self.action == "list" or self._object_permitted(view, obj):
                    found[obj.pk] = obj
        events, entered, left = [], {}, []
        texts = self._render_each(view, found.values())
        for pk in pks:
            obj = found.get(pk)
            if obj is not None:
                value, text = self._lookup_value(obj), texts[pk]
                if shared is not None:
                    shared[pk] = (value, text)
            elif shared is not None and pk in shared and pk in seen:
                value, text = shared[pk]
            else:
                if pk in visible:
                    gone = deleted_instance(pk, self.lookup_field, visible[pk])
                    left.append(pk)
                    events.append((DELETED, pk, self._render_data(view, gone)))
                continue
            entered[pk] = value
            events.append((UPDATED if pk in visible else CREATED, pk, text))
        if not events:
            return NOTHING  # most subscriptions, for most changes: nothing more to keep alive
        return Outcome(events, entered, tuple(left))

    def render_key(self):
        """Subscriptions with the same key may share renderings: those of a view that sets
        `live_render_once = True`, declaring that its serializer shows every user the same, with
        the same action and query parameters. None: this subscription renders its own."""
        if not getattr(self.view_class, "live_render_once", False) or self.action != "list":
            return None
        return (self.view_class, self.query_params, self._meta.get("HTTP_HOST"))

    def _view(self, django_user=None, forced=None):
        """The view, as over REST: its authentication classes run on a request made as
        `django_user`, by default the subscriber as they are now (see `_identity`), and a new
        `Proof` of who they are is kept. With `forced`, a user `identity.check` vouched for, the
        view takes them as authenticated, as they were at the last proof."""
        view = self.view_class()
        if forced is not None:
            auth = self.proof.auth
            view.get_authenticators = lambda: [ForcedAuthentication(forced, auth)]
            django_user = forced
        kwargs = dict(self.view_kwargs)
        if isinstance(view, ViewSetMixin):
            view.action_map = {"get": self.action}
            view.basename = None
            view.detail = self.action == "retrieve"
        else:
            # DRF names the action on viewsets only; django-rest-live 0.7 set it on every view,
            # and views written for it (a bare GenericAPIView has no other way) may read it.
            view.action = self.action
        if self.action == "retrieve":
            kwargs[view.lookup_url_kwarg or view.lookup_field] = self.lookup_by
        view.args, view.kwargs, view.format_kwarg = (), kwargs, None
        proving = django_user is None
        request = view.initialize_request(self._http_request(django_user or self._identity()))
        try:
            request.user  # noqa: B018 (runs the view's authentication classes)
        except exceptions.AuthenticationFailed:
            request.user, request.auth = AnonymousUser(), None
        if proving:
            self.proof = identity.prove(self._credential, request.user, request.auth)
        view.request = request
        view.headers = view.default_response_headers
        request.version, request.versioning_scheme = view.determine_version(request, **kwargs)
        return view

    def _django_user(self):
        """Who the socket is to Django at subscribe, as a REST request would find them."""
        if self._token_socket:
            # A request with a token and no session cookie is nobody to Django; the view's
            # TokenAuthentication finds the token's user. Taking the scope's user here would let
            # a view that also takes sessions (DRF's default) prove them as a session user, and
            # a deleted token would go unnoticed (identity.py follows tokens, not users).
            return AnonymousUser()
        if self._session is not None and self._session.session_key:
            # The scope's user was read when the socket connected: a logout since then must not
            # let the socket subscribe as them again.
            return _session_user(self._session.session_key)
        return self._scope_user

    def _identity(self):
        """Who the subscriber is now. Re-read at every change, so logging out, a password change
        or deactivation ends access to private data at the next change, as it would over REST."""
        kind, *value = self._credential
        if kind == "session":
            return _session_user(value[0])
        if kind == "user":
            user = get_user_model()._default_manager.filter(pk=value[0]).first()
            return user if user is not None and user.is_active else AnonymousUser()
        # Anonymous, or a token that the view's TokenAuthentication checks again from the headers.
        return AnonymousUser()

    def _http_request(self, user):
        request = HttpRequest()
        request.method = "GET"
        request.path = request.path_info = self._path
        request.META = dict(self._meta)
        request.GET = QueryDict(request.META["QUERY_STRING"])
        cookies = SimpleCookie(request.META.get("HTTP_COOKIE", ""))
        request.COOKIES = {name: morsel.value for name, morsel in cookies.items()}
        request.user = user
        if self._session is not None:
            request.session = self._session
        return request

    def _queryset(self, view):
        queryset = view.filter_queryset(view.get_queryset())
        if self.action == "retrieve":
            try:
                queryset = queryset.filter(**{view.lookup_field: self.lookup_by})
            except (ValueError, TypeError, ObjectDoesNotExist) as error:
                raise exceptions.ValidationError(
                    f"lookup_by {self.lookup_by!r} is not a valid {view.lookup_field}."
                ) from error
        return queryset

    def _retrievable(self, view, queryset):
        return [obj for obj in queryset if self._object_permitted(view, obj)]

    def _listed(self, queryset):
        if self.lookup_field in ("pk", self.model._meta.pk.name):
            return {pk: pk for pk in queryset.values_list("pk", flat=True)}
        return dict(queryset.values_list("pk", self.lookup_field))

    def _visible_in(self, objects):
        return {obj.pk: self._lookup_value(obj) for obj in objects}

    def _permitted(self, view):
        try:
            view.check_permissions(view.request)
        except _REFUSALS as error:
            self.refusal = f"the view's permissions: {error}"
            return False
        return True

    def _object_permitted(self, view, obj):
        try:
            view.check_object_permissions(view.request, obj)
        except _REFUSALS as error:
            self.refusal = f"the object permissions of pk {obj.pk}: {error}"
            return False
        return True

    def _lookup_value(self, obj):
        if self.lookup_field == "pk":
            return obj.pk
        value = obj
        for name in self.lookup_field.split("__"):
            value = getattr(value, name, None)
        return value

    def _render(self, view, obj, many=False):
        return self._render_data(view, view.get_serializer(obj, many=many).data)

    def _render_each(self, view, objects):
        """{pk: JSON text} of each of `objects`: as the view's list shows it (by its list
        serializer's child, whose fields are then built once for all), or as its detail does."""
        objects = list(objects)
        if self.action == "list" and objects:
            child = view.get_serializer(objects, many=True).child
            render = self._renderer(view)
            return {obj.pk: render(child.to_representation(obj)) for obj in objects}
        return {obj.pk: self._render(view, obj) for obj in objects}

    def _render_data(self, view, data):
        return self._renderer(view)(data)

    def _renderer(self, view):
        """A function that renders data as JSON text, by the view's renderer as over REST (so a
        camelCase renderer shapes DELETED payloads too), or by DRF's JSONRenderer if the view's
        is not JSON."""
        renderer, media_type = view.perform_content_negotiation(view.request, force=True)
        if getattr(renderer, "format", None) != "json":
            renderer, media_type = JSONRenderer(), "application/json"
        context = {"request": view.request, "view": view}
        return lambda data: renderer.render(data, media_type, context).decode()


def keys(model, pks):
    """`pks` as the model's primary key values, each once."""
    return list(dict.fromkeys(model._meta.pk.to_python(pk) for pk in pks))


def _credential(user, auth, session):
    """What identifies an authenticated subscriber from one change to the next."""
    if not user.is_authenticated:
        return ("anonymous",)
    if auth is not None:
        return ("token", str(getattr(auth, "key", auth)))
    if session is not None and session.session_key:
        return ("session", session.session_key)
    return ("user", user.pk)


def _session_user(session_key):
    """The user a session belongs to now: AnonymousUser once it is logged out or invalid."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(request)


def _unordered(queryset):
    """`queryset` without its ORDER BY, which a lookup by primary keys does not need (compiling
    and sorting by it was an eighth of an evaluation), where it can be dropped."""
    query = queryset.query
    if query.is_sliced or query.distinct_fields or query.combinator:
        return queryset
    return queryset.order_by()


def _page_size(view):
    """The page size a REST list of this view would have, or None if it does not paginate."""
    paginator = view.paginator
    if paginator is None:
        return None
    for name in ("get_page_size", "get_limit"):  # page number and cursor; limit/offset
        size = getattr(paginator, name, None)
        if size is not None:
            return size(view.request)
    return getattr(paginator, "page_size", None)


def _meta_from_scope(scope, query_params):
    """The WSGI-style META a DRF view expects, from the websocket's ASGI scope."""
    meta = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope.get("path", "/"),
        "QUERY_STRING": urlencode([(k, v) for k, values in query_params for v in values]),
    }
    if scope.get("client"):
        meta["REMOTE_ADDR"], meta["REMOTE_PORT"] = scope["client"][0], scope["client"][1]
    server = scope.get("server") or ("localhost", 80)
    meta["SERVER_NAME"], meta["SERVER_PORT"] = str(server[0]), str(server[1] or 80)
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin1").upper().replace("-", "_")
        key = "HTTP_" + name
        value = raw_value.decode("latin1")
        separator = "; " if key == "HTTP_COOKIE" else ","
        meta[key] = f"{meta[key]}{separator}{value}" if key in meta else value
    # Broadcasts are JSON frames, whatever a browser's handshake asked for.
    meta["HTTP_ACCEPT"] = "application/json"
    return meta
