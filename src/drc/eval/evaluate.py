"""Evaluate a trained run on a dataset's test users (docs/DESIGN.md section 4).

For each test sample the run generates from (history, reference, coarse instruction); the probes
(trained on real items only) read the output's style and semantics, and the metrics compare them
with the user's style, the target's semantics, the reference's style and the history's semantics.
Unlabelled data has no probes: then only the similarity metrics are reported, in the tokenizer's
own feature space (code vectors of every cell, centred on the dataset's mean), plus the encoder
metrics when `--encoder` names a local CLIP / DINOv2 folder.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from drc.data.images import pixels_to_unit
from drc.data.prepare import Prepared, prepare
from drc.data.samples import Sample
from drc.eval.metrics import EvalRecord, breakdown, summarize, worst_group
from drc.eval.probes import ProbeConfig, Probes, train_probes
from drc.eval.quality import sharpness_ratio
from drc.models.inference import pad_history
from drc.precision import autocast
from drc.runtime import Progress, derived_seed
from drc.seeding import image_generators, images_key

if TYPE_CHECKING:
    from drc.api import DrcModel
    from drc.backends.base import VisualTokenizer

HISTORY_LENS = (1, 2, 3, 5)


@dataclass
class Case:
    """One test input: a sample, its reference image and the history length used."""

    sample: Sample
    ref_image: torch.Tensor  # uint8 (3, H, W)
    ref_style: str | None
    k: int


def split_probe_items(n: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(held-out, training) indices of `n` real items for the probes: 15 % held out, by `seed`."""
    order = list(range(n))
    random.Random(f"probes/{seed}").shuffle(order)
    n_held = max(1, n * 15 // 100)
    return sorted(order[:n_held]), sorted(order[n_held:])


def probes_for(
    prep: Prepared,
    cfg: ProbeConfig,
    device: torch.device,
    cache: Path | None,
    tokenizer: VisualTokenizer | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Probes | None:
    """Train (or load from `cache`) the style/semantics probes on real items; None if unlabelled."""
    if not prep.ds.labelled:
        return None
    if cache is not None and (cache / "probe.json").is_file():
        return Probes.load(cache, device)
    items = [prep.ds.items[i] for i in prep.bank.ids]
    held, train = split_probe_items(len(items), seed)
    extra = None
    if tokenizer is not None:
        # the probes also see VQ reconstructions of real items, so that they read decoded images
        # as well as originals; they never see a generated image
        def extra(x: torch.Tensor) -> torch.Tensor:
            dev = next(tokenizer.parameters()).device
            with torch.no_grad(), autocast(dev, "auto"):
                f = pixels_to_unit(x.to(dev))
                return tokenizer.decode_code(tokenizer.encode(f)).float().clamp(-1, 1).cpu()

    probes = train_probes(
        prep.bank.images,
        [str(it.style) for it in items],
        [str(it.semantics) for it in items],
        train,
        held,
        cfg,
        device=device,
        seed=seed,
        extra_views=extra,
        progress=progress,
    )
    if cache is not None:
        probes.save(cache)
    return probes


def _cases(
    prep: Prepared, split: str, history_lens: Sequence[int], seed: int, max_samples: int | None
) -> list[Case]:
    from drc.data.augment import augment

    samples = sorted(prep.split(split), key=lambda s: (s.user, s.target))
    if max_samples is not None:
        samples = samples[:max_samples]
    cases = []
    for s in samples:
        if s.reference is not None:
            ref = prep.bank.get([s.reference])[0]
            ref_style = prep.ds.items[s.reference].style
        else:
            # unlabelled: a held-out augmentation of the target, fixed by the seed
            rng = np.random.default_rng(derived_seed("eval-ref", seed, s.user, s.target))
            arr = prep.bank.get([s.target])[0].permute(1, 2, 0).numpy()
            ref = torch.from_numpy(np.ascontiguousarray(augment(arr, rng))).permute(2, 0, 1)
            ref_style = None
        for k in history_lens:
            cases.append(Case(s, ref, ref_style, k))
    return cases


def case_generator(seed: int, case: Case, history: torch.Tensor, prompt: str) -> torch.Generator:
    """The random stream of one evaluation case: image 0 of the request (its history `history`, uint8
    (L, 3, H, W), the most recent k images; its reference; `prompt`) seeded `seed` (`drc.seeding`),
    so the case is scored on the image `drc generate` and `drc serve` draw first for those inputs, not
    on one that depends on the batch size or on which other cases are evaluated beside it."""
    return image_generators(seed, images_key(history, case.ref_image, prompt), [0])[0]


@torch.no_grad()
def sample_cases(
    model: DrcModel, prep: Prepared, chunk: Sequence[Case], seed: int
) -> tuple[torch.Tensor, Any, list[torch.Tensor], torch.Tensor]:
    """One image per case, sampled in one batch: uint8 (B, 3, H, W), the LatentInstruction, each
    case's history images (L_b, 3, H, W) and the references (B, 3, H, W)."""
    B = len(chunk)
    hist_imgs = [prep.bank.get(list(c.sample.history)[-c.k :]) for c in chunk]
    k_full = model.config.data.history_len
    hist_tok, mask = pad_history([model.tokens(imgs).cpu() for imgs in hist_imgs], k_full)
    ref_imgs = torch.stack([c.ref_image for c in chunk])
    instr = model.compose(hist_tok, mask, model.tokens(ref_imgs))
    gens = [case_generator(seed, c, h, model.prompt) for c, h in zip(chunk, hist_imgs)]
    out = model.sample(instr, [model.prompt] * B, generators=gens)
    return out, instr, hist_imgs, ref_imgs


def _features(
    images: torch.Tensor, probes: Probes | None, model: DrcModel, centre: np.ndarray | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """Probe predictions (or empty) and the feature vectors `(B, F)` used for the similarity metrics.

    Without probes the features are the tokenizer's code vectors of every cell, flattened
    (`N * code_dim`: where things are matters) and centred on the dataset's mean (`centre`): a raw
    code vector is mostly what all images share, which put every cosine at 0.997-0.999.
    """
    if probes is not None:
        p = probes.predict(images)
        return p, p["feats"].numpy()
    tok = model.tokens(images)
    feats = model.tokenizer.embed(tok).float().flatten(1).cpu().numpy()
    return {}, feats if centre is None else feats - centre


def feature_centre(model: DrcModel, prep: Prepared, n: int = 512) -> np.ndarray:
    """Mean unlabelled feature `(F,)` of (up to n of) the dataset's training items."""
    ids = prep.train_ids[:: max(1, len(prep.train_ids) // n)][:n]
    return _features(prep.bank.get(ids), None, model)[1].mean(0)


def evaluate_run(
    model: DrcModel,
    data: str | Path | Prepared,
    encoder: str | Path | None = None,
    probes: Probes | None = None,
    probe_cfg: ProbeConfig | None = None,
    history_lens: Sequence[int] = HISTORY_LENS,
    split: str = "test",
    max_samples: int | None = None,
    seed: int = 0,
    progress: bool = True,
    max_loo_users: int = 24,
    variety_n: int = 4,
    variety_cases: int = 16,
    probe_cache: str | Path | None = None,
) -> dict[str, Any]:
    """Generate for every test sample (at each history length) and compute the metrics, with the
    explanation and fairness metrics of `explanations.py` on labelled data (leave-one-out influence
    for at most `max_loo_users` noisy users; 0: none), and the output-quality metrics
    (`quality_metrics`: `variety_n` images of the first `variety_cases` full-length cases).
    Probes trained here are cached in `probe_cache` (default RUN/eval/probes).

    Returns {"metrics": {...} at the full history length, "by_history_len": {k: joint_acc},
    "by_theme": {...}, "worst_theme": str, "probes": {...}, "grid": [rows], "n_cases": int}.
    """
    cfg = model.config
    prep = data if isinstance(data, Prepared) else prepare(data, cfg)
    k_full = cfg.data.history_len
    lens = sorted({min(k, k_full) for k in history_lens} | {k_full})
    if probes is None:
        cache = Path(probe_cache) if probe_cache is not None else model.paths.root / "eval" / "probes"
        probes = probes_for(
            prep, probe_cfg or ProbeConfig(), model.device, cache, model.tokenizer, seed, progress
        )
    centre = feature_centre(model, prep) if probes is None else None
    cases = _cases(prep, split, lens, seed, max_samples)
    if not cases:
        raise ValueError(f"no {split} samples to evaluate")
    bs = cfg.sample.batch_size
    records: list[EvalRecord] = []
    outputs: list[torch.Tensor] = []
    weights: list[list[float]] = []
    bar = Progress("eval", len(cases), enabled=progress, every=max(bs, 1))
    items = prep.ds.items
    for start in range(0, len(cases), bs):
        chunk = cases[start : start + bs]
        out, instr, hist_imgs, ref_imgs = sample_cases(model, prep, chunk, seed)
        outputs.append(out)
        w = instr.weights
        for b, c in enumerate(chunk):
            L = min(c.k, len(c.sample.history))
            weights.append([] if w is None else [float(x) for x in w[b, k_full - L :]])
        tgt_imgs = prep.bank.get([c.sample.target for c in chunk])
        po, fo = _features(out, probes, model, centre)
        pr, fr = _features(ref_imgs, probes, model, centre)
        _, ft = _features(tgt_imgs, probes, model, centre)
        for b, c in enumerate(chunk):
            ph, fh = _features(hist_imgs[b], probes, model, centre)
            split = "style_feats" in po  # the shipped encoder: style and content embeddings apart
            s = c.sample
            h = list(s.history)[-c.k :]
            user_style = _majority([items[i].style for i in s.history])
            records.append(
                EvalRecord(
                    pred_style=po["style"][b] if po else "",
                    pred_sem=po["semantics"][b] if po else "",
                    user_style=str(user_style),
                    target_sem=str(items[s.target].semantics),
                    ref_style=str(c.ref_style),
                    history_sems=[str(items[i].semantics) for i in h],
                    out_feat=fo[b],
                    hist_feats=fh,
                    ref_feat=fr[b],
                    target_feat=ft[b],
                    out_style=po["style_feats"][b].numpy() if split else None,
                    hist_style=ph["style_feats"].numpy() if split else None,
                    out_content=po["content_feats"][b].numpy() if split else None,
                    ref_content=pr["content_feats"][b].numpy() if split else None,
                    extra={"user": s.user, "k": c.k, "target": s.target, "reference": s.reference},
                )
            )
        bar.update(min(start + bs, len(cases)))
    allout = torch.cat(outputs)
    quality = quality_metrics(
        model, prep, cases, allout, lambda x: _features(x, probes, model, centre)[1],
        seed, variety_n, variety_cases, labelled=probes is not None,
    )  # fmt: skip
    return _result(
        model, prep, records, allout, weights, cases, lens, probes, encoder, seed, max_loo_users, quality
    )


def quality_metrics(
    model: DrcModel, prep: Prepared, cases: list[Case], outputs: torch.Tensor, features: Any,
    seed: int, variety_n: int, variety_cases: int, labelled: bool,
) -> dict[str, float | int | None]:  # fmt: skip
    """Would a person keep the outputs: `sharpness_ratio` of the full-length cases' outputs
    `outputs` (uint8 (len(cases), 3, H, W)) against their real targets; `variety` of `variety_n`
    images of the first `variety_cases` full-length cases (image 0 is the case's output, 1..n-1 are
    drawn here: `drc.eval.variety`) in the feature space `features` (uint8 (B, 3, H, W) -> (B, F));
    `real_variety` of real items of one (style, semantics) pair (None on unlabelled data); and the
    pixel forms of both, `variety_pixels` and `real_variety_pixels` (`drc.eval.metrics.pixel_variety`)."""
    from drc.eval.variety import output_variety, real_variety, sample_variants, variety_case_indices

    k_full = model.config.data.history_len
    full = [i for i, c in enumerate(cases) if c.k == k_full]
    targets = prep.bank.get([cases[i].sample.target for i in full])
    out: dict[str, float | int | None] = {"sharpness_ratio": sharpness_ratio(outputs[full], targets)}
    picked = variety_case_indices(cases, k_full, variety_cases) if variety_n >= 2 else []
    rest = sample_variants(model, prep, [cases[i] for i in picked], seed, range(1, variety_n))
    out["variety"], out["variety_pixels"] = output_variety(outputs[picked], rest, features)
    out["variety_n"] = variety_n if picked else 0
    out["variety_cases"] = len(picked)
    real = real_variety(prep, features) if labelled else (None, None)
    out["real_variety"], out["real_variety_pixels"] = real
    return out


def _result(
    model: DrcModel, prep: Prepared, records: list[EvalRecord], allout: torch.Tensor,
    weights: list[list[float]], cases: list[Case], lens: list[int], probes: Probes | None,
    encoder: str | Path | None, seed: int, max_loo_users: int, quality: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """`evaluate_run`'s result from its generated cases: the metrics at the full history length, by
    history length and by theme, and the explanation and encoder metrics."""
    k_full = model.config.data.history_len
    full = [r for r in records if r.extra["k"] == k_full]
    metrics = summarize(full)
    metrics.update(quality)
    if probes is None:  # accuracies need labels; keep only what is defined
        for key in ("style_acc", "semantic_acc", "joint_acc", "collapse_rate"):
            metrics[key] = None
            metrics.pop(f"{key}_ci", None)
    by_len = {
        str(k): summarize([r for r in records if r.extra["k"] == k], ci=False)["joint_acc"] for k in lens
    }
    by_theme = breakdown(full, key=lambda r: r.user_style) if probes is not None else {}
    result: dict[str, Any] = {
        "metrics": metrics,
        "by_history_len": by_len if probes is not None else {},
        "by_theme": by_theme,
        "worst_theme": worst_group(by_theme) if by_theme else None,
        "probes": dict(probes.accuracy) if probes is not None else None,
        "n_cases": len(cases),
        "records": records,
        "outputs": allout,
        "weights": weights,
        "cases": cases,
    }
    if probes is not None:
        from drc.eval.explanations import explanation_metrics

        extra, result["explanations"] = explanation_metrics(
            model, prep, records, cases, weights, by_len, probes, seed=seed, max_users=max_loo_users
        )
        result["metrics"].update(extra)
    if encoder is not None:
        result["metrics"].update(encoder_metrics(encoder, allout, cases, prep, model))
    return result


def encoder_metrics(
    path: str | Path, outputs: torch.Tensor, cases: list[Case], prep: Prepared, model: DrcModel
) -> dict[str, float]:
    """CLIP-I / CLIP-T / DINO / FID from a local pretrained encoder folder (nothing is downloaded)."""
    from drc.eval.encoders import encoder_scores, load_encoder

    enc = load_encoder(path, device=model.device)
    targets = prep.bank.get([c.sample.target for c in cases])
    texts = [prep.ds.items[c.sample.target].text for c in cases]
    return encoder_scores(enc, outputs, targets, texts)


def _majority(values: Sequence[Any]) -> Any:
    counts: dict[Any, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return max(counts, key=lambda v: counts[v]) if counts else None
