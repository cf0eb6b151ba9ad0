"""`drc generate --run RUN (--user ID --data DIR | --history IMG ...) --reference IMG [--prompt T]
[--n 4] [--seed S] --out OUTDIR [--force]`: PNGs plus generation.json (settings, seed, weights)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from drc.errors import DrcError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drc generate", description=__doc__)
    p.add_argument(
        "--run", required=True, help="a finished run folder, or a shipped one: stickers, posters"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--user", help="take the history from this user of --data (the most recent k items)")
    src.add_argument("--history", nargs="+", help="history images, oldest first")
    p.add_argument("--data", help="dataset folder, with --user")
    p.add_argument("--reference", required=True, help="the image whose content to show")
    p.add_argument("--prompt", default=None, help="instruction text (default: the run's coarse instruction)")
    p.add_argument("--n", type=int, default=4, help="images to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--device", default="auto")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import drc.api as api

    if args.n < 1:
        raise DrcError("--n must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DrcError(f"{out}: exists and is not a folder")
    names = [f"{i:03d}.png" for i in range(args.n)] + ["generation.json"]
    clash = [n for n in names if (out / n).exists()]
    if clash and not args.force:
        raise DrcError(f"{out / clash[0]}: already exists; pass --force to overwrite")
    ref = Path(args.reference)
    if not ref.is_file():
        raise DrcError(f"{ref}: reference image not found")
    if args.user is not None:
        if not args.data:
            raise DrcError("--user needs --data (the dataset the user belongs to)")
        from drc.data.manifest import load_dataset

        ds = load_dataset(args.data, check_images=False)
        user = ds.user(args.user)
        history = [ds.image_path(i) for i in user.history]
    else:
        history = [Path(h) for h in args.history]
        for h in history:
            if not h.is_file():
                raise DrcError(f"{h}: history image not found")
    model = api.load(args.run, device=args.device)
    # load images first so a bad image is reported before anything is written
    result = model.generate(history, ref, prompt=args.prompt, n=args.n, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, result.images):
        Image.fromarray(img).save(out / name)
    meta = {
        **result.settings,
        "reference": str(ref),
        "history": [str(h) for h in history][-model.cfg.data.history_len :],
        "history_weights": result.weights,
        "images": names[: args.n],
    }
    (out / "generation.json").write_text(json.dumps(meta, indent=1))
    print(f"drc generate: wrote {args.n} images and generation.json to {out}")
    return 0
