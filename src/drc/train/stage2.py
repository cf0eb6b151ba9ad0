"""Stage 2: personalized modeling, (history H, reference r) -> the user's next item y.

Examples come from the train `Sample`s (k history items, the target). The training reference:
- `stage2.augment` (DRC, entangled_augment, reference_only): a random precomputed semantic-preserving
  augmentation of y, or, with probability `real_reference_share` where labels exist, a real item
  with y's semantics in another style, not one of the user's styles (drawn from the items of the
  train samples only, so no valid/test image is ever seen in training);
- no augment (entangled = Pigeon, drc_no_augment): y itself with a random `stage2.mask_ratio` of its token
  positions replaced by the composer's learned `[MASK]` embedding.

History-length dropout: with probability `stage2.history_dropout` only a random
1..min(stage2.max_short_history, k-1) of the k history images stay valid (the rest are masked), so
cold-start users (1-3 images) work at test; a random subset, not a prefix, so the composer never
relies on where the valid images sit.
The loss is the draft's cross-entropy against y's tokens (`drc.train.losses`), plus, with
`stage2.gen_weight > 0`, the frozen generator's token loss given the soft draft; then the
instruction is dropped with probability `stage2.cond_drop` (classifier-free guidance). Where items
carry style labels and the composer has importance weights, `stage2.weight_supervision` x
KL(uniform over the history images in the target's style || weights) teaches the weights to pass
over intruders (items of another theme in a noisy history); unlabelled data trains them end to end.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from drc.config import RunConfig, Stage2Config, stage2_optim
from drc.errors import DrcError
from drc.loop.trainer import StageResult, StepOutput
from drc.models.inference import pad_history
from drc.runtime import StepRandom
from drc.train.batches import (
    embed_tokens,
    encode_text,
    fit_composer_stage,
    history_rows,
    random_mask,
)
from drc.train.losses import composer_loss, content_weights, weight_loss
from drc.train.stage1 import text_len
from drc.train.token_bank import TokenBank

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator
    from drc.data.samples import Sample
    from drc.models.composers import Composer
    from drc.train.validation import Validator


class Stage2Data:
    """The train samples as bank rows, plus each sample's real-reference candidates (labelled data)."""

    def __init__(self, bank: TokenBank, samples: list[Sample], k: int) -> None:
        train = [s for s in samples if s.split == "train"]
        if not train:
            raise DrcError("stage 2 needs training samples, got none (is every user in valid/test?)")
        self.hist, self.hist_mask = history_rows(bank, [s.history for s in train], k)  # (S, k)
        self.target = bank.rows([s.target for s in train])  # (S,)
        # every training item of each user, in interaction order: the pool "random" histories draw from
        items: dict[str, list[str]] = defaultdict(list)
        for s in train:
            for i in (*s.history, s.target):
                if i not in items[s.user]:
                    items[s.user].append(i)
        self.k = k
        self.pool = [bank.rows([i for i in items[s.user] if i != s.target]) for s in train]
        self.labelled = bank.labelled
        self.real_refs: list[Tensor] = []
        # each bank row's style as an integer (labelled data): the importance-weight supervision
        self.style_id: Tensor | None = None
        if self.labelled:
            index = {name: j for j, name in enumerate(sorted(set(bank.styles)))}  # type: ignore[type-var]
            self.style_id = torch.tensor([index[name] for name in bank.styles], dtype=torch.long)
            seen = sorted({int(i) for i in self.hist[self.hist_mask].tolist()} | set(self.target.tolist()))
            by_sem: dict[str, list[int]] = defaultdict(list)
            for i in seen:
                by_sem[bank.semantics[i]].append(i)  # type: ignore[index]
            for h, hm, t in zip(self.hist.tolist(), self.hist_mask.tolist(), self.target.tolist()):
                user_styles = {bank.styles[i] for i, v in zip(h, hm) if v} | {bank.styles[t]}
                cands = [j for j in by_sem[bank.semantics[t]] if bank.styles[j] not in user_styles]  # type: ignore[index]
                self.real_refs.append(torch.tensor(cands, dtype=torch.long))

    def __len__(self) -> int:
        return len(self.target)


