"""Plot operator RSS (the largest replica's) and evaluation lag against the number of rollouts, one line per analysis
interval and number of replicas, from ``bench/scale.py --json``.

    .venv/bin/python bench/plot.py results.json docs/benchmarks-scale.png
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    by_interval: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in json.loads(Path(sys.argv[1]).read_text()):
        by_interval[(r["interval_s"], r.get("replicas", 1))].append(r)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (interval, replicas), results in sorted(by_interval.items()):
        results.sort(key=lambda r: r["n"])
        n = [r["n"] for r in results]
        left.plot(n, [r["rss_mib"] for r in results], marker="o", label=f"interval {interval} s, {replicas} replica(s)")
        line = right.plot(n, [r["oldest_evaluation_age_s_max"] for r in results], marker="o",
                          label=f"oldest evaluation age, interval {interval} s, {replicas} replica(s)")
        right.axhline(interval, linestyle="--", color=line[0].get_color(), alpha=0.6)
    left.axhline(1024, linestyle="--", color="grey", label="target at 10,000: 1 GiB")
    left.set(xlabel="WallBounceRollouts", ylabel="operator RSS (MiB)", title="Memory")
    left.legend()
    right.set(xlabel="WallBounceRollouts", ylabel="seconds (dashed: the interval)", title="Evaluation lag")
    right.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
