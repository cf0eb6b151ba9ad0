"""Generator: shapes, masks, classifier-free-guidance dropout, seeded and cached sampling; byte tokenizer."""

from __future__ import annotations

import pytest
import torch

from agreement import share_equal
from drc.models.generator import Generator, flops_per_token
from drc.models.generator_config import GeneratorConfig
from drc.models.instruction import LatentInstruction
from drc.models.text import ByteTokenizer
from drc.models.token_model import draft_guide

V, GRID, D = 32, (3, 4), 32
TEXTS = ["a cat sticker, love", "", "a dog"]


def _model(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(n_layer=2, n_head=2, d_model=D, max_text_len=24)
    return Generator(cfg.with_visual(V, *GRID)).eval()


def _instr(b: int = 3, seed: int = 0) -> LatentInstruction:
    g = torch.Generator().manual_seed(seed)
    return LatentInstruction(torch.randn(b, GRID[0] * GRID[1], V, generator=g) * 3)


def _text() -> tuple[torch.Tensor, torch.Tensor]:
    return ByteTokenizer().encode(TEXTS, 24)


def _tokens(b: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (b, GRID[0] * GRID[1]), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- byte tokenizer


def test_byte_tokenizer_round_trip_padding_and_cut() -> None:
    tok = ByteTokenizer()
    ids, mask = tok.encode(["héllo", "", "x" * 40], 8)
    assert ids.shape == (3, 8) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [6, 0, 8]  # é is two UTF-8 bytes; the long text is cut
    assert tok.decode(ids, mask) == ["héllo", "", "x" * 8]
    assert int(ids[~mask].abs().sum()) == 0


# ----------------------------------------------------------------------------- config and shapes


def test_config_needs_visual_fields_and_with_visual_fills_them() -> None:
    with pytest.raises(ValueError, match="with_visual"):
        Generator(GeneratorConfig(n_layer=1, n_head=2, d_model=D))
    cfg = GeneratorConfig(n_layer=1, n_head=2, d_model=D).with_visual(512, 12, 8)
    assert (cfg.visual_vocab, cfg.n_visual, cfg.grid_w) == (512, 96, 8)
    assert cfg.with_visual(64, 8, 8) == cfg  # filled fields are kept


def test_forward_and_loss_shapes() -> None:
    g = _model()
    ids, mask = _text()
    logits = g(ids, mask, _instr(), _tokens())
    assert logits.shape == (3, GRID[0] * GRID[1], V)
    loss = g.loss(ids, mask, None, _tokens())
    assert loss.shape == (3,) and bool(torch.isfinite(loss).all())
    # untrained: close to uniform over the vocabulary
    assert abs(float(loss.detach().mean()) - torch.log(torch.tensor(float(V)))) < 0.5


def test_flops_per_token_counts_weights() -> None:
    cfg = GeneratorConfig().with_visual(512, 8, 8)
    fwd = flops_per_token(cfg, training=False)
    n_block = cfg.n_layer * 12 * cfg.d_model**2
    assert 2 * n_block < fwd < 2 * n_block * 1.5
    assert flops_per_token(cfg) == pytest.approx(3 * fwd)


# ----------------------------------------------------------------------------- masks


def test_the_draft_conditions_the_output_and_can_be_hidden_per_row() -> None:
    g = _model()
    ids, mask = _text()
    ins, tok = _instr(), _tokens()
    other = LatentInstruction(ins.draft.clone())
    other.draft[0, 2] = torch.randn(V) * 3  # one cell of row 0's draft changes
    a, b = g(ids, mask, ins, tok), g(ids, mask, other, tok)
    assert (a[0] - b[0]).abs().max() > 1e-3  # the draft is read
    torch.testing.assert_close(a[1:], b[1:], rtol=1e-5, atol=1e-5)  # rows do not leak into each other
    # drop_draft hides the draft only: the row reads its text and the null instruction, as with no draft
    hide = torch.tensor([True, False, False])
    hidden = g(ids, mask, ins, tok, drop_draft=hide)
    torch.testing.assert_close(hidden[0], g(ids, mask, None, tok)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hidden[1:], a[1:], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="draft of"):
        g(ids, mask, LatentInstruction(torch.randn(3, 5, V)), tok)


def test_hard_draft_is_one_hot_and_sharpen_zero_is_its_argmax() -> None:
    tok = _tokens()
    hard = LatentInstruction.hard(tok, V)
    assert torch.equal(hard.probs().argmax(-1), tok)
    assert torch.allclose(hard.probs().amax(-1), torch.ones(3, 12))
    ins = _instr()
    assert torch.equal(ins.sharpen(0).argmax(), ins.argmax())
    assert torch.allclose(ins.sharpen(0).probs().amax(-1), torch.ones(3, 12))
    assert torch.allclose(ins.sharpen(0.5).draft, ins.draft * 2)
    g = _model()
    ids, mask = _text()
    # the hard draft embeds exactly the code's draft embedding at each cell
    e = g.embed_draft(hard) - g.row_emb(g.rows) - g.col_emb(g.cols) - g.draft_type
    torch.testing.assert_close(e, g.draft_emb(tok), rtol=1e-5, atol=1e-5)


def test_text_padding_length_changes_nothing() -> None:
    g = _model()
    tok = _tokens()
    a = g(*ByteTokenizer().encode(TEXTS, 24), None, tok)
    b = g(*ByteTokenizer().encode(TEXTS, 20), None, tok)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_drop_cond_means_null_instruction_and_no_text() -> None:
    g = _model()
    ids, mask = _text()
    tok = _tokens()
    drop = torch.tensor([True, False, True])
    dropped = g(ids, mask, _instr(), tok, drop)
    empty_ids, empty_mask = ByteTokenizer().encode([""] * 3, 24)
    uncond = g(empty_ids, empty_mask, None, tok)
    torch.testing.assert_close(dropped[[0, 2]], uncond[[0, 2]], rtol=1e-5, atol=1e-5)
    kept = g(ids, mask, _instr(), tok)
    torch.testing.assert_close(dropped[1], kept[1], rtol=1e-5, atol=1e-5)
    assert (dropped[0] - kept[0]).abs().max() > 1e-3


def test_teacher_forcing_is_causal() -> None:
    g = _model()
    ids, mask = _text()
    tok = _tokens()
    other = tok.clone()
    other[:, 6:] = (other[:, 6:] + 1) % V  # change the future: logits up to slot 6 must not move
    torch.testing.assert_close(g(ids, mask, None, tok)[:, :7], g(ids, mask, None, other)[:, :7])


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("cfg_scale", [1.0, 2.5])
@pytest.mark.parametrize("with_instr", [False, True])
def test_kv_cache_samples_equal_recomputed_samples(cfg_scale: float, with_instr: bool) -> None:
    g = _model()
    ids, mask = _text()
    ins = _instr() if with_instr else None
    kw = dict(temperature=1.0, top_k=8, cfg_scale=cfg_scale)
    a = g.generate(ids, mask, ins, generator=torch.Generator().manual_seed(7), use_cache=True, **kw)
    b = g.generate(ids, mask, ins, generator=torch.Generator().manual_seed(7), use_cache=False, **kw)
    assert a.shape == (3, GRID[0] * GRID[1])
    # cached and recomputed attention are other matmul shapes: a draw may flip only at a rounding tie
    assert sum(torch.equal(x, y) for x, y in zip(a, b)) >= 2


def test_sampling_is_seeded() -> None:
    g = _model()
    ids, mask = _text()
    a = g.generate(ids, mask, None, generator=torch.Generator().manual_seed(1))
    b = g.generate(ids, mask, None, generator=torch.Generator().manual_seed(1))
    c = g.generate(ids, mask, None, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) < V


def test_greedy_and_top1_agree_with_teacher_forced_argmax() -> None:
    g = _model()
    ids, mask = _text()
    greedy = g.generate(ids, mask, None, temperature=0.0)
    top1 = g.generate(ids, mask, None, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy, top1)
    # feeding the greedy tokens back, each slot's argmax is the token it produced (one full pass
    # against the cached steps: other kernels, so allow a rounding-level tie to flip a few)
    assert share_equal(g(ids, mask, None, greedy).argmax(-1), greedy) >= 0.9


def test_cfg_scale_changes_samples_only_when_conditions_differ() -> None:
    g = _model()
    ids, mask = ByteTokenizer().encode([""] * 2, 24)  # no text, no instruction = unconditional
    a = g.generate(ids, mask, None, cfg_scale=1.0, generator=torch.Generator().manual_seed(0))
    b = g.generate(ids, mask, None, cfg_scale=3.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)  # cond == uncond, so guidance is a no-op


def test_draft_guide_is_the_draft_log_probability_times_its_weight_and_none_at_zero() -> None:
    instr = _instr()
    assert draft_guide(instr, 0.0) is None
    guide = draft_guide(instr, 2.0)
    assert guide is not None and guide.dtype == torch.float32 and guide.shape == instr.draft.shape
    assert torch.allclose(guide, 2.0 * instr.draft.log_softmax(-1))
    with pytest.raises(ValueError, match="< 0"):
        draft_guide(instr, -1.0)


def test_a_strong_draft_guide_samples_the_draft_and_a_mild_one_keeps_samples_varied() -> None:
    g = _model()
    ids, mask = _text()
    instr = LatentInstruction.hard(_tokens(), V)
    # a one-hot draft's log-probability is 0 at its code and -1e4 elsewhere: any positive weight
    # leaves only that code, at every temperature
    out = g.generate(ids, mask, instr, temperature=1.0, cfg_scale=2.0, guide=draft_guide(instr, 1.0),
                     generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(out, _tokens())
    # a soft draft with a mild weight narrows the choice without fixing it: other seeds, other images
    soft = _instr()
    guide = draft_guide(soft, 0.5)
    a = g.generate(ids, mask, soft, temperature=1.0, guide=guide, generator=torch.Generator().manual_seed(1))
    b = g.generate(ids, mask, soft, temperature=1.0, guide=guide, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


def test_draft_guide_of_the_wrong_shape_is_refused() -> None:
    g = _model()
    ids, mask = _text()
    with pytest.raises(ValueError, match="guide of shape"):
        g.generate(ids, mask, None, guide=torch.zeros(2, GRID[0] * GRID[1], V))


def test_sampling_and_training_under_bf16_autocast() -> None:
    g = _model()
    ids, mask = _text()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = g.generate(ids, mask, _instr(), cfg_scale=2.0, top_k=8, generator=torch.manual_seed(4))
        b = g.generate(ids, mask, _instr(), cfg_scale=2.0, top_k=8, generator=torch.manual_seed(4))
        g.train()
        loss = g.loss(ids, mask, _instr(), _tokens(), torch.tensor([True, False, False])).mean()
    assert torch.equal(a, b) and int(a.min()) >= 0 and int(a.max()) < V
    loss.backward()
    assert bool(torch.isfinite(loss)) and g.null_instr.grad is not None and g.bos.grad is not None


def test_token_noise_only_in_training() -> None:
    torch.manual_seed(0)
    cfg = GeneratorConfig(n_layer=1, n_head=2, d_model=D, token_noise=0.5).with_visual(V, *GRID)
    g = Generator(cfg).eval()
    ids, mask = _text()
    tok = _tokens()
    clean = g(ids, mask, None, tok)
    torch.testing.assert_close(g(ids, mask, None, tok), clean)  # eval: deterministic, no noise
    g.train()
    torch.manual_seed(1)
    noisy = g(ids, mask, None, tok)
    assert (noisy - clean).abs().max() > 1e-3
    torch.testing.assert_close(noisy[:, 0], clean[:, 0])  # slot 0 reads <img>, never a token
