"""Change capture on real processes: whatever writes a row a live view reads, a client whose state
comes only from the frames it received ends equal to what REST shows.

One served process per combo (debug off), one `Mirror` (harness/mirror.py) subscribed anonymously
to the todos list with a snapshot, and every write path in turn, each from another process:
Django's ORM in a `manage.py shell` (`save()`, `QuerySet.update()`/`delete()`, bulk operations,
`update_or_create()`, raw SQL through Django's cursor, many-to-many changes, a tag renamed or
deleted, the owner renamed), a data migration run by `manage.py migrate`, SQL from a program that
is not Django (`psql` on PostgreSQL, Python's `sqlite3` module on SQLite) and REST writes with a
token. After each path the mirror must equal `GET /api/todos/` within a deadline; where it is
cheap to know, the frames the path caused are exactly one per changed row.

PostgreSQL wakes the servers at commit (NOTIFY); on SQLite with the in-memory layer, nothing
crosses processes but the change log, which the server polls every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness import programs
from harness.appserver import PRODUCTION_ENV, AppServer, rest_write, served
from harness.baking import BakedProject, clean_env
from harness.combos import combo_params
from harness.mirror import Mirror, converged, rest_list
from harness.services import postgres_bin_dir

pytestmark = pytest.mark.timeout(300)

# PostgreSQL: NOTIFY at commit, milliseconds. SQLite: the next poll of the log (1 s), plus one
# evaluation; several seconds of margin for a loaded CI machine.
CONVERGE_SECONDS = 10.0
STEP_SECONDS = 60.0  # one write path in the shell process (its first step loads Django)


@pytest.fixture
def live(combo, bake, baked_venv, services_for, tmp_path):
    """A private copy of the combo's bake (a test adds a migration to it), migrated on a fresh
    database, served by one process with debug off."""
    path = tmp_path / "project"
    shutil.copytree(bake(combo), path, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__"))
    env = {**services_for(f"capture_{combo.name}_{secrets.token_hex(3)}"), **PRODUCTION_ENV}
    project = BakedProject(path=path, combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")
    with served(path, baked_venv, env, combo["asgi_server"], tmp_path) as server:
        yield project, server


# --- writes from a Django process -----------------------------------------------------------


PASSWORD = secrets.token_urlsafe(16)
PREPARE = f"""
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from todos.models import Tag, Todo

writer = User.objects.create_user("writer", password={PASSWORD!r})
alice = User.objects.create_user("alice")
red, green, blue = (Tag.objects.create(name=name) for name in ("red", "green", "blue"))
out = Token.objects.create(user=writer).key
"""

# (what the path is, its code): the code sets `out` to the frames it must cause, as
# [action, pk] pairs: one for each row of the list whose REST representation it changed.
DJANGO_PATHS = [
    (
        "save() inserts",
        """
first = Todo(title="saved", owner=alice)
first.save()
second = Todo(title="saved too")
second.save()
out = [["CREATED", first.pk], ["CREATED", second.pk]]
""",
    ),
    (
        "save() updates",
        """
first.title = "saved again"
first.save()
out = [["UPDATED", first.pk]]
""",
    ),
    (
        "bulk_create()",
        """
made = Todo.objects.bulk_create([Todo(title=f"bulk {n}", owner=alice) for n in range(4)])
out = [["CREATED", todo.pk] for todo in made]
""",
    ),
    (
        "QuerySet.update()",
        """
count = Todo.objects.filter(title__startswith="bulk").update(done=True)
assert count == 4, count
out = [["UPDATED", todo.pk] for todo in made]
""",
    ),
    (
        "bulk_update()",
        """
for todo in made:
    todo.title = todo.title.upper()
Todo.objects.bulk_update(made, ["title"])
out = [["UPDATED", todo.pk] for todo in made]
""",
    ),
    (
        "update_or_create() creates",
        """
upserted, created = Todo.objects.update_or_create(title="upserted", defaults={"owner": alice})
assert created
out = [["CREATED", upserted.pk]]
""",
    ),
    (
        "update_or_create() updates",
        """
