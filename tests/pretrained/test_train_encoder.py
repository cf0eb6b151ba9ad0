"""The encoder's training script: a few steps on a tiny fake artwork set write a folder that loads
strictly; the contrastive loss prefers embeddings that group the labels; held-out vendors are refused."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from drc.config_io import save_yaml
from drc.errors import DrcError
from drc.eval.feature_encoder import load_encoder
from drc.pretrained import train_encoder
from drc.pretrained.encoder_data import ArtSet, render_art
from drc.pretrained.train_encoder import EncoderTrainConfig, supcon


def _fake_art(n: int = 24) -> ArtSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    styles = torch.arange(n) % 3
    contents = torch.arange(n) // 3 % 4  # every concept drawn by 3 vendors
    contents[-2:] = -1  # two icons whose concept no other vendor draws
    return ArtSet(images, styles, contents, ["a", "b", "c"], ["w", "x", "y", "z"],
                  [{"package": "fake", "license": "CC0-1.0"}])  # fmt: skip


def test_a_few_steps_write_a_loadable_encoder(tmp_path):
    torch.set_num_threads(1)
    art = _fake_art()
    art.save(tmp_path / "art.pt")
    tiny = EncoderTrainConfig(steps=50, pairs=3, singles=2, warmup=1, channels=8, embed_dim=8, size=32)
    save_yaml(tiny, tmp_path / "tiny.yaml")
    args = [
        "--out",
        str(tmp_path / "enc"),
        "--art",
        str(tmp_path / "art.pt"),
        "--config",
        str(tmp_path / "tiny.yaml"),
    ]
    rc = train_encoder.main([*args, "--steps", "3"])
    assert rc == 0
    net = load_encoder(tmp_path / "enc")
    assert net.cfg.channels == 8 and net.cfg.embed_dim == 8
    meta = json.loads((tmp_path / "enc" / "meta.json").read_text())
    assert meta["n_images"] == 24 and len(meta["train"]["losses"]) >= 2
    assert (tmp_path / "enc" / "train.yaml").is_file()
    dtypes = {v.dtype for v in load_file(str(tmp_path / "enc" / "encoder.safetensors")).values()}
    assert dtypes == {torch.float16}


def test_supcon_prefers_grouped_embeddings():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, -1])
    grouped = F.normalize(F.one_hot(labels.clamp(min=0), 3).float() + 0.01 * torch.randn(7, 3), dim=-1)
    grouped[-1] = F.normalize(torch.ones(3), dim=0)
    shuffled = grouped[torch.tensor([0, 2, 4, 1, 3, 5, 6])]
    assert supcon(grouped, labels, 0.1) < supcon(shuffled, labels, 0.1)
    assert supcon(grouped, torch.full((7,), -1), 0.1).item() == 0.0  # no positives: no loss


def test_held_out_vendors_are_refused(tmp_path):
    with pytest.raises(DrcError, match="streamline-emojis"):
        render_art(["twemoji", "streamline-emojis"], cache=tmp_path)
