"""Pretraining: the VQ tokenizer, then the generator as a plain text-to-image model.

Both use the one loop (`drc.loop.trainer.Trainer`); this file only says how a batch is drawn and what
the loss is. Each writes `out_dir/model.safetensors` + `out_dir/model.yaml` (strictly loadable by
`drc.models.loading`), checkpoints in `out_dir/ckpt` (resume is automatic) and the
loss log in `out_dir/history.jsonl`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from drc.config import OptimConfig, RunConfig, config_hash
from drc.data.images import unit_to_pixels
from drc.loop.trainer import StageResult, StepOutput, Trainer, write_history
from drc.models.generator import Generator
from drc.models.generator_config import GeneratorConfig
from drc.models.inference import model_input
from drc.models.instruction import LatentInstruction
from drc.models.text import ByteTokenizer
from drc.models.tokenizer import VQTokenizer
from drc.precision import autocast
from drc.runtime import StepRandom, barrier, dist_info
from drc.weights import save_module

# ----------------------------------------------------------------------------- tokenizer


def _stage_hash(*parts: Any) -> str:
    """Checkpoint guard: a hash of the sub-configs (and data size) a stage's checkpoints depend on.

    How often a stage logs and checkpoints does not change what it computes, so an interrupted run
    may resume with another `log_every` / `ckpt_every`.
    """
    parts = tuple(
        dataclasses.replace(p, log_every=0, ckpt_every=0) if isinstance(p, OptimConfig) else p for p in parts
    )
    blob = "/".join(config_hash(p) if dataclasses.is_dataclass(p) else repr(p) for p in parts)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _save(model: torch.nn.Module, out_dir: Path, cfg: Any, result: StageResult) -> None:
    """Final weights + config + loss log; only rank 0 writes (all ranks hold the same weights)."""
    if dist_info().is_main:
        save_module(model, out_dir, cfg)
        write_history(result, out_dir / "history.jsonl")
    barrier()


def _fit(
    name: str, model: torch.nn.Module, tcfg: OptimConfig, cfg: RunConfig, out_dir: Path, hash_: str,
    device: torch.device, progress: bool, step_fn: Any,
) -> tuple[StageResult, float]:  # fmt: skip
    """Train `model` alone with the one loop (checkpoints in out_dir/ckpt); returns (result, seconds)
    with the model in eval mode."""
    trainer = Trainer(
        name, {name: model}, list(model.parameters()), tcfg, seed=cfg.seed, device=device,
        precision=cfg.precision, ckpt_dir=out_dir / "ckpt", config_hash=hash_, progress=progress,
    )  # fmt: skip
    t0 = time.perf_counter()
    result = trainer.fit(step_fn)
    seconds = time.perf_counter() - t0
    model.eval()
    return result, seconds


def recon_loss(recon: Tensor, target: Tensor, edge_weight: float) -> Tensor:
    """L1 on pixels plus L1 on horizontal/vertical differences.

    The difference term rewards sharp outlines and small symbols, which plain L1/L2 lets the decoder
    blur away (a blurred edge costs little in pixels but is most of what makes a sticker readable).
    """
    loss = (recon - target).abs().mean()
    if edge_weight > 0:
        dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
        dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
        edges = (dx(recon) - dx(target)).abs().mean() + (dy(recon) - dy(target)).abs().mean()
        loss = loss + edge_weight * edges
    return loss


def train_tokenizer(
    cfg: RunConfig, images: Tensor, out_dir: str | Path, device: torch.device, progress: bool = True
) -> tuple[VQTokenizer, dict[str, Any]]:
    """Train the VQ tokenizer on `images` (uint8 (N,3,H,W)); returns (model in eval mode, stats).

    stats: psnr (dB, decode(encode(x)) vs x on up to 1024 images), codebook_usage (fraction of codes
    used on those images), perplexity (of the code distribution), steps, seconds.
    """
    out_dir = Path(out_dir)
    tcfg = cfg.tokenizer_train
    torch.manual_seed(cfg.seed)
    model = VQTokenizer(cfg.tokenizer).to(device).to(memory_format=torch.channels_last)
    n = len(images)
    bs = min(tcfg.batch_size, n)

    def step_fn(step: int, rnd: StepRandom) -> StepOutput:
        idx = torch.randint(n, (bs,), generator=rnd.torch_gen)
        x = model_input(images[idx], device)
        recon, vq_loss, _ = model(x)
        rec = recon_loss(recon.float(), x, cfg.tokenizer.edge_weight)
        return StepOutput(rec + vq_loss, {"recon": float(rec.detach()), "vq": float(vq_loss.detach())})

    hash_ = _stage_hash(cfg.tokenizer, tcfg, cfg.seed, cfg.precision, n)
    t0 = time.perf_counter()
    result, _ = _fit("tokenizer", model, tcfg, cfg, out_dir, hash_, device, progress, step_fn)
    _save(model, out_dir, cfg.tokenizer, result)
    stats = tokenizer_stats(model, images[:1024], device, cfg.precision)
    stats.update(steps=result.steps, seconds=round(time.perf_counter() - t0, 2))
    return model, stats


@torch.no_grad()
def tokenizer_stats(
    model: VQTokenizer, images: Tensor, device: torch.device, precision: str = "auto"
) -> dict[str, float]:
    """PSNR of decode(encode(x)), codebook usage and perplexity on uint8 `images`."""
    model.eval()
    se, count = 0.0, 0
    hist = torch.zeros(model.vocab_size)
    for i in range(0, len(images), 256):
        x = model_input(images[i : i + 256], device)
        with autocast(device, precision):
            idx = model.encode(x)
            y = model.decode_code(idx)
        y8 = unit_to_pixels(y).to(device).float()
        se += float((y8 - images[i : i + 256].to(device).float()).pow(2).sum())
        count += y8.numel()
        hist += torch.bincount(idx.flatten().cpu(), minlength=model.vocab_size).float()
    mse = se / max(count, 1)
    p = hist / hist.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    return {
        "psnr": round(10 * math.log10(255.0**2 / max(mse, 1e-10)), 3),
        "codebook_usage": round(float((hist > 0).float().mean()), 4),
        "perplexity": round(math.exp(entropy), 2),
    }


# ----------------------------------------------------------------------------- generator


def generator_config(cfg: RunConfig, grid: tuple[int, int]) -> GeneratorConfig:
    """The run's generator config with the tokenizer-dependent fields filled in."""
    return cfg.generator.with_visual(cfg.tokenizer.codebook_size, grid[0], grid[1])


