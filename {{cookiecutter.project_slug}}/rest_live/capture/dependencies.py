"""What a live view reads: its model's table, and the tables of the rows that its serializer shows
and its queryset filters on, each with the path of foreign keys that leads back to its rows.

Inferred from DRF and the ORM where they say it: serializer sources (`owner.username`), nested
serializers, related fields (`many=True` too), `queryset` filters through relations, and
multi-table inheritance. What they cannot say (a `SerializerMethodField`, a property that reads
another table, an annotation with a subquery) a view declares as lookups from its model:

    class TodoViewSet(RealtimeMixin, viewsets.ModelViewSet):
        live_dependencies = ["owner__profile"]
"""

from dataclasses import dataclass
from functools import cached_property

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured
from django.db import models
from django.db.models import ForeignObjectRel
from django.db.models.expressions import Col, Subquery
from django.db.models.sql.datastructures import BaseTable
from django.db.models.sql.query import Query
from django.db.models.sql.where import WhereNode
from django.http import HttpRequest
from rest_framework import relations, serializers
from rest_framework.generics import GenericAPIView


@dataclass(frozen=True)
class Hop:
    """One step between two models over the foreign key `fk`, which is on `source` (forward)
    or on `target` (reverse)."""

    source: type
    target: type
    fk: models.ForeignKey
    forward: bool


@dataclass(frozen=True)
class Dependency:
    """`view`, of `view_model`, reads rows of `model`, which `hops` lead to from its rows."""

    view: type
    view_model: type
    hops: tuple
    columns: frozenset | None  # the attnames of `model` it reads; None: any of them

    @property
    def model(self):
        return self.hops[-1].target

    @cached_property
    def watched(self):
        """The table columns whose update concerns it (None: any): what it reads, and the key
        that leads back to its rows when that is in `model`'s table."""
        if self.columns is None:
            return None
        by_attname = {field.attname: field.column for field in self.model._meta.concrete_fields}
        columns = {by_attname.get(name, name) for name in self.columns}
        last = self.hops[-1]
        if not last.forward:
            columns.add(last.fk.column)
        return frozenset(columns)

    def concerns(self, change):
        """Whether `change` (to `model`'s rows) can change what the view shows."""
        watched = self.watched
        return change.columns is None or watched is None or bool(watched & change.columns)

    def describe(self):
        names = " -> ".join(hop.target._meta.label for hop in self.hops)
        return f"{self.view_model._meta.label} -> {names}"


@dataclass
class Reading:
    """What one view reads, and what it shows that cannot be followed."""

    view: type
    model: type
    dependencies: list
    unfollowed: list  # sentences naming each field or lookup that cannot be followed


def read_by(view):
    """The `Reading` of a live view class."""
    model = view.get_live_model()._meta.concrete_model
    paths, unfollowed = {}, []
    _inherited(model, (), paths)
    serializer = _serializer(view, unfollowed)
    if serializer is not None:
        _shown(serializer, model, (), paths, unfollowed)
    _filtered(view, paths, unfollowed)
    declared = getattr(view, "live_dependencies", None)
    for lookup in declared or ():
        hops, column = _declared(model, lookup)
        if not hops:
            raise ImproperlyConfigured(
                f"{view.__qualname__}.live_dependencies names {lookup!r}, which is not a "
                f"lookup through a relation of {model._meta.label} (e.g. 'owner__profile', "
                "or 'owner__email' for one column)."
            )
        _read(paths, hops, None if column is None else {column})
    if declared is not None:
        unfollowed = []  # the view says what it reads
    dependencies = [Dependency(view, model, hops, columns) for hops, columns in paths.items()]
    return Reading(view, model, dependencies, unfollowed)


def _serializer(view, unfollowed):
    """The view's serializer; when it picks one per request, the one an anonymous list gets."""
    serializer_class = getattr(view, "serializer_class", None)
    try:
        if serializer_class is None or _picks_serializer(view):
            serializer_class = _anonymous(view).get_serializer_class()
            unfollowed.append(
                "it picks its serializer per request (get_serializer_class); rest_live followed "
                f"{serializer_class.__name__}, which an anonymous list request gets"
            )
        return serializer_class(context={})
    except Exception as error:
        unfollowed.append(
            f"its serializer cannot be made without a user's request ({type(error).__name__}: "
            f"{error})"
        )
        return None


def _picks_serializer(view):
    return view.get_serializer_class is not GenericAPIView.get_serializer_class


