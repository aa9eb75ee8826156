"""The demo as deployed, in a real browser: Playwright drives Debian's Chromium against the
Procfile's production command (Daphne, and Uvicorn) with debug off, after `collectstatic`.

The `redis` combo is baked, so writes from another process (`manage.py shell`) reach the server
through Redis, as in production. Each server gets its own SQLite database in a temp dir, and the
static files are collected once into another (DJANGO_STATIC_ROOT), so the cached bake is left as
it was. Every test runs on Daphne, the Procfile's default; signing in, two pages, a change and a
server restart run on Uvicorn too. Every page records console errors and uncaught exceptions,
and the server's log must show no exception: a test that leaves any fails at teardown.

Each run writes a screenshot of the demo to artifacts/demo.png; with UPDATE_DEMO_SCREENSHOT=1 it
also refreshes docs/demo.png, the copy the README shows.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import baking, programs
from harness.appserver import AppServer
from harness.combos import BY_NAME, TEMPLATE_DIR
from harness.demo_server import DemoServer, collect_static
from harness.services import RedisServer

pytestmark = [pytest.mark.xdist_group("redis"), pytest.mark.timeout(300)]

LIVE_MS = 1000  # a committed change shows in every open page within a second
RECOVERY_MS = 5000  # ...and within 5 s of the channel layer's return after an outage
RECONNECT_MS = 20000  # the client's backoff is capped at 15 s
VIEWPORT = {"width": 900, "height": 640}
SCREENSHOT = TEMPLATE_DIR / "artifacts" / "demo.png"
README_SCREENSHOT = TEMPLATE_DIR / "docs" / "demo.png"
# What Chromium logs each time a socket cannot reach a server that is down.
SOCKET_REFUSED = re.compile(
    r"^WebSocket connection to 'ws://[^']+' failed: .*ERR_CONNECTION_REFUSED"
)
YEAR = 365 * 24 * 60 * 60

# `demo` is parametrized per test: the whole list on Daphne, the essentials on Uvicorn too.
on_both_servers = pytest.mark.parametrize("demo", ["daphne", "uvicorn"], indirect=True)
on_daphne = pytest.mark.parametrize("demo", ["daphne"], indirect=True)


@dataclass
class Demo:
    project: baking.BakedProject
    server: AppServer
    username: str
    password: str

    @property
    def url(self) -> str:
        return self.server.url

    def shell(self, code: str) -> None:
        """Run Python in `manage.py shell`: another process, whose writes travel through Redis."""
        self.project.shell(code, timeout=120)

    def create_in_shell(self, title: str) -> None:
        self.project.create_in_shell(title, timeout=120)


def demo_project(bake, baked_venv, **env: str) -> baking.BakedProject:
    combo = BY_NAME["redis"]
    env = {**baking.service_env(combo), **env}
    return baking.BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env)


@pytest.fixture(scope="module")
def static_root(bake, baked_venv, tmp_path_factory) -> Path:
    """The redis combo's static files, collected once for every server of the module."""
    root = tmp_path_factory.mktemp("browser-static")
    collect_static(demo_project(bake, baked_venv, DJANGO_STATIC_ROOT=str(root)))
    return root


@pytest.fixture(scope="module")
def demo(request, bake, baked_venv, redis_server, static_root, tmp_path_factory):
    """The redis combo migrated, seeded (`seed_demo`) and served on a free port by the server
    the test is parametrized with; its whole log must stay free of exceptions."""
    redis_server.start()  # a no-op unless an earlier test stopped it
    tmp = tmp_path_factory.mktemp(f"browser-demo-{request.param}")
    project = demo_project(
        bake,
        baked_venv,
        REDIS_URL=redis_server.url,
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        DJANGO_STATIC_ROOT=str(static_root),
    )
    project.manage("migrate", "--noinput")
    seeded = project.manage("seed_demo").stdout
    password = re.search(r"password: (\S+)", seeded).group(1)
    server = DemoServer(project, log_dir=tmp, server=request.param)
    server.start()
    try:
        yield Demo(project, server, "demo", password)
    finally:
        server.stop()
    server.assert_clean_log()