upserted, created = Todo.objects.update_or_create(title="upserted", defaults={"done": True})
assert not created
out = [["UPDATED", upserted.pk]]
""",
    ),
    (
        "raw SQL through Django's cursor",
        """
now = timezone.now()
with connection.cursor() as cursor:
    cursor.execute(
        "INSERT INTO todos_todo (title, done, owner_id, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        ["raw", False, alice.pk, now, now],
    )
    raw = cursor.fetchone()[0]
    cursor.execute("UPDATE todos_todo SET title = %s WHERE id = %s", ["raw too", second.pk])
    cursor.execute("DELETE FROM todos_todo WHERE id = %s", [made[3].pk])
out = [["CREATED", raw], ["UPDATED", second.pk], ["DELETED", made[3].pk]]
""",
    ),
    (
        "tags.add()",
        """
first.tags.add(red, green)
second.tags.add(red)
made[2].tags.add(green)
out = [["UPDATED", first.pk], ["UPDATED", second.pk], ["UPDATED", made[2].pk]]
""",
    ),
    (
        "tags.remove()",
        """
first.tags.remove(red)
out = [["UPDATED", first.pk]]
""",
    ),
    (
        "tags.set()",
        """
first.tags.set([blue, green])
out = [["UPDATED", first.pk]]
""",
    ),
    (
        "tags.clear()",
        """
second.tags.clear()
out = [["UPDATED", second.pk]]
""",
    ),
    (
        "a tag renamed",
        """
green.name = "lime"
green.save()
out = [["UPDATED", first.pk], ["UPDATED", made[2].pk]]
""",
    ),
    (
        "a tag deleted",
        """
blue.delete()
out = [["UPDATED", first.pk]]
""",
    ),
    (
        "the owner renamed",
        """
alice.username = "alicia"
alice.save()
out = [["UPDATED", pk] for pk in Todo.objects.filter(owner=alice).values_list("pk", flat=True)]
assert len(out) == 6, out
""",
    ),
    (
        "QuerySet.delete() of tagged todos",
        """
assert first.tags.exists() and made[2].tags.exists()
Todo.objects.filter(pk__in=[first.pk, made[2].pk]).delete()
out = [["DELETED", first.pk], ["DELETED", made[2].pk]]
""",
    ),
]


class DjangoWriter:
    """A `manage.py shell` process running harness/programs/shell_driver.py; `run(code)` is one
    write path."""

    def __init__(self, project: BakedProject, log: Path) -> None:
        self.project, self.log = project, log
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> DjangoWriter:
        with open(self.log, "wb") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                str(self.project.venv / "bin" / "python"), "manage.py", "shell", "-v", "0",
                "-c", programs.source("shell_driver"),
                cwd=self.project.path, env=clean_env(self.project.venv, self.project.env),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )  # fmt: skip
        return self

    async def __aexit__(self, *exc_info) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def run(self, code: str):
        self.process.stdin.write(json.dumps(code).encode() + b"\n")
        await self.process.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), STEP_SECONDS)
            if not line:
                await self.process.wait()
                raise AssertionError(
                    f"the shell exited ({self.process.returncode}) running:\n{code}\n"
                    f"{self.log.read_text(errors='replace')}"
                )
            if line.startswith(b"OUT "):
                return json.loads(line[4:])


# --- writes from elsewhere ------------------------------------------------------------------


def migrate(project: BakedProject, name: str, body: str) -> None:
    """Add a migration to the bake's todos app after its newest one, and apply it with
    `manage.py migrate` (another process). `body` is its code after the imports, `{newest}`
    standing for the name of the migration it follows."""
    folder = project.path / "todos" / "migrations"
    newest = max(path.stem for path in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))
    migration = f"{int(newest[:4]) + 1:04d}_{name}"
    code = "from django.db import migrations\n\n\n" + body.replace("{newest}", repr(newest))
    (folder / f"{migration}.py").write_text(code)
    result = project.manage("migrate", "--noinput")
    assert f"Applying todos.{migration}... OK" in result.stdout, result.stdout


# Writes through the historical models, which send no signal rest_live listens to.
DATA_MIGRATION = """def forwards(apps, schema_editor):
    Tag = apps.get_model("todos", "Tag")
    Todo = apps.get_model("todos", "Todo")
    made = Todo.objects.create(title="from a migration")
    made.tags.add(Tag.objects.get(name="red"))
    Todo.objects.filter(title="upserted").update(title="upserted, then migrated")
    Todo.objects.filter(title="BULK 0").delete()


