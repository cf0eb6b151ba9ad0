"""VQTokenizer: sticker/poster shapes, EMA codebook, data init, dead-code re-seeding, strict loading."""

from __future__ import annotations

import pytest
import torch

from drc.errors import CheckpointError
from drc.models.tokenizer import VQTokenizer
from drc.models.tokenizer_config import TokenizerConfig
from drc.weights import load_state_strict

TINY = TokenizerConfig(channels=8, codebook_size=16, code_dim=4, reseed_after=3)


def _images(b: int, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g) * 2 - 1


@pytest.mark.parametrize(("h", "w", "grid"), [(64, 64, (8, 8)), (96, 64, (12, 8))])
def test_shapes_sticker_and_poster(h: int, w: int, grid: tuple[int, int]) -> None:
    torch.manual_seed(0)
    m = VQTokenizer(TINY).eval()
    x = _images(2, h, w)
    assert m.grid(h, w) == grid
    idx = m.encode(x)
    assert idx.shape == (2, *grid) and idx.dtype == torch.long
    assert int(idx.min()) >= 0 and int(idx.max()) < TINY.codebook_size
    y = m.decode_code(idx).detach()
    assert y.shape == (2, 3, h, w)
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    assert m.embed(idx).shape == (2, grid[0] * grid[1], TINY.code_dim)
    assert torch.equal(m.embed(idx), m.embed(idx.flatten(1)))
    recon, vq_loss, idx2 = m(x)
    assert recon.shape == x.shape and vq_loss.ndim == 0 and idx2.shape == idx.shape


def test_grid_rejects_sizes_that_do_not_divide() -> None:
    with pytest.raises(ValueError, match="multiple"):
        VQTokenizer(TINY).grid(60, 64)
    with pytest.raises(ValueError, match="channel_mult"):
        VQTokenizer(TokenizerConfig(downsample=4, patch=2, channel_mult=(1, 2, 4)))
    with pytest.raises(ValueError, match="power of two"):
        VQTokenizer(TokenizerConfig(downsample=6))


def test_embed_is_the_codebook_vector() -> None:
    m = VQTokenizer(TINY)
    idx = torch.tensor([[3, 0, 15]])
    assert torch.equal(m.embed(idx)[0], m.quantizer.codebook[[3, 0, 15]])


def test_codebook_is_data_initialised_on_first_training_step() -> None:
    torch.manual_seed(0)
    m = VQTokenizer(TINY).train()
    assert float(m.quantizer.initialized) == 0
    x = _images(8)
    m(x)
    assert float(m.quantizer.initialized) == 1
    # k-means++ on encoder outputs: every code sits where encoder vectors are, so all but a few are used
    with torch.no_grad():
        z = m.encoder(x).permute(0, 2, 3, 1).reshape(-1, TINY.code_dim)
    used = torch.unique(m.quantizer.nearest(z)).numel()
    assert used >= TINY.codebook_size // 2


def test_ema_moves_used_codes_towards_their_vectors() -> None:
    torch.manual_seed(0)
    m = VQTokenizer(TINY).train()
    q = m.quantizer
    z = torch.randn(4, TINY.code_dim, 2, 2)
    q(z)  # initialise
    target = torch.full((1, TINY.code_dim, 2, 2), 0.7)
    code = int(q.nearest(target[:, :, 0, 0]).item())
    before = (q.codebook[code] - 0.7).norm()
    for _ in range(20):
        q(target)
    assert (q.codebook[code] - 0.7).norm() < before * 0.5


def test_dead_codes_are_reseeded_near_the_data() -> None:
    torch.manual_seed(0)
    m = VQTokenizer(TINY).train()
    q = m.quantizer
    x = _images(4)
    m(x)
    with torch.no_grad():
        q.codebook[5] = 1e3  # far from every encoder output: never the nearest
        q.ema_sum[5] = 1e3
    for _ in range(TINY.reseed_after):
        m(x)
    assert float(q.codebook[5].abs().max()) < 100  # re-seeded from an encoder output
    assert float(q.age.max()) < TINY.reseed_after


def test_state_dict_holds_codebook_buffers_and_loads_strictly() -> None:
    torch.manual_seed(0)
    a = VQTokenizer(TINY).train()
    a(_images(2))
    sd = a.state_dict()
    for k in ("codebook", "ema_sum", "ema_count", "age", "initialized"):
        assert f"quantizer.{k}" in sd
    b = VQTokenizer(TINY)
    load_state_strict(b, sd, "test")
    x = _images(2, seed=1)
    assert torch.equal(a.eval().encode(x), b.eval().encode(x))
    broken = {k: v for k, v in sd.items() if k != "quantizer.ema_count"}
    broken["extra.weight"] = torch.zeros(1)
    match = r"missing keys: quantizer\.ema_count.*unexpected keys: extra\.weight"
    with pytest.raises(CheckpointError, match=match):
        load_state_strict(VQTokenizer(TINY), broken, "test")
