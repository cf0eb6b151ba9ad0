"""One request's n outputs under several draft temperatures, as a PNG grid (bench/README.md, variety).

    python bench/variety_grid.py --run stickers --data DIR --out grid.png [--case 0] [--n 4]
        [--temps 0 1.0]

Each row: the history (oldest first) | the reference | images 0..n-1 of the request (`drc.seeding`:
the images `drc generate --n n` draws, and `drc eval`'s variety) | the real target. The case is the
`--case`-th test sample at the full history length, in `drc eval`'s order. Rows are labelled with the
draft temperature and the variety (mean pairwise cosine distance in the probes' feature space, when
the run has cached probes under RUN/eval/probes).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

import drc.api as api
from drc.data.prepare import prepare
from drc.eval.evaluate import _cases
from drc.eval.metrics import mean_pairwise_distance
from drc.eval.probes import Probes
from drc.eval.variety import sample_variants


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--case", type=int, default=0)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temps", type=float, nargs="+", default=[0.0, 1.0])
    p.add_argument("--scale", type=int, default=2)
    args = p.parse_args()

    model = api.load(args.run, device="cpu")
    prep = prepare(args.data, model.config)
    k = model.config.data.history_len
    case = _cases(prep, "test", (k,), args.seed, args.case + 1)[args.case]
    cache = model.paths.root / "eval" / "probes"
    probes = Probes.load(cache) if (cache / "probe.json").is_file() else None
    rows, labels = [], []
    for t in args.temps:
        sample = dataclasses.replace(model.config.sample, draft_temperature=t)
        model.config = dataclasses.replace(model.config, sample=sample)
        outs = sample_variants(model, prep, [case], args.seed, range(args.n))[0]  # (n, 3, H, W)
        v = mean_pairwise_distance(probes.predict(outs)["feats"]) if probes is not None else math.nan
        px = outs.float()
        mad = float(np.mean([(px[i] - px[j]).abs().mean() for i in range(args.n) for j in range(i)]))
        hist = prep.bank.get(list(case.sample.history)[-k:])
        target = prep.bank.get([case.sample.target])[0]
        rows.append([*hist, case.ref_image, *outs, target])
        labels.append(f"draft_temperature={t}: variety {v:.3f}, mean |diff| {mad:.1f}/255")
    h, w = rows[0][0].shape[1:]
    s, gap, text_h = args.scale, 4, 14
    cols = len(rows[0])
    sheet = Image.new("RGB", (cols * (w * s + gap), len(rows) * (h * s + gap + text_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (row, label) in enumerate(zip(rows, labels)):
        y = r * (h * s + gap + text_h)
        draw.text((2, y), label, fill="black")
        for c, im in enumerate(row):
            tile = Image.fromarray(im.permute(1, 2, 0).numpy()).resize((w * s, h * s), Image.NEAREST)
            sheet.paste(tile, (c * (w * s + gap), y + text_h))
    sheet.save(args.out)
    target = prep.ds.items[case.sample.target]
    print(f"case {case.sample.user} -> target {target.semantics} in {target.style}")
    print("\n".join(labels))
    print(f"wrote {args.out}: columns = {k} history | reference | {args.n} outputs | target")


if __name__ == "__main__":
    main()
