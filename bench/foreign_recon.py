"""Does a tokenizer keep a dataset's look? Round-trip N items of each dataset through a VQ tokenizer.

    PYTHONPATH=src python bench/foreign_recon.py /work/data/foreign_glyphs_240 /work/data/stickers_240 \
        --tokenizer src/drc/pretrained/stickers/tokenizer --out /tmp/recon

Prints, per dataset, the mean squared error (pixels in [0, 1]) and PSNR of the reconstructions, and
writes OUT/<dataset>_recon.png: rows of originals above their reconstructions. Inference only, on
the CPU, a few seconds. A tokenizer trained on another domain shows here as a much larger error
than on its own data (issue 22: a base that cannot draw the folder's images).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from drc.data.manifest import load_dataset
from drc.models.loading import load_tokenizer


def round_trip(data: Path, tokenizer, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(originals, reconstructions) as uint8 (n, H, W, 3) of `n` random items of `data`."""
    ds = load_dataset(data, check_images=False)
    ids = sorted(ds.items)
    pick = np.random.default_rng(seed).choice(len(ids), min(n, len(ids)), replace=False)
    imgs = [np.asarray(Image.open(ds.image_path(ids[int(i)])).convert("RGB").resize((64, 64))) for i in pick]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        y = tokenizer.decode_code(tokenizer.encode(x))
    rec = ((y.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    return np.stack(imgs), rec


def sheet(orig: np.ndarray, rec: np.ndarray, path: Path, cols: int = 10) -> None:
    """Pairs of rows: originals, then their reconstructions, at 2x."""
    n = len(orig)
    rows = (n + cols - 1) // cols
    out = Image.new("RGB", (cols * 132, rows * 2 * 132 + rows * 6), "white")
    for k in range(n):
        x, y = (k % cols) * 132, (k // cols) * (2 * 132 + 6)
        for j, arr in enumerate((orig[k], rec[k])):
            out.paste(Image.fromarray(arr).resize((128, 128), Image.Resampling.NEAREST), (x, y + j * 132))
    out.save(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", nargs="+", type=Path)
    p.add_argument("--tokenizer", type=Path, default=Path("src/drc/pretrained/stickers/tokenizer"))
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for the reconstruction sheets")
    a = p.parse_args()
    torch.set_num_threads(1)
    tok = load_tokenizer(a.tokenizer)
    for d in a.data:
        orig, rec = round_trip(d, tok, a.n, a.seed)
        mse = float(((orig.astype(np.float64) - rec) / 255.0).__pow__(2).mean())
        print(json.dumps({"data": str(d), "items": len(orig), "mse": round(mse, 5),
                          "psnr_db": round(10 * math.log10(1.0 / max(mse, 1e-12)), 2)}))  # fmt: skip
        if a.out is not None:
            a.out.mkdir(parents=True, exist_ok=True)
            sheet(orig, rec, a.out / f"{d.name}_recon.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
