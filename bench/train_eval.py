"""Train one method on a base with config overrides, then score it on the test and the train split.

The quick loop behind the Stage 2 measurements in bench/README.md: one run, a few minutes on 2 CPU
cores, one JSON line appended to OUT/results.jsonl, with each test case's joint hit (`test_cases`) for
`bench/paired.py`. `--score-only` scores a finished run again without training.

    python bench/train_eval.py --data data/stickers --probes demo_out/probes --out runs/exp \
        --name frozen drc stage2.trainable=composer

--base defaults to the shipped sticker base (tokenizer + pretrained generator); --probes is a
probe folder from `drc demo` (OUT/probes) or `drc eval`. Train-split scores use the first
--train-samples samples (references: real items of the target's semantics in another style).
Each split is scored twice: as the method generates (the generator renders the composer's draft)
and with `sample.renderer=draft` (the draft decoded by the tokenizer alone: what the composer knows).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from drc.api import DrcModel
from drc.config import build_config, parse_overrides
from drc.data.prepare import prepare
from drc.eval.evaluate import evaluate_run
from drc.eval.metrics import joint_hits
from drc.eval.probes import Probes
from drc.pipeline import train_run

KEYS = ("style_acc", "semantic_acc", "joint_acc", "collapse_rate")
# issue 13's figures, where the split has noisy users (test split, generator rendering only)
EXPLAIN_KEYS = ("noisy_style_acc", "intruder_weight_ratio", "influence_agreement")


def case_hits(records: list, k: int) -> list[dict]:
    """Each full-history test case's key (user, target, reference) and whether it was a joint hit:
    what `bench/paired.py` pairs across methods and seeds."""
    full = [r for r in records if r.extra["k"] == k]
    if not full:
        return []
    hits = joint_hits(*zip(*((r.pred_style, r.user_style, r.pred_sem, r.target_sem) for r in full)))
    keys = [{f: r.extra[f] for f in ("user", "target", "reference")} for r in full]
    return [{**key, "joint": int(h)} for key, h in zip(keys, hits)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method")
    p.add_argument("overrides", nargs="*", help="dotted config overrides")
    p.add_argument("--data", required=True)
    p.add_argument("--probes", required=True)
    p.add_argument("--out", required=True, help="folder for the runs and results.jsonl")
    p.add_argument("--name", required=True)
    p.add_argument("--base", default=str(Path(__file__).parents[1] / "src/drc/pretrained/stickers"))
    p.add_argument("--train-samples", type=int, default=96)
    p.add_argument("--size", default="64x64", help="HxW of the images (posters: 96x64)")
    p.add_argument(
        "--test-only", action="store_true", help="score the test split as the method generates, nothing else"
    )
    p.add_argument(
        "--score-only", action="store_true", help="score the finished run OUT/NAME again; train nothing"
    )
    a = p.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    over = {"data.image_height": h, "data.image_width": w, **parse_overrides(a.overrides)}
    out = Path(a.out)
    run = out / a.name
    row: dict = {"name": a.name, "method": a.method, "overrides": a.overrides}
    if a.score_only:
        if not (run / "run.json").is_file():
            raise SystemExit(f"train_eval: {run}: no finished run to score (run.json missing)")
    else:
        t0 = time.perf_counter()
        train_run(a.data, run, method=a.method, overrides=over, base=a.base, progress=False)
        row["train_s"] = round(time.perf_counter() - t0, 1)
    probes = Probes.load(a.probes)
    model = DrcModel.load(run, device="cpu")
    prep = prepare(a.data, build_config(a.method, overrides=over), cache=run / "images.pt")
    generator_cfg = model.config
    draft_sample = dataclasses.replace(model.config.sample, renderer="draft")
    draft_cfg = dataclasses.replace(model.config, sample=draft_sample)
    splits = (("test", None),) if a.test_only else (("test", None), ("train", a.train_samples))
    for split, n in splits:
        for suffix, cfg in (
            (("", generator_cfg),) if a.test_only else (("", generator_cfg), ("_draft", draft_cfg))
        ):
            model.config = cfg
            r = evaluate_run(
                model,
                prep,
                probes=probes,
                history_lens=(5,),
                split=split,
                max_samples=n,
                progress=False,
                max_loo_users=24 if split == "test" and not suffix else 0,
            )
            row[split + suffix] = {k: round(float(r["metrics"][k]), 3) for k in KEYS}
            if split == "test" and not suffix:
                row["test_cases"] = case_hits(r["records"], model.config.data.history_len)
                m = r["metrics"]
                row["explain"] = {
                    k: m[k] if m.get(k) is None else round(float(m[k]), 3) for k in EXPLAIN_KEYS
                }
    model.config = generator_cfg
    print(json.dumps(row))
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
