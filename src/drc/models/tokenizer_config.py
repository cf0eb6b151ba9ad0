"""`TokenizerConfig`: the VQ tokenizer's sizes and training settings. `RunConfig` composes it as
`tokenizer`; `drc.models.tokenizer` builds from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenizerConfig:
    channels: int = 32  # base width; resolution level i has channels * channel_mult[i]
    codebook_size: int = 512
    code_dim: int = 32
    downsample: int = 8  # a power of two: 8 -> a 64x64 image becomes 8x8 tokens
    # pixel (un)shuffle factor before the first / after the last convolution: the convolutions never
    # run at full resolution (cheaper at the same PSNR: bench/README.md, "Measurements behind the
    # config defaults")
    patch: int = 2
    channel_mult: tuple[int, ...] = (2, 4, 8)  # one entry per conv resolution: log2(downsample/patch) + 1
    enc_blocks: int = 1  # residual blocks per resolution in the encoder
    dec_blocks: int = 2  # ... and in the decoder (heavier: it redraws details from few codes)
    beta: float = 0.25  # commitment loss weight
    ema_decay: float = 0.95  # short trainings: codes must follow a fast-moving encoder
    reseed_after: int = 50  # training steps without use after which a code is re-seeded
    edge_weight: float = 0.5  # training loss: weight of the image-gradient L1 term (sharp outlines)