def _anonymous(view):
    """An instance of `view` as an anonymous GET of its list would make it."""
    instance = view()
    request = HttpRequest()
    request.method = "GET"
    request.user = AnonymousUser()
    instance.request = instance.initialize_request(request)
    instance.action, instance.format_kwarg, instance.args, instance.kwargs = "list", None, (), {}
    return instance


def _shown(serializer, model, path, paths, unfollowed):
    """Add to `paths` what `serializer`, showing rows of `model` reached by `path`, reads."""
    for name, field in serializer.fields.items():
        if field.write_only or isinstance(field, serializers.HiddenField):
            continue
        where = f"{type(serializer).__name__}.{name}"
        if isinstance(field, serializers.SerializerMethodField):
            unfollowed.append(f"{where} is a SerializerMethodField")
            continue
        _source(field, field.source_attrs, model, path, paths, unfollowed, where)


def _source(field, attrs, model, path, paths, unfollowed, where):
    """Follow one field's `source` from `model` through its relations."""
    if not attrs:  # source="*": the row itself, so a nested serializer of the same row
        if isinstance(field, serializers.BaseSerializer):
            _shown(_child(field), model, path, paths, unfollowed)
        return
    current = model
    for position, attr in enumerate(attrs):
        last = position == len(attrs) - 1
        model_field = _field(current, attr)
        if model_field is None:
            unfollowed.append(
                f"{where} shows {'.'.join(attrs)!r}, and {attr!r} is not a field of "
                f"{current._meta.label}"
            )
            return
        if not model_field.is_relation:
            _read(paths, path, {model_field.attname})
            return
        if last and _key_only(field) and model_field.concrete and not model_field.many_to_many:
            _read(paths, path, {model_field.attname})  # the key is in this row
            return
        hops = _lookup_hops(current, model_field.name)
        if hops is None:
            unfollowed.append(f"{where} shows {attr!r}, a relation without a foreign key")
            return
        path = path + hops
        current = hops[-1].target
        if not last:
            continue
        if _key_only(field):
            # Which rows are related, not what they hold: the rows holding the keys are enough
            # (a many-to-many's link rows, the related rows of a reverse foreign key).
            if model_field.many_to_many:
                _read(paths, path[:-1], {path[-1].fk.attname})  # the link rows' other key
            else:
                _read(paths, path, set())
        elif isinstance(field, serializers.BaseSerializer):
            _read(paths, path, set())
            _shown(_child(field), current, path, paths, unfollowed)
        else:
            _read(paths, path, _columns_of(field, current))


def _child(field):
    return field.child if isinstance(field, serializers.ListSerializer) else field


def _relation(field):
    return field.child_relation if isinstance(field, relations.ManyRelatedField) else field


def _key_only(field):
    relation = _relation(field)
    return isinstance(relation, relations.PrimaryKeyRelatedField)


def _columns_of(field, model):
    """The columns of `model` a related field reads: its slug, its URL's lookup, or (for a
    field that prints the object) any."""
    relation = _relation(field)
    if isinstance(relation, relations.SlugRelatedField):
        found = _field(model, relation.slug_field)
        return {found.attname} if found is not None else None
    if isinstance(relation, relations.HyperlinkedRelatedField):
        found = _field(model, relation.lookup_field)
        return {found.attname} if found is not None else None
    return None


def _field(model, name):
    if name == "pk":
        return model._meta.pk
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        for field in model._meta.concrete_fields:
            if field.attname == name:
                return field
        for relation in model._meta.related_objects:  # a reverse accessor, `permission_set`
            if relation.get_accessor_name() == name:
                return relation
    return None


def _lookup_hops(model, lookup):
    """The hops of an ORM lookup from `model` ("owner__profile"), or None if one has no key."""
    try:
        names = lookup.split("__")
        path_infos = Query(model).names_to_path(names, model._meta, fail_on_missing=True)[0]
    except (FieldError, FieldDoesNotExist):
        return None
    hops = []
    for info in path_infos:
        join_field = info.join_field
        forward = not isinstance(join_field, ForeignObjectRel)
        fk = join_field if forward else join_field.field
        if not isinstance(fk, models.ForeignKey):
            return None
        hops.append(_hop(fk, forward))
    return tuple(hops)


