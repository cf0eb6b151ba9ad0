"""Regenerate docs/augmentations.png: what each augmentation does to real benchmark stickers.

Rows: one sticker per theme of a small sticker benchmark, built into a temporary folder (about 2 s).
Columns: the original, every op of `drc.data.augment.AUGMENTATIONS` on its own (RISKY ones marked
in red), then three random compositions (`augment` with the default config). Each row has its own
seeded random generator, so the figure is the same on every run.

Usage: python bench/augment_figure.py [--out docs/augmentations.png] [--users 24] [--seed 0] [--cell 96]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from drc.data.augment import AUGMENTATIONS, RISKY, augment
from drc.data.benchmarks.stickers import build
from drc.data.images import load_image
from drc.data.manifest import Item, load_dataset

ROOT = Path(__file__).resolve().parents[1]

# one (theme, intent) per theme: intents with colour-coded symbols (heart, tear, flame) show what
# the RISKY ops do to semantics; a theme without that pair in the build falls back to any item
WANT = (
    ("sky_cat", "surprised"),
    ("navy_dog", "sad"),
    ("pink_frog", "love"),
    ("red_panda", "sleepy"),
    ("teal_fox", "hot"),
    ("grape_pig", "love"),
    ("mint_bear", "music"),
    ("neon_tiger", "happy"),
    ("lemon_bunny", "idea"),
    ("lime_smiley", "angry"),
    ("kraft_unicorn", "cold"),
    ("plum_monkey", "question"),
)
N_COMPOSITIONS = 3
PAD, HEAD, LEFT = 3, 30, 110  # pixels: gap between cells, header height, row-label width
BLACK, RED, WHITE = (0, 0, 0), (200, 0, 0), (255, 255, 255)


def pick(items: list[Item]) -> list[Item]:
    """The item for each wanted (theme, intent), or the first item of the theme."""
    out = []
    for theme, intent in WANT:
        same = [it for it in items if it.style == theme]
        exact = [it for it in same if it.semantics == intent]
        if exact or same:
            out.append((exact or same)[0])
    return out


def sheet(root: Path, picks: list[Item], cell: int, seed: int) -> Image.Image:
    names = list(AUGMENTATIONS)
    columns = ["original", *names, *(f"augment #{k + 1}" for k in range(N_COMPOSITIONS))]
    step = cell + PAD
    img = Image.new("RGB", (LEFT + len(columns) * step, HEAD + len(picks) * step), WHITE)
    draw = ImageDraw.Draw(img)
    for j, col in enumerate(columns):
        # "(risky)" on a second line: long names would run into the next column
        label = f"{col}\n(risky)" if col in RISKY else col
        draw.multiline_text((LEFT + j * step + 2, 2), label, fill=RED if col in RISKY else BLACK)
    for i, item in enumerate(picks):
        original = load_image(root / item.image, (64, 64))
        rng = np.random.default_rng(seed + i)
        outs = [original, *(AUGMENTATIONS[n](original, rng) for n in names)]
        outs += [augment(original, rng) for _ in range(N_COMPOSITIONS)]
        y = HEAD + i * step
        draw.multiline_text((4, y + cell // 2 - 12), f"{item.style}\n{item.semantics}", fill=BLACK)
        for j, out in enumerate(outs):
            # nearest-neighbour: the pixels as the model sees them, not a smoothed version
            big = Image.fromarray(out).resize((cell, cell), Image.Resampling.NEAREST)
            img.paste(big, (LEFT + j * step, y))
    return img


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "augmentations.png")
    p.add_argument("--users", type=int, default=24, help="users of the sticker benchmark (default 24)")
    p.add_argument("--seed", type=int, default=0, help="benchmark and augmentation seed (default 0)")
    p.add_argument("--cell", type=int, default=96, help="pixels per image in the figure (default 96)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="drc_augfig_") as tmp:
        build(Path(tmp), users=args.users, seed=args.seed)
        ds = load_dataset(tmp)
        picks = pick(list(ds.items.values()))
        fig = sheet(Path(tmp), picks, args.cell, 1000 + args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.save(args.out)
    print(f"{args.out}: {fig.size[0]}x{fig.size[1]}, {len(picks)} stickers x {len(AUGMENTATIONS)} ops")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
