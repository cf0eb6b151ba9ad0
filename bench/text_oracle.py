"""Text and image oracles: can the pretrained generator draw a style x semantics pair when told it?

Text oracle (default): for every (style, semantics) pair of a labelled dataset it takes the caption
of an item with that pair (which names both factors, unlike the coarse test instruction), samples
`--n` images from the pretrained generator with no draft, and lets the probes read them.

Image oracle (`--draft`): the generator is given an item's own tokens as a perfect draft (the best a
composer's latent instruction can be) and the coarse instruction as text; `--noise S` corrupts a
share S of the draft's cells first, as pretraining does (`corrupt_draft`), to see how much error the
rendering forgives.

Pairs seen in training and held-out pairs are scored apart: the held-out score is about the best a
composer can reach through this generator with that kind of condition.

    python bench/text_oracle.py --data data/stickers --probes demo_out/probes [--draft [--noise 0.3]]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from drc.config import build_config
from drc.data.prepare import prepare
from drc.eval.probes import Probes
from drc.models.instruction import LatentInstruction
from drc.models.loading import load_generator, load_tokenizer
from drc.models.text import ByteTokenizer
from drc.train.pretrain import corrupt_draft


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--probes", required=True)
    p.add_argument("--base", default=str(Path(__file__).parents[1] / "src/drc/pretrained/stickers"))
    p.add_argument("--size", default="64x64", help="HxW the base was trained at")
    p.add_argument("--n", type=int, default=3, help="samples per pair")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draft", action="store_true", help="image oracle: the item's tokens as the draft")
    p.add_argument("--noise", type=float, default=0.0, help="with --draft: share of cells corrupted")
    a = p.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    cfg = build_config("drc", overrides={"data.image_height": h, "data.image_width": w})
    prep = prepare(a.data, cfg)
    tok = load_tokenizer(Path(a.base) / "tokenizer").eval()
    gen = load_generator(Path(a.base) / "pretrain").eval()
    probes = Probes.load(a.probes)
    seen = {(prep.ds.items[i].style, prep.ds.items[i].semantics) for i in prep.train_ids}
    example: dict[tuple, str] = {}
    for iid, it in prep.ds.items.items():
        example.setdefault((it.style, it.semantics), iid)
    pairs = sorted(example)
    items = [example[q] for q in pairs for _ in range(a.n)]
    texts = [prep.prompt if a.draft else prep.ds.items[i].text for i in items]
    labels = [q for q in pairs for _ in range(a.n)]
    ids, mask = ByteTokenizer().encode(texts, gen.config.max_text_len)
    ids, mask = torch.as_tensor(ids), torch.as_tensor(mask).bool()
    g = torch.Generator().manual_seed(a.seed)
    drafts = None
    if a.draft:
        with torch.no_grad():
            x = prep.bank.get(items).float().div(127.5).sub(1)
            true = tok.encode(x).flatten(1)
        share = torch.full((len(items),), a.noise)
        drafts = corrupt_draft(true, share, gen.config.visual_vocab, torch.Generator().manual_seed(a.seed))
    s = cfg.sample
    V = gen.config.visual_vocab
    toks = torch.cat([
        gen.generate(ids[i : i + 64], mask[i : i + 64],
                     None if drafts is None else LatentInstruction.hard(drafts[i : i + 64], V),
                     temperature=s.temperature, top_k=s.top_k, cfg_scale=s.cfg_scale, generator=g)
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
    print(json.dumps({"oracle": f"draft (noise {a.noise})" if a.draft else "text", **out}))


if __name__ == "__main__":
    main()
