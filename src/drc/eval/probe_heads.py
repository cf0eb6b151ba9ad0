"""Probes on the shipped feature encoder (`ProbeConfig.trunk = "shipped"`): small heads, frozen trunk.

A few hundred real items are too few to train a CNN from scratch (such probes were right on about a
third of held-out real icons); the shipped encoder already tells vendors' drawings and concepts
apart, so the probes only fit two small heads on its features. Training is cheap: the features of
`feature_views` augmented views of every training image (the probes' augmentations, and the
`extra_views` image in some of them) are computed once, then the heads train on those.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.eval.feature_encoder import SHIPPED_DIR, EncoderConfig, FeatureEncoder, load_encoder

if TYPE_CHECKING:
    from drc.eval.probes import ProbeConfig


def _head(dim: int, hidden: int, n: int) -> nn.Module:
    if hidden <= 0:
        return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n))
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, n))


class EncoderProbeNet(nn.Module):
    """The frozen encoder + style head + semantics head, the probes' interface.

    forward(x: (B, 3, H, W) float in [-1, 1]) -> (style_logits (B, S), sem_logits (B, C),
    feats (B, 2E) = [style embedding, content embedding]); the heads read all encoder features.
    """

    def __init__(self, n_styles: int, n_semantics: int, enc_cfg: EncoderConfig, hidden: int = 128):
        super().__init__()
        self.encoder = FeatureEncoder(enc_cfg)
        self.encoder.requires_grad_(False)
        self.embed_dim = enc_cfg.embed_dim
        self.feat_dim = 2 * enc_cfg.embed_dim
        self.style_head = _head(self.encoder.feat_dim, hidden, n_styles)
        self.sem_head = _head(self.encoder.feat_dim, hidden, n_semantics)

    def heads(self, full: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder features (B, encoder.feat_dim) -> the forward's three outputs."""
        return self.style_head(full), self.sem_head(full), full[:, : self.feat_dim]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.heads(self.encoder.features(x))


def shipped_net(n_styles: int, n_semantics: int, cfg: ProbeConfig) -> EncoderProbeNet:
    """A probe net whose encoder holds the shipped (or `cfg.encoder`'s) weights."""
    enc = load_encoder(Path(cfg.encoder) if cfg.encoder else SHIPPED_DIR)
    net = EncoderProbeNet(n_styles, n_semantics, enc.cfg, cfg.head_hidden)
    net.encoder.load_state_dict(enc.state_dict())
    return net


@torch.no_grad()
def view_features(
    net: EncoderProbeNet, images: Tensor, views: Tensor | None, cfg: ProbeConfig, gen: torch.Generator,
    device: torch.device, chunk: int = 256,
) -> Tensor:  # fmt: skip
    """Encoder features of `cfg.feature_views` views of each image: (V, N, encoder.feat_dim) float32 cpu.

    images uint8 (N, 3, H, W); views: the `extra_views` images (N, 3, H, W) float or None. View 0 is
    the clean image; the others are augmented, each showing its extra view with probability
    `cfg.extra_view_prob`.
    """
    from drc.eval.probes import _as_float, augment_for_probes

    net.eval()
    out = []
    for v in range(max(1, cfg.feature_views)):
        feats = []
        for i in range(0, len(images), chunk):
            x = _as_float(images[i : i + chunk])
            if v > 0:
                if views is not None:
                    use = (torch.rand(len(x), generator=gen) < cfg.extra_view_prob).view(-1, 1, 1, 1)
                    x = torch.where(use, views[i : i + chunk], x)
                x = augment_for_probes(x, cfg, gen)
            feats.append(net.encoder.features(x.to(device)).float().cpu())
        out.append(torch.cat(feats))
    return torch.stack(out)


def fit_heads(
    net: EncoderProbeNet, feats: Tensor, ys: Tensor, ym: Tensor, cfg: ProbeConfig, gen: torch.Generator,
    device: torch.device, log: Callable[[str], None] | None = None,
) -> None:  # fmt: skip
    """Train the two heads on cached features (V, N, F) with labels ys, ym (N,): AdamW, cosine lr."""
    params = list(net.style_head.parameters()) + list(net.sem_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.head_lr, weight_decay=cfg.weight_decay)
    v, n, _ = feats.shape
    steps = max(1, cfg.head_steps)
    net.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cfg.head_lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        vi = torch.randint(0, v, (cfg.batch_size,), generator=gen)
        ni = torch.randint(0, n, (cfg.batch_size,), generator=gen)
        s_logits, m_logits, _ = net.heads(feats[vi, ni].to(device))
        ls = F.cross_entropy(s_logits, ys[ni].to(device), label_smoothing=cfg.label_smoothing)
        lm = F.cross_entropy(m_logits, ym[ni].to(device), label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        (ls + lm).backward()
        opt.step()
        if log is not None and (step % 200 == 0 or step == steps - 1):
            log(f"probe heads step {step}: style loss {ls.item():.3f}, semantics loss {lm.item():.3f}")
    net.eval()
