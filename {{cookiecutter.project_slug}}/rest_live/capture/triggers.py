"""The SQL of the capture: triggers that write each change of a table into the change log.

PostgreSQL: three statement-level triggers per table (transition tables allow one event each), so
a 10,000-row `UPDATE` writes one log row, and a fourth for `TRUNCATE`, logged with no keys (every
row may have changed: subscribers re-sync); each writing statement also sends `NOTIFY rest_live`
with the row it logged, which PostgreSQL delivers to the servers at commit (listener.py). Rows
are read as `to_jsonb(row)` rather than by column, so a migration that drops or renames a column
never breaks a write.

SQLite: three row-level triggers per table (SQLite has no other kind); servers find the rows at
their next poll of the log, or at once when a Django write wakes them through the channel layer.
"""

import hashlib
from dataclasses import dataclass

from django.db import connections

from rest_live import conf

NOTIFY_CHANNEL = "rest_live"
_PREFIX = "rest_live_"


@dataclass(frozen=True)
class Table:
    """What is captured of one table: every insert and delete, and the updates that change one
    of `columns` (None: any update); `refs` are foreign-key columns whose values are logged, and
    `reported` the columns that views showing its rows read (an update logs which it changed;
    None: they read every column, so it need not say)."""

    model: type
    columns: frozenset | None
    refs: frozenset
    reported: frozenset | None = None

    def watched(self):
        """The columns an update logs as changed (None: it logs none)."""
        if self.columns is not None:
            return self.columns | self.refs
        if self.reported:
            return self.reported | self.refs
        return None

    @property
    def name(self):
        return self.model._meta.db_table

    @property
    def label(self):
        return self.model._meta.label

    @property
    def pk(self):
        return self.model._meta.pk.column


def statements(table, vendor, log_table):
    """{trigger or function name: the SQL that creates it}, in the order to run them."""
    if vendor == "postgresql":
        return _postgresql(table, log_table)
    if vendor == "sqlite":
        return _sqlite(table, log_table)
    raise NotImplementedError(vendor)


def drop_statements(vendor, table_name, names):
    """The SQL that removes the capture objects `names` of `table_name`."""
    quoted = _quote(table_name)
    if vendor == "postgresql":
        triggers = [
            f"DROP TRIGGER IF EXISTS {_quote(n)} ON {quoted}" for n in names if "(" not in n
        ]
        functions = [f"DROP FUNCTION IF EXISTS {n}" for n in names if "(" in n]
        return triggers + functions
    return [f"DROP TRIGGER IF EXISTS {_quote(name)}" for name in names]


def installed(connection):
    """{table name: {name: SQL as the database keeps it}} of the capture objects now installed."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname, t.tgname, p.proname, p.prosrc FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE NOT t.tgisinternal AND t.tgname LIKE %s "
                "AND c.relnamespace = ANY (current_schemas(false)::regnamespace[])",
                [_PREFIX + "%"],
            )
            found = {}
            for table_name, trigger, function, source in cursor.fetchall():
                objects = found.setdefault(table_name, {})
                objects[trigger] = f"ON {function}"
                objects[f"{function}()"] = source
            return found
        cursor.execute(
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
            [_PREFIX + "%"],
        )
        found = {}
        for table_name, trigger, sql in cursor.fetchall():
            found.setdefault(table_name, {})[trigger] = sql
        return found


def expected_state(table, vendor, log_table):
    """What `installed` reports for `table` once its capture is in place."""
    created = statements(table, vendor, log_table)
    if vendor == "postgresql":
        function = _function_name(table)
        state = {name: f"ON {function}" for name in created if "(" not in name}
        state[f"{function}()"] = _postgresql_body(table, log_table)
        return state
    return created


def commit_marker(vendor, log_table):
    """{name: SQL} of PostgreSQL's commit marker, or {} where there is none: a deferred trigger
    on the log, whose NOTIFY comes after every notification of its transaction, so a server
    knows when it has heard all of a transaction's rows (feed.py), even when they fill several
    network reads. Its notifications are one per transaction: PostgreSQL sends a payload once
    however often a transaction repeats it."""
    if vendor != "postgresql" or not conf.setting("NOTIFY"):
        return {}
    return {
        f"{_COMMITTED}()": (
            f"CREATE OR REPLACE FUNCTION {_COMMITTED}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $rest_live${_COMMITTED_BODY}$rest_live$"
        ),
        _COMMITTED: (
            f"CREATE CONSTRAINT TRIGGER {_COMMITTED} AFTER INSERT ON {_quote(log_table)} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_COMMITTED}()"
        ),
    }


def commit_marker_state(vendor, log_table):
    """What `installed` reports for the log table once the commit marker is in place."""
    if not commit_marker(vendor, log_table):
        return {}
    return {_COMMITTED: f"ON {_COMMITTED}", f"{_COMMITTED}()": _COMMITTED_BODY}


def commits_marked(using, log_table):
    """Whether the commit marker is installed on the log in database `using`."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s)",
            [_COMMITTED, _quote(log_table)],
        )
        return cursor.fetchone() is not None


