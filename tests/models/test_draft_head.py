"""The draft heads: shapes, strict loading, and the codebook head's promise (a code no training target
showed can still be drafted; the linear head cannot)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from drc.config import METHODS
from drc.models.composer_config import ComposerConfig
from drc.models.composers import build_composer
from drc.models.draft_head import CodebookHead, make_draft_head

CODE, VOCAB, K, N = 8, 24, 3, 16


def codebook(v: int = VOCAB, dim: int = CODE, seed: int = 0) -> torch.Tensor:
    return torch.randn(v, dim, generator=torch.Generator().manual_seed(seed))


def test_codebook_head_scores_the_nearest_code_highest():
    cb = codebook()
    head = CodebookHead(CODE, cb)
    with torch.no_grad():  # LayerNorm off and proj = identity: the head's point is its input
        head.ln.weight.fill_(1.0)
        head.ln.bias.zero_()
        head.proj.weight.copy_(torch.eye(CODE))
        head.proj.bias.zero_()
    # inputs with zero mean and unit variance pass the LayerNorm unchanged
    x = F.layer_norm(cb + 0.01 * torch.randn(VOCAB, CODE), (CODE,))
    target = torch.cdist(x, cb).argmin(-1)
    assert torch.equal(head(x[None])[0].argmax(-1), target)


def test_codebook_head_scores_stay_float32_under_bf16_autocast():
    head = CodebookHead(CODE, codebook())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(torch.randn(2, N, CODE))
    assert out.dtype == torch.float32 and out.shape == (2, N, VOCAB)


def _train(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 400) -> None:
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(x), y).backward()
        opt.step()


def test_only_the_codebook_head_drafts_codes_no_target_showed():
    """Features are a fixed linear view of the target's code vector; 16 codes are trained, 8 never
    appear as a target. The linear head can only score those 8 down; the codebook head maps the
    feature back to the latent space, where the nearest vector is the right code."""
    torch.manual_seed(0)
    cb = codebook(v=24, dim=CODE, seed=1)
    view = torch.randn(CODE, 32)  # d_model 32 features
    seen, unseen = torch.arange(16), torch.arange(16, 24)
    y = seen.repeat(20)
    x = (cb[y] + 0.05 * torch.randn(len(y), CODE)) @ view
    y_test = unseen.repeat(5)
    x_test = (cb[y_test] + 0.05 * torch.randn(len(y_test), CODE)) @ view
    acc = {}
    for kind in ("linear", "codebook"):
        head = make_draft_head(kind, 32, 24, cb)
        _train(head, x, y)
        with torch.no_grad():
            assert (head(x).argmax(-1) == y).float().mean() > 0.95  # both fit what they saw
            acc[kind] = float((head(x_test).argmax(-1) == y_test).float().mean())
    assert acc["linear"] == 0.0
    # chance is 1/24; the codebook head got 0.5-0.9 over data seeds (it also learns to push the
    # unseen vectors away from what it saw, so not all of them)
    assert acc["codebook"] >= 0.35, acc


@pytest.mark.parametrize("method", METHODS)
def test_every_method_takes_the_codebook_head_and_loads_strictly(method):
    cfg = dataclasses.replace(ComposerConfig(d_model=16, n_heads=2, fusion_layers=1), draft_head="codebook")
    cb = codebook()
    c = build_composer(method, cfg, CODE, VOCAB, N, K, codebook=cb).eval()
    hist, mask, ref = torch.randn(2, K, N, CODE), torch.ones(2, K, dtype=torch.bool), torch.randn(2, N, CODE)
    out = c(hist, mask, ref)
    assert out.draft.shape == (2, N, VOCAB) and torch.isfinite(out.draft).all()
    again = build_composer(method, cfg, CODE, VOCAB, N, K, codebook=cb).eval()
    again.load_state_dict(c.state_dict(), strict=True)
    assert torch.allclose(again(hist, mask, ref).draft, out.draft)
    # the linear head's weights do not load into a codebook head (strict loading says so)
    linear = build_composer(method, dataclasses.replace(cfg, draft_head="linear"), CODE, VOCAB, N, K)
    with pytest.raises(RuntimeError):
        again.load_state_dict(linear.state_dict(), strict=True)


def test_the_codebook_head_needs_a_codebook_of_the_vocabulary():
    with pytest.raises(ValueError, match="codebook"):
        make_draft_head("codebook", 16, VOCAB, None)
    with pytest.raises(ValueError, match="codes"):
        make_draft_head("codebook", 16, VOCAB, codebook(v=VOCAB + 1))
    with pytest.raises(ValueError, match="valid: linear, codebook"):
        make_draft_head("mlp", 16, VOCAB)
