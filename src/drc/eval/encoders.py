"""Local pretrained encoders for CLIP-I, CLIP-T, DINO and FID (`drc eval --encoder PATH`).

`load_encoder(path)` reads a transformers-format folder (config.json + weights) and detects the
model from config.json's "model_type": "clip" (CLIPModel: image and text features) or "dinov2"
(Dinov2Model: image features, the pooled CLS token). NOTHING is ever downloaded: HF_HUB_OFFLINE
is set and every load passes `local_files_only=True`, so a missing file is an error naming it.

Preprocessing is done here with torch (no CLIPProcessor, no torchvision): resize the shorter side
(bicubic, antialiased), centre-crop to the model's square input, normalise. Sizes, mean and std come
from the folder's preprocessor_config.json when it has one, else from the standard values: CLIP's
mean/std at the vision config's image_size; ImageNet mean/std at 224 for DINOv2.

Text (CLIP only) is tokenised with the folder's own tokenizer files (CLIPTokenizer, then
AutoTokenizer). A folder without tokenizer files falls back to a byte tokenizer (each UTF-8 byte
one id, between BOS and EOS): enough for tests with tiny random models, meaningless for a real
CLIP, so it warns.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.errors import DrcError
from drc.eval.metrics import cosine_rows, fd

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_TYPES = ("clip", "dinov2")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


class ClipByteTokenizer:
    """Fallback tokenizer: UTF-8 bytes mapped onto ids that are not BOS/EOS/PAD, wrapped in BOS..EOS.

    CLIP pools the text at the EOS position, so EOS must appear exactly once, at the end.
    """

    def __init__(self, vocab_size: int, bos: int, eos: int, pad: int, max_len: int):
        specials = {bos, eos, pad}
        self.ids = [i for i in range(vocab_size) if i not in specials]
        if not self.ids:
            raise DrcError(f"byte tokenizer: vocab_size {vocab_size} leaves no ids for text")
        self.bos, self.eos, self.pad, self.max_len = bos, eos, pad, max_len

    def __call__(self, texts: list[str]) -> dict[str, Tensor]:
        rows = []
        for t in texts:
            body = [self.ids[b % len(self.ids)] for b in t.encode("utf-8")][: max(self.max_len - 2, 0)]
            rows.append([self.bos, *body, self.eos])
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}


@dataclass
class FeatureEncoder:
    """A loaded local encoder. `kind` is "clip" or "dinov2"."""

    kind: str
    path: Path
    model: nn.Module
    crop: int  # square model input size
    resize: int  # shorter side before the centre crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    tokenizer: Any = None
    max_text_len: int = 77
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) (or float in [-1, 1]) -> normalised float (B, 3, crop, crop)."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.float() + 1.0) / 2.0
        h, w = x.shape[-2:]
        scale = self.resize / min(h, w)
        nh, nw = max(round(h * scale), self.crop), max(round(w * scale), self.crop)
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
        top, left = (nh - self.crop) // 2, (nw - self.crop) // 2
        x = x[:, :, top : top + self.crop, left : left + self.crop].clamp(0, 1)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def image_features(self, images: Tensor, batch_size: int = 64) -> Tensor:
        """uint8 (B, 3, H, W) -> (B, F) float32 on CPU: CLIP's projected image embedding, or
        DINOv2's pooled (layer-normed) CLS token."""
        out = []
        for i in range(0, len(images), batch_size):
            px = self.preprocess(images[i : i + batch_size].to(self.device))
            if self.kind == "clip":
                f = _pooled(self.model.get_image_features(pixel_values=px))
            else:
                f = self.model(pixel_values=px).pooler_output
            out.append(f.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)

    @torch.no_grad()
    def text_features(self, texts: list[str], batch_size: int = 64) -> Tensor:
        """list of B strings -> (B, F) float32 on CPU: CLIP's projected text embedding."""
        if self.kind != "clip":
            raise DrcError(f"{self.path}: a {self.kind} encoder has no text features (CLIP-T needs CLIP)")
        out = []
        for i in range(0, len(texts), batch_size):
            chunk = list(texts[i : i + batch_size])
            if isinstance(self.tokenizer, ClipByteTokenizer):
                enc = self.tokenizer(chunk)
            else:
                enc = self.tokenizer(
                    chunk, padding=True, truncation=True, max_length=self.max_text_len, return_tensors="pt"
                )
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
            f = self.model.get_text_features(input_ids=ids, attention_mask=mask)
            out.append(_pooled(f).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)


