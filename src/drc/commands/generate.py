"""`drc generate --run RUN (--user ID --data DIR | --history IMG ...) --reference IMG [--prompt T]
[--n 4] [--seed S] --out OUTDIR [--force] [--quiet] [--explain]`: PNGs plus generation.json (settings,
seed, weights; with --explain each history image's leave-one-out influence, `drc.influence`).

Images are generated in batches of the run's `sample.batch_size` and written as each batch is done,
so memory stays flat however large --n is. generation.json lists the images written so far and is
rewritten every few seconds, on Ctrl-C and at the end ("complete": true): an interrupted run keeps
what it wrote, and a rerun with the same seed and --force makes the same images (image i depends on
the inputs, the seed, the batch size and i only; see `DrcModel.generate_iter`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PIL import Image

from drc.atomic import atomic_write as _write_atomic
from drc.errors import DrcError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drc generate", description=__doc__)
    p.add_argument("--run", required=True, help="a finished run folder, or a shipped one: stickers, posters")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--user", help="take the history from this user of --data (the most recent k items)")
    src.add_argument("--history", nargs="+", help="history images, oldest first")
    p.add_argument("--data", help="dataset folder, with --user")
    p.add_argument("--reference", required=True, help="the image whose content to show")
    p.add_argument("--prompt", default=None, help="the prompt text (default: the run's coarse prompt)")
    p.add_argument("--n", type=int, default=4, help="images to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--explain",
        action="store_true",
        help="also write each history image's leave-one-out influence (history_influence) to generation.json",
    )
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import drc.api as api

    if args.n < 1:
        raise DrcError("--n must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DrcError(f"{out}: exists and is not a folder")
    # zero-padded to the width of n (at least 3 digits) so the names sort in order
    width = max(3, len(str(args.n - 1)))
    names = [f"{i:0{width}d}.png" for i in range(args.n)]
    clash = next((n for n in [*names, "generation.json"] if (out / n).exists()), None)
    if clash is not None and not args.force:
        raise DrcError(f"{out / clash}: already exists; pass --force to overwrite")
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
    # the inputs are loaded here, so a bad image is reported before anything is written
    batches = model.generate_iter(history, ref, prompt=args.prompt, n=args.n, seed=args.seed)
    bs = model.config.sample.batch_size
    from drc.runtime import Progress

    # on a terminal a live bar; in a log about 20 lines (every a whole number of batches)
    every = bs * max(1, -(-args.n // bs) // 20)
    bar = Progress("generate", args.n, enabled=not args.quiet and args.n > bs, every=every)
    done, meta, last_json = 0, {}, 0.0

    def write_json() -> None:
        meta.update(images=names[:done], complete=done == args.n)
        _write_atomic(out / "generation.json", lambda p: p.write_text(json.dumps(meta, indent=1)))

    try:
        for batch in batches:
            if done == 0:
                out.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(batch.images, start=batch.start):
                _write_atomic(out / names[i], lambda p, img=img: Image.fromarray(img).save(p, format="PNG"))
            done = batch.start + len(batch.images)
            meta = {
                **batch.settings,
                "reference": str(ref),
                "history": [str(h) for h in history][-model.config.data.history_len :],
                "history_weights": batch.weights,
            }
            # the list of images grows with n: rewritten every few seconds, not after every batch
            if done == args.n or time.monotonic() - last_json > 5.0:
                write_json()
                last_json = time.monotonic()
            bar.update(done)
    except KeyboardInterrupt:
        if done:
            write_json()
        bar.close()
        print(
            f"drc generate: interrupted; kept {done} of {args.n} images in {out} (listed in generation.json; "
            "the same --seed with --force makes them again)",
            file=sys.stderr,
        )
        return 130
    if args.explain:
        # rendered after the images: what a user asked for is on disk first
        meta["history_influence"] = model.explain(
            history, ref, prompt=args.prompt, n=min(args.n, api.EXPLAIN_IMAGES), seed=args.seed
        )
        write_json()
    print(f"drc generate: wrote {args.n} images and generation.json to {out}")
    return 0