class Migration(migrations.Migration):
    dependencies = [("todos", {newest})]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
"""


def foreign_sql(project: BakedProject, *statements: str) -> list[list]:
    """Run `statements` in one transaction from a program that is not Django: `psql` on
    PostgreSQL, Python's `sqlite3` module on SQLite (a process of its own either way). Returns
    the rows their RETURNING clauses gave, each a list of strings or values."""
    if project.combo.needs_postgres:
        argv = [
            str(postgres_bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-1",
            "-v", "ON_ERROR_STOP=1", "-d", project.env["DATABASE_URL"],
        ]  # fmt: skip
        for statement in statements:
            argv += ["-c", statement]
    else:
        argv = [
            sys.executable,
            str(programs.path("sqlite_writer")),
            str(project.path / "db.sqlite3"),
        ]
        argv += statements
    result = subprocess.run(
        argv, cwd=project.path, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    if project.combo.needs_postgres:
        return [line.split("|") for line in result.stdout.splitlines() if line]
    return json.loads(result.stdout)


def sql_now(project: BakedProject) -> str:
    """The current time as each database's SQL writes it in a Django datetime column."""
    if project.combo.needs_postgres:
        return "now()"
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def obtain_token(server: AppServer, username: str, password: str) -> str:
    """A DRF token from /api/token/, as an API client gets one."""
    request = urllib.request.Request(
        server.http_url + "/api/token/",
        method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


# --- checking -------------------------------------------------------------------------------


class Paths:
    """Runs write paths one after the other: after each, the mirror must equal REST.

    A path that says which frames it causes (`counted`) is checked when the next one starts (or
    at the end), so a duplicate frame that arrives after the state converged is still counted.
    Every frame a counted path expects changes the state, so none arrives after convergence;
    an uncounted path may well send frames that change nothing (a todo inserted and tagged in
    one transaction: CREATED, then UPDATED), which would be counted against the next path. So
    the counted paths come first.
    """

    def __init__(self, mirror: Mirror, server: AppServer) -> None:
        self.mirror, self.server = mirror, server
        self.took: dict[str, float] = {}
        self._previous: tuple[str, int, list | None] | None = None
        self._uncounted: str | None = None  # the first uncounted path run

    async def __call__(self, name: str, write, *args, counted: bool = False):
        """Run `write(*args)` (a coroutine function, or a function run in a thread), wait for
        the mirror to converge, and return what `write` returned. When `counted`, that is the
        frames the path must cause, as [action, pk] pairs (None: not counted after all)."""
        assert not (counted and self._uncounted), (
            f"{name} is counted: run it before {self._uncounted}"
        )
        self._uncounted = self._uncounted or (None if counted else name)
        self.check_frames()
        start, before = len(self.mirror.frames), dict(self.mirror.state)
        if asyncio.iscoroutinefunction(write):
            result = await write(*args)
        else:
            result = await asyncio.to_thread(write, *args)
        try:
            self.took[name] = await converged(
                [self.mirror], lambda: rest_list(self.server), CONVERGE_SECONDS, self.server.log
            )
        except AssertionError as error:
            raise AssertionError(f"after {name}: {error}") from None
        # Equal, and not because nothing happened: a path that changed nothing REST shows
        # would converge at once and prove nothing.
        assert self.mirror.state != before, f"{name} changed nothing that REST shows"
        self._previous = (name, start, result if counted else None)
        return result

    def check_frames(self) -> None:
        if self._previous is None:
            return
        name, start, expected = self._previous
        self._previous = None
        if expected is None:
            return
        frames = self.mirror.frames[start:]
        got = sorted(
            (frame.get("action") or frame.get("type"), frame.get("instance", {}).get("id"))
            for frame in frames
        )
        assert got == sorted((action, pk) for action, pk in expected), (
            f"{name} caused other frames than one per changed row:\n"
            + "\n".join(json.dumps(frame) for frame in frames)
        )


@pytest.mark.parametrize("combo", combo_params("production_daphne", "production", "defaults"))
def test_every_write_path_reaches_a_client_as_rest_shows_it(live):
    project, server = live
    started = time.monotonic()
    # The list is not paginated: REST and the mirror are both the whole list, keyed by id.
    with urllib.request.urlopen(server.http_url + "/api/todos/", timeout=10) as response:
        assert json.loads(response.read()) == []

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            writer = await stack.enter_async_context(
                DjangoWriter(project, project.path.parent / "shell.log")
            )
            token = await writer.run(PREPARE)
            assert await asyncio.to_thread(obtain_token, server, "writer", PASSWORD) == token
            mirror = await stack.enter_async_context(Mirror(server))
            paths = Paths(mirror, server)

            for name, code in DJANGO_PATHS:
                await paths(name, writer.run, code, counted=True)

            program, now = "psql" if project.combo.needs_postgres else "sqlite3", sql_now(project)

            def insert():
                rows = foreign_sql(
                    project,
                    "INSERT INTO todos_todo (title, done, created_at, updated_at) "
                    f"VALUES ('from {program}', false, {now}, {now}) RETURNING id",
                )
                return [["CREATED", int(row[0])] for row in rows]

            def update_and_tag():
                rows = foreign_sql(
                    project,
                    f"UPDATE todos_todo SET title = 'renamed by {program}', done = true "
                    "WHERE title = 'raw too' RETURNING id",
                    "INSERT INTO todos_todo_tags (todo_id, tag_id) SELECT todo.id, tag.id "
                    "FROM todos_todo todo, todos_tag tag "
                    f"WHERE todo.title = 'from {program}' AND tag.name = 'lime' RETURNING todo_id",
                )
                return [["UPDATED", int(row[0])] for row in rows]

            def rename_tag():
                foreign_sql(project, "UPDATE todos_tag SET name = 'crimson' WHERE name = 'red'")

            def rename_owner():
                foreign_sql(
                    project, "UPDATE auth_user SET username = 'alice' WHERE username = 'alicia'"
                )

            def delete():
                rows = foreign_sql(
                    project,
                    "DELETE FROM todos_todo_tags WHERE todo_id IN "
                    f"(SELECT id FROM todos_todo WHERE title = 'from {program}')",
                    f"DELETE FROM todos_todo WHERE title = 'from {program}' RETURNING id",
                )
                return [["DELETED", int(row[0])] for row in rows]

            assert await paths(f"{program} inserts", insert, counted=True)
            updated = await paths(f"{program} updates and tags", update_and_tag, counted=True)
            assert len(updated) == 2, updated
            assert await paths(f"{program} deletes", delete, counted=True)
            await paths("a data migration", migrate, project, "capture_data", DATA_MIGRATION)
            await paths(f"{program} renames a tag", rename_tag)
            await paths(f"{program} renames the owner", rename_owner)

            made = await paths(
                "a REST POST with tags",
                rest_write, server, token, "POST", "/api/todos/",
                {"title": "over REST", "tags": ["lime", "crimson"]},
            )  # fmt: skip
            assert (made["owner"], made["tags"]) == ("writer", ["crimson", "lime"]), made
            oldest = min(mirror.state)
            patched = await paths(
                "a REST PATCH of tags",
                rest_write, server, token, "PATCH", f"/api/todos/{oldest}/",
                {"title": "patched", "tags": ["crimson"]},
            )  # fmt: skip
            assert patched["tags"] == ["crimson"], patched
            paths.check_frames()

            # One socket throughout, never told to re-sync, every frame a broadcast but the
            # snapshot it began with.
            assert mirror.connections == 1
            assert [f for f in mirror.frames if f.get("type") != "broadcast"] == mirror.frames[:1]
            assert mirror.frames[0]["type"] == "snapshot"
            return paths.took

    took = asyncio.run(scenario())
    server.assert_clean_log()
    writer_log = (project.path.parent / "shell.log").read_text(errors="replace")
    assert not [
        line for line in writer_log.splitlines() if "Traceback" in line or "could not" in line
    ], writer_log
    print(
        f"{project.combo.name}: {len(took)} write paths in {time.monotonic() - started:.1f}s; "
        + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in took.items())
    )


