"""Batch helpers shared by Stage 1 and Stage 2: item-id histories from a token bank, text ids,
which modules train. The conventions (right-aligned histories, codebook embedding) and the steps
generation and evaluation share are `drc.models.inference`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from drc.config import Trainable, config_hash
from drc.loop.trainer import StageResult, Trainer
from drc.models.composers import Composer
from drc.models.inference import condition, embed_tokens, pad_history
from drc.models.instruction import LatentInstruction

if TYPE_CHECKING:
    from drc.backends.base import VisualTokenizer
    from drc.train.token_bank import TokenBank


def history_rows(bank: TokenBank, histories: Sequence[Sequence[str]], k: int) -> tuple[Tensor, Tensor]:
    """Item-id histories -> (rows (B, k) long into `bank`, mask (B, k) bool), right-aligned.

    A history longer than k keeps its last k items; a shorter one is padded at the front.
    """
    return pad_history([bank.rows(list(h)[-k:] if k > 0 else []) for h in histories], k)


def history_tokens(bank: TokenBank, histories: Sequence[Sequence[str]], k: int) -> tuple[Tensor, Tensor]:
    """Item-id histories -> (tokens (B, k, N) long, mask (B, k) bool) on the bank's device."""
    rows, mask = history_rows(bank, histories, k)
    dev = bank.tokens.device
    tokens = bank.tokens[rows.to(dev)] * mask.to(dev)[..., None]  # padding -> token 0
    return tokens, mask.to(dev)


def embed_history(
    tokenizer: VisualTokenizer, bank: TokenBank, histories: Sequence[Sequence[str]], k: int
) -> tuple[Tensor, Tensor]:
    """Item-id histories -> (hist (B, k, N, code_dim), mask (B, k) bool)."""
    tokens, mask = history_tokens(bank, histories, k)
    return embed_tokens(tokenizer, tokens), mask


def instruction_for(
    composer: Composer, tokenizer: VisualTokenizer, bank: TokenBank, histories: Sequence[Sequence[str]],
    ref_tokens: Tensor,
) -> LatentInstruction:
    """Item-id histories + reference tokens (B, N) -> LatentInstruction (k = composer.history_len)."""
    tokens, mask = history_tokens(bank, histories, composer.history_len)
    return condition(composer, tokenizer, tokens, mask, ref_tokens)


def random_mask(batch: int, n: int, ratio: float, gen: torch.Generator) -> Tensor:
    """`(B, N)` bool, each position True (masked) with probability `ratio` (drawn from `gen`, on CPU)."""
    return torch.rand(batch, n, generator=gen) < ratio


def encode_text(text: str, batch: int, max_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """One instruction string for the whole batch -> (ids (B, L) long, mask (B, L) bool) on `device`."""
    from drc.models.text import ByteTokenizer  # local: keeps this module importable on its own

    ids, mask = ByteTokenizer().encode([text], max_len)
    ids, mask = torch.as_tensor(ids), torch.as_tensor(mask).bool()
    return ids.repeat(batch, 1).to(device), mask.repeat(batch, 1).to(device)


# --------------------------------------------------------------------------- which modules train

@contextmanager
def trainable_scope(
    composer: nn.Module, generator: nn.Module, mode: Trainable
) -> Iterator[list[nn.Parameter]]:
    """Freeze what `mode` does not train, for the duration; yields the parameters that train.

    "composer": towers + fusion (or a baseline's projections) only; the generator's parameters get
    requires_grad False, but gradients still flow *through* it to the instruction tokens.
    "composer+generator": both. The previous requires_grad flags are restored on exit.
    """
    saved = [(p, p.requires_grad) for m in (composer, generator) for p in m.parameters()]
    try:
        if mode == "composer":
            for p in generator.parameters():
                p.requires_grad_(False)
        mods = [composer] if mode == "composer" else [composer, generator]
        yield [p for m in mods for p in m.parameters() if p.requires_grad]
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def fit_composer_stage(
    name: str, cfg: Any, composer: nn.Module, generator: nn.Module, trainable: str, optim: Any,
    step_fn: Callable[..., Any], out_dir: Path, device: torch.device, progress: bool,
    stateful: dict[str, Any] | None = None, validate: Any = None,
) -> StageResult:  # fmt: skip
    """Train Stage 1 or Stage 2 with the one loop: what `trainable` names trains; checkpoints in
    `out_dir/ckpt`, guarded by the run config's hash; `validate`: the loop's validation hook."""
    with trainable_scope(composer, generator, trainable) as params:
        trainer = Trainer(
            name, {"composer": composer, "generator": generator}, params, optim, seed=cfg.seed,
            device=device, precision=cfg.precision, ckpt_dir=out_dir / "ckpt", config_hash=config_hash(cfg),
            stateful=stateful, progress=progress, validate=validate,
        )  # fmt: skip
        return trainer.fit(step_fn)
