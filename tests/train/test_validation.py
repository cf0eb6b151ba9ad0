"""Stage 2's validation: scores on held-out cases, the best weights kept, early stopping, judging."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from drc.config import OptimConfig
from drc.loop.trainer import StepOutput, Trainer
from drc.models.instruction import LatentInstruction
from drc.train.losses import content_cells
from drc.train.validation import ValidationCases, Validator, judge

V, N, D = 4, 3, 4


class Bank:
    """The two things validation reads of a token bank: item tokens and the codebook lookup."""

    def __init__(self) -> None:
        self.tokens = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]])
        self.codebook = torch.eye(V)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.codebook[tokens]


class RefComposer(nn.Module):
    """Drafts each cell from the reference's code at that cell."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(D, V)
        self.history_len = 2

    def forward(self, hist, mask, ref) -> LatentInstruction:
        return LatentInstruction(self.proj(ref))


def _cases(bank: Bank) -> ValidationCases:
    # every item is the reference of the case whose target is the next item: target = ref + 1 (mod V)
    ref = bank.tokens
    target = (ref + 1) % V
    hist = torch.tensor([[0, 1]] * 4)
    return ValidationCases(hist, torch.ones(4, 2, dtype=torch.bool), ref, target, bank.tokens[hist[:, -1]])


def _solve(model: RefComposer) -> None:
    with torch.no_grad():
        model.proj.weight.copy_(10 * torch.roll(torch.eye(V), 1, 0))
        model.proj.bias.zero_()


def test_the_best_evaluation_is_kept_and_loaded_back(tmp_path: Path) -> None:
    bank, model = Bank(), RefComposer()
    cases = _cases(bank)
    assert cases.baselines()["copy_reference_acc"] == 0.0
    v = Validator(cases, bank, model, {"composer": model}, tmp_path, every=1, patience=0)
    start = v(0)["valid_ce"]  # untrained: recorded, never kept
    _solve(model)
    good = {k: t.clone() for k, t in model.state_dict().items()}
    first = v(10)
    assert first["valid_acc"] == 1.0 and first["valid_ce"] < 0.01
    with torch.no_grad():
        model.proj.weight.mul_(-1)  # now wrong everywhere
    assert v(20)["valid_acc"] < 1.0
    summary = v.finish()
    assert summary["best_step"] == 10 and summary["acc"] == 1.0 and summary["cases"] == 4
    assert summary["start_ce"] == round(start, 4)
    assert [e["step"] for e in summary["evaluations"]] == [10, 20]
    assert summary["content_acc"] == 1.0 and summary["evaluations"][1]["content_acc"] < 1.0
    for k, t in model.state_dict().items():
        torch.testing.assert_close(t, good[k])
    assert judge(summary, "copies") is None


def test_judge_names_why_a_run_failed() -> None:
    base = {"cases": 9, "copy_reference_acc": 0.4, "copy_history_acc": 0.3, "uniform_ce": 4.0}
    assert judge({**base, "acc": 0.6, "ce": 2.0}, "copies") is None
    copying = judge({**base, "acc": 0.35, "ce": 2.0}, "copies")
    assert copying is not None and "not above copying the reference (0.400)" in copying
    # a method without a reference can only be beaten by copying the history
    assert judge({**base, "acc": 0.35, "ce": 2.0}, "copies", uses_reference=False) is None
    assert judge({**base, "acc": 0.35, "ce": 2.0}, "diverged") is None
    diverged = judge({**base, "acc": 0.9, "ce": 5.0, "start_ce": 4.5}, "diverged")
    assert diverged is not None and "uniform guess" in diverged
    # a codebook head that diverged ends at exactly the uniform guess: that is no better, so failed
    assert judge({**base, "acc": 0.0, "ce": 4.0, "start_ce": 0.06}, "diverged") is not None
    assert judge({**base, "acc": 0.5, "ce": 3.9, "start_ce": 0.06}, "diverged") is None
    # ... or one that ends below the uniform guess but draws no better than one code everywhere
    one_code = judge({**base, "acc": 0.0, "ce": 2.1, "start_ce": 0.06, "constant_acc": 0.2}, "diverged")
    assert one_code is not None and "one code everywhere (0.200)" in one_code
    # matching one code everywhere (a tiny set whose targets are all one code) is not a failure
    tiny = {**base, "acc": 1.0, "ce": 0.004, "start_ce": 0.002, "constant_acc": 1.0}
    assert judge(tiny, "diverged") is None
    assert judge({**base, "acc": 0.5, "ce": 2.1, "start_ce": 0.06, "constant_acc": 0.2}, "diverged") is None
    # a composer that improved on its start has not diverged, even where one code scores high
    assert judge({**base, "acc": 0.5, "ce": 0.9, "start_ce": 3.0, "constant_acc": 0.7}, "diverged") is None
    # a barely trained composer that starts above a uniform guess has not diverged while it improves
    assert judge({**base, "acc": 0.1, "ce": 5.0, "start_ce": 5.1}, "diverged") is None
    assert "not finite" in str(judge({**base, "acc": None, "ce": None}, "diverged"))
    assert judge({**base, "acc": None, "ce": None}, "never") is None


