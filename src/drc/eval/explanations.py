"""Explanations and fairness in an evaluation: noisy users, importance weights against leave-one-out
influence, gaps across themes and intents, cold starts (the metric functions: `explain_metrics.py`).

`explanation_metrics(...)` runs after `evaluate_run` has generated every test case. It adds to the
method's metrics:

- `joint_acc_clean`, `joint_acc_noisy`, `n_noisy`: joint accuracy of users without / with intruders
  (history items whose style label is not the user's main style; `drc.data.benchmarks.intruders`);
- `noisy_style_acc`: style accuracy on noisy users (the output must follow the main theme);
- `intruder_weight_ratio`: mean weight of intruders / mean weight of own items (methods with weights);
- `influence_agreement` (+ `_draft`, `_n`): mean Spearman correlation, per noisy test user (at most
  `max_users`), between the weights and the leave-one-out influence: how far the style probe's class
  probabilities of the output move when that image is left out, same random streams; `_draft` uses
  the draft's distance instead (no sampling noise). Only for methods with weights: the agreement
  needs them, and skipping the others keeps the evaluation cheap;
- `theme_gap`, `intent_gap`: max - min joint accuracy across user themes / target intents;
- `cold_start_ratio`: joint(k=1) / joint(k=full).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from drc.data.benchmarks.intruders import intruder_mask
from drc.eval.explain_metrics import cold_start_ratio, influence_agreement, intruder_weight_ratio, spread
from drc.eval.metrics import EvalRecord, breakdown, summarize
from drc.influence import draft_distance, leave_one_out, prob_distance
from drc.models.inference import pad_history
from drc.seeding import image_generators, images_key

if TYPE_CHECKING:
    from drc.api import DrcModel
    from drc.data.prepare import Prepared
    from drc.eval.probes import Probes

LOO_IMAGES = 2  # images per leave-one-out variant (same streams in every variant)


def explanation_metrics(
    model: DrcModel,
    prep: Prepared,
    records: Sequence[EvalRecord],
    cases: Sequence[Any],
    weights: Sequence[Sequence[float]],
    by_history_len: dict[str, float],
    probes: Probes | None,
    seed: int = 0,
    max_users: int = 24,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics to merge into the method's, details: gaps with group names, leave-one-out examples).

    `records`, `cases` and `weights` are parallel (one per generated case, every history length).
    """
    items = prep.ds.items
    k_full = model.config.data.history_len
    idx = [i for i, r in enumerate(records) if r.extra["k"] == k_full]
    flags = {
        i: intruder_mask(list(cases[i].sample.history)[-k_full:], items, records[i].user_style) for i in idx
    }
    noisy = [i for i in idx if any(flags[i])]
    clean = [i for i in idx if not any(flags[i])]
    m: dict[str, Any] = {"n_noisy": len(noisy)}
    m["joint_acc_clean"] = summarize([records[i] for i in clean], ci=False)["joint_acc"] if clean else None
    if noisy:
        s = summarize([records[i] for i in noisy], ci=False)
        m["joint_acc_noisy"], m["noisy_style_acc"] = s["joint_acc"], s["style_acc"]
    else:
        m["joint_acc_noisy"] = m["noisy_style_acc"] = None
    has_weights = any(len(weights[i]) for i in idx)
    m["intruder_weight_ratio"] = (
        intruder_weight_ratio([weights[i] for i in noisy], [flags[i] for i in noisy]) if has_weights else None
    )
    full = [records[i] for i in idx]
    by_intent = breakdown(full, key=lambda r: r.target_sem)
    themes = spread(breakdown(full, key=lambda r: r.user_style))
    intents = spread(by_intent)
    m["theme_gap"], m["intent_gap"] = themes["gap"], intents["gap"]
    m["cold_start_ratio"] = cold_start_ratio(by_history_len, k_full)
    details: dict[str, Any] = {"theme_gap": themes, "intent_gap": intents, "by_intent": by_intent}
    details["loo_examples"] = []
    m["influence_agreement"] = m["influence_agreement_draft"] = None
    m["influence_agreement_n"] = 0
    if has_weights and probes is not None and noisy and max_users > 0:
        picked = sorted(noisy, key=lambda i: records[i].extra["user"])[:max_users]
        style_infl, draft_infl = _leave_one_out(model, prep, cases, picked, probes, seed)
        w = [weights[i] for i in picked]
        agree, agree_d = influence_agreement(w, style_infl), influence_agreement(w, draft_infl)
        m["influence_agreement"], m["influence_agreement_n"] = agree["mean"], agree["n"]
        m["influence_agreement_draft"] = agree_d["mean"]
        details["loo_examples"] = [
            {
                "user": records[i].extra["user"],
                "history": list(cases[i].sample.history)[-k_full:],
                "weights": weights[i],
                "influence": style_infl[j],
                "influence_draft": draft_infl[j],
                "intruder": flags[i],
                "pred_style": records[i].pred_style,
                "user_style": records[i].user_style,
            }
            for j, i in enumerate(picked)
        ]
    return m, details


@torch.no_grad()
def _leave_one_out(
    model: DrcModel, prep: Prepared, cases: Sequence[Any], picked: Sequence[int], probes: Probes | None,
    seed: int,
) -> tuple[list[list[float]], list[list[float]]]:
    """Per picked case: the style influence and the draft influence of each history image."""
    k = model.config.data.history_len
    histories, refs, owner, keys = [], [], [], []
    for j, i in enumerate(picked):
        c = cases[i]
        hist_img = prep.bank.get(list(c.sample.history)[-k:])
        keys.append(images_key(hist_img, c.ref_image, model.prompt))
        hist = model.tokens(hist_img).cpu()
        ref = model.tokens(c.ref_image[None]).cpu()[0]
        for v in [hist, *leave_one_out(hist)]:
            histories.append(v)
            refs.append(ref)
            owner.append(j)
    padded, mask = pad_history(histories, k)
    instr = model.compose(padded, mask, torch.stack(refs))
    n = LOO_IMAGES
    # image t of every variant of a case from the stream of the case's image t (`drc.seeding`), so a
    # variant differs from the full history only by its history
    all_gens = [g for j in owner for g in image_generators(seed, keys[j], range(n))]
    bs = max(1, model.config.sample.batch_size)
    rows = instr.repeat_interleave(n)
    probs = []
    for s in range(0, len(all_gens), bs):
        part = type(rows)(rows.draft[s : s + bs])
        gens = all_gens[s : s + bs]
        out = model.sample(part, [model.prompt] * len(gens), generators=gens)
        probs.append(probes.predict(out)["style_prob"])
    p = torch.cat(probs).view(len(owner), n, -1)
    style: list[list[float]] = [[] for _ in picked]
    draft: list[list[float]] = [[] for _ in picked]
    first: dict[int, int] = {}
    for r, j in enumerate(owner):
        if j not in first:
            first[j] = r  # the full history comes first among a case's rows
            continue
        f = first[j]
        style[j].append(round(prob_distance(p[f], p[r]), 4))
        draft[j].append(round(draft_distance(instr.draft[f], instr.draft[r]), 4))
    return style, draft