# --- the corners: writes the first version of the capture missed --------------------------
# Each client starts from a snapshot taken after the setup committed, so only the write under
# test can make it stale.

GAP_SECONDS = 4.0  # four polls of the change log, and PostgreSQL's NOTIFY many times over


class Stale(AssertionError):
    """The client never saw a committed change that REST shows."""


class Redundant(AssertionError):
    """The client got more frames than the rows that changed."""


@contextlib.asynccontextmanager
async def watching_a_tagged_todo(project: BakedProject, server: AppServer):
    """A mirror of the todos list, which holds one todo tagged "red" (tag "green" exists too)."""
    await asyncio.to_thread(project.shell, programs.source("tagged_todo"))
    async with Mirror(server) as mirror:
        assert [item["tags"] for item in mirror.state.values()] == [["red"]]
        yield mirror


def assert_followed(project: BakedProject, server: AppServer, write) -> None:
    """`write(project)` (run in a thread) reaches a client watching a tagged todo."""

    async def scenario():
        async with watching_a_tagged_todo(project, server) as mirror:
            await asyncio.to_thread(write, project)
            try:
                await converged([mirror], lambda: rest_list(server), GAP_SECONDS)
            except AssertionError as error:
                raise Stale(str(error)) from None

    asyncio.run(scenario())


