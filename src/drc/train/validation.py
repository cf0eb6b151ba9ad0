"""Stage 2's validation: the draft scored on the held-out cases of training users (`drc.data.heldout`).

Label-free and cheap (one composer forward per case, no generator, no probes): the draft's per-cell
token accuracy (its argmax against the target's tokens), its cross-entropy, and its *content*
accuracy: the accuracy on the cells whose target code no history image has at that cell. Those are
the cells a style copier cannot get right (the subject); on a set where the style fills most of the
image (a badge body) they are a fifth of the cells, and the plain accuracy hardly moves when the
subject is right or wrong (bench/README.md, "Badges: which composer levers move held-out pairs").
It is recorded, not yet used to choose the checkpoint. Two trivial drafts
score the same cases: copying the reference's tokens and copying the latest history image's. A
composer that composes beats both; one that does not (a diverged run, or one that learned to copy)
does not, and `judge` calls the run failed.

The `Validator` is the training loop's hook (`drc.loop.trainer.Trainer(validate=...)`): it scores
every `every` steps, keeps the weights of the lowest cross-entropy so far (`valid_best.safetensors`
in the stage folder), counts evaluations without improvement for early stopping, and is saved in
each checkpoint, so a resumed run keeps its best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.models.inference import embed_tokens
from drc.runtime import barrier, derived_seed, dist_info
from drc.train.batches import history_rows
from drc.train.losses import content_cells
from drc.weights import atomic_save_tensors, load_state_strict, read_tensors

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator
    from drc.config import RunConfig
    from drc.data.prepare import Prepared
    from drc.data.samples import Sample
    from drc.models.composers import Composer
    from drc.train.token_bank import TokenBank

BEST_FILE = "valid_best.safetensors"


@dataclass
class ValidationCases:
    """The held-out cases as token rows: history `(C, k)` + mask, reference and target tokens `(C, N)`."""

    hist: Tensor  # long (C, k) rows into the bank
    mask: Tensor  # bool (C, k)
    ref: Tensor  # long (C, N)
    target: Tensor  # long (C, N)
    last: Tensor  # long (C, N): the latest history image's tokens

    def __len__(self) -> int:
        return len(self.target)

    @staticmethod
    def build(bank: TokenBank, samples: Sequence[Sample], k: int, seed: int) -> ValidationCases | None:
        """Cases from `samples` (split "heldout"); None if there are none, or a case has no reference
        (no real one, and the bank holds no augmentations of its target)."""
        if not samples or (bank.n_aug == 0 and any(s.reference is None for s in samples)):
            return None
        hist, mask = history_rows(bank, [s.history for s in samples], k)
        target_rows = bank.rows([s.target for s in samples])
        refs = []
        for s, t in zip(samples, target_rows.tolist()):
            if s.reference is not None:
                refs.append(bank.tokens[bank.rows([s.reference])[0]])
            else:  # an augmentation of the target, fixed by the seed
                rng = np.random.default_rng(derived_seed("valid-ref", seed, s.user, s.target))
                j = int(rng.integers(bank.n_aug))
                refs.append(bank.aug_tokens[t, j])
        # right-aligned: the last slot holds the latest image (a case always has one)
        last = bank.tokens[hist[:, -1].to(bank.tokens.device)].cpu()
        return ValidationCases(hist, mask, torch.stack(refs).cpu(), bank.tokens[target_rows].cpu(), last)

    def baselines(self) -> dict[str, float]:
        """Per-cell accuracy of the trivial drafts: the reference's tokens, the latest history image's,
        and one code everywhere (the targets' most frequent code)."""
        counts = torch.bincount(self.target.flatten())
        return {
            "copy_reference_acc": round(float((self.ref == self.target).float().mean()), 4),
            "copy_history_acc": round(float((self.last == self.target).float().mean()), 4),
            "constant_acc": round(float(counts.max()) / max(self.target.numel(), 1), 4),
        }


@torch.no_grad()
def score(composer: Composer, bank: TokenBank, cases: ValidationCases, batch: int = 64) -> dict[str, float]:
    """`{"valid_acc", "valid_ce", "valid_content_acc"}`: the draft's per-cell accuracy, mean
    cross-entropy and accuracy on content cells (`content_cells`; NaN where a set has none) on `cases`."""
    dev = next(composer.parameters()).device
    correct, ce, n, content_hit, n_content = 0.0, 0.0, 0, 0.0, 0
    for i in range(0, len(cases), batch):
        rows, mask = cases.hist[i : i + batch], cases.mask[i : i + batch].to(dev)
        target = cases.target[i : i + batch].to(dev)
        hist_tokens = bank.tokens[rows.to(bank.tokens.device)]
        hist = embed_tokens(bank, hist_tokens).to(dev)
        ref = embed_tokens(bank, cases.ref[i : i + batch].to(bank.tokens.device)).to(dev)
        draft = composer(hist, mask, ref).draft.float()  # (B, N, V)
        hit = draft.argmax(-1) == target
        content = content_cells(hist_tokens.to(dev), mask, target)
        correct += float(hit.float().sum())
        content_hit += float((hit & content).float().sum())
        n_content += int(content.sum())
        ce += float(F.cross_entropy(draft.transpose(1, 2), target, reduction="sum"))
        n += target.numel()
    content_acc = content_hit / n_content if n_content else math.nan
    return {
        "valid_acc": correct / n,
        "valid_ce": ce / n,
        "valid_content_acc": content_acc,
        "vocab": float(draft.shape[-1]),
    }


class Validator:
    """The loop's validation hook for one stage: scores, keeps the best weights, says when to stop."""

    def __init__(
        self, cases: ValidationCases, bank: TokenBank, composer: nn.Module, keep: dict[str, nn.Module],
        out_dir: Path, every: int, patience: int,
    ) -> None:  # fmt: skip
        self.cases, self.bank, self.composer, self.keep = cases, bank, composer, keep
        self.path = Path(out_dir) / BEST_FILE
        self.every, self.patience = max(every, 1), patience
        self.best_ce, self.best_step, self.bad = math.inf, 0, 0
        self.rows: list[dict[str, float]] = []
        self.vocab = 0
        self.start_ce: float | None = None

    def __call__(self, step: int) -> dict[str, float]:
        """Score the composer now (the loop has put it in eval mode); keep its weights if best."""
        row = score(self.composer, self.bank, self.cases)
        self.vocab = int(row.pop("vocab"))
        if step == 0:  # the untrained composer: what training must improve on, never the kept one
            self.start_ce = row["valid_ce"]
            return row
        if math.isfinite(row["valid_ce"]) and row["valid_ce"] < self.best_ce:
            self.best_ce, self.best_step, self.bad = row["valid_ce"], step, 0
            if dist_info().is_main:
                state = {f"{m}.{k}": v for m, mod in self.keep.items() for k, v in mod.state_dict().items()}
                atomic_save_tensors(state, self.path, meta={"step": str(step)})
        else:
            self.bad += 1
        self.rows.append({"step": step, **row})
        return row

    @property
    def stop(self) -> bool:
        return self.patience > 0 and self.bad >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_ce": self.best_ce, "best_step": self.best_step, "bad": self.bad, "rows": self.rows,
            "vocab": self.vocab, "start_ce": self.start_ce,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_ce, self.best_step, self.bad = state["best_ce"], state["best_step"], state["bad"]
        self.rows, self.vocab, self.start_ce = list(state["rows"]), int(state["vocab"]), state["start_ce"]

    def finish(self) -> dict[str, Any]:
        """Load the best weights (if another evaluation than the last was best); the summary for run.json."""
        barrier()  # rank 0 wrote the file
        last = self.rows[-1] if self.rows else None
        best = next((r for r in self.rows if r["step"] == self.best_step), last)
        if best is not None and last is not None and best is not last and self.path.is_file():
            tensors = read_tensors(self.path)
            for name, mod in self.keep.items():
                sub = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
                load_state_strict(mod, sub, f"{self.path} [{name}]")
        out: dict[str, Any] = {"cases": len(self.cases), **self.cases.baselines()}
        out["uniform_ce"] = round(math.log(self.vocab), 4) if self.vocab else None
        out["start_ce"] = _num({"ce": self.start_ce}, "ce")  # type: ignore[dict-item]
        out.update(best_step=int(best["step"]) if best else None, acc=_num(best, "valid_acc"))
        out["ce"] = _num(best, "valid_ce")
        out["content_acc"] = _num(best, "valid_content_acc")
        out["evaluations"] = [
            {
                "step": int(r["step"]), "acc": _num(r, "valid_acc"), "ce": _num(r, "valid_ce"),
                "content_acc": _num(r, "valid_content_acc"),
            }
            for r in self.rows
        ]  # fmt: skip
        return out


def _num(row: dict[str, float] | None, key: str) -> float | None:
    """A score rounded for run.json; None where missing or not finite (JSON has no NaN)."""
    v = None if row is None else row.get(key)
    return round(float(v), 4) if v is not None and math.isfinite(v) else None


def judge(
    summary: dict[str, Any], fail_if: str, margin: float = 0.0, uses_reference: bool = True
) -> str | None:
    """Why the run failed, or None (`ValidationConfig.fail_if`). "diverged": the kept draft's
    cross-entropy is not finite, or not below both a uniform guess's and the untrained composer's;
    "copies": that, or its accuracy does not beat every trivial draft it could copy by `margin`."""
    if fail_if == "never":
        return None
    acc, ce, n = summary.get("acc"), summary.get("ce"), summary["cases"]
    if acc is None or ce is None:
        return f"validation cross-entropy is not finite on {n} held-out cases (the weights diverged)"
    # no better than a uniform guess, and worse than the untrained composer: training made it worse.
    # "Not below", not "above": a diverged codebook head ends at exactly the uniform guess (its
    # scale runs to 0), a diverged linear head above it. The summary is rounded to 4 decimals.
    start = summary.get("start_ce")
    if ce > max(summary["uniform_ce"], start or 0.0) - 1e-3:
        was = f" and the untrained composer's ({start:.3f})" if start is not None else ""
        return (
            f"validation cross-entropy {ce:.3f} is not below a uniform guess's ({summary['uniform_ce']:.3f})"
            f"{was} on {n} held-out cases (the weights diverged)"
        )
    # worse than where it started, and worse than drafting one code everywhere: it draws nothing.
    # (A tiny tokenizer's few codes let one code score high: matching it is not a failure.)
    constant = summary.get("constant_acc")
    if constant is not None and start is not None and ce > start and acc < constant:
        return (
            f"validation draft accuracy {acc:.3f} is below drafting one code everywhere "
            f"({constant:.3f}) and its cross-entropy {ce:.3f} is above the untrained composer's "
            f"({start:.3f}) on {n} held-out cases (the weights diverged)"
        )
    if fail_if != "copies":
        return None
    rivals = {"the latest history image": summary["copy_history_acc"]}
    if uses_reference:
        rivals["the reference"] = summary["copy_reference_acc"]
    name, base = max(rivals.items(), key=lambda kv: kv[1])
    if acc <= base + margin:
        return (
            f"validation draft accuracy {acc:.3f} is not above copying {name} ({base:.3f}) "
            f"on {n} held-out cases"
        )
    return None


def validator_for(
    cfg: RunConfig, prep: Prepared, bank: TokenBank, composer: Composer, generator: TokenGenerator,
    out_dir: Path,
) -> Validator | None:
    """The Stage 2 validator of a run (None where the run has no validation cases)."""
    from drc.config import stage2_optim

    v = cfg.validation
    cases = ValidationCases.build(bank, prep.split("heldout"), composer.history_len, cfg.data.split_seed)
    if cases is None:
        return None
    keep = {"composer": composer}
    if cfg.stage2.trainable == "composer+generator":
        keep["generator"] = generator
    every = v.every or stage2_optim(cfg).ckpt_every
    return Validator(cases, bank, composer, keep, out_dir, every, v.patience)