class Pages:
    """Opens demo pages, anonymous or signed in, and records what goes wrong in them."""

    def __init__(self, browser, demo: Demo):
        self.browser = browser
        self.demo = demo
        self.contexts = []
        self.problems: list[str] = []
        self.allowed: list[re.Pattern] = []

    def open(self, signed_in: bool = False):
        from playwright.sync_api import expect

        context = self.browser.new_context(base_url=self.demo.url, viewport=VIEWPORT)
        self.contexts.append(context)
        if signed_in:
            self._sign_in(context)
        page = context.new_page()
        name = f"page {len(self.contexts)} ({'signed in' if signed_in else 'anonymous'})"
        page.on("console", lambda message: self._console(name, message))
        page.on("pageerror", lambda error: self.problems.append(f"{name}: uncaught {error}"))
        page.goto("/")
        expect(page.locator("#status")).to_have_text("Connected")
        expect(page.locator("#empty")).not_to_have_text("Loading…")  # the snapshot is in
        return page

    def _sign_in(self, context) -> None:
        # On a page of its own: the login page is DRF's, and its console is not under test.
        page = context.new_page()
        page.goto("/api-auth/login/?next=/")
        page.fill("#id_username", self.demo.username)
        page.fill("#id_password", self.demo.password)
        page.click("#submit-id-submit")
        page.wait_for_url(f"{self.demo.url}/")
        page.close()

    def _console(self, name: str, message) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.problems.append(f"{name}: console error: {message.text}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(chromium, demo):
    log_start = demo.server.log_size()
    opened = Pages(chromium, demo)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.problems, "the browser reported:\n" + "\n".join(opened.problems)
    demo.server.assert_clean_log(since=log_start)


def todo(page, title: str):
    return page.locator("#todos li", has_text=re.compile(f"^{re.escape(title)}"))


def fetch(url: str, accept_encoding: str = "identity"):
    """(status, headers, body) of a GET, the body as sent (urllib decompresses nothing)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": accept_encoding})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def unbrotli(venv: Path, data: bytes) -> bytes:
    """Brotli-decoded `data`, by the baked venv's `brotli` (the template's venv has none)."""
    decode = (
        "import sys, brotli; sys.stdout.buffer.write(brotli.decompress(sys.stdin.buffer.read()))"
    )
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", decode],
        input=data, capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def assert_served_compressed(demo: Demo, path: str) -> str:
    """`path` is served, and as gzip or Brotli to a client that accepts it, each decoding to
    the same bytes; returns its Cache-Control."""
    status, headers, plain = fetch(demo.url + path)
    assert status == 200, f"GET {path}: {status}\n{demo.server.log()}"
    assert headers["Content-Encoding"] is None, headers
    for encoding, decode in [
        ("gzip", gzip.decompress),
        ("br", lambda data: unbrotli(demo.project.venv, data)),
    ]:
        status, headers, body = fetch(demo.url + path, accept_encoding=f"{encoding}, identity")
        assert status == 200, f"GET {path} ({encoding}): {status}"
        assert headers["Content-Encoding"] == encoding, (path, encoding, dict(headers))
        assert "Accept-Encoding" in headers["Vary"], dict(headers)
        assert len(body) < len(plain) and decode(body) == plain, (path, encoding)
    return headers["Cache-Control"]


# --- the tests (the screenshot first, while the list is still the seeded one) ----------------


@on_both_servers
def test_static_files_are_hashed_compressed_and_cached_for_ten_years(demo):
    log_start = demo.server.log_size()
    status, _, page = fetch(demo.url + "/")
    assert status == 200
    page = page.decode()
    styles = re.search(r'<link rel="stylesheet" href="([^"]+)"', page).group(1)
    script = re.search(r'<script type="module" src="([^"]+)"', page).group(1)
    for path, extension in [(styles, "css"), (script, "js")]:
        # The manifest's names carry a hash of the content, so they may be cached for good.
        assert re.fullmatch(rf"/static/todos/app\.[0-9a-f]{{12}}\.{extension}", path), path
        cache_control = assert_served_compressed(demo, path)
        max_age = int(re.search(r"max-age=(\d+)", cache_control).group(1))
        # Ten years, as the baked README says: ServeStatic's (and nginx's `expires max`).
        assert max_age == 10 * YEAR and "immutable" in cache_control, cache_control
    # app.js imports the client by its plain name, which must not be cached for good.
    cache_control = assert_served_compressed(demo, "/static/rest_live/rest-live.js")
    assert "immutable" not in cache_control, cache_control
    assert fetch(demo.url + "/static/todos/missing.js")[0] == 404
    demo.server.assert_clean_log(since=log_start)


@on_daphne
def test_screenshot_of_the_demo(pages):
    from playwright.sync_api import expect

    page = pages.open(signed_in=True)
    page.get_by_role("checkbox", name="Water the plants").check()
    expect(todo(page, "Water the plants")).to_have_attribute("data-done", "true", timeout=LIVE_MS)
    page.get_by_label("New todo").fill("Buy oat milk")
    page.get_by_role("button", name="Add").click()
    expect(todo(page, "Buy oat milk")).to_be_visible(timeout=LIVE_MS)
    expect(page.get_by_label("New todo")).to_have_value("")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000
    if os.environ.get("UPDATE_DEMO_SCREENSHOT") == "1":
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(SCREENSHOT, README_SCREENSHOT)


@on_both_servers
def test_a_todo_added_in_one_page_appears_in_the_other(pages):
    from playwright.sync_api import expect

    writer = pages.open(signed_in=True)
    watcher = pages.open()
    writer.get_by_label("New todo").fill("Added in a page")
    writer.get_by_label("New todo").press("Enter")
    expect(todo(watcher, "Added in a page")).to_be_visible(timeout=LIVE_MS)
    expect(todo(writer, "Added in a page")).to_be_visible(timeout=LIVE_MS)


@on_daphne
def test_a_todo_created_in_the_shell_appears_in_every_page(pages, demo):
    from playwright.sync_api import expect

    open_pages = [pages.open(signed_in=True), pages.open()]
    demo.create_in_shell("Created in the shell")
    for page in open_pages:
        expect(todo(page, "Created in the shell")).to_be_visible(timeout=LIVE_MS)
        expect(todo(page, "Created in the shell")).to_have_count(1)


@on_daphne
def test_ticks_and_deletes_propagate(pages, demo):
    from playwright.sync_api import expect

    demo.create_in_shell("Tick me")
    demo.create_in_shell("Delete me")
    writer = pages.open(signed_in=True)
    watcher = pages.open()

    writer.get_by_role("checkbox", name="Tick me").check()
    expect(todo(watcher, "Tick me")).to_have_attribute("data-done", "true", timeout=LIVE_MS)
    expect(watcher.get_by_role("img", name="Done:")).not_to_have_count(0)
    writer.get_by_role("checkbox", name="Tick me").uncheck()
    expect(todo(watcher, "Tick me")).to_have_attribute("data-done", "false", timeout=LIVE_MS)

    writer.get_by_role("button", name="Delete “Delete me”").click()
    expect(todo(watcher, "Delete me")).to_have_count(0, timeout=LIVE_MS)
    expect(todo(writer, "Delete me")).to_have_count(0, timeout=LIVE_MS)


@on_daphne
def test_anonymous_visitors_watch_but_cannot_write(pages, demo):
    from playwright.sync_api import expect

    demo.create_in_shell("Watched")
    page = pages.open()
    expect(todo(page, "Watched")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_have_attribute(
        "href", "/api-auth/login/?next=/"
    )
    for control in [page.locator("form#new-todo"), page.get_by_role("checkbox")]:
        expect(control).to_have_count(0)
    expect(page.get_by_role("button")).to_have_count(0)

    # Not through the page (whose console would log the refusal): the same cookies, no session.
    response = page.request.post(
        "/api/todos/", data={"title": "Sneaked in"}, headers={"Accept": "application/json"}
    )
    assert response.status == 403, response.text()
    demo.create_in_shell("After the refusal")
    expect(todo(page, "After the refusal")).to_be_visible(timeout=LIVE_MS)
    expect(todo(page, "Sneaked in")).to_have_count(0)


@on_both_servers
def test_the_page_reconnects_after_a_server_restart(pages, demo):
    from playwright.sync_api import expect

    page = pages.open(signed_in=True)
    page.evaluate("window.sameDocument = true")  # the page reconnects; it is never reloaded
    status = page.locator("#status")
    pages.allowed.append(SOCKET_REFUSED)  # Chromium logs each attempt while the server is down

    demo.server.stop()
    expect(status).to_have_text("Reconnecting…")
    expect(status).to_have_attribute("data-status", "reconnecting")
    # Its broadcast reaches no server: only the snapshot on reconnecting can bring it.
    demo.create_in_shell("Written while the server was down")

    demo.server.start()
    expect(status).to_have_text("Connected", timeout=RECONNECT_MS)
    expect(todo(page, "Written while the server was down")).to_be_visible(timeout=LIVE_MS)
    demo.create_in_shell("Written after the restart")
    expect(todo(page, "Written after the restart")).to_be_visible(timeout=LIVE_MS)
    assert page.evaluate("window.sameDocument") is True


# A page of the demo's origin that keeps the todos with rest-live.js (from the server) and
# records each callback: its action, pk, whether a resume brought it, and the task it ran in.
RECORDING_CLIENT = """async () => {
  const { LiveClient, LiveMap } = await import("/static/rest_live/rest-live.js");
  const record = { calls: [], transactions: [], task: 0 };
  const tick = () => { record.task += 1; setTimeout(tick, 0); };
  tick();
  const todos = new LiveMap();
  const live = new LiveClient("/ws/subscribe/");
  live.subscribe({ model: "todos.Todo", action: "list", snapshot: true }, (action, data, info) => {
    todos.apply(action, data, info);
    record.calls.push([action, info.pk ?? null, Boolean(info.resumed), record.task]);
  });
  live.on("transaction", ({ frames }) => record.transactions.push(frames.length));
  window.record = record;
  window.state = () => Object.fromEntries(todos);
  window.liveStatus = () => live.status;
}"""


def rest_todos(demo: Demo) -> dict[str, dict]:
    status, _headers, body = fetch(demo.url + "/api/todos/")
    assert status == 200
    return {str(todo["id"]): todo for todo in json.loads(body)}


@on_both_servers
def test_the_client_applies_a_transaction_at_once_and_resumes_after_a_drop(pages, demo):
    """rest-live.js in Chromium against the real server: a three-row transaction reaches the
    callbacks in one task; after the server went away and came back, the client resumes,
    receiving only what changed meanwhile, and no snapshot."""
    page = pages.open()
    pages.allowed.append(SOCKET_REFUSED)
    page.evaluate(RECORDING_CLIENT)
    page.wait_for_function("window.record.calls.length === 1")  # the snapshot
    assert page.evaluate("window.state()") == rest_todos(demo)

    demo.shell(programs.source("tick_three"))
    page.wait_for_function("window.record.calls.length === 4", timeout=LIVE_MS * 5)
    calls = page.evaluate("window.record.calls")[1:]
    assert [action for action, *_ in calls] == ["UPDATED"] * 3
    assert len({task for *_, task in calls}) == 1, calls  # one task: never half applied
    assert page.evaluate("window.record.transactions") == [3]
    assert page.evaluate("window.state()") == rest_todos(demo)

    demo.server.stop()
    page.wait_for_function("window.liveStatus() === 'reconnecting'")
    demo.create_in_shell("Written while the client was away")
    demo.server.start()
    page.wait_for_function("window.record.calls.length === 5", timeout=RECONNECT_MS)
    action, _pk, resumed, _task = page.evaluate("window.record.calls")[-1]
    assert (action, resumed) == ("CREATED", True)  # resumed: only the new todo, no snapshot
    assert page.evaluate("window.state()") == rest_todos(demo)


@pytest.fixture
def outage_demo(bake, baked_venv, static_root, tmp_path):
    """The demo on Daphne with a Redis of its own, which the test stops: the module's `demo`
    shares the session's Redis with every test on the worker. The outage is two lines of the
    server's log, and no traceback."""
    with RedisServer() as redis:
        project = demo_project(
            bake,
            baked_venv,
            REDIS_URL=redis.url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            DJANGO_STATIC_ROOT=str(static_root),
        )
        project.manage("migrate", "--noinput")
        password = re.search(r"password: (\S+)", project.manage("seed_demo").stdout).group(1)
        server = DemoServer(project, log_dir=tmp_path, server="daphne")
        server.start()
        try:
            yield Demo(project, server, "demo", password), redis
        finally:
            server.stop()
        server.assert_clean_log()


def test_the_page_catches_up_after_a_redis_outage_without_a_reload(chromium, outage_demo):
    from playwright.sync_api import expect

    demo, redis = outage_demo
    pages = Pages(chromium, demo)
    try:
        page = pages.open(signed_in=True)
        page.evaluate("window.sameDocument = true")  # a reload would forget it
        redis.stop()
        demo.create_in_shell("Written while Redis was down")  # its broadcast fails
        redis.start()  # empty: RedisServer runs with --save "" --appendonly no
        expect(todo(page, "Written while Redis was down")).to_be_visible(timeout=RECOVERY_MS)
        demo.create_in_shell("Written after Redis came back")
        expect(todo(page, "Written after Redis came back")).to_be_visible(timeout=RECOVERY_MS)
        expect(page.locator("#status")).to_have_text("Connected")
        assert page.evaluate("window.sameDocument") is True
    finally:
        pages.close()
    assert not pages.problems, "the browser reported:\n" + "\n".join(pages.problems)
