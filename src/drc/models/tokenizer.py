"""VQ visual tokenizer: images <-> grids of codebook indices (taming-transformers' API).

    encode(images (B,3,H,W) in [-1,1]) -> idx (B,h,w) long        h = H / downsample
    decode_code(idx (B,h,w))          -> images (B,3,H,W) in [-1,1]
    embed(idx)                        -> (B,N,code_dim) codebook vectors (what the towers read)

The model is fully convolutional, so one tokenizer serves 64x64 stickers (8x8 tokens) and 96x64
posters (12x8 tokens). The decoder is deliberately heavier than the encoder: at 8x downsampling a
token covers 8x8 pixels, and it is the decoder that has to redraw a small symbol or an outline from
a handful of codes, while the encoder only has to tell them apart.

Why 8x8 tokens at 64 px (measured on the sticker benchmark, 2 CPU cores): the generator's cost
grows with the token count, and 16x16 grids would make every training and sampling step of the
eight methods ~4x longer. At 8x8, with the convolutions starting after a 2x2 pixel-unshuffle (1.45x
cheaper per step than a full-resolution level at equal PSNR), a decoder twice as deep as the
encoder and an edge term in the loss, 800 steps of batch 32 (3 min) reach 19.2 dB PSNR on
held-out users' stickers (21 dB on training images; 19.6 dB after 950 steps of a 1,200-step run)
with every code in use: backgrounds, frames, colours and characters survive, and the intent
symbols stay readable (faces and thin glyphs blur). See docs/tokenizer_recon.png.

Dead codes are the classic VQ failure (a few codes do all the work, the generator's vocabulary is
wasted). Three things prevent them here, all living in buffers so that strict loading and
checkpoint resume see them:
- the codebook is initialised from the data (k-means++ seeding on the first training batch's
  encoder outputs), not at random far from where the encoder puts its vectors;
- codes move by exponential moving averages of the vectors assigned to them (no codebook gradient,
  which is slow and lets codes drift away and die);
- a code unused for `reseed_after` training steps is re-seeded with a random encoder output.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from drc.models.tokenizer_config import TokenizerConfig


def _levels(cfg: TokenizerConfig) -> int:
    """Number of 2x resolution steps the convolutions make (the patch does the rest)."""
    conv_down = cfg.downsample // max(cfg.patch, 1)
    n = conv_down.bit_length() - 1
    if cfg.downsample < 1 or cfg.patch < 1 or 2**n != conv_down or conv_down * cfg.patch != cfg.downsample:
        raise ValueError(
            f"tokenizer.downsample / patch must be a power of two, got {cfg.downsample} / {cfg.patch}"
        )
    if len(cfg.channel_mult) != n + 1:
        raise ValueError(
            f"tokenizer.channel_mult needs log2(downsample / patch) + 1 = {n + 1} entries, "
            f"got {cfg.channel_mult}"
        )
    return n


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))); the last conv starts at zero so every block starts as identity.

    No normalisation layers: with identity-initialised residuals the network trains stably without
    them, and GroupNorm is a large share of the step time on CPU for these small convolutions.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(x))
        return self.skip(x) + self.conv2(F.silu(h))


class Encoder(nn.Module):
    """(B,3,H,W) -> (B,code_dim,H/f,W/f)."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        n = _levels(cfg)
        ch = [cfg.channels * m for m in cfg.channel_mult]
        self.patch = cfg.patch
        self.conv_in = nn.Conv2d(3 * cfg.patch**2, ch[0], 3, padding=1)
        layers: list[nn.Module] = []
        for i in range(n + 1):
            c_in = ch[max(i - 1, 0)]
            if i > 0:  # strided conv halves the resolution and changes the width
                layers.append(nn.Conv2d(c_in, ch[i], 4, stride=2, padding=1))
            layers += [ResBlock(ch[i], ch[i]) for _ in range(cfg.enc_blocks)]
        self.body = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(ch[-1], cfg.code_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pixel_unshuffle(x, self.patch) if self.patch > 1 else x
        return self.conv_out(F.silu(self.body(self.conv_in(x))))


class Decoder(nn.Module):
    """(B,code_dim,h,w) -> (B,3,h*f,w*f), unclamped."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        n = _levels(cfg)
        ch = [cfg.channels * m for m in cfg.channel_mult]
        self.conv_in = nn.Conv2d(cfg.code_dim, ch[-1], 3, padding=1)
        layers: list[nn.Module] = []
        for i in range(n, -1, -1):
            layers += [ResBlock(ch[i], ch[i]) for _ in range(cfg.dec_blocks)]
            if i > 0:  # nearest upsampling + conv (no checkerboard artefacts of transposed convs)
                layers += [nn.Upsample(scale_factor=2.0, mode="nearest")]
                layers += [nn.Conv2d(ch[i], ch[i - 1], 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.patch = cfg.patch
        self.conv_out = nn.Conv2d(ch[0], 3 * cfg.patch**2, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.conv_out(F.silu(self.body(self.conv_in(z))))
        return F.pixel_shuffle(x, self.patch) if self.patch > 1 else x


class EMAQuantizer(nn.Module):
    """Nearest-codebook-vector quantisation with EMA codebook updates and dead-code re-seeding.

    Buffers (all in state_dict): `codebook` (K,D), `ema_sum` (K,D), `ema_count` (K,), `age` (K,)
    training steps since each code was last used, `initialized` (scalar, 0 until data-initialised).
    """

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        k, d = cfg.codebook_size, cfg.code_dim
        self.k, self.d = k, d
        self.decay = cfg.ema_decay
        self.reseed_after = cfg.reseed_after
        self.register_buffer("codebook", torch.randn(k, d) * 0.1)
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("ema_count", torch.ones(k))
        self.register_buffer("age", torch.zeros(k))
        self.register_buffer("initialized", torch.zeros(()))

    def nearest(self, z: Tensor) -> Tensor:
        """(N,D) float -> (N,) long: index of the nearest code (squared Euclidean distance)."""
        cb = self.codebook
        dist2 = z.pow(2).sum(1, keepdim=True) - 2 * z @ cb.t() + cb.pow(2).sum(1)[None]
        return dist2.argmin(1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z (B,D,h,w) -> (z_q straight-through (B,D,h,w), commitment loss (scalar), idx (B,h,w))."""
        b, d, h, w = z.shape
        # distances in fp32 even under bf16 autocast: bf16 would tie nearby codes and waste them
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, d)
            if self.training:
                self._update(flat)
            idx = self.nearest(flat)
            q = self.codebook[idx]
            commit = F.mse_loss(flat, q.detach())
            q = flat + (q - flat).detach()  # straight-through estimator
        z_q = q.view(b, h, w, d).permute(0, 3, 1, 2).to(z.dtype)
        return z_q, commit, idx.view(b, h, w)

    @torch.no_grad()
    def _update(self, flat: Tensor) -> None:
        flat = flat.detach()
        if not bool(self.initialized):
            self._init_from(flat)
        idx = self.nearest(flat)
        count = torch.bincount(idx, minlength=self.k).float()
        total = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)
        if dist.is_available() and dist.is_initialized():  # one codebook across data-parallel ranks
            dist.all_reduce(count)
            dist.all_reduce(total)
        self.ema_count.mul_(self.decay).add_(count, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(total, alpha=1 - self.decay)
        # Laplace smoothing keeps rarely used codes from dividing by ~0
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + self.k * 1e-5) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        self.age.add_(1).masked_fill_(count > 0, 0)
        dead = self.age >= self.reseed_after
        if bool(dead.any()):
            self._reseed(dead, flat)

    def _reseed(self, dead: Tensor, flat: Tensor) -> None:
        # a dead code restarts on a random encoder output of this batch: it is then used at once
        n_dead = int(dead.sum())
        pick = flat[torch.randint(len(flat), (n_dead,), device=flat.device)]
        self.codebook[dead] = pick
        self.ema_sum[dead] = pick
        self.ema_count[dead] = 1.0
        self.age[dead] = 0
        if dist.is_available() and dist.is_initialized():
            for t in (self.codebook, self.ema_sum, self.ema_count, self.age):
                dist.broadcast(t, src=0)

    def _init_from(self, flat: Tensor) -> None:
        """k-means++ seeding on a batch of encoder outputs, then two Lloyd iterations."""
        n = len(flat)
        chosen = [int(torch.randint(n, (1,)))]
        d2 = (flat - flat[chosen[0]]).pow(2).sum(1)
        for _ in range(1, self.k):
            p = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1.0 / n)
            i = int(torch.multinomial(p, 1))
            chosen.append(i)
            d2 = torch.minimum(d2, (flat - flat[i]).pow(2).sum(1))
        cb = flat[chosen].clone()
        for _ in range(2):
            self.codebook.copy_(cb)
            idx = self.nearest(flat)
            cnt = torch.bincount(idx, minlength=self.k).float()
            s = torch.zeros_like(cb).index_add_(0, idx, flat)
            used = cnt > 0
            cb[used] = s[used] / cnt[used, None]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(cb, src=0)
        self.codebook.copy_(cb)
        self.ema_sum.copy_(cb)
        self.ema_count.fill_(1.0)
        self.age.zero_()
        self.initialized.fill_(1.0)