def corrupt_draft(tokens: Tensor, share: Tensor, vocab: int, gen: torch.Generator) -> Tensor:
    """A corrupted copy of `tokens (B, N)` long: what the generator learns to render from.

    Each row replaces a share `share (B,)` of its cells: half of them with the code another image of
    the batch has at that cell (a plausible wrong code: another theme's background, another intent's
    symbol, as a composer's draft gets wrong), half with a uniformly random code.
    """
    B, N = tokens.shape
    dev = tokens.device
    hit = torch.rand(B, N, generator=gen).to(dev) < share.to(dev)[:, None]
    other = tokens[torch.randint(B, (B,), generator=gen).to(dev)]
    rand = torch.randint(vocab, (B, N), generator=gen).to(dev)
    swap = torch.where(torch.rand(B, N, generator=gen).to(dev) < 0.5, other, rand)
    return torch.where(hit, swap, tokens)


def train_generator(
    cfg: RunConfig,
    tokens: Tensor,
    texts: list[str],
    out_dir: str | Path,
    device: torch.device,
    progress: bool = True,
    coarse_text: str = "",
) -> tuple[Generator, dict[str, Any]]:
    """Pretraining: caption and/or draft -> visual tokens, `cond_drop` unconditional rows for CFG.

    tokens: long (N,h,w) token grids of the training images; texts: their N captions;
    coarse_text: the dataset's coarse instruction ("a sticker"), shown instead of the caption on a
    share `generator.coarse_text` of the rows that have a draft (Stage 2 and generation show it so).
    Each row is one of: unconditional (`cond_drop`), caption only (`draft_drop`), or a corrupted
    draft of its own target (`corrupt_draft`, share of cells uniform in [0, draft_noise]) with the
    caption or the coarse instruction.
    Returns (model in eval mode, stats {loss, steps, seconds, tokens_per_s}).
    """
    out_dir = Path(out_dir)
    if len(tokens) != len(texts):
        raise ValueError(f"{len(tokens)} token grids but {len(texts)} texts")
    tcfg = cfg.generator_train
    gcfg = generator_config(cfg, (tokens.shape[1], tokens.shape[2]))
    torch.manual_seed(cfg.seed)
    model = Generator(gcfg).to(device)
    flat = tokens.reshape(len(tokens), -1)
    text_ids, text_mask = ByteTokenizer().encode(texts, gcfg.max_text_len)
    coarse_ids, coarse_mask = ByteTokenizer().encode([coarse_text], gcfg.max_text_len)
    n = len(flat)
    bs = min(tcfg.batch_size, n)
    seen = {"positions": 0}

    def step_fn(step: int, rnd: StepRandom) -> StepOutput:
        g = rnd.torch_gen
        idx = torch.randint(n, (bs,), generator=g)
        drop = torch.rand(bs, generator=g) < gcfg.cond_drop
        no_draft = torch.rand(bs, generator=g) < gcfg.draft_drop
        coarse = (torch.rand(bs, generator=g) < gcfg.coarse_text) & ~no_draft
        ids = torch.where(coarse[:, None], coarse_ids, text_ids[idx]).to(device)
        mask = torch.where(coarse[:, None], coarse_mask, text_mask[idx]).to(device)
        target = flat[idx].to(device)
        share = torch.rand(bs, generator=g) * gcfg.draft_noise
        draft = LatentInstruction.hard(corrupt_draft(target, share, gcfg.visual_vocab, g), gcfg.visual_vocab)
        loss = model.loss(ids, mask, draft, target, drop.to(device), no_draft.to(device)).mean()
        shown = int((~no_draft).sum())
        per_row = int(mask.any(0).sum()) + gcfg.n_null + gcfg.n_visual
        seen["positions"] += bs * per_row + shown * gcfg.n_visual
        return StepOutput(loss)

    hash_ = _stage_hash(gcfg, tcfg, cfg.seed, cfg.precision, n, coarse_text)
    result, seconds = _fit("generator", model, tcfg, cfg, out_dir, hash_, device, progress, step_fn)
    _save(model, out_dir, gcfg, result)
    last = result.history[-1]["loss"] if result.history else float("nan")
    stats = {
        "loss": round(last, 4),
        "steps": result.steps,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(seen["positions"] / max(result.seconds, 1e-9), 1),
    }
    return model, stats
