"""Stage 1: triplets, the crossed compositions, a tiny run that learns; the TokenBank it reads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from agreement import assert_codes_near_ties
from drc.config import build_config
from drc.errors import DrcError
from drc.models.composers import build_composer
from drc.models.instruction import LatentInstruction
from drc.train.stage1 import COMPOSITIONS, TripletSource, stage1_losses, train_stage1
from drc.train.token_bank import TokenBank

pytestmark = pytest.mark.usefixtures("one_thread")


class RecordingComposer(nn.Module):
    """Tags each tower output with (query id, partner id) and records what the fusion is given."""

    def __init__(self):
        super().__init__()
        self.fused: list[tuple[list[int], list[int]]] = []

    @staticmethod
    def _tag(x_q, x_kv):  # images are constant tensors 1 (a), 2 (s), 3 (m): tag = 10 q + kv
        return (10 * x_q[..., :1] + x_kv[..., :1]).round()

    def style_features(self, x_q, x_kv):
        return self._tag(x_q, x_kv)

    def semantic_features(self, x_q, x_kv):
        return self._tag(x_q, x_kv)

    def fuse(self, style, sem):
        self.fused.append((style[:, 0, 0].int().tolist(), sem[:, 0, 0].int().tolist()))
        return LatentInstruction(torch.zeros(style.shape[0], style.shape[1], VOCAB))  # uniform drafts


VOCAB = 8


class RecordingGenerator:
    def __init__(self):
        self.targets = None

    def loss(self, text_ids, text_mask, instr, image_tokens, drop_cond):
        self.targets = image_tokens
        return torch.arange(image_tokens.shape[0], dtype=torch.float32)


class ConstEmbedder:
    def embed(self, idx):  # token id -> constant vector of that value
        return idx.float()[..., None].expand(*idx.shape, 4)


def test_the_four_crossed_compositions_all_target_the_anchor():
    comp, gen = RecordingComposer(), RecordingGenerator()
    B, N = 2, 3
    a, s, m = (torch.full((B, N), v) for v in (1, 2, 3))
    a = a.clone()
    a[1] = 1  # same value, but make the target tokens distinguishable per example below
    text = torch.zeros(4 * B, 2, dtype=torch.long), torch.ones(4 * B, 2, dtype=torch.bool)
    per = stage1_losses(comp, gen, ConstEmbedder(), a, s, m, *text, gen_weight=1.0)
    style, sem = comp.fused[0]
    # blocks of B: (F_sty^a, F_sem^a), (F_sty^a, F_sem^m), (F_sty^s, F_sem^a), (F_sty^s, F_sem^m)
    assert style == [12] * B + [12] * B + [21] * B + [21] * B  # Sty(q=a, kv=s), Sty(q=s, kv=a)
    assert sem == [13] * B + [31] * B + [13] * B + [31] * B  # Sem(q=a, kv=m), Sem(q=m, kv=a)
    assert COMPOSITIONS == (("a", "a"), ("a", "m"), ("s", "a"), ("s", "m"))
    assert torch.equal(gen.targets, a.repeat(4, 1))  # every composition reconstructs x_a
    # each composition's loss: the uniform draft's cross-entropy log(V) + the generator's term
    assert per.shape == (4, B)
    assert torch.allclose(per[1], torch.tensor([2.0, 3.0]) + math.log(VOCAB))
    gen.targets = None
    per0 = stage1_losses(comp, gen, ConstEmbedder(), a, s, m, *text)  # default: the draft term only
    assert gen.targets is None and torch.allclose(per0, torch.full((4, B), math.log(VOCAB)))


def test_labelled_triplets_share_exactly_one_factor(bank, owners):
    src = TripletSource(bank, bank.ids, owners)
    assert src.labelled and src.fallbacks == {"style_partner": 0, "semantic_partner": 0}
    rng = np.random.default_rng(0)
    pos = torch.arange(len(src)).repeat(3)
    a, s, m = src.draw(pos, rng)
    row = {tuple(t.tolist()): i for i, t in enumerate(bank.tokens)}
    for ta, ts, tm in zip(a, s, m):
        ia, is_, im = row[tuple(ta.tolist())], row[tuple(ts.tolist())], row[tuple(tm.tolist())]
        assert bank.styles[is_] == bank.styles[ia] and bank.semantics[is_] != bank.semantics[ia]
        assert bank.semantics[im] == bank.semantics[ia] and bank.styles[im] != bank.styles[ia]


def test_unlabelled_triplets_use_the_user_and_augmentations(make_bank, owners):
    bank = make_bank(labelled=False)
    src = TripletSource(bank, bank.ids, owners)
    assert not src.labelled
    a, s, m = src.draw(torch.arange(len(src)), np.random.default_rng(0))
    row = {tuple(t.tolist()): i for i, t in enumerate(bank.tokens)}
    for i, (ts, tm) in enumerate(zip(s, m)):
        j = row[tuple(ts.tolist())]
        assert j != i and owners[bank.ids[j]] == owners[bank.ids[i]]
        assert any(torch.equal(tm, bank.aug_tokens[i, x]) for x in range(bank.n_aug))
    with pytest.raises(DrcError, match="n_aug > 0"):
        TripletSource(make_bank(labelled=False, n_aug=0), bank.ids, owners)


def tiny_cfg(steps: int, trainable: str = "composer+generator", alpha: float = 1.0):
    return build_config(
        "drc",
        "tiny",
        overrides={
            "precision": "fp32",
            "composer.d_model": 16,
            "composer.n_heads": 2,
            "composer.fusion_layers": 1,
            "stage1.train.steps": steps,
            "stage1.train.batch_size": 8,
            "stage1.train.lr": 3e-3,
            "stage1.train.warmup": 2,
            "stage1.train.log_every": 10,
            "stage1.train.ckpt_every": 1000,
            "stage1.trainable": trainable,
            "stage1.alpha": alpha,
        },
    )


def models(cfg, bank, make_generator, k: int = 3):
    torch.manual_seed(0)
    gen = make_generator(d_model=32)
    code_dim = bank.codebook.shape[1]
    comp = build_composer(
        "drc", cfg.composer, code_dim, gen.config.visual_vocab, bank.n_visual, k, codebook=bank.codebook
    )
    return comp, gen


def test_a_tiny_stage1_run_lowers_the_loss_and_reports_the_sampler(bank, owners, make_generator, tmp_path):
    cfg = tiny_cfg(steps=60)
    comp, gen = models(cfg, bank, make_generator)
    cpu = torch.device("cpu")
    res = train_stage1(cfg, comp, gen, bank, bank.ids, owners, "a sticker", tmp_path, cpu, progress=False)
    first, last = res.history[0], res.history[-1]
    assert last["loss"] < 0.8 * first["loss"]
    for key in ("loss_aa", "loss_am", "loss_sa", "loss_sm", "entropy"):
        assert key in last
    assert last["loss_sm"] < first["loss_sm"]  # the fully crossed composition learns too
    rep = json.loads((tmp_path / "sampler.json").read_text())
    assert rep["n"] == len(bank.ids) and 0 < rep["entropy"] <= rep["max_entropy"] + 1e-9
    assert rep["hardest"] and rep["hardest"][0]["difficulty"] >= rep["hardest"][-1]["difficulty"]
    assert rep["hardest"][0]["id"] in bank.ids
    assert (tmp_path / "ckpt" / "latest").is_file()


def test_composer_only_training_leaves_the_generator_untouched(bank, owners, make_generator, tmp_path):
    cfg = tiny_cfg(steps=3, trainable="composer")
    comp, gen = models(cfg, bank, make_generator)
    before_g = {k: v.clone() for k, v in gen.state_dict().items()}
    before_t = [p.detach().clone() for p in comp.style_tower.parameters()]
    train_stage1(cfg, comp, gen, bank, bank.ids, owners, "x", tmp_path, torch.device("cpu"), progress=False)
    assert all(torch.equal(v, gen.state_dict()[k]) for k, v in before_g.items())
    assert any(not torch.equal(b, p) for b, p in zip(before_t, comp.style_tower.parameters()))
    assert all(p.requires_grad for p in gen.parameters())  # restored after the stage


def test_stage1_refuses_a_baseline_composer(bank, make_generator, tmp_path):
    cfg = tiny_cfg(steps=1)
    gen = make_generator(d_model=32)
    comp = build_composer(
        "entangled", cfg.composer, bank.codebook.shape[1], bank.codebook.shape[0], bank.n_visual, 3,
        codebook=bank.codebook,
    )
    with pytest.raises(DrcError, match="drc composer"):
        train_stage1(cfg, comp, gen, bank, bank.ids, {}, "x", tmp_path, torch.device("cpu"), progress=False)


def test_token_bank_build_with_the_real_tokenizer():
    from drc.data.bank import ImageBank
    from drc.models.tokenizer import VQTokenizer
    from drc.models.tokenizer_config import TokenizerConfig

    torch.manual_seed(0)
    tcfg = TokenizerConfig(
        channels=4, codebook_size=16, code_dim=8, downsample=4, patch=1, channel_mult=(1, 1, 2)
    )
    tok = VQTokenizer(tcfg)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 3, 32, 24), dtype=torch.uint8, generator=g)
    ids = [f"i{n}" for n in range(5)]
    ib = ImageBank.from_images(ids, images)
    items = {"i0": type("It", (), {"style": "s", "semantics": "m", "text": "t0"})()}
    tb = TokenBank.build(ib, tok, items, n_aug=2, seed=3, device="cpu", batch_size=2, precision="fp32")
    assert tb.tokens.shape == (5, 48) and tb.aug_tokens.shape == (5, 2, 48) and tb.grid == (8, 6)
    assert tb.styles[:2] == ["s", None] and tb.texts[0] == "t0" and not tb.labelled
    assert torch.equal(tb.embed(tb.tokens), tok.embed(tb.tokens))
    x3 = images[3:4].float() / 127.5 - 1
    # the bank encodes in batches of 2: against a batch of 1 a code may flip only at a rounding-level tie
    assert_codes_near_ties(tok, x3, tb.tokens[3:4].view(1, 8, 6), tok.encode(x3))
    again = TokenBank.build(ib, tok, items, n_aug=2, seed=3, device="cpu", batch_size=2, precision="fp32")
    assert torch.equal(again.aug_tokens, tb.aug_tokens)  # the seed fixes the augmentations
    # only the items something reads get augmented; the others hold their own tokens
    some = TokenBank.build(
        ib, tok, items, n_aug=2, seed=3, device="cpu", batch_size=2, precision="fp32", aug_ids=["i1", "i3"]
    )
    assert torch.equal(some.tokens, tb.tokens)
    for r in (0, 2, 4):
        assert torch.equal(some.aug_tokens[r], tb.tokens[r].expand(2, -1))
    assert not all(torch.equal(some.aug_tokens[r], tb.tokens[r].expand(2, -1)) for r in (1, 3))


def test_the_sampler_state_is_checkpointed_and_restored_on_resume(bank, owners, make_generator, tmp_path):
    cfg = tiny_cfg(steps=4)
    comp, gen = models(cfg, bank, make_generator)
    args = (bank, bank.ids, owners, "x", tmp_path, torch.device("cpu"))
    train_stage1(cfg, comp, gen, *args, progress=False)
    first = json.loads((tmp_path / "sampler.json").read_text())
    assert first["seen"] > 0
    comp2, gen2 = models(cfg, bank, make_generator)
    res = train_stage1(cfg, comp2, gen2, *args, progress=False)  # everything done: resume only
    assert res.resumed_from == 4
    assert json.loads((tmp_path / "sampler.json").read_text()) == first
    assert all(torch.equal(a, b) for a, b in zip(comp.state_dict().values(), comp2.state_dict().values()))


def test_a_cached_token_bank_is_reused_only_for_the_same_augmentation_recipe(bank, tmp_path):
    from drc.config import RunConfig
    from drc.pipeline import bank_recipe

    cfg = RunConfig()
    ids = ["a", "b", "c"]
    recipe = bank_recipe(cfg, ids)
    assert recipe == bank_recipe(RunConfig(), list(ids))
    other_seed = RunConfig()
    other_seed.seed = cfg.seed + 1
    assert bank_recipe(other_seed, ids) != recipe  # another seed draws other augmentations
    assert bank_recipe(cfg, ids[:2]) != recipe  # other training items get augmented
    bank.recipe = recipe
    bank.save(tmp_path / "tokens.pt")
    assert TokenBank.load(tmp_path / "tokens.pt").recipe == recipe
