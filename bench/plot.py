"""Plot operator RSS and evaluation lag against the number of rollouts, from ``bench/scale.py --json``.

    .venv/bin/python bench/plot.py results.json docs/benchmarks-scale.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    results = sorted(json.loads(Path(sys.argv[1]).read_text()), key=lambda r: r["n"])
    n = [r["n"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(n, [r["rss_mib"] for r in results], marker="o")
    left.axhline(300, linestyle="--", color="grey", label="target at 1,000: 300 MiB")
    left.set(xlabel="WallBounceRollouts", ylabel="operator RSS (MiB)", title="Memory")
    left.legend()
    right.plot(n, [r["oldest_evaluation_age_s_max"] for r in results], marker="o", label="oldest evaluation age")
    right.plot(n, [r["interval_s"] for r in results], linestyle="--", color="grey", label="analysis interval")
    right.set(xlabel="WallBounceRollouts", ylabel="seconds", title="Evaluation lag")
    right.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
