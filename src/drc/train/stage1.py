"""Stage 1: disentanglement learning on triplets, with difficulty-aware importance sampling.

A triplet `(x_a, x_s, x_m)` (docs/DESIGN.md section 2), drawn from the training items:
- labelled data: `x_s` = another item of x_a's style with other semantics; `x_m` = an item of x_a's
  semantics in another style (where none exists: an augmentation of x_a);
- unlabelled data: `x_s` = another item of the same user (`user_of`); `x_m` = one of x_a's
  precomputed semantic-preserving augmentations.

With `F_sty^a = Sty(a|s)`, `F_sty^s = Sty(s|a)`, `F_sem^a = Sem(a|m)`, `F_sem^m = Sem(m|a)`, all four
compositions `Fusion(F_sty^i, F_sem^j)`, i in {a, s}, j in {a, m}, must let the generator rebuild
x_a: their drafts are scored against x_a's tokens (`drc.train.losses`; optionally also the frozen
generator's loss with the coarse instruction as text, so the content has to come through the
instruction). The four
run as one batch of 4B. The anchors are drawn by the `ImportanceSampler`; each
anchor's loss (the mean over its four compositions) is weighted by its importance weight and fed
back as its difficulty.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from drc.atomic import atomic_write_text
from drc.config import RunConfig
from drc.errors import DrcError
from drc.loop.trainer import StageResult, StepOutput
from drc.models.instruction import LatentInstruction
from drc.runtime import StepRandom, dist_info
from drc.train.batches import embed_tokens, encode_text, fit_composer_stage
from drc.train.importance import ImportanceSampler
from drc.train.losses import composer_loss
from drc.train.token_bank import TokenBank

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator, VisualTokenizer
    from drc.models.composers import Composer

# the order of the four compositions in the 4B batch: (style source, semantics source)
COMPOSITIONS = (("a", "a"), ("a", "m"), ("s", "a"), ("s", "m"))
N_HARDEST = 20  # hardest examples written to sampler.json


class TripletSource:
    """Draws `(x_a, x_s, x_m)` token rows for anchors among the training items (see module doc).

    Candidate partners are precomputed per anchor (bank rows); `sem_cands[i]` empty means "use an
    augmentation of the anchor". `fallbacks` counts anchors whose ideal partner does not exist.
    """

    def __init__(self, bank: TokenBank, train_ids: list[str], user_of: dict[str, str]) -> None:
        if not train_ids:
            raise DrcError("stage 1 needs training items, got none")
        self.bank = bank
        rows = bank.rows(list(dict.fromkeys(train_ids)))  # distinct, in order
        self.anchors = rows
        r = rows.tolist()
        self.labelled = all(bank.styles[i] and bank.semantics[i] for i in r)
        self.fallbacks = {"style_partner": 0, "semantic_partner": 0}
        self.style_cands: list[Tensor] = []
        self.sem_cands: list[Tensor] = []
        if self.labelled:
            by_style, by_sem = defaultdict(list), defaultdict(list)
            for i in r:
                by_style[bank.styles[i]].append(i)
                by_sem[bank.semantics[i]].append(i)
            for i in r:
                st, se = bank.styles[i], bank.semantics[i]
                s = [j for j in by_style[st] if bank.semantics[j] != se]
                if not s:
                    self.fallbacks["style_partner"] += 1
                    s = [j for j in by_style[st] if j != i] or [i]
                m = [j for j in by_sem[se] if bank.styles[j] != st]
                if not m:
                    self.fallbacks["semantic_partner"] += 1  # -> an augmentation of the anchor
                self.style_cands.append(torch.tensor(s, dtype=torch.long))
                self.sem_cands.append(torch.tensor(m, dtype=torch.long))
        else:
            by_user: dict[str, list[int]] = defaultdict(list)
            for iid, i in zip(dict.fromkeys(train_ids), r):
                by_user[user_of.get(iid, f"<item {iid}>")].append(i)
            for iid, i in zip(dict.fromkeys(train_ids), r):
                s = [j for j in by_user[user_of.get(iid, f"<item {iid}>")] if j != i]
                if not s:
                    self.fallbacks["style_partner"] += 1
                    s = [i]
                self.style_cands.append(torch.tensor(s, dtype=torch.long))
                self.sem_cands.append(torch.zeros(0, dtype=torch.long))
        needs_aug = any(len(c) == 0 for c in self.sem_cands)
        if needs_aug and bank.n_aug == 0:
            raise DrcError(
                "stage 1 needs augmented tokens for its semantic partners (unlabelled data, or labelled "
                "items with no same-semantics item in another style); build the token bank with n_aug > 0"
            )

    def __len__(self) -> int:
        return len(self.anchors)

    def draw(self, pos: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Anchor positions `(B,)` -> token rows `(B, N)` of x_a, x_s, x_m (on the bank's device)."""
        bank = self.bank
        dev = bank.tokens.device
        p = pos.tolist()
        a = self.anchors[p]
        s = torch.tensor([int(self.style_cands[i][rng.integers(len(self.style_cands[i]))]) for i in p])
        # x_m: a real item where one exists (row >= 0), else augmentation j of the anchor
        cands = [self.sem_cands[i] for i in p]
        real = torch.tensor([int(c[rng.integers(len(c))]) if len(c) else -1 for c in cands])
        m = bank.tokens[real.clamp(min=0).to(dev)]
        if bank.n_aug > 0 and bool((real < 0).any()):
            j = torch.as_tensor(rng.integers(bank.n_aug, size=len(p)))
            m = torch.where((real >= 0).to(dev)[:, None], m, bank.aug_tokens[a.to(dev), j.to(dev)])
        return bank.tokens[a.to(dev)], bank.tokens[s.to(dev)], m


