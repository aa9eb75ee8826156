"""The write cost benchmark's writer (benchmarks/write_cost.py), copied into a bake and run there by
the bake's Python, with the bake's settings.

    python write_cost_saver.py ROUNDS SAVES BULKS BULK_ROWS MODE [MODE ...]

Times, in one process, ROUNDS rounds (after an uncounted warm-up round) of three workloads, each
run once per MODE per round, the modes in a different order each round:

- `autocommit`: SAVES `todo.save()`s; `atomic`: the same, each inside `transaction.atomic()`;
- `bulk_update`: BULKS `Todo.objects.bulk_update()`s of BULK_ROWS todos' titles.

The modes:

- `plain`: the capture triggers removed (`rest_live.capture.install.remove()`) and rest_live's
  signal receivers disconnected: Django alone;
- `triggers`: the triggers installed, the receivers disconnected;
- `live`: as shipped: the triggers, and the receivers' wake-up published after commit.

Each run first makes three uncounted writes (the trigger function's first call plans its SQL).
Prints one JSON line: {"WORKLOAD MODE": {"times": [seconds per write], "log_rows": rows the
change log gained, "wakes": wake-ups published}}, counted writes only.
"""

import json
import sys
import time

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.db.models.signals import m2m_changed, post_delete, post_save  # noqa: E402
from rest_live import broadcasting  # noqa: E402
from rest_live.capture import install, registry  # noqa: E402
from rest_live.models import Change  # noqa: E402
from todos.models import Todo  # noqa: E402

rounds, saves, bulks, bulk_rows = map(int, sys.argv[1:5])
modes = sys.argv[5:]
WORKLOADS = ("autocommit", "atomic", "bulk_update")
WARM_UP = 3

todo = Todo.objects.create(title="w")
bulk = Todo.objects.bulk_create(Todo(title=f"b-{row}") for row in range(bulk_rows))
writes = iter(range(10**9))  # every write sets new titles

# Counts the wake-ups (`_wake` calls `_send` by its module-level name).
wakes = 0
_send = broadcasting._send


def counted_send(*args, **kwargs):
    global wakes
    wakes += 1
    return _send(*args, **kwargs)


broadcasting._send = counted_send


def set_mode(mode):
    if mode == "plain":
        install.remove()
    else:
        install.install()
    for model in registry.models():
        uid = f"rest_live.{model._meta.label_lower}"
        for signal in (post_save, post_delete, m2m_changed):
            signal.disconnect(sender=model, dispatch_uid=uid)
        if mode == "live":
            broadcasting.connect_signals(model)


def save(atomic):
    todo.title = f"w{next(writes)}"
    started = time.perf_counter()
    if atomic:
        with transaction.atomic():
            todo.save()
    else:
        todo.save()
    return time.perf_counter() - started


def bulk_update():
    number = next(writes)
    for row, item in enumerate(bulk):
        item.title = f"b{number}-{row}"
    started = time.perf_counter()
    Todo.objects.bulk_update(bulk, ["title"])
    return time.perf_counter() - started


def run(workload, mode):
    set_mode(mode)
    if workload == "bulk_update":
        write, count = bulk_update, bulks
    else:
        write, count = (lambda: save(workload == "atomic")), saves
    for _ in range(WARM_UP):
        write()
    log_rows, woken = Change.objects.count(), wakes
    times = [write() for _ in range(count)]
    return times, Change.objects.count() - log_rows, wakes - woken


results = {}
for round_ in range(rounds + 1):  # the first round warms up, and is not kept
    for workload in WORKLOADS:
        shift = round_ % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            times, log_rows, woken = run(workload, mode)
            if round_:
                entry = results.setdefault(
                    f"{workload} {mode}", {"times": [], "log_rows": 0, "wakes": 0}
                )
                entry["times"] += times
                entry["log_rows"] += log_rows
                entry["wakes"] += woken
set_mode("live")  # leave the bake as shipped
print(json.dumps(results))
