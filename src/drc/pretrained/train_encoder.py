"""Train the shipped feature encoder (`drc.eval.feature_encoder`) on vendor emoji artwork.

    nice -n 19 python -m drc.pretrained.train_encoder --out src/drc/pretrained/encoder [--art ART.pt]

One thread, a fixed number of steps (about 15 minutes on one core). Each step draws `pairs` concepts
that two vendors both draw (one image from each: a content positive, a style negative) and `singles`
random icons; the style loss is supervised-contrastive on the vendor, the content loss on the
concept. Augmentations are the probes' (shift, brightness/contrast, blur, noise) plus a VQ-like
down-and-up resampling and a random shrink onto the white page; hue is never touched (colour is
style). `--art` reuses a rendered `ArtSet` (`encoder_data.render_art`, a few minutes to render).
Writes encoder.safetensors (float16) + encoder.yaml (the model config) + train.yaml (this config)
+ meta.json (sources, licences, losses, seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from drc.config import load_yaml
from drc.config_io import save_yaml
from drc.data.images import pixels_to_unit
from drc.errors import DrcError
from drc.eval.feature_encoder import EncoderConfig, FeatureEncoder
from drc.eval.probes import ProbeConfig, augment_for_probes
from drc.pretrained.encoder_data import ArtSet, render_art
from drc.weights import atomic_save_tensors


@dataclass
class EncoderTrainConfig:
    """The encoder's training recipe (saved as train.yaml beside the weights)."""

    steps: int = 1600
    pairs: int = 20  # concepts per step drawn by two vendors
    singles: int = 12  # random icons per step (style signal only, unless their concept recurs)
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 50
    temperature: float = 0.1
    seed: int = 0
    size: int = 64
    channels: int = 32
    embed_dim: int = 64
    resample_prob: float = 0.3  # VQ-like: downsample by 2 then upsample
    shrink_prob: float = 0.3  # shrink to [shrink_min, 1] of the side onto white, at a random place
    shrink_min: float = 0.6


