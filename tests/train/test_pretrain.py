"""Tokenizer and generator pretraining through the one loop: loss goes down, strict load, exact resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from agreement import assert_codes_near_ties
from drc.config import build_config
from drc.errors import CheckpointError
from drc.models.inference import encode_images
from drc.models.loading import load_generator, load_tokenizer
from drc.models.text import ByteTokenizer
from drc.models.tokenizer import VQTokenizer
from drc.train.pretrain import train_generator, train_tokenizer
from drc.weights import atomic_save_tensors, read_tensors

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny convolutions gain nothing from a second thread, and on a machine shared with other
    jobs two OpenMP threads can make them 30x slower (threads spin at every op); restore afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _images(n: int = 48, seed: int = 0) -> torch.Tensor:
    """uint8 (n,3,32,32): a coloured background with a coloured square somewhere (learnable, not trivial)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, 32, 32, dtype=torch.uint8)
    for i in range(n):
        out[i] = torch.randint(0, 256, (3, 1, 1), generator=g, dtype=torch.uint8)
        y, x = (int(v) for v in torch.randint(0, 20, (2,), generator=g))
        out[i, :, y : y + 12, x : x + 12] = torch.randint(0, 256, (3, 1, 1), generator=g, dtype=torch.uint8)
    return out


def _cfg(steps: int = 24, **extra: object):
    ov = {
        "tokenizer.channels": 8,
        "tokenizer.codebook_size": 32,
        "tokenizer.code_dim": 8,
        "tokenizer.channel_mult": "1,2,2",
        "tokenizer_train.steps": steps,
        "tokenizer_train.batch_size": 8,
        "tokenizer_train.lr": 2e-3,
        "tokenizer_train.warmup": 2,
        "tokenizer_train.log_every": 4,
        "tokenizer_train.ckpt_every": steps // 2,
        "generator.n_layer": 1,
        "generator.d_model": 32,
        "generator.n_head": 2,
        "generator.token_noise": 0.0,  # a clean learnability check (noise is tested in tests/models)
        "generator_train.steps": steps,
        "generator_train.batch_size": 8,
        "generator_train.lr": 3e-3,
        "generator_train.warmup": 2,
        "generator_train.log_every": 4,
        "generator_train.ckpt_every": steps // 2,
        **extra,
    }
    return build_config(preset="tiny", overrides=ov)


def _rewind_to_first_checkpoint(ckpt: Path) -> None:
    """Simulate a crash after the first checkpoint: drop the last one and the final weights."""
    steps = sorted(p for p in ckpt.glob("step_*"))
    assert len(steps) == 2
    shutil.rmtree(steps[-1])
    (ckpt / "latest").write_text(steps[0].name)
    for f in ("model.safetensors", "model.yaml"):
        (ckpt.parent / f).unlink()


def test_tokenizer_trains_saves_loads_and_resumes_exactly(tmp_path: Path) -> None:
    images = _images()
    cfg = _cfg(steps=80, **{"tokenizer.ema_decay": 0.9, "tokenizer.reseed_after": 10})
    x = images[:8].float().div(127.5).sub(1)
    torch.manual_seed(0)
    untrained = VQTokenizer(cfg.tokenizer).eval()
    err0 = float((untrained.decode_code(untrained.encode(x)).detach() - x).abs().mean())

    model, stats = train_tokenizer(cfg, images, tmp_path / "tok", CPU, progress=False)
    assert set(stats) >= {"psnr", "codebook_usage", "perplexity", "steps", "seconds"}
    assert stats["steps"] == 80 and 0 < stats["codebook_usage"] <= 1 and stats["perplexity"] >= 1
    err1 = float((model.decode_code(model.encode(x)).detach() - x).abs().mean())
    assert err1 < 0.8 * err0
    hist = (tmp_path / "tok" / "history.jsonl").read_text().splitlines()
    assert len(hist) == 20

    loaded = load_tokenizer(tmp_path / "tok")
    assert torch.equal(loaded.encode(x), model.encode(x))  # the same weights, batch and precision
    tokens = encode_images(loaded, images, batch_size=16)
    assert tokens.shape == (48, 4, 4) and tokens.dtype == torch.long
    assert torch.equal(encode_images(loaded, images, batch_size=16), tokens)
    # encode_images runs in the precision `auto` picks here, in batches of 16: against fp32 codes of
    # a batch of 8, a code may flip only where two codes were a rounding-level tie
    assert_codes_near_ties(model, x, tokens[:8], model.encode(x))

    # crash after step 40, rerun: resumes from the checkpoint and ends with the very same weights
    _rewind_to_first_checkpoint(tmp_path / "tok" / "ckpt")
    resumed, _ = train_tokenizer(cfg, images, tmp_path / "tok", CPU, progress=False)
    for (k, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_load_tokenizer_is_strict_and_names_the_keys(tmp_path: Path) -> None:
    cfg = _cfg(steps=2)
    train_tokenizer(cfg, _images(8), tmp_path, CPU, progress=False)
    weights = read_tensors(tmp_path / "model.safetensors")
    weights.pop("decoder.conv_out.bias")
    weights["decoder.extra"] = torch.zeros(2)
    atomic_save_tensors(weights, tmp_path / "model.safetensors")
    match = r"missing keys: decoder\.conv_out\.bias.*unexpected keys: decoder\.extra"
    with pytest.raises(CheckpointError, match=match):
        load_tokenizer(tmp_path)


def _bank(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Token grids (n,4,4) whose content follows the caption: a learnable text-to-image task."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randint(0, 32, (4, 16), generator=g)
    kinds = torch.randint(0, 4, (n,), generator=g)
    texts = [f"kind {int(k)}" for k in kinds]
    return patterns[kinds].view(n, 4, 4), texts


def test_generator_pretraining_lowers_loss_loads_and_resumes(tmp_path: Path) -> None:
    tokens, texts = _bank()
    cfg = _cfg(steps=40)
    model, stats = train_generator(cfg, tokens, texts, tmp_path / "gen", CPU, progress=False)
    assert set(stats) >= {"loss", "steps", "seconds", "tokens_per_s"}
    assert model.config.visual_vocab == 32 and model.config.n_visual == 16 and model.config.grid_w == 4
    rows = [json.loads(r) for r in (tmp_path / "gen" / "history.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]

    loaded = load_generator(tmp_path / "gen")
    ids, mask = ByteTokenizer().encode(texts[:4], cfg.generator.max_text_len)
    flat = tokens[:4].flatten(1)
    torch.testing.assert_close(loaded(ids, mask, None, flat), model(ids, mask, None, flat))
    s1 = loaded.generate(ids, mask, None, generator=torch.Generator().manual_seed(0))
    s2 = model.generate(ids, mask, None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s1, s2)

    _rewind_to_first_checkpoint(tmp_path / "gen" / "ckpt")
    # checkpoint cadence is not part of what a run computes: resuming with another one is allowed
    cfg2 = _cfg(steps=40, **{"generator_train.ckpt_every": 7})
    resumed, _ = train_generator(cfg2, tokens, texts, tmp_path / "gen", CPU, progress=False)
    for (k, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoints_of_another_config_are_refused(tmp_path: Path) -> None:
    tokens, texts = _bank(8)
    train_generator(_cfg(steps=4), tokens, texts, tmp_path, CPU, progress=False)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="another config"):
        other = _cfg(steps=4, **{"generator.d_model": 64})
        train_generator(other, tokens, texts, tmp_path, CPU, progress=False)