def _declared(model, lookup):
    """(hops, column) of a declared lookup: "owner__profile" reads any column of the profile,
    "owner__email" only the owner's email."""
    hops = _lookup_hops(model, lookup)
    if not hops:
        return None, None
    final = Query(model).names_to_path(lookup.split("__"), model._meta)[1]
    return hops, None if final.is_relation else final.attname


def _hop(fk, forward):
    holder, pointed = fk.model._meta.concrete_model, fk.related_model._meta.concrete_model
    if forward:
        return Hop(holder, pointed, fk, True)
    return Hop(pointed, holder, fk, False)


def _filtered(view, paths, unfollowed):
    """Tables the view's `queryset` joins to filter or annotate, and the columns it reads of
    each (select_related is for showing, which the serializer says)."""
    queryset = getattr(view, "queryset", None)
    if queryset is None:
        return
    query = queryset.query
    columns = {}  # alias -> columns read
    expressions = [query.where, *query.annotations.values()]
    while expressions:
        expression = expressions.pop()
        if isinstance(expression, Subquery):
            unfollowed.append("its queryset filters or annotates with a subquery")
        elif isinstance(expression, Col):
            columns.setdefault(expression.alias, set()).add(expression.target.attname)
        expressions.extend(_parts(expression))
    for alias in query.alias_map:
        hops = _join_hops(query, alias)
        if hops:
            _read(paths, hops, columns.get(alias, set()))


def _parts(expression):
    if isinstance(expression, WhereNode):
        return list(expression.children)
    parts = []
    for name in ("lhs", "rhs"):
        part = getattr(expression, name, None)
        if hasattr(part, "resolve_expression"):
            parts.append(part)
    if hasattr(expression, "get_source_expressions"):
        parts.extend(part for part in expression.get_source_expressions() if part is not None)
    return parts


def _join_hops(query, alias):
    hops = []
    while not isinstance(query.alias_map[alias], BaseTable):
        join = query.alias_map[alias]
        join_field = join.join_field
        forward = not isinstance(join_field, ForeignObjectRel)
        fk = join_field if forward else join_field.field
        if not isinstance(fk, models.ForeignKey):
            return ()
        hops.append(_hop(fk, forward))
        alias = join.parent_alias
    return tuple(reversed(hops))


def _inherited(model, path, paths):
    """Multi-table inheritance: a child's fields live in its parents' tables too."""
    for parent, link in model._meta.parents.items():
        if link is None:
            continue
        hops = path + (_hop(link, True),)
        _read(paths, hops, None)
        _inherited(parent, hops, paths)


def _read(paths, hops, columns):
    """Record that `columns` of the rows `hops` lead to are read (None: any column), and the
    keys that lead there through the rows on the way (a link row moved to another tag)."""
    if not hops:
        return  # the view's own rows: every change of them is captured
    for end in range(1, len(hops)):
        onward = hops[end]
        _add(paths, hops[:end], {onward.fk.attname} if onward.forward else set())
    _add(paths, hops, columns)


def _add(paths, hops, columns):
    known = paths.get(hops, frozenset())
    if known is None or columns is None:
        paths[hops] = None
    else:
        paths[hops] = known | frozenset(columns)


def affected(dependency, change):
    """The primary keys of `dependency.view_model` whose rows show rows of `change`: one query
    (none for a key the changed rows hold themselves)."""
    *before, last = dependency.hops
    if last.forward:
        # Rows of `last.source` pointing at a changed row.
        pointed = _values_of(last.target, change.pks, last.fk.target_field)
        rows = last.source._base_manager.filter(**{f"{last.fk.attname}__in": pointed})
    else:
        # Rows of `last.source` the changed rows pointed at, before the change or after it.
        values = [value for value in change.refs.get(last.fk.column, ()) if value is not None]
        target_field = last.fk.target_field
        if not before and target_field.primary_key:
            return values
        rows = last.source._base_manager.filter(**{f"{target_field.attname}__in": values})
    for hop in reversed(before):
        if hop.forward:
            pointed = rows.values(hop.fk.target_field.attname)
            rows = hop.source._base_manager.filter(**{f"{hop.fk.attname}__in": pointed})
        else:
            pointing = rows.values(hop.fk.attname)
            rows = hop.source._base_manager.filter(
                **{f"{hop.fk.target_field.attname}__in": pointing}
            )
    return list(rows.values_list("pk", flat=True))


def _values_of(model, pks, field):
    if field.primary_key:
        return list(pks)
    return model._base_manager.filter(pk__in=pks).values(field.attname)
