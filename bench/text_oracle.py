"""Text oracle: can the text-pretrained generator draw a style x semantics pair from its caption?

For every (style, semantics) pair of a labelled dataset it takes the caption of an item with that
pair (which names both factors, unlike the coarse test instruction), samples `--n` images from the
pretrained generator with no latent instruction, and lets the probes read them. Pairs seen in
training and held-out pairs are scored apart: the held-out score is about the best a composer can
reach by steering this generator, since the caption is the most explicit condition it knows.

    python bench/text_oracle.py --data data/stickers --probes demo_out/probes
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from drc.config import build_config
from drc.eval.probes import Probes
from drc.models.text import ByteTokenizer
from drc.pipeline import prepare
from drc.train.pretrain import load_generator, load_tokenizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--probes", required=True)
    p.add_argument("--base", default=str(Path(__file__).parents[1] / "src/drc/pretrained/stickers"))
    p.add_argument("--size", default="64x64", help="HxW the base was trained at")
    p.add_argument("--n", type=int, default=3, help="samples per pair")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    cfg = build_config("drc", overrides={"data.image_height": h, "data.image_width": w})
    prep = prepare(a.data, cfg)
    tok = load_tokenizer(Path(a.base) / "tokenizer").eval()
    gen = load_generator(Path(a.base) / "pretrain").eval()
    probes = Probes.load(a.probes)
    seen = {(prep.ds.items[i].style, prep.ds.items[i].semantics) for i in prep.train_ids}
    caption: dict[tuple, str] = {}
    for it in prep.ds.items.values():
        caption.setdefault((it.style, it.semantics), it.text)
    pairs = sorted(caption)
    texts = [caption[q] for q in pairs for _ in range(a.n)]
    labels = [q for q in pairs for _ in range(a.n)]
    ids, mask = ByteTokenizer().encode(texts, gen.cfg.max_text_len)
    ids, mask = torch.as_tensor(ids), torch.as_tensor(mask).bool()
    g = torch.Generator().manual_seed(a.seed)
    s = cfg.sample
    toks = torch.cat([
        gen.generate(ids[i : i + 64], mask[i : i + 64], None, temperature=s.temperature, top_k=s.top_k,
                     cfg_scale=s.cfg_scale, generator=g)
        for i in range(0, len(texts), 64)
    ])  # fmt: skip
    with torch.no_grad():
        img = tok.decode_code(toks.view(-1, *tok.grid(h, w))).float().clamp(-1, 1)
    pred = probes.predict(img)  # the probes read [-1, 1] floats as well as uint8
    out = {}
    for name, flag in (("seen", True), ("held_out", False)):
        sel = [i for i, q in enumerate(labels) if (q in seen) == flag]
        if not sel:
            continue
        st = [pred["style"][i] == labels[i][0] for i in sel]
        sm = [pred["semantics"][i] == labels[i][1] for i in sel]
        out[name] = {
            "n": len(sel),
            "style_acc": round(sum(st) / len(sel), 3),
            "semantic_acc": round(sum(sm) / len(sel), 3),
            "joint_acc": round(sum(x and y for x, y in zip(st, sm)) / len(sel), 3),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
