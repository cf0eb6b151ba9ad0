"""`GeneratorConfig`: the built-in generator's sizes and pretraining settings, and which backend renders
the draft (`BackendName`). `RunConfig` composes it as `generator`; `drc.models.generator` builds from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from drc.config_io import ChoiceChecked

# which model renders the draft (`generator.backend`; drc.backends)
BackendName = Literal["builtin", "janus"]


@dataclass
class GeneratorConfig(ChoiceChecked):
    n_layer: int = 6
    n_head: int = 4
    d_model: int = 256
    visual_vocab: int = 0  # codebook size; 0 = fill from the tokenizer (`with_visual`)
    n_visual: int = 0  # visual tokens per image; 0 = fill from the tokenizer grid
    grid_w: int = 0  # tokens per row of the grid (rows = n_visual / grid_w); 0 = fill
    text_vocab: int = 256  # byte-level text (drc.models.text.ByteTokenizer)
    max_text_len: int = 24
    n_null: int = 4  # length of the learned null instruction
    mlp_ratio: int = 4
    dropout: float = 0.0
    # training only: share of teacher-forced input visual tokens replaced by random ones. A cheap
    # regulariser (dropout's random masks cost ~35% of a CPU step) that also trains the model to
    # continue from its own imperfect samples (measured: bench/README.md, "Measurements behind the
    # config defaults").
    token_noise: float = 0.2
    cond_drop: float = 0.1  # pretraining: share of examples trained unconditional (for CFG sampling)
    # pretraining of the image (draft) path: the share of conditioned examples shown without a draft
    # (caption only), the largest share of a draft's cells corrupted (each example draws its share
    # uniformly in [0, draft_noise]), and the share of drafted examples whose caption is replaced by
    # the dataset's coarse instruction (what Stage 2 and generation show with a draft)
    draft_drop: float = 0.3
    draft_noise: float = 0.5
    coarse_text: float = 0.5
    bias: bool = False  # biases in linears / norms (nanoGPT: off is a little faster and no worse)
    # which model renders the draft (drc.backends): "builtin" (this class, trained by `drc train`) or
    # "janus" (a pretrained Janus / Janus-Pro from the local folder `model_dir`; the fields above
    # then do not apply, its settings are the run config's `janus.*`)
    backend: BackendName = "builtin"
    model_dir: str = ""

    def with_visual(self, vocab: int, grid_h: int, grid_w: int) -> GeneratorConfig:
        """A copy with the tokenizer-dependent fields filled (those left at 0)."""
        return dataclasses.replace(
            self,
            visual_vocab=self.visual_vocab or vocab,
            n_visual=self.n_visual or grid_h * grid_w,
            grid_w=self.grid_w or grid_w,
        )