def supcon(z: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Supervised-contrastive loss of unit rows z (B, E) with labels (B,); -1 labels have no positive.

    Mean over anchors that have a positive of -mean log p(positive | anchor) over the batch.
    """
    b = len(z)
    logits = (z @ z.T) / temperature
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    logp = logits.log_softmax(dim=1)
    pos = (labels[:, None] == labels[None, :]) & ~eye & (labels[:, None] >= 0)
    has = pos.any(dim=1)
    if not has.any():
        return z.sum() * 0.0
    per = -(logp.masked_fill(~pos, 0.0).sum(1)[has] / pos.sum(1)[has])
    return per.mean()


def _shrink(x: Tensor, cfg: EncoderTrainConfig, gen: torch.Generator) -> Tensor:
    """Shrink a random subset of images onto a white page at a random place (content at any scale)."""
    b, _, h, w = x.shape
    out = x.clone()
    for i in range(b):
        if torch.rand(1, generator=gen).item() >= cfg.shrink_prob:
            continue
        s = cfg.shrink_min + (1 - cfg.shrink_min) * torch.rand(1, generator=gen).item()
        nh, nw = max(8, round(h * s)), max(8, round(w * s))
        small = F.interpolate(
            x[i : i + 1], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
        )
        oy = int(torch.randint(0, h - nh + 1, (1,), generator=gen))
        ox = int(torch.randint(0, w - nw + 1, (1,), generator=gen))
        out[i] = 1.0
        out[i, :, oy : oy + nh, ox : ox + nw] = small[0]
    return out


def augment(x: Tensor, cfg: EncoderTrainConfig, gen: torch.Generator) -> Tensor:
    """uint8 (B, 3, H, W) -> augmented float (B, 3, H, W) in [-1, 1]."""
    x = _shrink(pixels_to_unit(x), cfg, gen)
    pick = (torch.rand(len(x), generator=gen) < cfg.resample_prob).view(-1, 1, 1, 1)
    h, w = x.shape[-2:]
    low = F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", antialias=True, align_corners=False)
    x = torch.where(pick, F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False), x)
    return augment_for_probes(x, ProbeConfig(), gen)


def _batch(art: ArtSet, by_concept: list[Tensor], cfg: EncoderTrainConfig, gen: torch.Generator) -> Tensor:
    """Indices (2 * pairs + singles,): two vendors' drawings of `pairs` concepts, then random icons."""
    picks = torch.randperm(len(by_concept), generator=gen)[: cfg.pairs]
    idx = []
    for c in picks.tolist():
        members = by_concept[c]
        two = members[torch.randperm(len(members), generator=gen)[:2]]
        if art.styles[two[0]] == art.styles[two[1]]:  # keep the pair across vendors when possible
            others = members[art.styles[members] != art.styles[two[0]]]
            if len(others):
                two[1] = others[torch.randint(0, len(others), (1,), generator=gen)]
        idx.extend(two.tolist())
    idx.extend(torch.randint(0, len(art.images), (cfg.singles,), generator=gen).tolist())
    return torch.tensor(idx)


def train(art: ArtSet, cfg: EncoderTrainConfig, log_every: int = 100) -> tuple[FeatureEncoder, dict]:
    """Train an encoder on `art`; returns it and a log {"losses": [[step, style, content]], "seconds"}."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = FeatureEncoder(EncoderConfig(cfg.channels, cfg.embed_dim))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    concepts = art.contents.unique()
    concepts = concepts[concepts >= 0]
    by_concept = [m for c in concepts.tolist() if len(m := (art.contents == c).nonzero()[:, 0]) >= 2]
    if not by_concept:
        raise DrcError("the training artwork has no concept drawn twice: nothing to learn content from")
    log: dict = {"losses": []}
    t0, cpu0 = time.perf_counter(), time.process_time()
    net.train()
    for step in range(cfg.steps):
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = _batch(art, by_concept, cfg, gen)
        out = net(augment(art.images[idx], cfg, gen))
        ls = supcon(out["style"], art.styles[idx], cfg.temperature)
        lc = supcon(out["content"], art.contents[idx], cfg.temperature)
        opt.zero_grad(set_to_none=True)
        (ls + lc).backward()
        opt.step()
        if step % log_every == 0 or step == cfg.steps - 1:
            log["losses"].append([step, round(ls.item(), 4), round(lc.item(), 4)])
            print(f"step {step} style {ls.item():.3f} content {lc.item():.3f} "
                  f"{time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)  # fmt: skip
    log["seconds"] = round(time.perf_counter() - t0, 1)
    log["cpu_seconds"] = round(time.process_time() - cpu0, 1)  # the machine is shared: wall time overstates
    return net.eval(), log


def save(
    net: FeatureEncoder, cfg: EncoderTrainConfig, art: ArtSet, log: dict, out: Path, command: str
) -> None:
    """Write the shipped folder: float16 weights, the model and training configs, and meta.json."""
    out.mkdir(parents=True, exist_ok=True)
    half = {k: v.half() for k, v in net.state_dict().items()}
    atomic_save_tensors(half, out / "encoder.safetensors", meta={"format": "pt"})
    save_yaml(net.cfg, out / "encoder.yaml")
    save_yaml(cfg, out / "train.yaml")
    meta = {
        "command": command,
        "n_images": len(art.images),
        "n_with_shared_concept": int((art.contents >= 0).sum()),
        "n_concepts": len(art.content_names),
        "vendors": art.style_names,
        "sources": art.credits,
        "held_out": "streamline-emojis and emojione-v1 (the emoji benchmark's unseen styles); no real "
        "icon set kept as an unseen-source check",
        "train": {**log, "config": asdict(cfg)},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m drc.pretrained.train_encoder", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", required=True, help="folder for the weights (src/drc/pretrained/encoder ships)")
    p.add_argument("--art", help="a rendered ArtSet (.pt) to reuse; rendered (and saved here) when missing")
    p.add_argument("--config", help="a train.yaml (EncoderTrainConfig) to train with instead of the defaults")
    p.add_argument("--steps", type=int, help="override the config's steps")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        art_path = Path(args.art) if args.art else None
        if art_path is not None and art_path.is_file():
            art = ArtSet.load(art_path)
        else:
            art = render_art()
            if art_path is not None:
                art.save(art_path)
        cfg = load_yaml(EncoderTrainConfig, args.config) if args.config else EncoderTrainConfig()
        if args.steps is not None:
            cfg.steps = args.steps
        net, log = train(art, cfg)
        save(
            net,
            cfg,
            art,
            log,
            Path(args.out),
            "python -m drc.pretrained.train_encoder " + " ".join(argv or sys.argv[1:]),
        )
    except DrcError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"wrote {args.out} ({log['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
