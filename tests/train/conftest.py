"""Stage 1 / Stage 2 test fixtures: a synthetic token bank with learnable structure and a generator.

The bank: items = style x semantics; an item's visual tokens are its style's pattern in the first
half of the positions and its semantics' pattern in the second half, so a composer that carries
style from one image and semantics from another can reconstruct a target exactly: the losses of a
tiny run have something real to go down on.

`make_generator` returns the project's real tiny `Generator` when it exists, else `FakeGenerator`
(the same `loss` signature: per-example mean cross-entropy, `cfg.d_model`, `cfg.max_text`).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from drc.data.samples import Sample
from drc.models.conditioning import LatentInstruction
from drc.train.tokens import TokenBank

STYLES = ("s0", "s1", "s2")
SEMANTICS = ("m0", "m1", "m2", "m3")
VOCAB, N_VISUAL, CODE_DIM, GRID = 24, 16, 8, (4, 4)


class FakeGenerator(nn.Module):
    """A small conditional token model: each position reads the instruction tokens by attention."""

    def __init__(self, vocab: int = VOCAB, n_visual: int = N_VISUAL, d_model: int = 32, max_text: int = 8):
        super().__init__()
        self.cfg = SimpleNamespace(d_model=d_model, max_text=max_text, vocab_size=vocab)
        self.pos = nn.Parameter(torch.randn(n_visual, d_model) * 0.1)
        self.prev = nn.Embedding(vocab + 1, d_model)  # index `vocab` = <img> start
        self.text = nn.Embedding(260, d_model)
        self.null = nn.Parameter(torch.zeros(1, 1, d_model))
        self.mix = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))
        self.head = nn.Linear(d_model, vocab)
        self.calls: list[dict] = []

    def loss(self, text_ids, text_mask, instr: LatentInstruction, image_tokens, drop_cond=None):
        B, N = image_tokens.shape
        self.calls.append({"image_tokens": image_tokens.detach().clone(), "instr": instr, "drop": drop_cond})
        tok, mask = instr.tokens, instr.mask
        if drop_cond is not None:
            tok = torch.where(drop_cond[:, None, None], self.null.to(tok.dtype).expand_as(tok), tok)
            mask = mask | drop_cond[:, None]
        att = torch.einsum("nd,bmd->bnm", self.pos.to(tok.dtype), tok) / tok.shape[-1] ** 0.5
        att = att.masked_fill(~mask[:, None, :], -1e4).softmax(-1)
        ctx = torch.einsum("bnm,bmd->bnd", att, tok)
        t = (self.text(text_ids) * text_mask[..., None]).sum(1, keepdim=True) / text_mask.sum(1)[:, None, None]
        start = torch.full((B, 1), self.cfg.vocab_size, dtype=torch.long, device=image_tokens.device)
        prev = self.prev(torch.cat([start, image_tokens[:, :-1]], 1))
        h = self.pos + prev + ctx + t
        logits = self.head(h + self.mix(h)).float()
        return F.cross_entropy(logits.reshape(B * N, -1), image_tokens.reshape(-1), reduction="none").view(B, N).mean(1)


def real_generator_available() -> bool:
    try:
        from drc.models.generator import Generator

        return hasattr(Generator, "loss")
    except ImportError:
        return False


def make_generator(d_model: int = 32) -> nn.Module:
    if real_generator_available():
        from drc.models.generator import Generator, GeneratorConfig

        cfg = GeneratorConfig(n_layer=1, n_head=2, d_model=d_model)
        for k, v in {"vocab_size": VOCAB, "n_visual": N_VISUAL, "max_text": 8, "max_instruction": 128}.items():
            if hasattr(cfg, k):
                setattr(cfg, k, v)
        return Generator(cfg)
    return FakeGenerator(d_model=d_model)


class FakeByteTokenizer:
    def encode(self, texts, max_len):
        ids = torch.zeros(len(texts), max_len, dtype=torch.long)
        mask = torch.zeros(len(texts), max_len, dtype=torch.bool)
        for b, t in enumerate(texts):
            raw = list(t.encode())[:max_len]
            ids[b, : len(raw)] = torch.tensor(raw, dtype=torch.long)
            mask[b, : len(raw)] = True
        return ids, mask


@pytest.fixture(autouse=True)
def _byte_tokenizer(monkeypatch):
    """Until drc.models.text.ByteTokenizer exists, stand in a byte tokenizer with its signature."""
    import drc.models.text as text

    if not hasattr(getattr(text, "ByteTokenizer", None), "encode"):
        monkeypatch.setattr(text, "ByteTokenizer", FakeByteTokenizer)


def synthetic_bank(labelled: bool = True, n_aug: int = 2, seed: int = 0) -> TokenBank:
    """Items `{style}-{sem}`; tokens = style pattern (first half) + semantics pattern (second half).

    Augmentation a of an item keeps the semantics half and replaces the style half by a fixed
    pattern of "augmentation style" a (a semantic-preserving restyle)."""
    g = torch.Generator().manual_seed(seed)
    half = N_VISUAL // 2
    style_pat = {s: torch.randint(0, VOCAB, (half,), generator=g) for s in STYLES}
    sem_pat = {m: torch.randint(0, VOCAB, (half,), generator=g) for m in SEMANTICS}
    aug_pat = [torch.randint(0, VOCAB, (half,), generator=g) for _ in range(n_aug)]
    ids, toks, augs, styles, sems = [], [], [], [], []
    for s in STYLES:
        for m in SEMANTICS:
            ids.append(f"{s}-{m}")
            toks.append(torch.cat([style_pat[s], sem_pat[m]]))
            augs.append(torch.stack([torch.cat([aug_pat[a], sem_pat[m]]) for a in range(n_aug)]) if n_aug else
                        torch.zeros(0, N_VISUAL, dtype=torch.long))
            styles.append(s if labelled else None)
            sems.append(m if labelled else None)
    codebook = torch.randn(VOCAB, CODE_DIM, generator=g)
    return TokenBank(
        ids=ids, index={i: r for r, i in enumerate(ids)}, tokens=torch.stack(toks), aug_tokens=torch.stack(augs),
        styles=styles, semantics=sems, texts=[f"item {i}" for i in ids], codebook=codebook, grid=GRID,
    )  # fmt: skip


def user_of(bank: TokenBank) -> dict[str, str]:
    """One user per style: the user's items are that style's items."""
    return {i: "user-" + i.split("-")[0] for i in bank.ids}


def synthetic_samples(k: int = 3) -> list[Sample]:
    """Per style, one user cycling through the semantics; windows of k -> target."""
    out = []
    for s in STYLES:
        hist = [f"{s}-{m}" for m in SEMANTICS * 2]
        for i in range(len(hist) - k):
            out.append(Sample(f"user-{s}", tuple(hist[i : i + k]), hist[i + k], "train", None))
    return out


@pytest.fixture
def bank() -> TokenBank:
    return synthetic_bank()
