"""The demo page in a real browser: Playwright drives Debian's Chromium against a baked server.

The `redis` combo is baked, so writes from another process (`manage.py shell`) reach the server
through Redis, as in production. Its database is a SQLite file in a temp dir, so the cached bake
is left as it was. Every page records console errors and uncaught exceptions; a test that leaves
any fails at teardown.

Each run writes a screenshot of the demo to artifacts/demo.png; with UPDATE_DEMO_SCREENSHOT=1 it
also refreshes docs/demo.png, the copy the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

import pytest

from tests import baking
from tests.combos import BY_NAME, TEMPLATE_DIR
from tests.demo_server import DemoServer

pytestmark = [pytest.mark.xdist_group("redis"), pytest.mark.timeout(300)]

LIVE_MS = 1000  # a committed change shows in every open page within a second
RECONNECT_MS = 20000  # the client's backoff is capped at 15 s
VIEWPORT = {"width": 900, "height": 640}
SCREENSHOT = TEMPLATE_DIR / "artifacts" / "demo.png"
README_SCREENSHOT = TEMPLATE_DIR / "docs" / "demo.png"
# What Chromium logs each time a socket cannot reach a server that is down.
SOCKET_REFUSED = re.compile(
    r"^WebSocket connection to 'ws://[^']+' failed: .*ERR_CONNECTION_REFUSED"
)


@dataclass
class Demo:
    project: baking.BakedProject
    server: DemoServer
    username: str
    password: str

    @property
    def url(self) -> str:
        return self.server.url

    def shell(self, code: str) -> None:
        """Run Python in `manage.py shell`: another process, whose writes travel through Redis."""
        self.project.manage("shell", "-c", code, timeout=120)

    def create_in_shell(self, title: str) -> None:
        self.shell(f"from todos.models import Todo; Todo.objects.create(title={title!r})")


@pytest.fixture(scope="module")
def demo(chromium, bake, baked_venv, redis_server, tmp_path_factory):
    """The redis combo migrated, seeded (`seed_demo`) and served on a free port."""
    combo = BY_NAME["redis"]
    redis_server.start()  # a no-op unless an earlier test stopped it
    tmp = tmp_path_factory.mktemp("browser-demo")
    env = {
        **baking.service_env(combo, redis_url=redis_server.url),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
    }
    project = baking.BakedProject(path=bake(combo), combo=combo, venv=baked_venv, env=env)
    project.manage("migrate", "--noinput")
    seeded = project.manage("seed_demo").stdout
    password = re.search(r"password: (\S+)", seeded).group(1)
    server = DemoServer(project, log_dir=tmp)
    server.start()
    try:
        yield Demo(project, server, "demo", password)
    finally:
        server.stop()


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
    opened = Pages(chromium, demo)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.problems, "the browser reported:\n" + "\n".join(opened.problems)


def todo(page, title: str):
    return page.locator("#todos li", has_text=re.compile(f"^{re.escape(title)}"))


# --- the tests (the screenshot first, while the list is still the seeded one) ----------------


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


def test_a_todo_added_in_one_page_appears_in_the_other(pages):
    from playwright.sync_api import expect

    writer = pages.open(signed_in=True)
    watcher = pages.open()
    writer.get_by_label("New todo").fill("Added in a page")
    writer.get_by_label("New todo").press("Enter")
    expect(todo(watcher, "Added in a page")).to_be_visible(timeout=LIVE_MS)
    expect(todo(writer, "Added in a page")).to_be_visible(timeout=LIVE_MS)


def test_a_todo_created_in_the_shell_appears_in_every_page(pages, demo):
    from playwright.sync_api import expect

    open_pages = [pages.open(signed_in=True), pages.open()]
    demo.create_in_shell("Created in the shell")
    for page in open_pages:
        expect(todo(page, "Created in the shell")).to_be_visible(timeout=LIVE_MS)
        expect(todo(page, "Created in the shell")).to_have_count(1)


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
