"""Every method's composer: builds, gives a valid LatentInstruction (a draft of the target)."""

from __future__ import annotations

import pytest
import torch

from drc.config import METHODS, RunConfig
from drc.errors import DrcError
from drc.methods import METHOD_ARCHITECTURE
from drc.models.composer_config import ComposerConfig
from drc.models.composers import DRCComposer, EntangledComposer, build_composer

# the linear head: these tests are about what the composers read; tests/models/test_draft_head.py
# covers the default codebook head with every method; no dropout, as the tests compare forward
# passes of modules in training mode
CFG = ComposerConfig(d_model=16, n_heads=2, fusion_layers=1, draft_head="linear", dropout=0.0)
CODE, VOCAB, K = 8, 24, 5


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
@pytest.mark.parametrize("n", [64, 96])  # stickers 8x8 and posters 12x8 token grids
def test_every_method_drafts_every_cell(method, n):
    c = build_composer(method, CFG, CODE, VOCAB, n, K)
    hist, mask, ref = inputs(n)
    out = c(hist, mask, ref)
    B = 3
    assert out.draft.shape == (B, n, VOCAB) and out.draft.dtype == torch.float32
    assert torch.isfinite(out.draft).all()
    assert torch.allclose(out.probs().sum(-1), torch.ones(B, n))
    if isinstance(c, DRCComposer):
        assert out.weights.shape == (B, K)
        assert torch.allclose(out.weights.sum(1), torch.ones(B))
        assert torch.all(out.weights[~mask] == 0)
    else:
        assert isinstance(c, EntangledComposer) and out.weights is None


def test_entangled_ignores_missing_history_images():
    c = build_composer("entangled", CFG, CODE, VOCAB, 16, K).eval()
    hist, mask, ref = inputs(16)
    changed = hist.clone()
    changed[~mask] = 5.0  # only the masked-out (missing) images change
    assert torch.allclose(c(hist, mask, ref).draft, c(changed, mask, ref).draft, atol=1e-5)
    changed[0, -1] += 1.0  # a valid image of user 0 changes: its draft must move
    moved = c(changed, mask, ref).draft
    assert not torch.allclose(c(hist, mask, ref).draft[0], moved[0])


def test_reference_only_and_history_only_read_only_their_input():
    n = 64
    hist, mask, ref = inputs(n)
    ro = build_composer("reference_only", CFG, CODE, VOCAB, n, K)
    ho = build_composer("history_only", CFG, CODE, VOCAB, n, K)
    assert torch.allclose(ro(hist, mask, ref).draft, ro(hist * 0 + 3, mask, ref).draft)
    assert torch.allclose(ho(hist, mask, ref).draft, ho(hist, mask, ref * 0 + 3).draft)
    assert not torch.allclose(ro(hist, mask, ref).draft, ro(hist, mask, ref * 0 + 3).draft)
    assert not ro.uses_history and not ho.uses_reference


def test_mask_reference_replaces_only_masked_positions():
    c = build_composer("drc", CFG, CODE, VOCAB, 16, K)
    ref = torch.randn(2, 16, CODE)
    masked = torch.zeros(2, 16, dtype=torch.bool)
    masked[0, :8] = True
    out = c.mask_reference(ref, masked)
    assert torch.equal(out[~masked], ref[~masked])
    assert torch.equal(out[masked], c.mask_embed.detach().expand(8, CODE))


def test_errors_name_the_valid_options():
    with pytest.raises(DrcError, match="valid methods: drc, "):
        build_composer("pigeon", CFG, CODE, VOCAB, 64, K)


def test_default_composers_are_of_comparable_size():
    """Fairness: the entangled baseline is not starved of parameters next to DRC."""
    cfg = RunConfig()
    cb = torch.randn(512, 32)
    sizes = {
        m: sum(p.numel() for p in build_composer(m, cfg.composer, 32, 512, 64, 5, codebook=cb).parameters())
        for m in ("drc", "entangled")
    }
    assert 0.4 < sizes["entangled"] / sizes["drc"] < 1.5, sizes


@pytest.mark.parametrize("grid", [(8, 8), (12, 8)])
def test_a_sem_window_keeps_the_reference_local(grid):
    from dataclasses import replace

    n = grid[0] * grid[1]
    local = build_composer("drc", replace(CFG, sem_window=1), CODE, VOCAB, n, K, grid=grid).eval()
    hist, mask, ref = inputs(n)
    moved = ref.clone()
    moved[:, n - 1] += 3.0  # the bottom-right cell of the reference changes
    def cells_changed(c):
        with torch.no_grad():
            return (c(hist, mask, ref).draft - c(hist, mask, moved).draft).abs().amax((0, 2)) > 1e-6

    changed = cells_changed(local)
    rows, cols = torch.arange(n) // grid[1], torch.arange(n) % grid[1]
    far = (grid[0] - 1 - rows > 2) | (grid[1] - 1 - cols > 2)  # more than 2 cells away (tower + 1 block)
    assert changed[n - 1] and not changed[far].any()
    # the window is derived from the config: a windowed composer has the same weights to save and load
    whole = build_composer("drc", replace(CFG, sem_window=0), CODE, VOCAB, n, K)
    assert local.state_dict().keys() == whole.state_dict().keys()
    assert cells_changed(whole)[far].any()  # without the window every cell reads the whole reference
    with pytest.raises(ValueError, match="sem_window"):
        build_composer("drc", replace(CFG, sem_window=1), CODE, VOCAB, n, K, grid=(grid[0] + 1, grid[1]))


def test_a_fusion_window_of_zero_keeps_the_reach_at_the_sem_window():
    """Stacked windows add up (SemTower w, then each fusion block w more); `fusion_window=0` keeps
    a draft cell to the reference within `sem_window` cells, however many fusion blocks there are."""
    from dataclasses import replace

    grid = (8, 8)
    n = 64
    hist, mask, ref = inputs(n)
    moved = ref.clone()
    moved[:, 0] += 3.0  # the top-left cell of the reference changes
    rows, cols = torch.arange(n) // 8, torch.arange(n) % 8
    reach = torch.maximum(rows, cols)  # Chebyshev distance from the changed cell

    def changed(c):
        with torch.no_grad():
            return (c(hist, mask, ref).draft - c(hist, mask, moved).draft).abs().amax((0, 2)) > 1e-6

    deep = replace(CFG, sem_window=1, fusion_layers=3)
    strict_cfg = replace(deep, fusion_window=0)
    strict = changed(build_composer("drc", strict_cfg, CODE, VOCAB, n, K, grid=grid).eval())
    assert strict[reach <= 1].all() and not strict[reach > 1].any()
    stacked_cfg = replace(deep, fusion_window=-1)
    stacked = changed(build_composer("drc", stacked_cfg, CODE, VOCAB, n, K, grid=grid).eval())
    assert stacked[reach == 4].any() and not stacked[reach > 4].any()  # (3 + 1) * 1 cells