class Scores:
    """A validation hook that replays fixed cross-entropies: better at step 4, worse after."""

    every = 2

    def __init__(self, patience: int) -> None:
        self.patience, self.calls, self.bad, self.best = patience, [], 0, float("inf")

    def __call__(self, step: int) -> dict[str, float]:
        ce = {0: 3.0, 2: 2.0, 4: 1.0}.get(step, 1.0 + step)
        self.calls.append(step)
        self.bad = 0 if ce < self.best else self.bad + 1
        self.best = min(self.best, ce)
        return {"valid_ce": ce}

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience

    def state_dict(self) -> dict:
        return {"calls": self.calls, "bad": self.bad, "best": self.best}

    def load_state_dict(self, s: dict) -> None:
        self.calls, self.bad, self.best = s["calls"], s["bad"], s["best"]


def _trainer(ckpt: Path, hook: Scores) -> Trainer:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    cfg = OptimConfig(steps=20, lr=0.01, warmup=1, ckpt_every=100, log_every=1)
    return Trainer(
        "toy", {"m": model}, list(model.parameters()), cfg, seed=0, device=torch.device("cpu"),
        precision="fp32", ckpt_dir=ckpt, config_hash="h", progress=False, validate=hook,
    )  # fmt: skip


def _step(i, rnd) -> StepOutput:
    return StepOutput(torch.zeros((), requires_grad=True) * 1.0)


def test_training_stops_early_and_stays_stopped(tmp_path: Path) -> None:
    hook = Scores(patience=2)
    res = _trainer(tmp_path / "ckpt", hook).fit(_step)
    # evaluations before training, at 2, 4 (best), 6 and 8 (worse twice): stop at 8, not 20
    assert hook.calls == [0, 2, 4, 6, 8] and res.steps == 8
    assert [r["step"] for r in res.history if "valid_ce" in r] == [0, 2, 4, 6, 8]
    again = Scores(patience=2)
    res2 = _trainer(tmp_path / "ckpt", again).fit(_step)  # rerun: resumes the stopped stage
    assert res2.steps == 8 and again.calls == [0, 2, 4, 6, 8]


def test_content_accuracy_counts_only_content_cells(tmp_path: Path) -> None:
    bank, model = Bank(), RefComposer()
    cases = _cases(bank)  # cases 1 and 2 have 3 content cells each, cases 0 and 3 none
    assert int(content_cells(bank.tokens[cases.hist], cases.mask, cases.target).sum()) == 6
    _solve(model)
    with torch.no_grad():  # wrong wherever the reference has code 3: two content cells, one other
        model.proj.weight[:, 3] = torch.nn.functional.one_hot(torch.tensor(1), V).float() * 10
    row = Validator(cases, bank, model, {"composer": model}, tmp_path, every=1, patience=0)(5)
    assert row["valid_content_acc"] == 4 / 6
    assert row["valid_acc"] == 9 / 12
