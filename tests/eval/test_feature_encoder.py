"""The shipped feature encoder: loads strictly from its folder, takes any image size, and a bad or
missing file is a one-line DrcError naming it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from drc.errors import DrcError
from drc.eval.feature_encoder import SHIPPED_DIR, EncoderConfig, FeatureEncoder, load_encoder


def test_shipped_encoder_loads_strictly_and_is_small():
    net = load_encoder()
    assert (SHIPPED_DIR / "encoder.safetensors").stat().st_size <= 3 * 2**20
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = net(x)
        wide = net(torch.rand(2, 3, 64, 96) * 2 - 1)  # a poster: fully convolutional
    e = net.cfg.embed_dim
    assert out["style"].shape == (2, e) and out["content"].shape == (2, e)
    assert wide["style"].shape == (2, e)
    assert torch.allclose(out["style"].norm(dim=-1), torch.ones(2), atol=1e-4)
    assert net.features(x).shape == (2, net.feat_dim)


def test_shipped_encoder_records_its_training_and_sources():
    meta = json.loads((SHIPPED_DIR / "meta.json").read_text())
    assert meta["n_images"] > 1000 and meta["sources"]
    assert all(s["license"] for s in meta["sources"])
    # the emoji benchmark's unseen-style vendors stay unseen
    assert not {"streamline-emojis", "emojione-v1"} & set(meta["vendors"])
    assert (SHIPPED_DIR / "train.yaml").is_file()


def _copy(tmp_path):
    d = tmp_path / "enc"
    shutil.copytree(SHIPPED_DIR, d)
    return d


def test_missing_weights_names_the_file(tmp_path):
    d = _copy(tmp_path)
    (d / "encoder.safetensors").unlink()
    with pytest.raises(DrcError, match="encoder.safetensors") as e:
        load_encoder(d)
    assert "\n" not in str(e.value)


def test_missing_config_names_the_file(tmp_path):
    d = _copy(tmp_path)
    (d / "encoder.yaml").unlink()
    with pytest.raises(DrcError, match="encoder.yaml"):
        load_encoder(d)


def test_corrupt_weights_name_the_file(tmp_path):
    d = _copy(tmp_path)
    (d / "encoder.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DrcError, match="encoder.safetensors") as e:
        load_encoder(d)
    assert "\n" not in str(e.value)


def test_weights_of_another_size_are_refused(tmp_path):
    d = _copy(tmp_path)
    cfg = load_encoder(d).cfg
    (d / "encoder.yaml").write_text(f"channels: {cfg.channels + 8}\nembed_dim: {cfg.embed_dim}\n")
    with pytest.raises(DrcError, match="do not match"):
        load_encoder(d)


def test_a_fresh_encoder_is_size_agnostic():
    net = FeatureEncoder(EncoderConfig(channels=8, embed_dim=16))
    out = net(torch.zeros(1, 3, 32, 48))
    assert out["content"].shape == (1, 16) and out["pooled"].shape == (1, 32)
    assert net.features(torch.zeros(1, 3, 32, 48)).shape == (1, net.feat_dim)