def crossed_instruction(composer: Composer, e_a: Tensor, e_s: Tensor, e_m: Tensor) -> LatentInstruction:
    """The four compositions of one batch, `(B, N, code_dim)` each -> a LatentInstruction of 4B.

    Order (blocks of B): Fusion(F_sty^a, F_sem^a), (F_sty^a, F_sem^m), (F_sty^s, F_sem^a),
    (F_sty^s, F_sem^m), i.e. `COMPOSITIONS`. Each tower runs once on a 2B batch.
    """
    sty_a, sty_s = composer.style_features(torch.cat([e_a, e_s]), torch.cat([e_s, e_a])).chunk(2)
    sem_a, sem_m = composer.semantic_features(torch.cat([e_a, e_m]), torch.cat([e_m, e_a])).chunk(2)
    return composer.fuse(torch.cat([sty_a, sty_a, sty_s, sty_s]), torch.cat([sem_a, sem_m, sem_a, sem_m]))


def stage1_losses(
    composer: Composer,
    generator: TokenGenerator,
    embedder: VisualTokenizer,
    a: Tensor,
    s: Tensor,
    m: Tensor,
    text_ids: Tensor,
    text_mask: Tensor,
    gen_weight: float = 0.0,
) -> Tensor:
    """Token rows `(B, N)` of the triplet -> per-composition losses `(4, B)` (order `COMPOSITIONS`).

    Every composition's target is x_a's tokens (`composer_loss`: the draft's cross-entropy, plus
    `gen_weight` x the frozen generator's token loss). `text_ids/text_mask` are `(4B, L)`.
    """
    B = a.shape[0]
    e_a, e_s, e_m = embed_tokens(embedder, torch.cat([a, s, m])).chunk(3)
    instr = crossed_instruction(composer, e_a, e_s, e_m)
    per = composer_loss(instr, a.repeat(4, 1), generator, text_ids, text_mask, gen_weight)
    return per.view(4, B)


def text_len(generator: TokenGenerator) -> int:
    """The generator's text budget (`cfg.max_text_len` tokens)."""
    return int(generator.config.max_text_len)


def train_stage1(
    cfg: RunConfig,
    composer: Composer,
    generator: TokenGenerator,
    bank: TokenBank,
    train_ids: list[str],
    user_of: dict[str, str],
    text: str,
    out_dir: Path,
    device: torch.device,
    progress: bool = True,
) -> StageResult:
    """Run Stage 1 (resumable from `out_dir/ckpt`); write `out_dir/sampler.json`.

    Returns an empty result (0 steps) when `cfg.stage1.enabled` is False.
    """
    s1 = cfg.stage1
    out_dir = Path(out_dir)
    if not s1.enabled:
        return StageResult("stage1", 0, 0.0, [])
    if not all(hasattr(composer, f) for f in ("style_features", "semantic_features", "fuse")):
        raise DrcError(f"stage 1 needs the drc composer (towers + fusion); method {cfg.method!r} has none")
    source = TripletSource(bank, train_ids, user_of)
    sampler = ImportanceSampler(len(source), s1.alpha, s1.eps, s1.uniform_mix, s1.ema)
    B = s1.train.batch_size
    text_ids, text_mask = encode_text(text, 4 * B, text_len(generator), device)

    def step_fn(step: int, rnd: StepRandom) -> StepOutput:
        pos, w = sampler.sample(B, rnd.torch_gen)
        a, s, m = source.draw(pos, rnd.np_rng)
        per = stage1_losses(composer, generator, bank, a, s, m, text_ids, text_mask, s1.gen_weight)  # (4, B)
        per_example = per.float().mean(0)
        loss = (w.to(per_example.device) * per_example).mean()
        sampler.update(pos, per_example.detach())
        comp = per.detach().float().mean(1).tolist()
        logs = {f"loss_{i}{j}": v for (i, j), v in zip(COMPOSITIONS, comp)}
        logs.update(entropy=sampler.entropy(), weight_max=float(w.max()))
        return StepOutput(loss, logs)

    result = fit_composer_stage(
        "stage1", cfg, composer, generator, s1.trainable, s1.train, step_fn, out_dir, device, progress,
        stateful={"sampler": sampler},
    )  # fmt: skip
    if dist_info().is_main:
        write_sampler_report(sampler, source, bank, out_dir / "sampler.json")
    return result


def write_sampler_report(
    sampler: ImportanceSampler, source: TripletSource, bank: TokenBank, path: Path
) -> None:
    """sampler.json: the final entropy (vs uniform's log n), the hardest anchors, partner fallbacks."""
    anchors = source.anchors.tolist()
    report = {
        "n": sampler.n,
        "seen": sampler.n_seen,
        "alpha": sampler.alpha,
        "entropy": sampler.entropy(),
        "max_entropy": float(np.log(sampler.n)),
        "labelled": source.labelled,
        "fallbacks": source.fallbacks,
        "hardest": [
            {"id": bank.ids[anchors[i]], "difficulty": d, "probability": float(sampler.probs()[i])}
            for i, d in sampler.hardest(N_HARDEST)
        ],
    }
    atomic_write_text(path, json.dumps(report, indent=1))