@pytest.mark.parametrize("combo", combo_params("production_daphne"))
def test_a_link_row_moved_to_another_tag_reaches_the_client(live):
    project, server = live
    assert_followed(
        project,
        server,
        lambda project: foreign_sql(
            project,
            "UPDATE todos_todo_tags SET tag_id = (SELECT id FROM todos_tag WHERE name = 'green')",
        ),
    )


@pytest.mark.parametrize("combo", combo_params("production_daphne"))
def test_a_truncated_table_reaches_the_client(live):
    """PostgreSQL's TRUNCATE logs no keys: the client is told to re-sync, and does."""
    project, server = live
    assert_followed(
        project, server, lambda project: foreign_sql(project, "TRUNCATE todos_todo_tags")
    )


RENAMING_MIGRATION = """class Migration(migrations.Migration):
    dependencies = [("todos", {newest})]
    operations = [migrations.RunSQL("UPDATE todos_tag SET name = 'crimson' WHERE name = 'red'", "")]
"""


@pytest.mark.parametrize("combo", combo_params("defaults"))
def test_a_tag_renamed_by_a_data_migration_on_sqlite_reaches_the_client(live):
    project, server = live
    assert_followed(project, server, lambda project: migrate(project, "rename", RENAMING_MIGRATION))


# A later write: each socket gets changes in the order they were logged, so once its frame is
# in, every frame of the writes before it is too.
BARRIER = "from todos.models import Todo; Todo.objects.filter(title='tagged').update(title='x')"


@pytest.mark.parametrize("combo", combo_params("production_daphne"))
def test_a_todo_inserted_and_tagged_in_one_transaction_is_one_frame(live):
    project, server = live

    async def scenario():
        async with watching_a_tagged_todo(project, server) as mirror:
            start = len(mirror.frames)
            for code in (programs.source("tagged_in_one_transaction"), BARRIER):
                await asyncio.to_thread(project.manage, "shell", "-c", code)
                await converged([mirror], lambda: rest_list(server), CONVERGE_SECONDS)
            frames = [
                frame
                for frame in mirror.frames[start:]
                if frame["instance"]["title"] == "tagged at once"
            ]
            if [frame["action"] for frame in frames] != ["CREATED"]:
                raise Redundant("\n".join(json.dumps(frame) for frame in frames))

    asyncio.run(scenario())
