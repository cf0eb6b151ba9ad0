"""Every method's composer: builds, gives a valid LatentInstruction within the generator's budget."""

from __future__ import annotations

import pytest
import torch

from drc.config import METHODS, RunConfig
from drc.errors import DrcError
from drc.models.composers import (
    METHOD_ARCHITECTURE,
    DRCComposer,
    EntangledComposer,
    build_composer,
    pool_factor,
    token_grid,
)
from drc.models.fusion import ComposerConfig

CFG = ComposerConfig(d_model=16, n_heads=2, n_queries=8, fusion_layers=1)
CODE, D_LMM, K = 8, 24, 5


def inputs(n: int, b: int = 3):
    torch.manual_seed(0)
    hist = torch.randn(b, K, n, CODE)
    mask = torch.ones(b, K, dtype=torch.bool)
    mask[1, :3] = False  # a cold-start user with 2 images (right-aligned)
    mask[2, :4] = False  # ... and one with 1 image
    return hist, mask, torch.randn(b, n, CODE)


def test_the_registry_covers_every_method():
    assert set(METHOD_ARCHITECTURE) == set(METHODS)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("grid", [(8, 8), (12, 8)])  # stickers 64x64 and posters 96x64 at 8x downsampling
def test_every_method_builds_a_valid_instruction(method, grid):
    n = grid[0] * grid[1]
    c = build_composer(method, CFG, CODE, D_LMM, n, K, grid=grid, max_instruction=128)
    hist, mask, ref = inputs(n)
    out = c(hist, mask, ref)
    B = 3
    assert out.tokens.shape[0] == B and out.tokens.shape[2] == D_LMM
    assert out.mask.shape == out.tokens.shape[:2] and out.mask.dtype == torch.bool
    assert out.length <= 128 and out.length <= c.max_length
    assert torch.isfinite(out.tokens).all()
    assert out.mask.any(1).all()  # every example has something to condition on
    if isinstance(c, DRCComposer):
        assert out.length == CFG.n_queries and out.mask.all()
        assert out.weights.shape == (B, K)
        assert torch.allclose(out.weights.sum(1), torch.ones(B))
        assert torch.all(out.weights[~mask] == 0)
    else:
        assert isinstance(c, EntangledComposer) and out.weights is None


def test_entangled_layout_pooling_and_padding_mask():
    c = build_composer("entangled", CFG, CODE, D_LMM, 96, K, grid=(12, 8), max_instruction=128)
    # 6 images of 12x8 = 576 tokens; 2x2 pooling gives 144 > 128, so 3x3 (ceil): 4x3 = 12 per image
    assert c.pool_s == 3 and c.per_image == 12 and c.max_length == 72
    hist, mask, ref = inputs(96)
    out = c(hist, mask, ref)
    per_img = out.mask.view(3, K + 1, 12)
    assert torch.equal(per_img[:, :K].all(-1), mask) and torch.equal(per_img[:, :K].any(-1), mask)
    assert per_img[:, K].all()  # the reference is always there
    ref2 = ref.clone()
    ref2[:, :, 0] += 1.0
    out2 = c(hist, mask, ref2)
    assert torch.allclose(out.tokens[:, : K * 12], out2.tokens[:, : K * 12])  # history part unaffected
    assert not torch.allclose(out.tokens[:, K * 12 :], out2.tokens[:, K * 12 :])
    # stickers: 6 x 64 = 384 -> 2x2 pooling, 6 x 16 = 96 tokens
    assert build_composer("entangled", CFG, CODE, D_LMM, 64, K, max_instruction=128).pool_s == 2


def test_reference_only_and_history_only_read_only_their_input():
    n = 64
    hist, mask, ref = inputs(n)
    ro = build_composer("reference_only", CFG, CODE, D_LMM, n, K)
    ho = build_composer("history_only", CFG, CODE, D_LMM, n, K)
    assert ro.max_length == 64 and ro.pool_s == 1  # one image fits unpooled
    assert torch.allclose(ro(hist, mask, ref).tokens, ro(hist * 0 + 3, mask, ref).tokens)
    assert torch.allclose(ho(hist, mask, ref).tokens, ho(hist, mask, ref * 0 + 3).tokens)
    assert not ro.uses_history and not ho.uses_reference


def test_mask_reference_replaces_only_masked_positions():
    c = build_composer("drc", CFG, CODE, D_LMM, 16, K)
    ref = torch.randn(2, 16, CODE)
    masked = torch.zeros(2, 16, dtype=torch.bool)
    masked[0, :8] = True
    out = c.mask_reference(ref, masked)
    assert torch.equal(out[~masked], ref[~masked])
    assert torch.equal(out[masked], c.mask_embed.detach().expand(8, CODE))


def test_grid_and_budget_helpers():
    assert token_grid(64, None) == (8, 8) and token_grid(96, None) == (1, 96)
    assert token_grid(96, (12, 8)) == (12, 8)
    assert pool_factor((8, 8), 6, 384) == 1 and pool_factor((8, 8), 6, 383) == 2
    with pytest.raises(DrcError, match="token grid"):
        token_grid(96, (8, 8))
    with pytest.raises(DrcError, match="do not fit"):
        pool_factor((8, 8), 6, 5)


def test_errors_name_the_valid_options():
    with pytest.raises(DrcError, match="valid methods: drc, "):
        build_composer("pigeon", CFG, CODE, D_LMM, 64, K)
    big = ComposerConfig(d_model=16, n_heads=2, n_queries=200)
    with pytest.raises(DrcError, match="n_queries"):
        build_composer("drc", big, CODE, D_LMM, 64, K, max_instruction=128)


def test_default_composer_config_fits_the_default_generator_budget():
    cfg = RunConfig()
    c = build_composer("drc", cfg.composer, 32, cfg.generator.d_model, 64, cfg.data.history_len)
    assert c.max_length <= 128
