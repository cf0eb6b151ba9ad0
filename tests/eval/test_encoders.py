"""Local encoders: tiny random CLIP / DINOv2 folders saved with save_pretrained, loaded offline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import transformers  # the `hf` extra: required by these tests (no skip)

from drc.errors import DrcError
from drc.eval.encoders import ClipByteTokenizer, encoder_scores, load_encoder


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-level alphabet (every byte maps to a printable character)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _write_tokenizer(d: Path) -> tuple[int, int]:
    """A tiny CLIP BPE vocabulary (byte alphabet, a few merges); returns (vocab_size, eos id)."""
    chars = sorted(set(_bytes_to_unicode().values()))
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges = ["a t</w>", "c at</w>", "s t", "st i"]
    for tok in ("at</w>", "cat</w>", "st", "sti"):
        vocab[tok] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(vocab), vocab["<|endoftext|>"]


def _tiny_clip(d: Path, with_tokenizer: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    vocab_size, eos = _write_tokenizer(d) if with_tokenizer else (100, 99)
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "bos_token_id": eos - 1,
        "eos_token_id": eos,
        "pad_token_id": eos,
        "projection_dim": 16,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
        "projection_dim": 16,
    }
    torch.manual_seed(0)
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    transformers.CLIPModel(cfg).save_pretrained(d)
    return d


def _tiny_dino(d: Path) -> Path:
    torch.manual_seed(0)
    cfg = transformers.Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=28, patch_size=7
    )
    transformers.Dinov2Model(cfg).save_pretrained(d)
    return d


def _images(n: int, seed: int, h: int = 64, w: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=g)


def test_clip_folder_image_and_text_features(tmp_path):
    enc = load_encoder(_tiny_clip(tmp_path / "clip"))
    assert enc.kind == "clip" and enc.crop == 32
    assert type(enc.tokenizer).__name__ == "CLIPTokenizer"  # the folder's own files, not the fallback
    imgs = _images(3, 0)
    px = enc.preprocess(imgs)
    assert px.shape == (3, 3, 32, 32)
    f = enc.image_features(imgs, batch_size=2)
    assert f.shape == (3, 16) and torch.isfinite(f).all()
    # posters (96 x 64) are resized on the short side and centre-cropped
    assert enc.image_features(_images(2, 1, 96, 64)).shape == (2, 16)
    t = enc.text_features(["a cat sticker", "sticker"])
    assert t.shape == (2, 16) and torch.isfinite(t).all()
    assert not torch.allclose(t[0], t[1])
    s = encoder_scores(enc, imgs, imgs, texts=["a", "b", "c"])
    assert set(s) == {"clip_i", "clip_t", "fid_clip"}
    assert s["clip_i"] == pytest.approx(1.0, abs=1e-5)  # outputs identical to targets
    assert s["fid_clip"] == pytest.approx(0.0, abs=1e-3)
    s2 = encoder_scores(enc, imgs, _images(3, 5))
    assert s2["clip_i"] < 1.0 and "clip_t" not in s2


def test_clip_without_tokenizer_files_falls_back_to_bytes(tmp_path):
    d = _tiny_clip(tmp_path / "clip_notok", with_tokenizer=False)
    with pytest.warns(UserWarning, match="byte tokenizer"):
        enc = load_encoder(d)
    assert isinstance(enc.tokenizer, ClipByteTokenizer)
    t = enc.text_features(["hello", "a much longer caption than the model's sixteen positions"])
    assert t.shape == (2, 16) and torch.isfinite(t).all()
    ids = enc.tokenizer(["hi"])["input_ids"][0].tolist()
    assert ids[0] == 98 and ids[-1] == 99 and 99 not in ids[1:-1]  # EOS once, at the end


def test_dinov2_folder(tmp_path):
    enc = load_encoder(_tiny_dino(tmp_path / "dino"))
    assert enc.kind == "dinov2" and enc.crop == 224
    a, b = _images(4, 0), _images(4, 1)
    f = enc.image_features(a)
    assert f.shape == (4, 32) and torch.isfinite(f).all()
    s = encoder_scores(enc, a, b)
    assert set(s) == {"dino", "fid_dinov2"}
    assert -1.0 <= s["dino"] <= 1.0 and math.isfinite(s["fid_dinov2"]) and s["fid_dinov2"] > 0
    with pytest.raises(DrcError, match="no text features"):
        enc.text_features(["x"])


def test_preprocessor_config_overrides_sizes(tmp_path):
    d = _tiny_dino(tmp_path / "dino_pp")
    (d / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "size": {"shortest_edge": 40},
                "crop_size": {"height": 28, "width": 28},
                "image_mean": [0.5] * 3,
                "image_std": [0.5] * 3,
            }
        )
    )
    enc = load_encoder(d)
    assert (enc.resize, enc.crop, enc.mean) == (40, 28, (0.5, 0.5, 0.5))
    assert enc.preprocess(_images(1, 0)).shape == (1, 3, 28, 28)


def test_errors_name_the_path(tmp_path):
    with pytest.raises(DrcError, match="nowhere"):
        load_encoder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DrcError, match="config.json"):
        load_encoder(tmp_path / "empty")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(DrcError, match="valid: clip, dinov2"):
        load_encoder(tmp_path / "bert")
    d = _tiny_dino(tmp_path / "noweights")
    for f in d.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(DrcError, match="noweights"):
        load_encoder(d)
