"""Every live view registered in this process, and what the capture and the hub need of them:
the tables they read (`tables`), and which views a change to a table concerns (`dependents`)."""

from rest_live.broadcasting import connect_signals
from rest_live.capture import triggers
from rest_live.capture.dependencies import read_by

_views = {}  # view class -> its dependencies.Reading, in the order registered
_cache = {}


def add(view):
    """Called by `RealtimeRouter.register`: the capture follows what `view` reads, and Django's
    writes to those tables wake the servers."""
    if view in _views:
        return
    _views[view] = read_by(view)
    _cache.clear()
    for model in models():
        connect_signals(model)


def readings():
    """A `dependencies.Reading` for each registered view."""
    return list(_views.values())


def tables():
    """{table name: triggers.Table} of every table a registered view reads."""
    if "tables" not in _cache:
        found = {}
        for reading in readings():
            _merge(found, reading.model, None, frozenset(), frozenset())
            for dependency in reading.dependencies:
                if not _captured(dependency):
                    continue
                last = dependency.hops[-1]
                refs = frozenset() if last.forward else frozenset({last.fk.column})
                watched = dependency.watched
                _merge(found, dependency.model, watched, refs, watched)
        _cache["tables"] = found
    return _cache["tables"]


def models():
    """The models whose tables are captured."""
    return [table.model for table in tables().values()]


def dependents(label):
    """The dependencies on `label`'s rows whose changes can change what a view shows."""
    if "dependents" not in _cache:
        index = {}
        for reading in readings():
            for dependency in reading.dependencies:
                if _captured(dependency):
                    index.setdefault(dependency.model._meta.label, []).append(dependency)
        _cache["dependents"] = index
    return _cache["dependents"].get(label, [])


def dependencies_of(view):
    """The dependencies of `view` whose changes can change what it shows."""
    reading = _views.get(view)
    return [] if reading is None else [d for d in reading.dependencies if _captured(d)]


def reasons():
    """{table name: sentences saying which views read it, and how}."""
    found = {}
    for reading in readings():
        found.setdefault(reading.model._meta.db_table, []).append(
            f"{reading.view.__qualname__} serves {reading.model._meta.label}"
        )
        for dependency in reading.dependencies:
            if dependency.model._meta.db_table in tables():
                found.setdefault(dependency.model._meta.db_table, []).append(
                    f"{reading.view.__qualname__} reads it: {dependency.describe()}"
                )
    return found


def _captured(dependency):
    """Whether changes of the dependency's rows matter: not when the view reads only the key
    of a row it points at, which its own row holds."""
    return not (dependency.hops[-1].forward and dependency.columns == frozenset())


def _merge(found, model, columns, refs, reported):
    """Fold one reader of `model`'s table into what is captured of it: the updates of
    `columns` (None: any), the keys `refs`, and which of `reported` an update changed."""
    name = model._meta.db_table
    known = found.get(name)
    if known is not None:
        columns = _union(known.columns, columns)
        refs = known.refs | refs
        reported = _union(known.reported, reported)
    found[name] = triggers.Table(model, columns, refs, reported)


def _union(first, second):
    """Column sets where None is every column."""
    return None if first is None or second is None else first | second
