"""Keeping the capture triggers in step with the registered views: `migrate` installs them (after
every run, so a view or dependency added later is covered), `manage.py live_capture` lists and
removes them, and a system check names a table whose capture is missing or stale.
"""

import logging
from dataclasses import dataclass

from django.db import DatabaseError, connections, router, transaction
from django.db.migrations import RunPython, RunSQL

from rest_live.capture import registry, triggers

logger = logging.getLogger(__name__)


@dataclass
class Status:
    table: triggers.Table
    state: str  # "installed", "missing", "stale"
    why: list  # what reads the table: "todos.Todo (a view's model)", ...


def log_database():
    """The alias of the database that holds the change log, where the capture is installed."""
    from rest_live.models import Change

    return router.db_for_write(Change)


def log_table():
    from rest_live.models import Change

    return Change._meta.db_table


def expected(using=None):
    """{table name: Table} of what the registered views read, in database `using`."""
    using = using or log_database()
    return {
        name: table
        for name, table in registry.tables().items()
        if router.db_for_write(table.model) == using
    }


def status(using=None):
    """A `Status` for each table the registered views read."""
    using = using or log_database()
    connection = connections[using]
    present = triggers.installed(connection)
    why = registry.reasons()
    found = []
    for name, table in sorted(expected(using).items()):
        want = triggers.expected_state(table, connection.vendor, log_table())
        have = present.get(name, {})
        state = "installed" if have == want else ("stale" if have else "missing")
        found.append(Status(table, state, why.get(name, [])))
    return found


def leftovers(using=None):
    """{table name: names} of capture objects on tables no registered view reads any more (the
    log's own commit marker is not one)."""
    using = using or log_database()
    wanted = set(expected(using)) | {log_table()}
    present = triggers.installed(connections[using])
    return {name: objects for name, objects in present.items() if name not in wanted}


def install(using=None, verbosity=1, stdout=None):
    """Create or replace the capture of every table whose capture is missing or stale, and
    remove it from tables no view reads any more. Returns the tables changed."""
    using = using or log_database()
    connection = connections[using]
    if not triggers.is_supported(connection.vendor):
        return []
    changed = []
    with transaction.atomic(using=using):
        for name, objects in leftovers(using).items():
            _run(connection, triggers.drop_statements(connection.vendor, name, objects))
            changed.append(name)
        present = triggers.installed(connection)
        for item in status(using):
            if item.state == "installed":
                continue
            name = item.table.name
            objects = present.get(name, {})
            try:
                with transaction.atomic(using=using):
                    _run(connection, triggers.drop_statements(connection.vendor, name, objects))
                    created = triggers.statements(item.table, connection.vendor, log_table())
                    _run(connection, created.values())
            except DatabaseError as error:
                logger.error(
                    "rest_live could not install the change capture of %s (table %s): %s",
                    item.table.label,
                    name,
                    error,
                )
                continue
            changed.append(name)
        if _install_commit_marker(connection, present.get(log_table(), {})):
            changed.append(log_table())
    if verbosity and stdout is not None and changed:
        stdout.write(f"  rest_live: change capture brought up to date on {', '.join(changed)}")
    return changed


def _install_commit_marker(connection, present):
    """Create, replace or drop the log's commit marker (triggers.commit_marker) to match the
    settings; whether anything changed."""
    vendor = connection.vendor
    if present == triggers.commit_marker_state(vendor, log_table()):
        return False
    _run(connection, triggers.drop_statements(vendor, log_table(), present))
    _run(connection, triggers.commit_marker(vendor, log_table()).values())
    return True


def remove(using=None):
    """Remove every capture trigger rest_live installed in `using`. Returns the tables."""
    using = using or log_database()
    connection = connections[using]
    if not triggers.is_supported(connection.vendor):
        return []
    present = triggers.installed(connection)
    with transaction.atomic(using=using):
        for name, objects in present.items():
            _run(connection, triggers.drop_statements(connection.vendor, name, objects))
    return sorted(present)


def remove_column_filters(using=None, altered=None):
    """SQLite only: drop the update triggers that name ordinary columns of the tables whose
    schema is about to change (`altered`: {(app label, model name)}; None: every table), which
    SQLite would not let a migration drop or alter. `migrate` puts them back once it has run."""
    using = using or log_database()
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    present = triggers.installed(connection)
    for name, table in expected(using).items():
        meta = table.model._meta
        if altered is not None and (meta.app_label, meta.model_name) not in altered:
            continue
        if triggers.filters_columns(table):
            update = [n for n in present.get(name, {}) if n.endswith("_update")]
            _run(connection, triggers.drop_statements("sqlite", name, update))


def _run(connection, sql_statements):
    with connection.cursor() as cursor:
        for sql in sql_statements:
            cursor.execute(sql)


# --- migrate ------------------------------------------------------------------------------

_deferred = set()  # databases whose `migrate` is running in this process: it installs at the end


def defer_check(using):
    """`migrate` runs the system checks first: the capture it is about to install is not
    missing yet (rest_live/management/commands/migrate.py)."""
    _deferred.add(using)


def check_deferred(using):
    return using in _deferred


def before_migrate(sender, using, plan=None, **kwargs):
    """pre_migrate: SQLite update triggers that name ordinary columns of a table whose schema
    the migrations change step aside meanwhile (data migrations of other tables are captured)."""
    if sender.name == "rest_live" and _log_table_exists(using):
        remove_column_filters(using, None if plan is None else _altered(plan))


def _altered(plan):
    """{(app label, model name)} whose schema the migrations of `plan` change."""
    altered = set()
    for migration, _backwards in plan:
        for operation in migration.operations:
            if isinstance(operation, RunPython | RunSQL):
                continue
            name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
            if isinstance(name, str):
                altered.add((migration.app_label, name.lower()))
    return altered


def after_migrate(sender, using, verbosity=1, stdout=None, plan=None, **kwargs):
    """post_migrate: bring the capture up to date. `flush` sends it too (with no plan): its
    SQLite DELETEs were logged as changes of rows that no longer exist, which go with them."""
    if sender.name != "rest_live":
        return
    _deferred.discard(using)
    if using != log_database() or not _log_table_exists(using):
        return
    if plan is None:
        from rest_live.models import Change

        Change.objects.using(using).all().delete()
    install(using, verbosity=verbosity, stdout=stdout)


def _log_table_exists(using):
    connection = connections[using]
    with connection.cursor() as cursor:
        return log_table() in connection.introspection.table_names(cursor)
