"""Towers, the FusionNetwork and the DRC composer's history style (partners, weights, gradients)."""

from __future__ import annotations

import pytest
import torch

from drc.models.composer_config import ComposerConfig
from drc.models.composers import DRCComposer, importance_weights
from drc.models.fusion import FusionNetwork
from drc.models.towers import SemTower, StyleTower, Tower

CFG = ComposerConfig(d_model=16, n_heads=2, fusion_layers=1, draft_head="linear")
CODE, N, K, VOCAB = 8, 6, 4, 24


def composer(k: int = K) -> DRCComposer:
    torch.manual_seed(0)
    return DRCComposer(CFG, CODE, VOCAB, N, k).eval()


def test_tower_shape_and_partner_mask():
    torch.manual_seed(0)
    t = StyleTower(CODE, N, 16, 2)
    q, kv = torch.randn(2, N, CODE), torch.randn(2, 2 * N, CODE)
    out = t(q, kv)
    assert out.shape == (2, N, 16)
    mask = torch.zeros(2, 2 * N, dtype=torch.bool)
    mask[:, :N] = True
    kv2 = kv.clone()
    kv2[:, N:] += 5.0  # change only the masked-out partner image
    assert torch.allclose(t(q, kv, mask), t(q, kv2, mask), atol=1e-6)
    assert not torch.allclose(t(q, kv), t(q, kv2), atol=1e-3)
    assert issubclass(StyleTower, Tower) and issubclass(SemTower, Tower)  # one architecture, two roles


def test_fusion_makes_one_feature_per_draft_cell():
    f = FusionNetwork(CFG, N)
    out = f(torch.randn(3, N, 16), torch.randn(3, 2 * N, 16))
    assert out.shape == (3, N, CFG.d_model)
    assert DRCComposer(CFG, CODE, VOCAB, N, K)(
        torch.randn(3, K, N, CODE), torch.ones(3, K, dtype=torch.bool), torch.randn(3, N, CODE)
    ).draft.shape == (3, N, VOCAB)


def test_each_history_image_attends_to_the_other_valid_ones():
    c = composer()
    hist = torch.randn(2, K, N, CODE)
    mask = torch.tensor([[True, True, True, False], [False, False, False, True]])
    _, _, per = c.history_style(hist, mask)
    with torch.no_grad():
        # image 0 of row 0: partners are images 1 and 2 (not itself, not the padding at 3)
        want = c.style_tower(hist[0:1, 0], torch.cat([hist[0:1, 1], hist[0:1, 2]], 1))
        assert torch.allclose(per[0:1, 0], want, atol=1e-5)
        # row 1 has one valid image: it attends to itself
        want = c.style_tower(hist[1:2, 3], hist[1:2, 3])
        assert torch.allclose(per[1:2, 3], want, atol=1e-5)


def test_weights_sum_to_one_over_valid_history_and_padding_is_ignored():
    c = composer()
    hist = torch.randn(3, K, N, CODE)
    mask = torch.tensor([[True, True, True, True], [False, True, False, True], [False, False, False, True]])
    ref = torch.randn(3, N, CODE)
    out = c(hist, mask, ref)
    w = out.weights
    assert w.shape == (3, K)
    assert torch.allclose(w.sum(1), torch.ones(3), atol=1e-6)
    assert torch.all(w[~mask] == 0)
    assert torch.all(w[mask] > 0)
    assert w[2, 3] == 1.0
    hist2 = hist.clone()
    hist2[~mask] = torch.randn_like(hist2[~mask]) * 10  # what padding holds must not matter
    out2 = c(hist2, mask, ref)
    assert torch.allclose(out.draft, out2.draft, atol=1e-5)
    assert torch.allclose(out.weights, out2.weights, atol=1e-6)


def test_k1_and_an_all_missing_history_stay_finite():
    c = composer(k=1)
    out = c(torch.randn(2, 1, N, CODE), torch.tensor([[True], [False]]), torch.randn(2, N, CODE))
    assert torch.isfinite(out.draft).all()
    assert out.weights.tolist() == [[1.0], [0.0]]
    w = importance_weights(torch.randn(2, 3, requires_grad=True), torch.zeros(2, 3, dtype=torch.bool))
    w.sum().backward()
    assert torch.equal(w, torch.zeros(2, 3))


def test_gradients_reach_every_part_of_the_drc_composer():
    c = composer().train()
    hist, ref = torch.randn(2, K, N, CODE), torch.randn(2, N, CODE)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    out = c(hist, mask, ref)
    (out.draft.square().mean() + (out.weights * torch.arange(K)).sum()).backward()
    for name in ("style_tower", "sem_tower", "pool", "scorer", "fusion", "head"):
        grads = [p.grad for p in getattr(c, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name
    assert c.mask_embed.grad is None  # only the masked-target reference uses it


def test_frozen_tower_gets_no_gradient_while_the_other_trains():
    c = composer().train()
    for p in c.style_tower.parameters():
        p.requires_grad_(False)
    e = torch.randn(2, N, CODE)
    c.fuse(c.style_features(e, e), c.semantic_features(e, e)).draft.sum().backward()
    assert all(p.grad is None for p in c.style_tower.parameters())
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in c.sem_tower.parameters())


def test_pooled_style_memory_averages_runs_of_cells_within_an_image():
    t = StyleTower(CODE, N, 16, 2, mem_pool=3)
    mem = torch.arange(2 * 2 * N * 16, dtype=torch.float32).view(2, 2 * N, 16)
    pooled = t.pool_memory(mem)
    assert pooled.shape == (2, 2 * N // 3, 16)
    assert torch.allclose(pooled[:, 0], mem[:, 0:3].mean(1))
    assert torch.allclose(pooled[:, -1], mem[:, -3:].mean(1))
    with pytest.raises(ValueError, match="mem_pool 4"):
        StyleTower(CODE, N, 16, 2, mem_pool=4)  # 4 does not divide the 6 cells: a run would straddle images


def test_pooled_history_style_matches_the_tower_on_its_partners_and_ignores_padding():
    torch.manual_seed(0)
    cfg = ComposerConfig(d_model=16, n_heads=2, fusion_layers=1, style_pool=2, draft_head="linear")
    c = DRCComposer(cfg, CODE, VOCAB, N, K).eval()
    hist = torch.randn(2, K, N, CODE)
    mask = torch.tensor([[True, True, True, False], [False, False, False, True]])
    _, _, per = c.history_style(hist, mask)
    hist2 = hist.clone()
    hist2[0, 3] += 5.0  # only the padding changes
    with torch.no_grad():
        # the joint computation over the whole history = the tower on image 0's partners (1 and 2)
        want = c.style_tower(hist[0:1, 0], torch.cat([hist[0:1, 1], hist[0:1, 2]], 1))
        assert torch.allclose(per[0:1, 0], want, atol=1e-5)
        want = c.style_tower(hist[1:2, 3], hist[1:2, 3])  # alone: itself
        assert torch.allclose(per[1:2, 3], want, atol=1e-5)
        style, style2 = c.history_style(hist, mask)[0], c.history_style(hist2, mask)[0]
        assert torch.allclose(style[0], style2[0], atol=1e-6)
