"""Stage 1 / Stage 2 test fixtures: a synthetic token bank with learnable structure, a tiny generator.

The bank: items = style x semantics; an item's visual tokens are its style's pattern in the first
half of the positions and its semantics' pattern in the second half, so a composer that carries
style from one image and semantics from another can reconstruct a target exactly: the losses of a
tiny run have something real to go down on.
"""

from __future__ import annotations

import pytest
import torch

from drc.data.samples import Sample
from drc.models.generator import Generator
from drc.models.generator_config import GeneratorConfig
from drc.train.token_bank import TokenBank

STYLES = ("s0", "s1", "s2")
SEMANTICS = ("m0", "m1", "m2", "m3")
VOCAB, N_VISUAL, CODE_DIM, GRID = 24, 16, 8, (4, 4)


def tiny_generator(d_model: int = 32, n_layer: int = 1) -> Generator:
    """The real built-in generator, tiny, for the synthetic bank's 4x4 grid and vocabulary."""
    cfg = GeneratorConfig(n_layer=n_layer, n_head=2, d_model=d_model, max_text_len=8)
    return Generator(cfg.with_visual(VOCAB, *GRID))


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
            per_aug = [torch.cat([aug_pat[a], sem_pat[m]]) for a in range(n_aug)]
            augs.append(torch.stack(per_aug) if n_aug else torch.zeros(0, N_VISUAL, dtype=torch.long))
            styles.append(s if labelled else None)
            sems.append(m if labelled else None)
    codebook = torch.randn(VOCAB, CODE_DIM, generator=g)
    return TokenBank(
        ids=ids,
        index={i: r for r, i in enumerate(ids)},
        tokens=torch.stack(toks),
        aug_tokens=torch.stack(augs),
        styles=styles,
        semantics=sems,
        texts=[f"item {i}" for i in ids],
        codebook=codebook,
        grid=GRID,
    )


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


# tests import nothing from conftest: the builders come as fixtures


@pytest.fixture
def bank() -> TokenBank:
    return synthetic_bank()


@pytest.fixture
def make_bank():
    return synthetic_bank


@pytest.fixture
def make_generator():
    return tiny_generator


@pytest.fixture
def make_samples():
    return synthetic_samples


@pytest.fixture
def owners(bank) -> dict[str, str]:
    """item id -> user (the same ids in every synthetic bank)."""
    return user_of(bank)


@pytest.fixture
def one_thread():
    """Tiny models are all per-op overhead: one thread avoids spin-waiting on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