COMMITTED = "committed"  # the first item of the marker's payload: ["committed", txid]
_COMMITTED = f"{_PREFIX}committed"
_COMMITTED_BODY = (
    f"BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', "
    f"json_build_array('{COMMITTED}', txid_current())::text); RETURN NULL; END;"
)


def is_supported(vendor):
    return vendor in ("postgresql", "sqlite")


# --- PostgreSQL ---------------------------------------------------------------------------


def _function_name(table):
    digest = hashlib.sha1(table.name.encode()).hexdigest()[:8]
    return f"{_PREFIX}capture_{table.name[:30]}_{digest}"


def _postgresql(table, log_table):
    function = _function_name(table)
    quoted = _quote(table.name)
    created = {
        f"{function}()": (
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $rest_live${_postgresql_body(table, log_table)}$rest_live$"
        )
    }
    transitions = {
        "insert": "NEW TABLE AS rest_live_new",
        "update": "OLD TABLE AS rest_live_old NEW TABLE AS rest_live_new",
        "delete": "OLD TABLE AS rest_live_old",
    }
    for event, referencing in transitions.items():
        created[f"{_PREFIX}{event}"] = (
            f"CREATE TRIGGER {_PREFIX}{event} AFTER {event.upper()} ON {quoted} "
            f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    created[f"{_PREFIX}truncate"] = (
        f"CREATE TRIGGER {_PREFIX}truncate AFTER TRUNCATE ON {quoted} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )
    return created


def _postgresql_body(table, log_table):
    pk = _literal(table.pk)
    insert = (
        f"INSERT INTO {_quote(log_table)} (model, pks, created, refs, columns, recorded, txid) "
    )

    def logged(rows, created, refs_from, columns="NULL::jsonb"):
        refs = _postgresql_refs(table, refs_from)
        return (
            f"{insert}SELECT {_literal(table.label)}, jsonb_agg(r.j -> {pk}), {created}, "
            f"{refs}, {columns}, now(), txid_current() FROM ({rows}) r HAVING count(*) > 0"
            f"{_RETURNING};"
        )

    new_rows = "SELECT to_jsonb(n) AS j FROM rest_live_new n"
    old_rows = "SELECT to_jsonb(o) AS j FROM rest_live_old o"
    watched = table.watched()
    if watched is None:
        update = logged(new_rows, "false", ["rest_live_old", "rest_live_new"])
    else:
        watched = sorted(watched)
        differs = [
            f"(o.j -> {_literal(column)}) IS DISTINCT FROM (n.j -> {_literal(column)})"
            for column in watched
        ]
        # Per row, the watched columns it changed (the feed flattens the lists).
        changed = ", ".join(
            f"CASE WHEN {test} THEN {_literal(column)} END"
            for test, column in zip(differs, watched, strict=True)
        )
        # Every updated row, or (a table only some of whose columns are read) those that
        # changed one of them.
        only = "true" if table.columns is None else (" OR ".join(differs) or "false")
        rows = (
            f"SELECT n.j, to_jsonb(array_remove(ARRAY[{changed or 'NULL'}]::text[], NULL)) AS c "
            f"FROM ({new_rows}) n JOIN ({old_rows}) o ON (o.j -> {pk}) = (n.j -> {pk}) "
            f"WHERE {only}"
        )
        update = logged(rows, "false", ["rest_live_old", "rest_live_new"], "jsonb_agg(r.c)")
    return (
        "DECLARE payload text; BEGIN "
        # A dropped log (rest_live unmigrated by hand) must not fail the write.
        f"IF to_regclass({_literal(_quote(log_table))}) IS NULL THEN RETURN NULL; END IF; "
        f"IF TG_OP = 'TRUNCATE' THEN {insert}VALUES ({_literal(table.label)}, 'null'::jsonb, "
        f"false, NULL, NULL, now(), txid_current()){_RETURNING}; "
        f"ELSIF TG_OP = 'INSERT' THEN {logged(new_rows, 'true', ['rest_live_new'])} "
        f"ELSIF TG_OP = 'DELETE' THEN {logged(old_rows, 'false', ['rest_live_old'])} "
        f"ELSE {update} END IF; "
        f"{_notify()}RETURN NULL; END;"
    )


# The logged row, as the notification's payload: a server that hears it need not read the log.
_RETURNING = (
    " RETURNING jsonb_build_array(id, model, pks, created, refs, columns, txid)::text INTO payload"
)
# PostgreSQL refuses payloads of 8,000 bytes or more: a longer row is announced empty, and read.
_PAYLOAD_BYTES = 7900


def _notify():
    if not conf.setting("NOTIFY"):
        return ""
    return (
        f"IF payload IS NOT NULL THEN PERFORM pg_notify({_literal(NOTIFY_CHANNEL)}, CASE WHEN "
        f"octet_length(payload) <= {_PAYLOAD_BYTES} THEN payload ELSE '' END); END IF; "
    )


def _postgresql_refs(table, transition_tables):
    if not table.refs:
        return "NULL::jsonb"
    pairs = []
    for column in sorted(table.refs):
        values = " UNION ".join(
            f"SELECT to_jsonb(x) -> {_literal(column)} AS v FROM {name} x"
            for name in transition_tables
        )
        pairs.append(
            f"{_literal(column)}, (SELECT coalesce(jsonb_agg(v), '[]'::jsonb) FROM ({values}) s "
            "WHERE v IS NOT NULL AND v <> 'null'::jsonb)"
        )
    return f"jsonb_build_object({', '.join(pairs)})"


# --- SQLite -------------------------------------------------------------------------------


def _sqlite(table, log_table):
    created = {}
    for event, row, was_created in (
        ("insert", "NEW", 1),
        ("update", "NEW", 0),
        ("delete", "OLD", 0),
    ):
        name = f"{_PREFIX}{table.name}_{event}"
        rows = ("OLD", "NEW") if event == "update" else (row,)
        when, columns = "", "NULL"
        if event == "update" and table.watched() is not None:
            watched = sorted(table.watched())
            differs = [f"OLD.{_quote(column)} IS NOT NEW.{_quote(column)}" for column in watched]
            if table.columns is not None:
                when = f" WHEN {' OR '.join(differs) or '0'}"
            changed = ", ".join(
                f"CASE WHEN {test} THEN {_literal(column)} END"
                for test, column in zip(differs, watched, strict=True)
            )
            columns = f"json_array({changed})"
        created[name] = (
            f"CREATE TRIGGER {_quote(name)} AFTER {event.upper()} ON {_quote(table.name)}{when} "
            f"BEGIN INSERT INTO {_quote(log_table)} (model, pks, created, refs, columns, recorded) "
            f"VALUES ({_literal(table.label)}, json_array({row}.{_quote(table.pk)}), "
            f"{was_created}, {_sqlite_refs(table, rows)}, {columns}, "
            "strftime('%Y-%m-%d %H:%M:%f', 'now')); END"
        )
    return created


def _sqlite_refs(table, rows):
    if not table.refs:
        return "NULL"
    pairs = [
        f"{_literal(column)}, json_array({', '.join(f'{row}.{_quote(column)}' for row in rows)})"
        for column in sorted(table.refs)
    ]
    return f"json_object({', '.join(pairs)})"


def filters_columns(table):
    """Whether `table`'s SQLite update trigger names columns other than keys (see install.py)."""
    watched = table.watched()
    return watched is not None and bool(watched - table.refs)


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def _literal(text):
    return "'" + text.replace("'", "''") + "'"
