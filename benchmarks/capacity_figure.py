"""The figure of what sockets cost, capacity.png: capacity.py's memory and slow-socket panels
beside throughput.py's sustained rates. capacity.py draws it with the rates of the throughput.json
beside it; throughput.py redraws it with its new rates when a capacity.json is there.
"""

from __future__ import annotations

import json
from pathlib import Path


def plot(results, path):
    """The memory and slow-socket panels, and throughput.py's sustained rates when its
    throughput.json is beside `path`: the issue's second figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    throughput = Path(path).parent / "throughput.json"
    sustained = json.loads(throughput.read_text()) if throughput.exists() else None
    figure, axes = plt.subplots(1, 4 if sustained else 3, figsize=(20 if sustained else 15, 4.4))
    idle, churned, latency = axes[:3]
    colours = {"daphne": "tab:blue", "uvicorn": "tab:orange"}
    for number, r in enumerate(results):
        for offset, (key, alpha) in enumerate((("idle", 1.0), ("idle_no_deflate", 0.45))):
            idle.bar(
                number + (offset - 0.5) * 0.4,
                r[key]["kb_per_socket"],
                0.4,
                color=colours.get(r["server"]),
                alpha=alpha,
                label=f"{r['server']}, {'deflate' if key == 'idle' else 'no deflate'}",
            )
    idle.set_xticks(range(len(results)), [r["server"] for r in results])
    idle.legend(fontsize=8)
    idle.set(
        ylabel="KB of server RSS per socket",
        title=f"Idle subscribed sockets ({results[0]['idle']['sockets']})",
    )
    for r in results:
        c = r["churn"]
        rounds = range(0, c["rounds"] + 1)
        mb = [kb / 1024 for kb in [c["rss_before_kb"], *c["rss_after_round_kb"]]]
        churned.plot(rounds, mb, "o-", color=colours.get(r["server"]), label=r["server"])
    churned.set(
        xlabel="round (0 = before)",
        ylabel="server RSS after the round (MB)",
        title=f"Churn: rounds of {results[0]['churn']['sockets_per_round']} sockets",
        ylim=(0, None),
    )
    churned.legend(fontsize=8)
    width = 0.2
    for offset, (r, slow) in enumerate(
        (r, slow) for r in results for slow in ("without_slow", "with_slow")
    ):
        row = r["latency"][slow]
        xs = [p + (offset - 1.5) * width for p in range(3)]
        latency.bar(
            xs,
            [row["p50_ms"], row["p95_ms"], row["p99_ms"]],
            width,
            color=colours.get(r["server"]),
            alpha=1.0 if slow == "with_slow" else 0.45,
            label=f"{r['server']}, {row['slow_sockets']} slow",
        )
    latency.set_xticks(range(3), ["p50", "p95", "p99"])
    latency.set(
        yscale="log",
        ylabel="fast client latency per write (ms)",
        title="Fast clients, without and with slow sockets",
    )
    latency.legend(fontsize=8)
    if sustained:
        plot_throughput(axes[3], sustained, colours)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def plot_throughput(axis, sustained, colours):
    """Bars of the highest sustained writes/s per server, rest_live beside the floor; a "≥" marks
    a rate whose next step up was limited by the writers, not the server."""
    rows = {(r["server"], r["mode"]): r for r in sustained["results"]}
    servers = sorted({server for server, _ in rows})
    for offset, (mode, alpha) in enumerate((("live", 1.0), ("floor", 0.45))):
        for number, server in enumerate(servers):
            row = rows.get((server, mode))
            if row is None:
                continue
            x, rate = number + (offset - 0.5) * 0.4, row["sustained_writes_per_s"]
            label = f"{server}, {'rest_live' if mode == 'live' else 'floor'}"
            axis.bar(x, rate, 0.4, color=colours.get(server), alpha=alpha, label=label)
            bound = row["first_not_sustained"] or {}
            mark = "≥" if bound.get("status") == "writer-limited" else ""
            axis.annotate(f"{mark}{rate:g}", (x, rate), ha="center", va="bottom", fontsize=8)
    axis.set_xticks(range(len(servers)), servers)
    axis.set(
        ylabel="highest sustained writes/s",
        title=f"Sustained throughput, {sustained['settings']['subscribers']} subscribers, "
        f"{sustained['settings']['seconds']:g} s runs",
    )
    axis.legend(fontsize=8)
