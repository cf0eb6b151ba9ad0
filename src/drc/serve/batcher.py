"""Many generate requests of one run -> one compose batch and one sampling batch.

Batching is where the service's throughput comes from: the generator's per-step cost hardly grows
with the batch on a CPU, so 32 images sampled together cost a fraction of 32 single ones (see
bench/README.md). For that to be fair to each request, every image is sampled from its own random
stream, keyed by (job seed, the job's inputs, image index) (`drc.seeding`: the stream `drc generate`
and `drc eval` draw for the same inputs): what a request gets does not depend on which other
requests shared its batch (up to floating-point rounding of the batched matmuls).

Built on DrcModel's building blocks (`load_images`, `tokens`, `compose`, `decode`); sampling calls
the generator directly only to hand it one random generator per row.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from drc import influence as explain
from drc.errors import DrcError
from drc.models.inference import pad_history
from drc.models.instruction import LatentInstruction
from drc.seeding import image_digest, image_generators, request_key


@dataclass
class SampleRequest:
    """One request: history and reference as content hashes (their tokens are cached by hash)."""

    history: list[str]  # sha256 of each history image, oldest first (at most the run's history_len)
    reference: str
    prompt: str
    n: int
    seed: int
    explain: bool = False
    first: int = 0  # index of the first image in its job (a job served in parts): its random stream

    @property
    def rows(self) -> int:
        """Sampling rows this item costs: its n images, plus n per left-out variant when explaining."""
        variants = len(self.history) if self.explain and len(self.history) >= 2 else 0
        return self.n * (1 + variants)


@dataclass
class ItemResult:
    images: list[np.ndarray]  # n (H, W, 3) uint8
    weights: list[float] | None  # one per history image, oldest first
    influence: list[dict[str, float]] | None


class RunBatcher:
    """One served run: its model, a token cache, and `run(items)` for a batch of requests."""

    def __init__(
        self,
        model,  # noqa: ANN001 - a drc.api.DrcModel
        read_blob: Callable[[str], bytes],
        cache_size: int = 4096,
        precision: str | None = None,
    ) -> None:
        from drc.precision import resolve_precision

        self.model = model
        self.read_blob = read_blob
        self.cache_size = cache_size
        # content hash -> (visual tokens (N,), the pixels' digest for the request key)
        self._tokens: OrderedDict[str, tuple[torch.Tensor, str]] = OrderedDict()
        # the run's own precision policy unless told otherwise: with precision=auto, bf16 autocast
        # where the device multiplies faster in bf16 (AMX here: a batch of 32 samples ~1.7x faster
        # than in fp32 with the default generator); one precision for every batch, so a request's
        # images do not depend on the size of the batch it shared
        self.precision, self.precision_reason = resolve_precision(
            precision or model.config.precision, model.device
        )

    @property
    def history_len(self) -> int:
        return int(self.model.config.data.history_len)

    def tokens(self, shas: Sequence[str]) -> dict[str, torch.Tensor]:
        """Visual tokens (N,) of each image, tokenizing only those not cached (in one batch)."""
        return {s: t for s, (t, _) in self._entries(shas).items()}

    def _entries(self, shas: Sequence[str]) -> dict[str, tuple[torch.Tensor, str]]:
        """(visual tokens (N,), pixel digest) of each image, loading only those not cached."""
        missing = [s for s in dict.fromkeys(shas) if s not in self._tokens]
        if missing:
            pil = [Image.open(io.BytesIO(self.read_blob(s))) for s in missing]
            images = self.model.load_images(pil)
            toks = self.model.tokens(images).cpu()
            for s, t, im in zip(missing, toks, images):
                self._tokens[s] = (t, image_digest(im))
        out = {}
        for s in shas:
            self._tokens.move_to_end(s)
            out[s] = self._tokens[s]
        while len(self._tokens) > self.cache_size:
            self._tokens.popitem(last=False)
        return out

    def _compose(self, histories: list[torch.Tensor], refs: list[torch.Tensor]) -> LatentInstruction:
        """Histories (L_b, N) and references (N,) -> one LatentInstruction of len(histories) rows."""
        # a short history is right-aligned (most recent last), as in training
        padded, mask = pad_history(histories, self.history_len)
        return self.model.compose(padded, mask, torch.stack(refs))

    @torch.no_grad()
    def _sample(
        self, instr: LatentInstruction, texts: list[str], gens: list[torch.Generator]
    ) -> torch.Tensor:
        """One image per row, row r from its own generator gens[r]: uint8 (R, 3, H, W)."""
        return self.model.sample(instr, texts, generators=gens)

    def run(self, items: Sequence[SampleRequest]) -> list[ItemResult]:
        """Compose every item (and its leave-one-out variants) in one batch, then sample all rows in
        one batch; returns one result per item, in order."""
        from drc.precision import autocast

        if not items:
            return []
        with autocast(self.model.device, self.precision):
            return self._run(items)

    def _run(self, items: Sequence[SampleRequest]) -> list[ItemResult]:
        entries = self._entries([s for it in items for s in (*it.history, it.reference)])
        tok = {s: t for s, (t, _) in entries.items()}
        # compose rows: each item's full history, then (when explaining) its L left-out variants
        histories, refs, owner = [], [], []  # owner: (item index, variant: -1 full, i = without image i)
        for j, it in enumerate(items):
            if not it.history:
                raise DrcError("a generate request needs at least one history image")
            hist = torch.stack([tok[s] for s in it.history])
            variants = [hist] + (explain.leave_one_out(hist) if it.rows > it.n else [])
            for v, h in enumerate(variants):
                histories.append(h)
                refs.append(tok[it.reference])
                owner.append((j, v - 1))
        instr = self._compose(histories, refs)
        # sampling rows: n per compose row; image i of an item and of each of its variants share the
        # random stream (item seed, item key, i), so a variant differs from the item only by its history
        index = [c for c, (j, _) in enumerate(owner) for _ in range(items[j].n)]
        texts = [items[owner[c][0]].prompt for c in index]
        keys = [
            request_key([entries[s][1] for s in it.history], entries[it.reference][1], it.prompt)
            for it in items
        ]
        gens = [
            g
            for j, _ in owner
            for g in image_generators(
                items[j].seed, keys[j], range(items[j].first, items[j].first + items[j].n)
            )
        ]
        images = self._sample(LatentInstruction(instr.draft[index]), texts, gens)
        results: list[ItemResult] = []
        loo_images: list[torch.Tensor] = []
        loo_drafts: list[torch.Tensor] = []
        full_c, full_block, pos = 0, images[:0], 0
        for c, (j, v) in enumerate(owner):
            it = items[j]
            block = images[pos : pos + it.n]
            pos += it.n
            if v == -1:
                k, L = self.history_len, len(it.history)
                w = None if instr.weights is None else [round(float(x), 4) for x in instr.weights[c, k - L :]]
                results.append(ItemResult([im.permute(1, 2, 0).numpy() for im in block], w, None))
                full_c, full_block, loo_images, loo_drafts = c, block, [], []
                continue
            loo_images.append(block)
            loo_drafts.append(instr.draft[c])
            if v == len(it.history) - 1:  # the item's last variant: all are in
                results[-1].influence = explain.influence(
                    full_block, instr.draft[full_c], loo_images, loo_drafts
                )
        return results
