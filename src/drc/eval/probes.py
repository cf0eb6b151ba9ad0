"""Probes: small CNN classifiers of an image's style label and semantics label (docs/DESIGN.md section 4).

They are trained on real items only, never on generated images, and their accuracy on held-out real
items is reported next to every result: a probe that is right 97% of the time on real images bounds
what its verdicts on generated ones are worth.

Design: ONE fully convolutional trunk with global average pooling and TWO linear heads (style,
semantics). Sharing the trunk halves the training cost, and the pooled trunk output is the feature
space of `hist_sim` / `ref_sim` / `target_sim` / `fd`, which should see both factors. Being fully
convolutional, the net takes any image size (64x64 stickers, 96x64 posters).

Generated images come out of a VQ decoder, a little blurry and quantised, so training augments the
real images with small shifts, light brightness/contrast jitter, random blur and noise, and,
optionally, `extra_views` (e.g. the tokenizer's reconstruction of each real image). Hue is never
jittered: colour is part of the style label.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.atomic import atomic_write_text
from drc.config import load_yaml
from drc.config_io import read_yaml, save_yaml
from drc.data.images import pixels_to_unit
from drc.errors import DrcError
from drc.eval.feature_encoder import Block as _Block
from drc.eval.feature_encoder import EncoderConfig
from drc.loop.optim import OptimConfig
from drc.loop.trainer import StageResult, StepOutput, Trainer
from drc.weights import load_module_weights, save_module


@dataclass
class ProbeConfig(OptimConfig):
    """Probe size and training budget: the optimisation settings are OptimConfig's, with the probes'
    own defaults (about a minute for 64x64 stickers on 2 CPU cores)."""

    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 30
    weight_decay: float = 0.05
    channels: int = 32  # trunk width; the feature size is 4 * channels
    precision: str = "auto"  # auto | bf16 | fp32, as RunConfig.precision
    # augmentation (applied per training image)
    max_shift: int = 4  # pixels, random translation with edge padding
    jitter: float = 0.08  # brightness/contrast, relative
    blur_prob: float = 0.5  # chance of a Gaussian blur with sigma in [0.3, blur_max_sigma]
    blur_max_sigma: float = 1.2
    noise_std: float = 0.03  # std of Gaussian noise in [-1, 1] units (scaled by a random factor)
    extra_view_prob: float = 0.5  # chance of using the `extra_views` image instead of the original
    label_smoothing: float = 0.05
    # "shipped": small heads on the frozen shipped feature encoder (drc.eval.feature_encoder);
    # "scratch": the CNN above, trained from scratch on the dataset's real items
    trunk: Literal["shipped", "scratch"] = "scratch"
    encoder: str = ""  # trunk "shipped": an encoder folder other than the shipped one
    head_hidden: int = 128  # trunk "shipped": the heads' hidden width (0: linear heads)
    head_steps: int = 1500  # trunk "shipped": head training steps on cached features
    head_lr: float = 3e-3
    feature_views: int = 8  # trunk "shipped": views per training image (1 clean + augmented)


class ProbeNet(nn.Module):
    """Shared trunk + style head + semantics head.

    forward(x: (B, 3, H, W) float in [-1, 1]) -> (style_logits (B, S), sem_logits (B, C), feats (B, 4c))
    The trunk downsamples by 16 (64x64 -> 4x4), then averages over space.
    """

    def __init__(self, n_styles: int, n_semantics: int, channels: int = 32):
        super().__init__()
        c = channels
        self.trunk = nn.Sequential(
            _Block(3, c, stride=2),  # H/2: big symbols need no full-resolution layer
            _Block(c, c),
            _Block(c, 2 * c, stride=2),  # H/4
            _Block(2 * c, 2 * c),
            _Block(2 * c, 4 * c, stride=2),  # H/8
            _Block(4 * c, 4 * c),
            _Block(4 * c, 4 * c, stride=2),  # H/16
        )
        self.feat_dim = 4 * c
        self.style_head = nn.Linear(self.feat_dim, n_styles)
        self.sem_head = nn.Linear(self.feat_dim, n_semantics)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feats = self.trunk(x).mean(dim=(2, 3))  # (B, 4c)
        return self.style_head(feats), self.sem_head(feats), feats


# --------------------------------------------------------------------------- augmentation


def _as_float(images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float [-1, 1]; float input is taken as already in [-1, 1]."""
    if images.dtype == torch.uint8:
        return pixels_to_unit(images)
    return images.float()


