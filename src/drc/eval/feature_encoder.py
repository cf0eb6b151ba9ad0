"""The shipped feature encoder: a small CNN with a style embedding and a content embedding.

It is trained once, contrastively, on vendor emoji artwork (`drc.pretrained.train_encoder`; the same
concept drawn by two vendors is a content positive, two concepts drawn by one vendor are a style
positive) and shipped in `src/drc/pretrained/encoder/` like the bases. The probes build small heads
on its frozen features (`ProbeConfig.trunk = "shipped"`), and the evaluation's similarities read its
embeddings: the style embedding for `hist_sim`, the content embedding for `ref_sim`.

The trunk is the probes' kind (conv3x3 + GroupNorm + GELU, downsampling by 16) and fully
convolutional, so 64x64 stickers and 96x64 posters both go through. The style head reads the mean
and standard deviation of a middle and the last feature map (texture statistics, as a Gram matrix
would) and of a per-pixel colour map (the palette); the content head reads the mean of the last map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.config import load_yaml
from drc.errors import CheckpointError, DrcError
from drc.weights import load_module_weights

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "pretrained" / "encoder"


@dataclass
class EncoderConfig:
    """Encoder size: the trunk width `channels` (the last map has 4 * channels) and the embedding size."""

    channels: int = 32
    embed_dim: int = 64


class Block(nn.Module):
    """conv3x3 -> GroupNorm -> GELU; GroupNorm (not BatchNorm) so train and eval behave the same
    on augmented vs clean vs generated batches."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm = nn.GroupNorm(8 if cout % 8 == 0 else 1, cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.norm(self.conv(x)))


def _mean_std(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 2C): per-channel spatial mean and standard deviation."""
    return torch.cat([x.mean(dim=(2, 3)), x.flatten(2).std(dim=2, unbiased=False)], dim=1)


class FeatureEncoder(nn.Module):
    """forward(x: (B, 3, H, W) float in [-1, 1]) -> {"style": (B, E) unit, "content": (B, E) unit,
    "pooled": (B, 4c) the last map's mean, "stats": (B, 12c + 32) the style head's input}."""

    def __init__(self, cfg: EncoderConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or EncoderConfig()
        c, e = cfg.channels, cfg.embed_dim
        self.low = nn.Sequential(
            Block(3, c, stride=2), Block(c, c), Block(c, 2 * c, stride=2), Block(2 * c, 2 * c)
        )  # H/4
        self.high = nn.Sequential(
            Block(2 * c, 4 * c, stride=2), Block(4 * c, 4 * c), Block(4 * c, 4 * c, stride=2)
        )
        # un-normalised palette statistics: GroupNorm in the trunk divides out each image's own colour
        # scale, which is much of what tells one vendor's drawing from another's
        self.colour = nn.Sequential(nn.Conv2d(3, 16, 1), nn.GELU())
        self.style_head = nn.Sequential(nn.Linear(12 * c + 32, 4 * c), nn.GELU(), nn.Linear(4 * c, e))
        self.content_head = nn.Sequential(nn.Linear(4 * c, 4 * c), nn.GELU(), nn.Linear(4 * c, e))
        self.embed_dim = e
        self.feat_dim = 2 * e + 16 * c + 32

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        mid = self.low(x)
        top = self.high(mid)
        pooled = top.mean(dim=(2, 3))
        palette = _mean_std(self.colour(F.avg_pool2d(x, 2)))
        stats = torch.cat([_mean_std(mid), _mean_std(top), palette], dim=1)
        return {
            "style": F.normalize(self.style_head(stats), dim=-1),
            "content": F.normalize(self.content_head(pooled), dim=-1),
            "pooled": pooled,
            "stats": stats,
        }

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, feat_dim): [style embedding (E), content embedding (E), pooled trunk
        (4c), the style head's input statistics (12c + 32)]. The statistics keep the texture and
        colour that a new dataset's styles may hinge on where the vendor-trained embedding does not."""
        out = self(x)
        return torch.cat([out["style"], out["content"], out["pooled"], out["stats"]], dim=1)


def load_encoder(directory: str | Path = SHIPPED_DIR) -> FeatureEncoder:
    """Strictly load `directory/encoder.yaml` + `encoder.safetensors` (float16 on disk, float32 here).

    A missing or corrupt file, or weights that do not fit the config, is a one-line DrcError naming it.
    """
    directory = Path(directory)
    cfg_path = directory / "encoder.yaml"
    if not cfg_path.is_file():
        raise DrcError(f"{cfg_path}: feature encoder config not found")
    try:
        cfg = load_yaml(EncoderConfig, cfg_path)
    except DrcError:
        raise
    except Exception as e:  # a garbled yaml: name the file, keep it one line
        raise DrcError(f"{cfg_path}: cannot read the encoder config ({str(e).splitlines()[0]})") from None
    net = FeatureEncoder(cfg)
    try:
        load_module_weights(net, directory, name="encoder")
    except CheckpointError as e:
        raise DrcError(str(e).splitlines()[0]) from None
    return net.eval()
