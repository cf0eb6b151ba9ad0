"""Without probes the similarity metrics use centred per-cell code vectors, which tell images apart."""

from __future__ import annotations

import numpy as np
import torch

from drc.eval.evaluate import _features
from drc.eval.metrics import cosine_rows

V, N, C = 32, 16, 8


class FakeTokenizer:
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        # a large shared offset: what made the mean code vector of every image nearly the same
        self.codebook = 10.0 + torch.randn(V, C, generator=g)

    def embed(self, tok: torch.Tensor) -> torch.Tensor:
        return self.codebook[tok]


class FakeModel:
    tokenizer = FakeTokenizer()

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :N].long() % V


def test_centred_cell_features_separate_different_images():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (64, 3, 4, 4), generator=g, dtype=torch.uint8)
    model = FakeModel()
    _, raw = _features(images, None, model)
    centre = raw.mean(0)
    _, feats = _features(images, None, model, centre)
    assert feats.shape == (64, N * C)
    same = cosine_rows(feats[:8], feats[:8])
    other = cosine_rows(feats[:8], feats[8:16])
    assert np.allclose(same, 1.0, atol=1e-5)
    assert float(np.abs(other).mean()) < 0.4  # distinct images are far apart once centred
    # the old feature (mean code vector, uncentred) put every pair near 1
    old = model.tokenizer.embed(model.tokens(images)).mean(1).numpy()
    assert float(cosine_rows(old[:8], old[8:16]).mean()) > 0.99
