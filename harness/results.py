"""Where the benchmarks write what they found: benchmarks/results/<name>.json, and its figure.

Each benchmark ends with `write_report`: the command that ran it, its settings and results as
JSON, then the figure unless `--no-plot` said not to draw it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def write_report(
    out: Path,
    name: str,
    argv: list[str] | None,
    report: dict,
    plot: Callable[[Path], None] | None = None,
) -> Path:
    """Write `out`/`name`.json: the command (`python -m benchmarks.<name>` and `argv`, the
    command line's own arguments when None), then `report`; then `plot(out / name.png)` unless
    `plot` is None. Says what it wrote, and returns the JSON file's path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    args = sys.argv[1:] if argv is None else argv
    command = " ".join([f"python -m benchmarks.{name}", *args])
    path.write_text(json.dumps({"command": command, **report}, indent=2, default=str))
    if plot is None:
        print(f"wrote {path}")
        return path
    figure = out / f"{name}.png"
    plot(figure)
    print(f"wrote {path} and {figure}")
    return path