def _pooled(out: Any) -> Tensor:
    # transformers 4.x returns the projected embedding; 5.x an output whose pooler_output holds it
    return out if isinstance(out, Tensor) else out.pooler_output


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DrcError(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(data, dict):
        raise DrcError(f"{path}: expected a JSON object")
    return data


def _side(v: Any, default: int) -> int:
    """A size entry of preprocessor_config.json: int, {"shortest_edge"} or {"height", "width"}."""
    if isinstance(v, int):
        return v
    if isinstance(v, dict):
        for k in ("shortest_edge", "height", "width"):
            if isinstance(v.get(k), int):
                return int(v[k])
    return default


def _tokenizer(path: Path, text_cfg: Any) -> Any:
    if any((path / f).is_file() for f in TOKENIZER_FILES):
        from transformers import AutoTokenizer, CLIPTokenizer

        errors = []
        for cls in (CLIPTokenizer, AutoTokenizer):
            try:
                return cls.from_pretrained(str(path), local_files_only=True)
            except (OSError, ValueError, TypeError) as e:
                errors.append(f"{cls.__name__}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        raise DrcError(f"{path}: tokenizer files present but unreadable ({'; '.join(errors)})")
    warnings.warn(
        f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); CLIP-T uses a byte tokenizer, "
        "which is only meaningful for test models",
        stacklevel=3,
    )
    eos = text_cfg.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    pad = text_cfg.pad_token_id if text_cfg.pad_token_id is not None else eos
    max_len = text_cfg.max_position_embeddings
    return ClipByteTokenizer(text_cfg.vocab_size, text_cfg.bos_token_id, eos, pad, max_len)


def load_encoder(path: str | Path, device: torch.device | str = "cpu") -> FeatureEncoder:
    """Load a local CLIP or DINOv2 folder (transformers format); never downloads anything."""
    path = Path(path)
    if not path.is_dir():
        raise DrcError(f"{path}: encoder folder not found")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise DrcError(f"{cfg_path}: not found (expected a transformers CLIP or DINOv2 folder)")
    model_type = _read_json(cfg_path).get("model_type")
    if model_type not in ENCODER_TYPES:
        valid = ", ".join(ENCODER_TYPES)
        raise DrcError(f"{cfg_path}: model_type {model_type!r} is not supported; valid: {valid}")
    # set before transformers / huggingface_hub are imported, which read them once
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError:
        raise DrcError("encoder metrics need the transformers package: pip install 'drc[hf]'") from None
    cls = transformers.CLIPModel if model_type == "clip" else transformers.Dinov2Model
    try:
        model = cls.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DrcError(f"{path}: cannot load the {model_type} weights ({msg})") from None
    device = torch.device(device)
    model = model.float().to(device).eval()
    pre_path = path / "preprocessor_config.json"
    pre = _read_json(pre_path) if pre_path.is_file() else {}
    if model_type == "clip":
        size = int(model.config.vision_config.image_size)
        mean, std = CLIP_MEAN, CLIP_STD
    else:
        size = 224  # DINOv2 interpolates its position embeddings; its processors crop 224
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    crop = _side(pre.get("crop_size"), size)
    resize = _side(pre.get("size"), crop)
    mean = tuple(pre.get("image_mean", mean))
    std = tuple(pre.get("image_std", std))
    enc = FeatureEncoder(model_type, path, model, crop, resize, mean, std, device=device)  # type: ignore[arg-type]
    if model_type == "clip":
        enc.tokenizer = _tokenizer(path, model.config.text_config)
        enc.max_text_len = int(model.config.text_config.max_position_embeddings)
    return enc


def encoder_scores(
    enc: FeatureEncoder, outputs: Tensor, targets: Tensor, texts: list[str] | None = None
) -> dict[str, float]:
    """Metrics from one encoder, on uint8 (N, 3, H, W) outputs and their real targets:
    CLIP: clip_i = mean cos(output, target), clip_t = mean cos(output, text) (when texts are
    given), fid_clip; DINOv2: dino = mean cos(output, target), fid_dinov2. FID is `fd` on the
    encoder's features (noisy below a few hundred images; compare methods at equal N only)."""
    fo, ft = enc.image_features(outputs), enc.image_features(targets)
    cos = float(np.mean(cosine_rows(fo, ft))) if len(fo) else float("nan")
    out: dict[str, float] = {}
    if enc.kind == "clip":
        out["clip_i"] = cos
        if texts is not None:
            if len(texts) != len(fo):
                raise ValueError(f"{len(fo)} outputs but {len(texts)} texts")
            out["clip_t"] = float(np.mean(cosine_rows(fo, enc.text_features(texts))))
    else:
        out["dino"] = cos
    out[f"fid_{enc.kind}"] = fd(fo, ft)
    return out