def random_histories(data: Stage2Data, pos: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """k random other items of each sample's user, kept in interaction order and right-aligned.

    Returns (rows (B, k) long into the bank, mask (B, k) bool).
    """
    k = data.k
    picked = []
    for p in pos.tolist():
        pool = data.pool[p]
        picked.append(pool[torch.randperm(len(pool), generator=gen)[: min(k, len(pool))].sort().values])
    return pad_history(picked, k)


def history_dropout(
    mask: Tensor, gen: torch.Generator, p: float = Stage2Config.history_dropout,
    max_short: int = Stage2Config.max_short_history,
) -> Tensor:  # fmt: skip
    """`mask (B, k)` -> a mask where, for a random share p of rows, only 1..min(max_short, k-1) valid
    images stay."""
    B, k = mask.shape
    n_valid = mask.sum(1)
    limit = torch.clamp(torch.minimum(n_valid - 1, torch.full_like(n_valid, max_short)), min=0)
    shorten = (torch.rand(B, generator=gen) < p) & (limit >= 1)
    keep = (torch.rand(B, generator=gen) * limit.clamp(min=1)).long() + 1  # 1..limit
    # rank the valid images in random order; keep the first `keep` of them
    noise = torch.rand(B, k, generator=gen).masked_fill(~mask, 2.0)
    rank = noise.argsort(1).argsort(1)
    short = mask & (rank < keep[:, None])
    return torch.where(shorten[:, None], short, mask)


def pick_references(
    data: Stage2Data, bank: TokenBank, pos: Tensor, real_share: float, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """`stage2.augment` references `(B, N)` for samples `pos`, and whether each is a real item `(B,)`.

    A real item with probability `real_share` where the sample has one (labelled data), else a
    random precomputed augmentation of the target. (The masked-target reference is made in the step.)
    """
    rows = []  # a real item's row, or -1 for "augmentation j of the target"
    for p in pos.tolist():
        cands = data.real_refs[p] if data.labelled else None
        use_real = cands is not None and len(cands) > 0 and rng.random() < real_share
        rows.append(int(cands[rng.integers(len(cands))]) if use_real else -1)  # type: ignore[index]
    real = torch.tensor(rows) >= 0
    j = torch.as_tensor(rng.integers(max(bank.n_aug, 1), size=len(rows)))
    dev = bank.tokens.device
    ref = bank.tokens[torch.tensor(rows).clamp(min=0).to(dev)]
    if bank.n_aug > 0:
        aug = bank.aug_tokens[data.target[pos].to(dev), j.to(dev)]
        ref = torch.where(real.to(dev)[:, None], ref, aug)
    elif not bool(real.all()):
        raise DrcError("augmented references need a token bank built with n_aug > 0")
    return ref, real


def train_stage2(
    cfg: RunConfig,
    composer: Composer,
    generator: TokenGenerator,
    bank: TokenBank,
    samples: list[Sample],
    text: str,
    out_dir: Path,
    device: torch.device,
    progress: bool = True,
    validate: Validator | None = None,
) -> StageResult:
    """Run Stage 2 (resumable from `out_dir/ckpt`) for any method's composer.

    validate: the loop's validation hook (`drc.train.validation.Validator`), or None."""
    s2 = cfg.stage2
    out_dir = Path(out_dir)
    data = Stage2Data(bank, samples, composer.history_len)
    if s2.augment and composer.uses_reference and bank.n_aug == 0:
        raise DrcError("stage2.augment needs augmented tokens: build the token bank with n_aug > 0")
    optim = stage2_optim(cfg)
    B = optim.batch_size
    text_ids, text_mask = encode_text(text, B, text_len(generator), device)
    dev = bank.tokens.device

    def step_fn(step: int, rnd: StepRandom) -> StepOutput:
        gen, rng = rnd.torch_gen, rnd.np_rng
        pos = torch.randint(len(data), (B,), generator=gen)
        if s2.history_sampling == "random":
            rows, mask = random_histories(data, pos, gen)
        else:
            rows, mask = data.hist[pos], data.hist_mask[pos]
        mask = history_dropout(mask, gen, s2.history_dropout, s2.max_short_history)
        hist_tokens = bank.tokens[rows.to(dev)]  # (B, k, N)
        hist = embed_tokens(bank, hist_tokens).to(device)  # (B, k, N, code_dim)
        y = bank.tokens[data.target[pos].to(dev)].to(device)  # (B, N)
        real_share = 0.0
        if not composer.uses_reference:
            ref = torch.zeros_like(hist[:, 0])  # never read
        elif s2.augment:
            ref_tok, real = pick_references(data, bank, pos, s2.real_reference_share, rng)
            ref = embed_tokens(bank, ref_tok).to(device)
            real_share = float(real.float().mean())
        else:
            masked = random_mask(B, y.shape[1], s2.mask_ratio, gen).to(device)
            ref = composer.mask_reference(embed_tokens(bank, y).to(device), masked)
        instr = composer(hist, mask.to(device), ref)
        drop = (torch.rand(B, generator=gen) < s2.cond_drop).to(device) if s2.gen_weight > 0 else None
        cell_w = None
        if s2.content_weight > 0:
            cell_w = content_weights(hist_tokens.to(device), mask.to(device), y, s2.content_weight)
        loss = composer_loss(instr, y, generator, text_ids, text_mask, s2.gen_weight, drop, cell_w)
        logs = {"hist_len": float(mask.sum(1).float().mean()), "real_ref": real_share}
        if s2.weight_supervision > 0 and data.style_id is not None and instr.weights is not None:
            # own = the history images in the target's style: the user's main theme, not an intruder
            sid = data.style_id
            own = (sid[rows] == sid[data.target[pos]][:, None]) & mask
            kl = weight_loss(instr.weights, own.to(device))
            loss = loss + s2.weight_supervision * kl
            logs["weight_kl"] = float(kl.detach().mean())
        return StepOutput(loss.mean(), logs)

    return fit_composer_stage(
        "stage2", cfg, composer, generator, s2.trainable, optim, step_fn, out_dir, device, progress,
        validate=validate,
    )  # fmt: skip
