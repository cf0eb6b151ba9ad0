"""Where a run loses composition: one table from the tokenizer to the generated image.

For the samples of one split (default `valid`: new users' pairs; `heldout`: training users' pairs no
training sample shows; never test pairs when choosing anything) at the full history length, the
probes read five images per case:

    recon      the target's own VQ reconstruction       (can the tokenizer draw the pair at all?)
    oracle     the generator given the target's tokens   (can the generator render the pair from a
               as a one-hot draft                         perfect draft, or does it snap to a seen pair?)
    ref_draft  the reference's tokens decoded            (the input: reference semantics, its style)
    draft      the composer's draft, argmax decoded      (does the composer carry the semantics?)
    output     the run's generation                       (the method as shipped)

and the draft's per-cell agreement with the target's tokens, overall and on content cells (no
history image has the target's code there: `drc.train.validation.content_cells`). Probes come
from `--probes` (a demo's probe folder) or are trained on the dataset's real items and cached in
RUN/eval/probes.

    python bench/diagnose_run.py --run RUN --data DATA [--split valid] [--max-samples 96] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import drc.api as api
from drc.data.prepare import prepare
from drc.eval.evaluate import _cases, case_generator, probes_for
from drc.eval.probes import ProbeConfig, Probes
from drc.models.instruction import LatentInstruction
from drc.train.validation import content_cells


def _acc(pred: dict, cases: list, prep, field: str) -> float:
    items = prep.ds.items
    if field == "style":
        want = [_majority([items[i].style for i in c.sample.history]) for c in cases]
    else:
        want = [items[c.sample.target].semantics for c in cases]
    return sum(p == w for p, w in zip(pred[field], want)) / max(len(cases), 1)


def _majority(values: list) -> str:
    return max(set(values), key=values.count)


def _scores(images: torch.Tensor, probes: Probes, cases: list, prep) -> dict[str, float]:
    pred = probes.predict(images)
    style, sem = _acc(pred, cases, prep, "style"), _acc(pred, cases, prep, "semantics")
    items = prep.ds.items
    joint = sum(
        p_st == _majority([items[i].style for i in c.sample.history])
        and p_se == items[c.sample.target].semantics
        for p_st, p_se, c in zip(pred["style"], pred["semantics"], cases)
    ) / max(len(cases), 1)
    return {"style": round(style, 3), "semantics": round(sem, 3), "joint": round(joint, 3)}


def diagnose(run: Path, data: Path, split: str, max_samples: int | None, probes_dir: Path | None,
             seed: int = 0, sample: bool = True) -> dict:  # fmt: skip
    model = api.load(run, device="cpu")
    prep = prepare(data, model.config)
    probes = (
        Probes.load(probes_dir, model.device)
        if probes_dir is not None
        else probes_for(prep, ProbeConfig(), model.device, run / "eval" / "probes", model.tokenizer, seed)
    )
    with torch.no_grad():  # the probes above may train; only what follows is inference
        return _diagnose(model, prep, probes, run, data, split, max_samples, seed, sample)


def _diagnose(model, prep, probes, run, data, split, max_samples, seed, sample) -> dict:
    k = model.config.data.history_len
    # full histories only: a validation case of a young training user may have fewer than k images
    cases = [c for c in _cases(prep, split, (k,), seed, max_samples) if len(c.sample.history) >= k]
    if not cases:
        raise SystemExit(f"no {split} samples in {data}")
    V = model.tokenizer.config.codebook_size if hasattr(model.tokenizer, "config") else None
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in ("recon", "oracle", "ref_draft", "draft", "output")}
    cell_acc, ref_cell_acc = [], []
    content_hits, content_n = [], []
    bs = model.config.sample.batch_size
    for start in range(0, len(cases), bs):
        chunk = cases[start : start + bs]
        B = len(chunk)
        hist_imgs = [prep.bank.get(list(c.sample.history)[-k:]) for c in chunk]
        hist = torch.stack([model.tokens(h) for h in hist_imgs])
        mask = torch.ones(B, k, dtype=torch.bool)
        ref_tok = model.tokens(torch.stack([c.ref_image for c in chunk]))
        tgt_tok = model.tokens(prep.bank.get([c.sample.target for c in chunk]))
        instr = model.compose(hist, mask, ref_tok)
        if sample:
            gens = [case_generator(seed, c, h, model.prompt) for c, h in zip(chunk, hist_imgs)]
            rows["output"].append(model.sample(instr, [model.prompt] * B, generators=gens))
        rows["draft"].append(model.decode(instr.argmax().cpu()))
        rows["recon"].append(model.decode(tgt_tok))
        rows["ref_draft"].append(model.decode(ref_tok))
        if sample:
            oracle = LatentInstruction.hard(tgt_tok.to(model.device), V or instr.draft.shape[-1])
            gens = [case_generator(seed + 1, c, h, model.prompt) for c, h in zip(chunk, hist_imgs)]
            rows["oracle"].append(model.sample(oracle, [model.prompt] * B, generators=gens))
        hit = instr.argmax().cpu() == tgt_tok
        cell_acc.append(hit.float().mean(1))
        content = content_cells(hist.cpu(), mask, tgt_tok.cpu())  # the cells a style copier misses
        content_hits.append((hit & content).sum())
        content_n.append(content.sum())
        ref_cell_acc.append((ref_tok == tgt_tok).float().mean(1))
    out = {
        "run": str(run),
        "data": str(data),
        "split": split,
        "n_cases": len(cases),
        "probes": dict(probes.accuracy),
        "draft_cell_acc": round(float(torch.cat(cell_acc).mean()), 3),
        "draft_content_acc": round(float(sum(content_hits)) / max(int(sum(content_n)), 1), 3),
        "ref_cell_acc": round(float(torch.cat(ref_cell_acc).mean()), 3),
    }
    for name, imgs in rows.items():
        if imgs:
            out[name] = _scores(torch.cat(imgs), probes, cases, prep)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    # heldout: training users' pairs that no training sample shows (the validation cases `drc train`
    # checkpoints on): the held-out-pair question on training users, for choosing settings
    p.add_argument("--split", default="valid", choices=("valid", "heldout", "test"))
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--probes", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--no-sample", action="store_true", help="drafts only: no generator runs")
    a = p.parse_args()
    res = diagnose(a.run, a.data, a.split, a.max_samples, a.probes, sample=not a.no_sample)
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text)


if __name__ == "__main__":
    main()