class VQTokenizer(nn.Module):
    """Encoder + EMA vector quantiser + decoder. See the module docstring for the API."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        _levels(cfg)
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = EMAQuantizer(cfg)
        self.decoder = Decoder(cfg)
        for m in self.modules():
            # He init keeps the signal's scale through the norm-free stacks of conv + SiLU (PyTorch's
            # default shrinks it ~2x per layer, and the first hundreds of steps go to undoing that)
            if isinstance(m, nn.Conv2d) and m.weight.abs().sum() > 0:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.decoder.conv_out.weight, std=0.01)  # start from a flat grey image


    @property
    def vocab_size(self) -> int:
        return self.config.codebook_size

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (h, w) for an image of (height, width) pixels."""
        f = self.config.downsample
        if height % f or width % f:
            raise ValueError(f"image size {height}x{width} is not a multiple of the downsampling {f}")
        return height // f, width // f

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """(B,3,H,W) float in [-1,1] -> (B,h,w) long codebook indices (no gradient: an argmin)."""
        self.grid(images.shape[-2], images.shape[-1])
        z = self.encoder(images)
        b, d, h, w = z.shape
        flat = z.float().permute(0, 2, 3, 1).reshape(-1, d)
        return self.quantizer.nearest(flat).view(b, h, w)

    def decode_code(self, idx: Tensor) -> Tensor:
        """(B,h,w) long -> (B,3,H,W) float in [-1,1]."""
        z = self.quantizer.codebook[idx].permute(0, 3, 1, 2)
        dtype = next(self.decoder.parameters()).dtype
        return self.decoder(z.to(dtype)).clamp(-1, 1)

    def embed(self, idx: Tensor) -> Tensor:
        """(B,h,w) or (B,N) long -> (B,N,code_dim): the codebook vectors of the tokens."""
        return self.quantizer.codebook[idx.reshape(idx.shape[0], -1)]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: (recon (B,3,H,W) unclamped, commitment loss * beta (scalar), idx (B,h,w))."""
        z = self.encoder(images)
        z_q, commit, idx = self.quantizer(z)
        return self.decoder(z_q), self.config.beta * commit, idx
