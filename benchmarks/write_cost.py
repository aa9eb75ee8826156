"""What the live layer adds to a write: time per `save()` with and without it, in one process.

A baked project on PostgreSQL and Redis (the pub/sub layer) saves one todo over and over, in
rounds that alternate three ways of running:

- `plain`: rest_live's signals disconnected, as Django alone would save;
- `layer`: the signals publish to the channel layer after commit, without the change log
  (how rest_live wrote before the change log);
- `live`: as shipped: the change log's row in a savepoint, then the publish after commit.

Each way runs the same saves in autocommit and inside `transaction.atomic()`, so both the
savepoint's and the publish's costs show. Prints a table and writes benchmarks/results/
write_cost.json and write_cost.png.

    python benchmarks/write_cost.py                    # 8 rounds of 100 saves per way
    python benchmarks/write_cost.py --rounds 3 --saves 50
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import baking  # noqa: E402
from tests.appserver import PRODUCTION_ENV  # noqa: E402
from tests.combos import BY_NAME  # noqa: E402
from tests.services import PostgresServer, RedisServer  # noqa: E402

MODES = ("plain", "layer", "live")

# Runs inside the bake (`manage.py shell`); prints one JSON line of per-save seconds per (mode,
# transaction, round).
SAVER = """
import json, time, uuid
from django.db import transaction
from django.db.models.signals import post_save
from rest_live import broadcasting
from todos.models import Todo

ROUNDS, SAVES = {rounds}, {saves}
todo = Todo.objects.create(title="w")
uid = "rest_live.todos.todo"
record = broadcasting._record


def run(mode, atomic):
    post_save.disconnect(dispatch_uid=uid, sender=Todo)
    broadcasting._record = record
    if mode != "plain":
        post_save.connect(broadcasting._on_save, sender=Todo, dispatch_uid=uid)
    if mode == "layer":
        broadcasting._record = lambda *args: uuid.uuid4().hex
    times = []
    for number in range(SAVES):
        todo.title = f"w{{number}}"
        started = time.perf_counter()
        if atomic:
            with transaction.atomic():
                todo.save()
        else:
            todo.save()
        times.append(time.perf_counter() - started)
    return times


results = {{}}
for round_ in range(ROUNDS + 1):  # the first round warms up, and is not kept
    for atomic in (False, True):
        for mode in {modes!r}:
            times = run(mode, atomic)
            if round_:
                results.setdefault(f"{{mode}} {{atomic}}", []).extend(times)
print(json.dumps(results))
"""


def summarize(results):
    rows = []
    for atomic in (False, True):
        plain = statistics.median(results[f"plain {atomic}"])
        for mode in MODES:
            times = sorted(results[f"{mode} {atomic}"])
            median = statistics.median(times)
            rows.append(
                {
                    "mode": mode,
                    "transaction": "atomic" if atomic else "autocommit",
                    "saves": len(times),
                    "median_ms": median * 1000,
                    "p95_ms": times[round(0.95 * len(times)) - 1] * 1000,
                    "ratio_to_plain": median / plain,
                }
            )
    return rows


def print_table(rows):
    print(
        f"{'transaction':11} {'mode':6} {'saves':>6} {'median ms':>10} {'p95 ms':>8} {'x plain':>8}"
    )
    for row in rows:
        print(
            f"{row['transaction']:11} {row['mode']:6} {row['saves']:>6} {row['median_ms']:>10.3f} "
            f"{row['p95_ms']:>8.3f} {row['ratio_to_plain']:>8.2f}"
        )


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.8))
    width = 0.25
    for index, mode in enumerate(MODES):
        values = [r["median_ms"] for r in rows if r["mode"] == mode]
        positions = [x + (index - 1) * width for x in range(len(values))]
        axes.bar(positions, values, width, label=mode)
    axes.set_xticks(range(2), ["autocommit", "in transaction.atomic()"])
    axes.set(ylabel="median time per save() (ms)", title="What the live layer adds to a write")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--saves", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="rest-live-write-cost-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # the bake, logs, sockets
    combo = BY_NAME["production"]
    path = baking.bake(combo, workdir / "bake", baking.write_cookiecutter_config(workdir))
    venv = baking.ensure_venv(baking.requirement_lines(path), baking.baked_python())
    with PostgresServer() as postgres, RedisServer() as redis:
        env = {**baking.service_env(combo, postgres.url, redis.url), **PRODUCTION_ENV}
        project = baking.BakedProject(path=path, combo=combo, venv=venv, env=env)
        project.manage("migrate", "--noinput")
        code = SAVER.format(rounds=args.rounds, saves=args.saves, modes=MODES)
        output = project.manage("shell", "-v", "0", "-c", code, timeout=900).stdout
    rows = summarize(json.loads(output.strip().splitlines()[-1]))
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/write_cost.py", *(argv or sys.argv[1:])])
    (args.out / "write_cost.json").write_text(
        json.dumps({"command": command, "results": rows}, indent=2)
    )
    plot(rows, args.out / "write_cost.png")
    print(f"wrote {args.out / 'write_cost.json'} and {args.out / 'write_cost.png'}")


if __name__ == "__main__":
    main()
