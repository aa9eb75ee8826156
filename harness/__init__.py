"""What the template's tests and benchmarks share: run from the repository's root, both import it
as a package (`from harness import baking`; `python -m benchmarks.fanout`).

- combos: the answers each tested combo bakes with; baking: bakes, the shared venv, commands run
  in a bake (`BakedProject`), the pins and env files a bake holds.
- services: real PostgreSQL and Redis servers on loopback; skips: a test whose tool is missing
  is skipped, or failed under REQUIRE_SERVICES=1.
- appserver: a bake served by Daphne, Uvicorn or runserver, a websocket client, REST writes;
  deployments: a bake on PostgreSQL and Redis with production settings, served twice;
  demo_server: the demo as `make demo` serves it; mirror: a client whose state comes only from
  the frames it received.
- browser: headless Chromium; node_tools: the pinned node tools of tests/js/.
- programs: the Python programs tests run in a bake's `manage.py shell`, as real files.
- results: where the benchmarks write their JSON and figures.

pytest's fixtures stay in tests/conftest.py; they call these.
"""
