"""Plot a run's Stage 1 and Stage 2 loss curves to a PNG (needs matplotlib: pip install matplotlib).

python bench/plot_curves.py RUN [--out docs/loss_curves.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--out", default="docs/loss_curves.png")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, stage in zip(axes, ("stage1", "stage2")):
        f = Path(args.run) / "stages" / stage / "history.jsonl"
        lines = f.read_text().splitlines() if f.is_file() else []
        every = [json.loads(line) for line in lines if line.strip()]
        rows = [r for r in every if "loss" in r]  # training rows; validation rows have valid_ce
        valid = [r for r in every if "valid_ce" in r]
        if valid:
            steps, ce = [r["step"] for r in valid], [r["valid_ce"] for r in valid]
            ax.plot(steps, ce, marker="s", ms=3, label="valid_ce")
        if rows:
            ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker="o", ms=3, label="loss")
            for key in ("loss_aa", "loss_am", "loss_sa", "loss_sm"):
                if key in rows[0]:
                    ax.plot([r["step"] for r in rows], [r[key] for r in rows], lw=0.8, label=key)
        ax.set_title(f"{stage} ({Path(args.run).name})")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats / visual token)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
