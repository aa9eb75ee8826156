"""The `metrics` option: nothing of it without it; with `prometheus`, /metrics on a real server.

The bake's own tests (tests/test_metrics.py in a metrics bake) check the endpoint and the metrics
in-process; here the combos' files are checked, rest_live is run without prometheus-client (its
stand-ins), and a bake is served by Daphne with debug off, as deployed, and scraped the way its
README says, after a real websocket subscribed and a change from another process arrived. The
same run checks the README's activity-log example against the lines the server really logs.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from harness import baking
from harness.appserver import LiveSocket, served
from harness.baking import env_file, requirements
from harness.combos import COMBOS, combo_params

METRICS_COMBOS = [combo.name for combo in COMBOS if combo["metrics"] == "prometheus"]
PLAIN_COMBOS = [combo.name for combo in COMBOS if combo["metrics"] == "none"]
METRICS_FILES = ("config/metrics.py", "tests/test_metrics.py")


def test_some_combo_bakes_each_value():
    assert METRICS_COMBOS and PLAIN_COMBOS


@pytest.mark.parametrize("combo", combo_params(*PLAIN_COMBOS))
def test_without_metrics_nothing_of_them_is_baked(baked):
    for relative in METRICS_FILES:
        assert not (baked / relative).exists(), relative
    assert "prometheus-client" not in requirements(baked, baking.DEVELOPMENT_REQUIREMENTS)
    assert "metrics" not in (baked / "config" / "urls.py").read_text()
    assert "METRICS" not in (baked / "config" / "settings.py").read_text()
    for name in (".env", ".env.example"):
        assert "METRICS_TOKEN" not in (baked / name).read_text(), name
    readme = (baked / "README.md").read_text()
    assert "/metrics" not in readme and "### Metrics" not in readme
    # The activity log is every bake's.
    assert "\n## Why didn't my client get that change?\n" in readme


@pytest.mark.parametrize("combo", combo_params(*METRICS_COMBOS))
def test_with_prometheus_the_endpoint_and_a_token_are_baked(baked):
    for relative in METRICS_FILES:
        assert (baked / relative).is_file(), relative
    pin = requirements(baked)["prometheus-client"]
    assert str(pin.specifier).startswith("=="), pin
    assert 'path("metrics", metrics, name="metrics")' in (baked / "config/urls.py").read_text()

    token = env_file(baked / ".env")["METRICS_TOKEN"]
    assert len(token) >= 32 and len(set(token)) >= 15, token
    assert token != env_file(baked / ".env")["DJANGO_SECRET_KEY"]
    assert env_file(baked / ".env.example")["METRICS_TOKEN"] == ""

    readme = (baked / "README.md").read_text()
    metrics = readme[readme.index("\n### Metrics\n") :]
    for name in ("open_sockets", "subscriptions", "distinct_subscriptions", "frames_sent_total",
                 "frames_dropped_total", "changes_total", "evaluation_seconds",
                 "publish_failures_total"):  # fmt: skip
        assert f"`rest_live_{name}" in metrics, name
    assert "scrape_configs:" in metrics and "credentials_file:" in metrics
    assert "| `METRICS_TOKEN` |" in readme  # the Configure table


def test_each_bake_gets_its_own_metrics_token(bake):
    first, second = (
        env_file(bake(METRICS_COMBOS[0], fresh=True) / ".env")["METRICS_TOKEN"] for _ in range(2)
    )
    assert first != second


def test_metrics_without_the_example_app_passes_ruff(bake):
    # The combos bake metrics only with the example app; this is the URLconf's other import branch.
    project = bake("no_example", metrics="prometheus")
    assert (project / "config" / "metrics.py").is_file()
    for command in (["check"], ["format", "--check"]):
        baking.run_command(
            [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
            cwd=project,
            env=baking.clean_env(),
        )


# The rest_live tests that go through every place a metric is recorded: sockets, subscriptions,
# changes and evaluations, frames sent and dropped, publish failures.
METRIC_CALL_SITE_TESTS = (
    "tests.test_activity_log", "tests.test_backpressure", "tests.test_faults",
    "tests.test_change_log",
)  # fmt: skip


@pytest.mark.parametrize("combo", combo_params(PLAIN_COMBOS[0]))
def test_without_prometheus_client_rest_live_records_into_stand_ins(project, tmp_path):
    # The shared venv has prometheus-client (a combo pins it), which a metrics=none project does
    # not: hide it, as its absence would.
    blocker = tmp_path / "hidden" / "prometheus_client"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("not installed")\n')
    hidden = {"PYTHONPATH": str(blocker.parent)}

    kind = project.manage(
        "shell", "-c", "from rest_live import metrics; print(type(metrics.CHANGES).__name__)",
        env_overrides=hidden,
    )  # fmt: skip
    assert kind.stdout.strip().splitlines()[-1] == "_Nothing", kind.describe()
    project.manage("test", "--noinput", *METRIC_CALL_SITE_TESTS, env_overrides=hidden, timeout=240)


# --- a real server --------------------------------------------------------------------------


def scrape(url: str, token: str | None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url + "/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def value(body: str, sample: str) -> float:
    """The value of one sample line (`name` or `name{labels}`) of a Prometheus text body."""
    for line in body.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {sample} in:\n{body}")


def readme_activity_lines(project) -> list[str]:
    readme = (project / "README.md").read_text()
    section = readme[readme.index("\n## Why didn't my client get that change?\n") :]
    block = section[section.index("```\n") + 4 :]
    return block[: block.index("```")].strip().splitlines()


def numbers_masked(line: str) -> str:
    return re.sub(r"\d+", "N", line.strip())


def the_readme_check(project, port: int) -> str:
    """What the README's "check a process by hand" commands print, run as written on `port`."""
    readme = (project / "README.md").read_text()
    commands = readme[readme.index("To check a process by hand") :]
    commands = commands[commands.index("```sh\n") + 6 :]
    commands = commands[: commands.index("```")].replace(":8001/", f":{port}/")
    result = subprocess.run(
        ["bash", "-ec", commands], cwd=project, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("combo", combo_params(METRICS_COMBOS[0]))
def test_a_daphne_process_is_scraped_as_the_readme_says(project, tmp_path):
    token = env_file(project.path / ".env")["METRICS_TOKEN"]  # the served project reads it too
    env = {
        **project.env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REST_LIVE_LOG_LEVEL": "DEBUG",
        # The production default: /metrics must not be redirected to HTTPS.
        "DJANGO_SECURE_SSL_REDIRECT": "on",
    }
    project.manage("migrate", "--noinput", env_overrides=env)

    async def scenario(app):
        status, headers, _ = scrape(app.http_url, None)
        assert (status, headers.get("WWW-Authenticate", "")[:6]) == (401, "Bearer")
        assert scrape(app.http_url, token[:-1] + "x")[0] == 401

        # The README's activity-log example: a list filtered by "milk", a misspelt model, two
        # todos created in another process (so they come through the change log).
        socket = await LiveSocket.open(app)
        await socket.subscribe("todos.Todo", "list", query_params={"search": "milk"})
        await socket.send({"type": "subscribe", "id": 99, "model": "todos.Todos", "action": "list"})
        assert (await socket.receive())["code"] == 404
        # One at a time: on SQLite, what the server reads from the log at once is one change.
        for title in ("buy milk", "bread"):
            await asyncio.to_thread(project.create_in_shell, title, env_overrides=env)
            if title == "buy milk":
                message = await socket.receive()
                assert (message["action"], message["instance"]["title"]) == ("CREATED", title)
        # "bread" sends nothing: wait until the process has evaluated it too.
        for _ in range(50):
            body = scrape(app.http_url, token)[2]
            if value(body, "rest_live_evaluation_seconds_count") >= 2:
                break
            await asyncio.sleep(0.1)

        status, headers, body = scrape(app.http_url, token)
        assert status == 200, body
        assert headers["Content-Type"].startswith("text/plain; version="), headers
        # A fresh process: its own numbers only.
        assert value(body, "rest_live_open_sockets") == 1
        assert value(body, "rest_live_subscriptions") == 1
        assert value(body, "rest_live_distinct_subscriptions") == 1
        assert value(body, "rest_live_frames_sent_total") >= 3  # ack, error, broadcast
        assert value(body, "rest_live_frames_dropped_total") == 0
        assert value(body, 'rest_live_changes_total{source="change_log"}') == 2
        assert value(body, "rest_live_evaluation_seconds_count") == 2
        assert value(body, "rest_live_publish_failures_total") == 0
        if shutil.which("curl"):
            assert "rest_live_open_sockets 1.0" in the_readme_check(project.path, app.port)
        await socket.close()

    with served(project.path, project.venv, env, "daphne", tmp_path, ready_path="/metrics") as app:
        asyncio.run(scenario(app))
    logged = {numbers_masked(line) for line in app.log_path.read_text().splitlines()}

    readme_lines = readme_activity_lines(project.path)
    missing = [line for line in readme_lines if numbers_masked(line) not in logged]
    assert not missing, f"README lines the server did not log: {missing}\n{app.log()}"
