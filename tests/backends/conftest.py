"""The tiny random Janus the backend tests share (built once per session, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SIDE, CODEBOOK = 32, 64  # the tiny Janus: 32 px, 8x8 codes of 64


@pytest.fixture(scope="session")
def tiny_janus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "JanusForConditionalGeneration"):
        pytest.skip("this transformers has no Janus (needs >= 4.51)")
    from janus_tiny import make_tiny_janus  # tests/backends/janus_tiny.py, beside this file

    return make_tiny_janus(tmp_path_factory.mktemp("janus") / "tiny", image_size=SIDE, codebook=CODEBOOK)


@pytest.fixture(autouse=True)
def one_thread():
    """A tiny model is all per-op overhead: one thread, since two OpenMP threads spin-wait at every op
    on a 2-core machine shared with other jobs (seen here: the same test 8x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
