"""Variety: how different the n outputs of one request are, beside how different real items of one
(style, semantics) pair are (docs/DESIGN.md section 4).

`evaluate_run` scores one image per case (image 0 of its request). For variety it also draws images
1..n-1 of the first `variety_cases` cases at the full history length, each from its own random
stream (`drc.seeding`: image i of the request), exactly the images `drc generate --n n` would give
for those inputs. Both figures are `drc.eval.metrics.variety` in the evaluation's feature space (the
probes' pooled trunk features, or the tokenizer's centred codes on unlabelled data), and beside
each its pixel form (`pixel_variety`, mean absolute difference): the probes are trained to ignore
small shifts and blur, so on a benchmark whose real items of one pair differ by placement only
their feature distance is near 0 while the pixels still differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from drc.data.prepare import Prepared
from drc.eval.quality import pixel_variety, variety
from drc.models.inference import pad_history
from drc.seeding import image_generators, images_key

if TYPE_CHECKING:
    from drc.api import DrcModel
    from drc.eval.evaluate import Case

Features = Callable[[torch.Tensor], np.ndarray]  # uint8 (B, 3, H, W) -> (B, F)


def variety_case_indices(cases: Sequence[Case], k_full: int, n_cases: int) -> list[int]:
    """Indices into `cases` of the first `n_cases` cases at the full history length `k_full`."""
    return [i for i, c in enumerate(cases) if c.k == k_full][: max(n_cases, 0)]


@torch.no_grad()
def sample_variants(
    model: DrcModel, prep: Prepared, cases: Sequence[Case], seed: int, indices: Sequence[int]
) -> torch.Tensor:
    """Images `indices` of each case's request: uint8 (C, len(indices), 3, H, W), case by case in
    batches of `sample.batch_size` images. Image i of a case is image i of `drc generate` on the
    case's history (the most recent k), reference and the run's prompt, seeded `seed`."""
    n = len(indices)
    C = len(cases)
    if n == 0 or C == 0:
        h, w = model.image_size
        return torch.zeros(C, n, 3, h, w, dtype=torch.uint8)
    k_full = model.config.data.history_len
    per_batch = max(1, model.config.sample.batch_size // n)
    out = []
    for start in range(0, C, per_batch):
        chunk = cases[start : start + per_batch]
        hist_imgs = [prep.bank.get(list(c.sample.history)[-c.k :]) for c in chunk]
        hist_tok, mask = pad_history([model.tokens(imgs).cpu() for imgs in hist_imgs], k_full)
        ref_imgs = torch.stack([c.ref_image for c in chunk])
        instr = model.compose(hist_tok, mask, model.tokens(ref_imgs))
        gens = [
            g
            for c, h in zip(chunk, hist_imgs)
            for g in image_generators(seed, images_key(h, c.ref_image, model.prompt), indices)
        ]
        images = model.sample(instr.repeat_interleave(n), [model.prompt] * len(gens), generators=gens)
        out.append(images.view(len(chunk), n, *images.shape[1:]))
    return torch.cat(out)


def output_variety(first: torch.Tensor, rest: torch.Tensor, features: Features) -> tuple[float, float]:
    """(`variety`, `pixel_variety`) of each request's outputs: `first` uint8 (C, 3, H, W) is image
    0 of each request, `rest` uint8 (C, n-1, 3, H, W) its images 1..n-1; NaN when n < 2 or C = 0."""
    C, m = rest.shape[:2]
    if C == 0 or m == 0:
        return float("nan"), float("nan")
    allimg = torch.cat([first[:, None], rest], dim=1)  # (C, n, 3, H, W)
    feats = features(allimg.flatten(0, 1)).reshape(C, m + 1, -1)
    return variety(list(feats)), pixel_variety(list(allimg))


def real_groups(prep: Prepared, max_groups: int = 64, per_group: int = 8) -> list[list[str]]:
    """Item ids of the (style, semantics) pairs with at least 2 real items: up to `max_groups` pairs
    spread evenly over the sorted pairs, up to `per_group` items each (in id order); [] when the
    dataset has no labels."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for iid in sorted(prep.bank.ids):
        it = prep.ds.items[iid]
        if it.style is None or it.semantics is None:
            continue
        pairs.setdefault((str(it.style), str(it.semantics)), []).append(iid)
    groups = [ids[:per_group] for _, ids in sorted(pairs.items()) if len(ids) >= 2]
    step = max(1, -(-len(groups) // max_groups))  # ceil: at most max_groups after striding
    return groups[::step][:max_groups]


def real_variety(prep: Prepared, features: Features, **kw: Any) -> tuple[float, float]:
    """(`variety`, `pixel_variety`) of real items, grouped by (style, semantics) pair
    (`real_groups(prep, **kw)`): the reference point for `output_variety`. NaN when no pair has 2
    items."""
    groups = real_groups(prep, **kw)
    if not groups:
        return float("nan"), float("nan")
    images = prep.bank.get([i for g in groups for i in g])
    sizes = np.cumsum([len(g) for g in groups])[:-1]
    return variety(np.split(features(images), sizes)), pixel_variety(np.split(images.numpy(), sizes))
