"""The benchmarks still run: small runs, asserting delivery, not speed.

Each timed write in the fan-out benchmark waits until every subscriber holds it, so a run that
finishes has delivered every write to every socket, live and floor alike. The throughput benchmark
reports, per run, whether every socket got one frame per write and the last write; the capacity
one, whether every fast client saw every save beside a slow socket, and that no socket failed to
open. The write cost benchmark counts, per way of writing, the change log rows and wake-ups each
write made; the capture latency benchmark, the writes whose frames never came. The
distinct-subscription benchmark checks every socket's frames against the writes it can see; the
hostile-client one, that every victim's state ends equal to REST whatever the attack did; the
resume one, that a client that reconnects ends equal to REST, by resume and by snapshot.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from harness import baking
from harness.combos import TEMPLATE_DIR
from harness.services import ServiceNotInstalled, postgres_bin_dir
from harness.skips import missing

# The benchmarks take both cores while they run: beside the slow-socket tests (timed reads of
# megabytes) the hostile-client one made a slow socket miss its close in CI, so they run in
# one group, one after the other.
pytestmark = [pytest.mark.xdist_group("backpressure"), pytest.mark.timeout(600)]


def require_services():
    """Skip (or fail, under REQUIRE_SERVICES=1) without PostgreSQL or Redis installed."""
    try:
        postgres_bin_dir()
        if shutil.which("redis-server") is None:
            raise ServiceNotInstalled("redis-server is not installed; apt-get install redis-server")
    except ServiceNotInstalled as error:
        missing(str(error))


def test_the_fanout_benchmark_delivers_every_write(tmp_path, baked_venv):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.fanout", "--clients", "1", "20", "--writes", "3",
         "--out", str(out), "--no-plot", "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=540,
    )  # fmt: skip
    rows = json.loads((out / "fanout.json").read_text())["results"]
    assert {(row["server"], row["n"]) for row in rows} == {
        (server, n) for server in ("daphne", "uvicorn") for n in (1, 20)
    }, result.stdout
    for row in rows:
        assert len(row["live"]) == len(row["floor"]) == 3


def test_the_distinct_benchmark_delivers_each_write_to_the_sockets_that_see_it(
    tmp_path, baked_venv
):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.distinct", "--clients", "1", "20", "--writes", "3",
         "--server", "daphne", "--out", str(out), "--no-plot", "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=540,
    )  # fmt: skip
    report = json.loads((out / "distinct.json").read_text())
    rows = report["results"]
    assert {(row["server"], row["shape"], row["n"]) for row in rows} == {
        ("daphne", shape, n) for shape in ("search", "tokens", "owner", "shared") for n in (1, 20)
    }, result.stdout
    for row in rows:
        # Each write reached every socket that can see it (one, or all for `tokens` and
        # `shared`), once, and no frame reached a socket that cannot see it.
        assert len(row["latencies"]) == 3 and None not in row["latencies"], (row, result.stdout)
        assert row["lost_writes"] == row["missing_frames"] == row["wrong_frames"] == 0, row
        assert row["closed_sockets"] == row["unanswered_barriers"] == 0, row
        for key in ("queries_per_write", "cpu_ms_per_write"):
            assert isinstance(row[key], (int, float)) and row[key] >= 0, (key, row)
        assert row["queries_per_write"] > 0, row  # the server's statements were counted
    assert report["server_log_problems"] == {"daphne": []}, report


def test_the_throughput_benchmark_reports_delivery(tmp_path, baked_venv):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.throughput", "--server", "uvicorn", "--subscribers", "5",
         "--seconds", "2", "--rates", "25", "--warmup", "0", "--out", str(out), "--no-plot",
         "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=300,
    )  # fmt: skip
    results = json.loads((out / "throughput.json").read_text())["results"]
    assert {(r["server"], r["mode"]) for r in results} == {
        ("uvicorn", "live"),
        ("uvicorn", "floor"),
    }, result.stdout
    for r in results:
        [run] = r["runs"]
        assert run["writes"] == 50 and run["subscribers"] == 5, run
        assert run["delivered"], (r["mode"], run, result.stdout)
        assert run["status"] in ("pass", "fail", "writer-limited"), run


def test_the_capacity_benchmark_opens_every_socket_and_keeps_fast_clients_whole(
    tmp_path, baked_venv
):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.capacity", "--server", "uvicorn", "--idle", "20",
         "--rounds", "2", "--round-sockets", "10", "--cycles", "20", "--fast", "3", "--slow", "1",
         "--rate", "20", "--seconds", "1", "--bulk-todos", "20", "--out", str(out), "--no-plot",
         "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=300,
    )  # fmt: skip
    [row] = json.loads((out / "capacity.json").read_text())["results"]
    assert row["server"] == "uvicorn", result.stdout
    for idle in (row["idle"], row["idle_no_deflate"]):
        assert (idle["sockets"], idle["failed"]) == (20, 0), idle
    churn = row["churn"]
    assert len(churn["rss_after_round_kb"]) == 2, churn
    assert churn["failed"] == churn["cycles_failed"] == 0, churn
    for key, slow in (("without_slow", 0), ("with_slow", 1)):
        run = row["latency"][key]
        # Every fast client saw every save (or a later state), the last one included, beside a
        # socket that never reads.
        assert run["slow_sockets"] == slow and run["fast_clients"] == 3, run
        assert run["writes"] > 0 and run["fast_complete"] == 3, (run, result.stdout)
        assert len(run["slow_close_codes"]) == slow, run
    assert row["tracebacks_in_log"] == 0, row["log"]


def test_the_write_cost_benchmark_runs_each_way_of_writing(tmp_path, baked_venv):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.write_cost", "--rounds", "1", "--saves", "3", "--bulks",
         "1", "--bulk-rows", "20", "--out", str(out), "--no-plot", "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=300,
    )  # fmt: skip
    rows = json.loads((out / "write_cost.json").read_text())["results"]
    by_way = {(row["workload"], row["mode"]): row for row in rows}
    assert set(by_way) == {
        (workload, mode)
        for workload in ("autocommit", "atomic", "bulk_update")
        for mode in ("plain", "triggers", "live")
    }, result.stdout
    for (workload, mode), row in by_way.items():
        assert row["writes"] == (1 if workload == "bulk_update" else 3), row
        # Django alone logs nothing; the capture logs one row per statement, however many rows.
        assert row["log_rows_per_write"] == (0 if mode == "plain" else 1), row
        # Only rest_live's signal receivers wake the servers, and bulk_update() sends no signal.
        wakes = 1 if mode == "live" and workload != "bulk_update" else 0
        assert row["wakes_per_write"] == wakes, row


def test_the_capture_latency_benchmark_delivers_every_write(tmp_path, baked_venv):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.capture_latency", "--writes", "2", "--bulk-rows", "3",
         "--out", str(out), "--no-plot", "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=400,
    )  # fmt: skip
    report = json.loads((out / "capture_latency.json").read_text())
    paths = ("save", "update", "bulk_update", "raw_sql", "external", "tags_add", "tag_rename")
    rows = {(row["database"], row["path"]): row for row in report["results"]}
    assert set(rows) == {(db, path) for db in ("postgresql", "sqlite") for path in paths}, (
        result.stdout
    )
    for row in rows.values():
        assert row["writes"] == 2 and row["lost"] == 0, (row, result.stdout)
    assert report["server_log_errors"] == {"postgresql": [], "sqlite": []}, report


def test_the_hostile_benchmark_keeps_every_victim_whole(tmp_path, baked_venv):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.hostile", "--server", "uvicorn", "--config", "bounds",
         "--writes", "4", "--victims", "10", "--out", str(out), "--no-plot",
         "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=540,
    )  # fmt: skip
    report = json.loads((out / "hostile.json").read_text())
    rows = report["results"]
    assert {(row["server"], row["config"], row["scenario"]) for row in rows} == {
        ("uvicorn", "bounds", scenario)
        for scenario in ("none", "distinct", "snapshots", "connects")
    }, result.stdout
    for row in rows:
        # Every write reached every victim, each victim's state is what REST shows, and no
        # victim was closed, whatever the attack did.
        assert row["writes"] == 4 and row["victims"] == 10, row
        assert row["lost_pairs"] == row["lost_writes"] == 0, (row, result.stdout)
        assert row["state_ok"] and row["victims_agreeing"] == 10, row
        assert row["victims_closed"] == {}, row
        assert row["p50"] is not None and row["p99"] is not None, row
        if row["scenario"] != "none":
            # The attack came from an address of its own, and did what it does.
            assert row["attack"]["connects"] > 0, row
            assert row["attack"]["local_addresses"] != ["127.0.0.1"], row
        if row["scenario"] in ("distinct", "snapshots"):
            # The per-client budget closed the attack's sockets, not the victims'.
            assert row["attack"]["closes"].get("4013", 0) > 0, row
    problems = report["server_log_problems"]
    assert problems == {"uvicorn bounds": []}, problems


def test_the_resume_benchmark_makes_both_arms_exact(tmp_path, baked_venv):
    require_services()
    out = tmp_path / "results"
    result = baking.run_command(
        [sys.executable, "-m", "benchmarks.resume", "--server", "uvicorn", "--cases", "100x10",
         "1100x4", "--repeats", "2", "--away", "1", "--out", str(out), "--no-plot",
         "--venv", str(baked_venv)],
        cwd=TEMPLATE_DIR, env=baking.clean_env(), timeout=300,
    )  # fmt: skip
    report = json.loads((out / "resume.json").read_text())
    rows = {(row["server"], row["rows"], row["changed"]): row for row in report["results"]}
    assert set(rows) == {("uvicorn", 100, 10), ("uvicorn", 1100, 4)}, result.stdout
    for (_, size, _), row in rows.items():
        # 1,100 rows: the snapshot holds the first 1,000, so a client holds part of the list.
        state = "subset" if size > 1000 else "exact"
        for arm in ("resume", "snapshot"):
            samples = row[arm]["samples"]
            assert len(samples) == 2, row[arm]
            # Every reconnect ended with the state REST shows, from one frame.
            assert [s["state"] for s in samples] == [state, state], (arm, samples)
            assert all(s["frames"] == {"resumed" if arm == "resume" else "snapshot": 1}
                       for s in samples), (arm, samples)  # fmt: skip
            assert all(s["server_cpu_ms"] >= 0 and s["seconds"] > 0 for s in samples), samples
        # A few changed rows cost fewer bytes than the whole list (bytes: not a timing).
        assert row["ratios"]["payload_bytes"] > 1, row["ratios"]
    assert report["server_log_problems"] == {"uvicorn": []}, report
