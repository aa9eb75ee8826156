"""Which changed rows each of many subscriptions sees, in one query for all of them.

Each subscription's queryset is compiled with its primary key compared to an outer row,
`queryset.filter(pk=<the changed row>)`, into SQL and parameters. Subscriptions of one view
usually compile to the same SQL, differing only in parameters (a search term, a user's id), so
the subscriptions whose SQL is the same are asked together, as Hasura multiplexes live queries:
their parameters become rows of a VALUES list, the changed keys another, and the query returns
the (subscription, key) pairs for which the subscription's own WHERE holds:

    WITH rest_live_subscription(i, p0) AS (VALUES (0, '%milk%'), (1, '%eggs%')),
         rest_live_changed(pk) AS (VALUES (7))
    SELECT i, pk FROM rest_live_subscription, rest_live_changed
    WHERE EXISTS (SELECT ... FROM todos_todo WHERE title LIKE rest_live_subscription.p0
                  AND todos_todo.id = (rest_live_changed.pk))

Each pair is one lookup by primary key, so a thousand subscriptions and one changed row take a
thousand index lookups in one round trip, not a thousand queries.

On PostgreSQL each varying parameter, and the changed keys, go as one array instead (`unnest`
of them makes the same rows): a thousand subscriptions' VALUES list is two thousand
placeholders, which psycopg takes longer to split, quote and send than the database takes to
answer.
"""

import datetime
import decimal
import re
import uuid
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models.expressions import RawSQL

_SUBSCRIPTIONS = "rest_live_subscription"
_CHANGED = "rest_live_changed"
_PLACEHOLDER = re.compile(r"%%|%s")
# Keys above this are asked one subscription at a time: each pair is a lookup, and a bulk
# change of many rows is as cheap that way.
MAX_KEYS = 100
_MAX_PAIRS = 20_000  # (subscription, key) pairs in one query
# Parameters psycopg sends as a typed array, as the VALUES list would type them (a string, as an
# unknown literal, is text there; so is a column of nulls).
_TYPED_ARRAYS = {
    int,
    float,
    bool,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.datetime,
    datetime.time,
}


@dataclass(frozen=True)
class Visibility:
    """A subscription's queryset as SQL, its primary key compared with the changed row's."""

    using: str  # the database the queryset reads
    sql: str | None  # None: the queryset is empty whatever changes (`.none()`)
    params: tuple

    @classmethod
    def of(cls, queryset):
        """The compiled form of `queryset`, or None if it cannot be asked this way (a union,
        a slice)."""
        query = queryset.query
        if query.is_sliced or query.combinator or query.distinct_fields:
            return None
        matching = queryset.order_by().filter(pk=RawSQL(f"{_CHANGED}.pk", ())).values("pk")
        try:
            sql, params = matching.query.sql_with_params()
        except EmptyResultSet:
            return cls(matching.db, None, ())
        return cls(matching.db, sql, tuple(params))


def seen(visibilities, pks):
    """{index in `visibilities`: the set of `pks` that subscription's queryset returns}."""
    found = {i: set() for i in range(len(visibilities))}
    groups = {}
    for i, visibility in enumerate(visibilities):
        if visibility.sql is not None:
            groups.setdefault((visibility.using, visibility.sql), []).append(i)
    for (using, sql), members in groups.items():
        connection = connections[using]
        limit = connection.features.max_query_params or 65535
        arrays = connection.vendor == "postgresql"
        for chunk in _chunks(members, visibilities, len(pks), limit):
            query, params = _query(sql, [visibilities[i].params for i in chunk], pks, arrays)
            with connection.cursor() as cursor:
                cursor.execute(query, params)
                for index, pk in cursor.fetchall():
                    found[chunk[index]].add(pk)
    return found


def _chunks(members, visibilities, keys, limit):
    """`members` in runs whose query stays within the parameter limit and _MAX_PAIRS, as a
    VALUES list (arrays, when they can be used, take fewer)."""
    per_member = 1 + len(visibilities[members[0]].params)
    size = max(1, min((limit - keys - per_member) // per_member, _MAX_PAIRS // max(keys, 1)))
    for start in range(0, len(members), size):
        yield members[start : start + size]


def _query(sql, params_of, pks, arrays=False):
    """The query asking every subscription in `params_of` (their parameters, for one SQL) at
    once: parameters that differ between them become columns of the VALUES list, or of arrays
    (`arrays`, PostgreSQL) where their types allow."""
    first = params_of[0]
    varying = [k for k in range(len(first)) if any(p[k] != first[k] for p in params_of)]
    pieces = _PLACEHOLDER.split(sql)
    marks = _PLACEHOLDER.findall(sql)
    template, constant, k = [pieces[0]], [], 0
    for mark, piece in zip(marks, pieces[1:], strict=True):
        if mark == "%%":
            template.append(mark)
        else:
            if k in varying:
                template.append(f"{_SUBSCRIPTIONS}.p{k}")
            else:
                template.append("%s")
                constant.append(first[k])
            k += 1
        template.append(piece)
    columns = ", ".join(["i", *(f"p{k}" for k in varying)])
    rows = arrays and _as_arrays(params_of, varying, pks)
    subscriptions, changed, params = rows or _as_values(params_of, varying, pks)
    query = (
        f"WITH {_SUBSCRIPTIONS}({columns}) AS ({subscriptions}), "
        f"{_CHANGED}(pk) AS ({changed}) "
        f"SELECT {_SUBSCRIPTIONS}.i, {_CHANGED}.pk FROM {_SUBSCRIPTIONS}, {_CHANGED} "
        f"WHERE EXISTS ({''.join(template)})"
    )
    return query, [*params, *constant]


def _as_values(params_of, varying, pks):
    """(the subscriptions' rows, the changed keys' rows, their parameters) as VALUES lists."""
    row = "(" + ", ".join(["%s"] * (1 + len(varying))) + ")"
    params = []
    for index, subscription in enumerate(params_of):
        params.append(index)
        params.extend(subscription[k] for k in varying)
    subscriptions = f"VALUES {', '.join([row] * len(params_of))}"
    return subscriptions, f"VALUES {', '.join(['(%s)'] * len(pks))}", [*params, *pks]


def _as_arrays(params_of, varying, pks):
    """The same as `_as_values`, each column one array parameter; None if a column's values
    cannot make one."""
    columns = [[subscription[k] for subscription in params_of] for k in varying]
    casts = [_array_cast(values) for values in [*columns, pks]]
    if None in casts:
        return None
    *casts, pk_cast = casts
    if varying:
        arguments = ", ".join(f"%s{cast}" for cast in casts)
        names = ", ".join([*(f"p{k}" for k in varying), "n"])
        subscriptions = (
            f"SELECT n - 1, {', '.join(f'p{k}' for k in varying)} "
            f"FROM unnest({arguments}) WITH ORDINALITY AS s({names})"
        )
    else:
        subscriptions = f"SELECT generate_series(0, {len(params_of) - 1})"
    return subscriptions, f"SELECT unnest(%s{pk_cast})", [*columns, list(pks)]


def _array_cast(values):
    """How `values` go as one array parameter ("" as psycopg types it, "::text[]"), or None if
    they cannot, their types differing."""
    types = {type(value) for value in values if value is not None}
    if types <= {str}:
        return "::text[]"
    if len(types) == 1 and types <= _TYPED_ARRAYS:
        return ""
    return None
