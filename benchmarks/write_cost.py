"""What the live layer adds to a write: time per write with and without it, in one process.

A baked project on PostgreSQL and Redis (the pub/sub layer, DEBUG off) writes todos over and
over (benchmarks/baked/write_cost_saver.py), in rounds that alternate three ways of running:

- `plain`: the capture triggers removed (`rest_live.capture.install.remove()`) and rest_live's
  signal receivers disconnected: Django alone;
- `triggers`: the triggers installed, the receivers disconnected: what the database's capture
  costs (a statement-level trigger per event writes one change log row per statement, and sends
  `NOTIFY rest_live`);
- `live`: as shipped: the triggers, and the receivers' wake-up, published on the channel layer
  after commit.

Each way makes the same writes: `save()` in autocommit and inside `transaction.atomic()`, and
`bulk_update()` of BULK_ROWS todos (1,000), one statement that the trigger logs as one row. The
modes run in a different order each round, in one process, so the ratio to `plain` holds up on a
busy machine. Prints a table and writes benchmarks/results/write_cost.json and write_cost.png.

    python -m benchmarks.write_cost                    # 8 rounds of 100 saves and 5 bulk_updates
    python -m benchmarks.write_cost --rounds 3 --saves 50 --bulks 2
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks import bench_project
from harness import baking
from harness.results import RESULTS_DIR, write_report
from harness.services import PostgresServer, RedisServer

MODES = ("plain", "triggers", "live")
WORKLOADS = ("autocommit", "atomic", "bulk_update")
LABELS = {
    "autocommit": "save(), autocommit",
    "atomic": "save() in atomic()",
    "bulk_update": "bulk_update()",
}
# The figure published before the change capture (README, from commit e331255): save() as shipped
# (a change log row written by the post_save signal, in a savepoint, then the publish), autocommit.
PREVIOUS_LIVE_AUTOCOMMIT_MS = 1.15


def summarize(results, modes):
    rows = []
    for workload in WORKLOADS:
        base = "plain" if "plain" in modes else modes[0]
        reference = statistics.median(results[f"{workload} {base}"]["times"])
        for mode in modes:
            entry = results[f"{workload} {mode}"]
            times = sorted(entry["times"])
            median = statistics.median(times)
            rows.append(
                {
                    "workload": workload,
                    "mode": mode,
                    "writes": len(times),
                    "median_ms": median * 1000,
                    "p95_ms": times[max(0, round(0.95 * len(times)) - 1)] * 1000,
                    f"ratio_to_{base}": median / reference,
                    "log_rows_per_write": entry["log_rows"] / len(times),
                    "wakes_per_write": entry["wakes"] / len(times),
                }
            )
    return rows


def print_table(rows, bulk_rows):
    ratio = next(key for key in rows[0] if key.startswith("ratio_to_"))
    print(
        f"{'workload':20} {'mode':8} {'writes':>6} {'median ms':>10} {'p95 ms':>8} "
        f"{'x ' + ratio[9:]:>8} {'log rows/write':>14} {'wakes/write':>11}"
    )
    for row in rows:
        label = LABELS[row["workload"]]
        if row["workload"] == "bulk_update":
            label = f"bulk_update({bulk_rows:,})"
        print(
            f"{label:20} {row['mode']:8} {row['writes']:>6} {row['median_ms']:>10.3f} "
            f"{row['p95_ms']:>8.3f} {row[ratio]:>8.2f} {row['log_rows_per_write']:>14.2f} "
            f"{row['wakes_per_write']:>11.2f}"
        )
    live = [r for r in rows if r["workload"] == "autocommit" and r["mode"] == "live"]
    if live:
        print(
            f"\nsave() as shipped, autocommit: {live[0]['median_ms']:.2f} ms now; "
            f"{PREVIOUS_LIVE_AUTOCOMMIT_MS} ms published before the change capture"
        )


def plot(rows, modes, bulk_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (saves, bulks) = plt.subplots(
        1, 2, figsize=(9, 3.8), gridspec_kw={"width_ratios": [2, 1]}
    )
    width = 0.8 / len(modes)
    median = {(r["workload"], r["mode"]): r["median_ms"] for r in rows}
    for axis, workloads in ((saves, ("autocommit", "atomic")), (bulks, ("bulk_update",))):
        for index, mode in enumerate(modes):
            values = [median[workload, mode] for workload in workloads]
            offset = (index - (len(modes) - 1) / 2) * width
            axis.bar([x + offset for x in range(len(values))], values, width, label=mode)
        axis.set_xticks(range(len(workloads)), [LABELS[w] for w in workloads])
    saves.set(ylabel="median ms per save()", title="save()")
    bulks.set(ylabel="median ms per bulk_update()", title=f"bulk_update() of {bulk_rows:,} rows")
    saves.legend()
    figure.suptitle("What the live layer adds to a write (PostgreSQL, Redis)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--saves", type=int, default=100, help="save()s per mode per round")
    parser.add_argument("--bulks", type=int, default=5, help="bulk_update()s per mode per round")
    parser.add_argument("--bulk-rows", type=int, default=1000, help="rows per bulk_update()")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the bake's requirements")
    args = parser.parse_args(argv)
    args.venv = args.venv and args.venv.resolve()

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-write-cost-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs, sockets
    path, venv = bench_project.bake(workdir, args.venv)
    bench_project.copy_in(path, "write_cost_saver.py")
    with PostgresServer() as postgres, RedisServer() as redis:
        env = bench_project.environment(postgres.url, redis.url, "pubsub")
        project = baking.BakedProject(path=path, combo=bench_project.COMBO, venv=venv, env=env)
        project.manage("migrate", "--noinput")
        counts = (args.rounds, args.saves, args.bulks, args.bulk_rows)
        output = project.run("python", "write_cost_saver.py", *map(str, counts), *args.modes,
                             timeout=1800).stdout  # fmt: skip
    rows = summarize(json.loads(output.strip().splitlines()[-1]), args.modes)
    print_table(rows, args.bulk_rows)
    settings = {k: getattr(args, k) for k in ("rounds", "saves", "bulks", "bulk_rows")}
    previous = {"save_autocommit_live_ms": PREVIOUS_LIVE_AUTOCOMMIT_MS, "commit": "e331255"}
    report = {**settings, "previous": previous, "results": rows}
    drawn = None if args.no_plot else lambda figure: plot(rows, args.modes, args.bulk_rows, figure)
    write_report(args.out, "write_cost", argv, report, drawn)


if __name__ == "__main__":
    main()