def _gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Per-image separable Gaussian blur: x (B, 3, H, W), sigma (B,) -> (B, 3, H, W)."""
    b, c, h, w = x.shape
    r = 3
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t[None, :] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))  # (B, 7)
    k = k / k.sum(dim=1, keepdim=True)
    # grouped conv: each (image, channel) plane gets its image's kernel
    kh = k.repeat_interleave(c, dim=0)[:, None, None, :]  # (B*3, 1, 1, 7)
    kv = k.repeat_interleave(c, dim=0)[:, None, :, None]  # (B*3, 1, 7, 1)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), kh, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), kv, groups=b * c)
    return y.reshape(b, c, h, w)


def augment_for_probes(x: Tensor, cfg: ProbeConfig, gen: torch.Generator) -> Tensor:
    """Light, label-preserving augmentation of a float batch (B, 3, H, W) in [-1, 1].

    All randomness comes from `gen` (the step's generator), so a run is reproducible.
    """
    b, _, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=gen).to(dev)

    # small translation: replicate-pad then crop at a random offset
    s = cfg.max_shift
    if s > 0:
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        ox = torch.randint(0, 2 * s + 1, (b,), generator=gen)
        oy = torch.randint(0, 2 * s + 1, (b,), generator=gen)
        x = torch.stack([padded[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w] for i in range(b)])
    # brightness / contrast jitter around each image's mean (keeps hue: colour is style)
    if cfg.jitter > 0:
        contrast = 1 + (rand(b, 1, 1, 1) * 2 - 1) * cfg.jitter
        bright = (rand(b, 1, 1, 1) * 2 - 1) * cfg.jitter
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + bright
    # blur on a random subset (VQ decoders smooth edges)
    if cfg.blur_prob > 0:
        sigma = 0.3 + rand(b) * (cfg.blur_max_sigma - 0.3)
        blurred = _gaussian_blur(x, sigma)
        pick = (rand(b) < cfg.blur_prob).view(b, 1, 1, 1)
        x = torch.where(pick, blurred, x)
    if cfg.noise_std > 0:
        x = x + torch.randn(x.shape, generator=gen).to(dev) * cfg.noise_std * rand(b, 1, 1, 1)
    return x.clamp(-1, 1)


# --------------------------------------------------------------------------- the probes


@dataclass
class Probes:
    """A trained probe net with its label vocabularies and its held-out accuracy on real items."""

    net: nn.Module  # ProbeNet (trunk "scratch") or probe_heads.EncoderProbeNet (trunk "shipped")
    styles: list[str]
    semantics: list[str]
    accuracy: dict[str, float]  # {"style_acc", "semantic_acc", "n_heldout", "seconds"} on held-out real items
    config: ProbeConfig = field(default_factory=ProbeConfig)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 256) -> dict[str, Any]:
        """images: uint8 (B, 3, H, W) (or float in [-1, 1]) ->
        {"style": [str] * B, "semantics": [str] * B, "feats": (B, F) float32 cpu,
         "style_prob": (B, S), "sem_prob": (B, C)}, and on the shipped trunk also
        "style_feats" / "content_feats" (B, E): the encoder's style and content embeddings."""
        self.net.eval()
        sl, ml, fs = [], [], []
        for i in range(0, len(images), batch_size):
            x = _as_float(images[i : i + batch_size]).to(self.device)
            s, m, f = self.net(x)
            sl.append(s.float().cpu())
            ml.append(m.float().cpu())
            fs.append(f.float().cpu())
        if not sl:
            e = torch.zeros(0)
            return {
                "style": [],
                "semantics": [],
                "feats": e.view(0, self.net.feat_dim),
                "style_prob": e.view(0, len(self.styles)),
                "sem_prob": e.view(0, len(self.semantics)),
            }
        sp = torch.cat(sl).softmax(-1)
        mp = torch.cat(ml).softmax(-1)
        out = {
            "style": [self.styles[i] for i in sp.argmax(-1).tolist()],
            "semantics": [self.semantics[i] for i in mp.argmax(-1).tolist()],
            "feats": torch.cat(fs),
            "style_prob": sp,
            "sem_prob": mp,
        }
        e = getattr(self.net, "embed_dim", None)
        if e is not None:  # the shipped encoder's embeddings: style for hist_sim, content for ref_sim
            out["style_feats"], out["content_feats"] = out["feats"][:, :e], out["feats"][:, e : 2 * e]
        return out

    def save(self, directory: str | Path) -> Path:
        """Write probe.safetensors + probe.yaml (config) + probe.json (labels, accuracy)."""
        directory = Path(directory)
        save_module(self.net, directory, self.config, name="probe")
        if self.config.trunk == "shipped":  # the encoder's size, to rebuild the net on load
            save_yaml(self.net.encoder.cfg, directory / "encoder.yaml")
        meta = {"styles": self.styles, "semantics": self.semantics, "accuracy": self.accuracy}
        atomic_write_text(directory / "probe.json", json.dumps(meta, indent=1))
        return directory

    @staticmethod
    def load(directory: str | Path, device: torch.device | str = "cpu") -> Probes:
        """Strictly load what `save` wrote; a missing file or mismatched weights is a DrcError."""
        directory = Path(directory)
        meta_path = directory / "probe.json"
        if not meta_path.is_file():
            raise DrcError(f"{meta_path}: probe labels not found (train the probes first)")
        try:
            meta = json.loads(meta_path.read_text())
            styles, semantics = list(meta["styles"]), list(meta["semantics"])
            accuracy = dict(meta["accuracy"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DrcError(f"{meta_path}: corrupt probe metadata ({e})") from None
        cfg = load_yaml(ProbeConfig, directory / "probe.yaml")
        if "trunk" not in read_yaml(directory / "probe.yaml"):
            cfg.trunk = "scratch"  # probes saved before the shipped trunk existed
        net: nn.Module
        if cfg.trunk == "shipped":
            from drc.eval.probe_heads import EncoderProbeNet

            enc_cfg = load_yaml(EncoderConfig, directory / "encoder.yaml")
            net = EncoderProbeNet(len(styles), len(semantics), enc_cfg, cfg.head_hidden)
        else:
            net = ProbeNet(len(styles), len(semantics), cfg.channels)
        load_module_weights(net, directory, name="probe")
        net.to(device).eval()
        return Probes(net, styles, semantics, accuracy, cfg)


def _heldout_accuracy(probes: Probes, images: Tensor, s_idx: Tensor, m_idx: Tensor) -> dict[str, float]:
    if len(images) == 0:
        return {"style_acc": float("nan"), "semantic_acc": float("nan"), "n_heldout": 0}
    p = probes.predict(images)
    sa = (p["style_prob"].argmax(-1) == s_idx).float().mean().item()
    ma = (p["sem_prob"].argmax(-1) == m_idx).float().mean().item()
    return {"style_acc": sa, "semantic_acc": ma, "n_heldout": len(images)}


@torch.no_grad()
def _precompute_views(images: Tensor, fn: Callable[[Tensor], Tensor], chunk: int = 128) -> Tensor:
    """Apply `extra_views` once to every training image (float [-1, 1] out, same shape)."""
    out = []
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk]
        y = fn(x)
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(f"extra_views changed the image shape: {tuple(x.shape)} -> {tuple(y.shape)}")
        out.append(_as_float(y.detach().cpu()).clamp(-1, 1))
    return torch.cat(out)


def train_probes(
    images: Tensor,
    styles: Sequence[str],
    semantics: Sequence[str],
    train_idx: Sequence[int],
    heldout_idx: Sequence[int],
    cfg: ProbeConfig | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    extra_views: Callable[[Tensor], Tensor] | None = None,
    progress: bool = True,
    ckpt_dir: str | Path | None = None,
) -> Probes:
    """Train the probes on real items `train_idx`, measure accuracy on real items `heldout_idx`.

    images:      uint8 (N, 3, H, W), real items only.
    styles, semantics: the N labels; the label vocabularies are all labels seen in `images`.
    extra_views: optional callable uint8 (B, 3, H, W) -> uint8 or float [-1, 1] (B, 3, H, W), e.g. the
                 VQ tokenizer's reconstruction. It is applied ONCE to the training images before
                 training (not per step: a tokenizer pass per step would dominate the cost); each
                 training image then shows its extra view with probability `cfg.extra_view_prob`.
    Uses the one training loop (`drc.loop.trainer.Trainer`), with all sampling drawn from its
    per-step random sources.
    """
    cfg = cfg or ProbeConfig()
    device = torch.device(device)
    t0 = time.perf_counter()
    n = len(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if len(styles) != n or len(semantics) != n:
        raise ValueError(f"{n} images but {len(styles)} style and {len(semantics)} semantics labels")
    train_idx = torch.as_tensor(list(train_idx), dtype=torch.long)
    heldout_idx = torch.as_tensor(list(heldout_idx), dtype=torch.long)
    if len(train_idx) == 0:
        raise DrcError("no training items for the probes (is the dataset labelled?)")
    overlap = set(train_idx.tolist()) & set(heldout_idx.tolist())
    if overlap:
        raise ValueError(f"{len(overlap)} items are both training and held-out items")
    style_names = sorted(set(styles))
    sem_names = sorted(set(semantics))
    s_all = torch.tensor([style_names.index(s) for s in styles])
    m_all = torch.tensor([sem_names.index(s) for s in semantics])

    train_x = images[train_idx]
    train_s, train_m = s_all[train_idx], m_all[train_idx]
    views = _precompute_views(train_x, extra_views) if extra_views is not None else None

    if cfg.trunk == "shipped":
        return _train_heads(images, train_idx, heldout_idx, s_all, m_all, style_names, sem_names, views,
                            cfg, device, seed, t0)  # fmt: skip
    torch.manual_seed(seed)  # initial weights
    net = ProbeNet(len(style_names), len(sem_names), cfg.channels).to(device)
    settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(OptimConfig)}
    optim = OptimConfig(**{**settings, "ckpt_every": max(cfg.steps, 1)})
    trainer = Trainer(
        "probes",
        {"probe": net},
        list(net.parameters()),
        optim,
        seed=seed,
        device=device,
        precision=cfg.precision,
        ckpt_dir=ckpt_dir,
        progress=progress,
    )

    def step_fn(step: int, rnd: Any) -> StepOutput:
        gen = rnd.torch_gen
        idx = torch.randint(0, len(train_x), (cfg.batch_size,), generator=gen)
        x = _as_float(train_x[idx])
        if views is not None:
            use = (torch.rand(cfg.batch_size, generator=gen) < cfg.extra_view_prob).view(-1, 1, 1, 1)
            x = torch.where(use, views[idx], x)
        x = augment_for_probes(x.to(device), cfg, gen)
        s_logits, m_logits, _ = net(x)
        ys, ym = train_s[idx].to(device), train_m[idx].to(device)
        ls = F.cross_entropy(s_logits.float(), ys, label_smoothing=cfg.label_smoothing)
        lm = F.cross_entropy(m_logits.float(), ym, label_smoothing=cfg.label_smoothing)
        with torch.no_grad():
            acc_s = (s_logits.argmax(-1) == ys).float().mean().item()
            acc_m = (m_logits.argmax(-1) == ym).float().mean().item()
        return StepOutput(
            ls + lm, {"style_loss": ls.item(), "sem_loss": lm.item(), "style_acc": acc_s, "sem_acc": acc_m}
        )

    result: StageResult = trainer.fit(step_fn)
    probes = Probes(net.eval(), style_names, sem_names, {}, cfg)
    acc = _heldout_accuracy(probes, images[heldout_idx], s_all[heldout_idx], m_all[heldout_idx])
    acc["seconds"] = time.perf_counter() - t0
    acc["train_seconds"] = result.seconds
    probes.accuracy = acc
    return probes


def _train_heads(
    images: Tensor, train_idx: Tensor, heldout_idx: Tensor, s_all: Tensor, m_all: Tensor,
    style_names: list[str], sem_names: list[str], views: Tensor | None, cfg: ProbeConfig,
    device: torch.device, seed: int, t0: float,
) -> Probes:  # fmt: skip
    """`train_probes` on the shipped trunk: cache the encoder's features of augmented views, fit heads."""
    from drc.eval.probe_heads import fit_heads, shipped_net, view_features

    torch.manual_seed(seed)  # initial head weights
    gen = torch.Generator().manual_seed(seed)
    net = shipped_net(len(style_names), len(sem_names), cfg).to(device)
    t1 = time.perf_counter()
    feats = view_features(net, images[train_idx], views, cfg, gen, device)
    fit_heads(net, feats, s_all[train_idx], m_all[train_idx], cfg, gen, device)
    probes = Probes(net.eval(), style_names, sem_names, {}, cfg)
    acc = _heldout_accuracy(probes, images[heldout_idx], s_all[heldout_idx], m_all[heldout_idx])
    acc["seconds"] = time.perf_counter() - t0
    acc["train_seconds"] = time.perf_counter() - t1
    probes.accuracy = acc
    return probes
